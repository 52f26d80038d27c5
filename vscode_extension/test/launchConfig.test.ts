import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { parse } from 'jsonc-parser';
import { LaunchConfigError, newLaunchEntry, normalizeLaunch } from '../src/lib/launchConfig';

test('the examples\' minimal launch configuration: mode defaults to replace', () => {
  const example = path.resolve(__dirname, '..', '..', '..', 'examples', 'python-http', '.vscode', 'launch.json');
  const entry = fs.existsSync(example)
    ? (parse(fs.readFileSync(example, 'utf8')) as { configurations: Record<string, unknown>[] }).configurations[0]
    : { name: 'nhdev: debug greeter', type: 'nhdev', request: 'attach', workload: 'deployment/greeter' };
  const launch = normalizeLaunch(entry);
  assert.equal(launch.type, 'nhdev');
  assert.equal(launch.workload, 'deployment/greeter');
  assert.equal(launch.mode, 'replace');
  assert.equal(launch.timeout, 300);
  assert.deepEqual(launch.adapterOptions, {});
});

test('nocalhost entries are read the same way; own keys, VS Code keys and pass-through keys are told apart', () => {
  const launch = normalizeLaunch({
    type: 'nocalhost', request: 'attach', name: 'Nocalhost Debug', mode: 'duplicate', container: 'app', config: 'deploy/dev.yaml',
    context: 'c', namespace: 'n', timeout: 60, preLaunchTask: 'build', __configurationTarget: 6, skipFiles: ['x'], adapterOptions: { skipFiles: ['y'], stopOnEntry: true },
  });
  assert.equal(launch.type, 'nocalhost');
  assert.equal(launch.workload, undefined);
  assert.equal(launch.mode, 'duplicate');
  assert.equal(launch.container, 'app');
  assert.equal(launch.config, 'deploy/dev.yaml');
  assert.equal(launch.timeout, 60);
  assert.deepEqual(launch.vscodeKeys, { preLaunchTask: 'build' });
  assert.deepEqual(launch.adapterOptions, { skipFiles: ['y'], stopOnEntry: true }, 'adapterOptions win over top-level keys');
});

test('mistakes are reported with the property', () => {
  assert.throws(() => normalizeLaunch({ type: 'nhdev', request: 'launch' }), (e: unknown) => e instanceof LaunchConfigError && /"request" must be "attach"/.test((e as Error).message));
  assert.throws(() => normalizeLaunch({ type: 'nhdev', mode: 'copy' }), /"mode" must be "replace" or "duplicate"/);
  assert.throws(() => normalizeLaunch({ type: 'nhdev', workload: 3 }), /"workload" must be a string/);
  assert.throws(() => normalizeLaunch({ type: 'nhdev', timeout: -1 }), /positive number/);
  assert.throws(() => normalizeLaunch({ type: 'nhdev', adapterOptions: [] }), /must be an object/);
  assert.equal(normalizeLaunch({ type: 'nhdev', workload: 'deployment/x' }).name, 'nhdev: debug deployment/x');
});

test('new entries for "Add launch configuration"', () => {
  assert.deepEqual(newLaunchEntry('deployment/greeter'), { name: 'nhdev: debug greeter', type: 'nhdev', request: 'attach', workload: 'deployment/greeter' });
  assert.deepEqual(newLaunchEntry(undefined, 'duplicate'), { name: 'nhdev: debug in the cluster', type: 'nhdev', request: 'attach', mode: 'duplicate' });
});
