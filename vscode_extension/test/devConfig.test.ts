import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ConfigNotFound, configFor, containerFor, describes, discoverConfig, parseConfigShow, projectRootOf, serviceWorkload } from '../src/lib/devConfig';
import { tempDir } from './helpers/fakeSession';

function write(file: string, text = 'name: x\n'): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

test('discovery: the nearest .nhdev/config.yaml, else .nocalhost/config.yaml, walking up like nhdev', () => {
  const root = tempDir();
  const nocalhost = write(path.join(root, 'proj', '.nocalhost', 'config.yaml'));
  fs.mkdirSync(path.join(root, 'proj', 'src', 'pkg'), { recursive: true });
  assert.equal(discoverConfig(path.join(root, 'proj', 'src', 'pkg')), nocalhost);
  const nhdev = write(path.join(root, 'proj', '.nhdev', 'config.yaml'));
  assert.equal(discoverConfig(path.join(root, 'proj', 'src')), nhdev, '.nhdev wins in the same directory');
  assert.throws(() => discoverConfig(root), (e: unknown) => e instanceof ConfigNotFound && /nhdev config init/.test((e as Error).message));
});

test('discovery: an explicit config is a file or a directory holding one, relative to the folder', () => {
  const root = tempDir();
  const custom = write(path.join(root, 'deploy', 'dev.yaml'));
  const inDir = write(path.join(root, 'svc', '.nocalhost', 'config.yaml'));
  assert.equal(discoverConfig(root, 'deploy/dev.yaml'), custom);
  assert.equal(discoverConfig(root, 'svc'), inDir);
  assert.throws(() => discoverConfig(root, 'nope.yaml'), /no such file/);
  assert.throws(() => discoverConfig(root, 'deploy'), /no dev config in directory/);
});

test('the project root is the directory holding .nhdev/ or .nocalhost/', () => {
  assert.equal(projectRootOf('/src/app/.nhdev/config.yaml'), '/src/app');
  assert.equal(projectRootOf('/src/app/.nocalhost/config.yaml'), '/src/app');
  assert.equal(projectRootOf('/src/app/deploy/dev.yaml'), '/src/app/deploy');
});

// What `nhdev config show -o json` prints for examples/python-http (trimmed to the keys read).
const PYTHON_EXAMPLE = {
  name: 'greeter', serviceType: 'deployment',
  containers: [{ name: 'greeter', dev: { image: 'ghcr.io/nhdev/dev-python:3.12', workDir: '/home/nhdev-dev',
    command: { build: null, run: ['python3', 'app.py'], debug: ['python3', '-m', 'debugpy', '--listen', '0.0.0.0:5678', 'app.py'], hotReloadRun: null, hotReloadDebug: null },
    debug: { remoteDebugPort: 5678, language: 'python' } } }],
};

test('config show output: one service or a list of them', () => {
  const [service] = parseConfigShow(PYTHON_EXAMPLE);
  assert.deepEqual(service, { name: 'greeter', kind: 'deployment', containers: [
    { name: 'greeter', language: 'python', debugPort: 5678, hasDebugCommand: true, hasRunCommand: true, image: 'ghcr.io/nhdev/dev-python:3.12' }] });
  const list = parseConfigShow([PYTHON_EXAMPLE, { name: 'db', serviceType: 'statefulset', containers: [{ dev: { command: { debug: null } } }] }, { containers: [] }]);
  assert.deepEqual(list.map(serviceWorkload), ['deployment/greeter', 'statefulset/db', undefined]);
  assert.equal(list[1].containers[0].hasDebugCommand, false);
  assert.throws(() => parseConfigShow([1]), /not an object/);
});

test('which config describes a workload: a named service beats a catch-all', () => {
  const [greeter] = parseConfigShow(PYTHON_EXAMPLE);
  assert.ok(describes(greeter, 'greeter') && describes(greeter, 'deployment/greeter') && describes(greeter, 'deploy/greeter'));
  assert.ok(!describes(greeter, 'statefulset/greeter') && !describes(greeter, 'deployment/other'));
  const catchAll = { path: '/a/.nhdev/config.yaml', services: [{ containers: [{ hasDebugCommand: true, hasRunCommand: false }] }] };
  const named = { path: '/b/.nhdev/config.yaml', services: [greeter] };
  assert.equal(configFor([catchAll, named], 'deployment/greeter'), named);
  assert.equal(configFor([catchAll, named], 'deployment/other'), catchAll);
  assert.equal(configFor([named], 'deployment/other'), undefined);
  assert.equal(containerFor(named, 'deployment/greeter')?.language, 'python');
  assert.equal(containerFor(named, 'deployment/greeter', 'greeter')?.debugPort, 5678);
});
