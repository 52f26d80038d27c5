import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { attachPlan, AttachInfo, isNhdevResolved, NhdevMarker, parseAttachInfo, reattachConfig } from '../src/lib/attach';
import { normalizeLaunch } from '../src/lib/launchConfig';
import { nhdevPython } from './helpers/fakeSession';

const SOCKET = '/home/u/.nhdev/sessions/k/control.sock';

/** AttachInfo as nhdev/debug/attach.py builds it: from the real code when the repository's venv is there. */
function realInfos(): Record<string, unknown> {
  const python = nhdevPython();
  if (python) {
    const script = 'import json\nfrom nhdev.debug.attach import attach_info\n'
      + 'print(json.dumps({l: attach_info(l, "127.0.0.1", 41000 + i, "/src/app", "/home/nhdev-dev").to_json() for i, l in enumerate(["python", "go", "node", "java"])}))';
    return JSON.parse(execFileSync(python, ['-c', script], { encoding: 'utf8' }));
  }
  const mapping = [{ localRoot: '/src/app', remoteRoot: '/home/nhdev-dev' }];
  return {
    python: { language: 'python', host: '127.0.0.1', port: 41000, pathMappings: mapping, launchConfig: { type: 'debugpy', request: 'attach', connect: { host: '127.0.0.1', port: 41000 }, pathMappings: mapping, justMyCode: false } },
    go: { language: 'go', host: '127.0.0.1', port: 41001, pathMappings: mapping, launchConfig: { type: 'go', request: 'attach', mode: 'remote', debugAdapter: 'dlv-dap', host: '127.0.0.1', port: 41001, substitutePath: [{ from: '/src/app', to: '/home/nhdev-dev' }] } },
    node: { language: 'node', host: '127.0.0.1', port: 41002, pathMappings: mapping, launchConfig: { type: 'node', request: 'attach', address: '127.0.0.1', port: 41002, localRoot: '/src/app', remoteRoot: '/home/nhdev-dev', skipFiles: ['<node_internals>/**'] } },
    java: { language: 'java', host: '127.0.0.1', port: 41003, pathMappings: [], launchConfig: { type: 'java', request: 'attach', hostName: '127.0.0.1', port: 41003 } },
  };
}

const INFOS = realInfos();
const info = (language: string): AttachInfo => parseAttachInfo(INFOS[language]);
// The example's launch.json entry: the minimal configuration.
const minimal = normalizeLaunch({ type: 'nhdev', request: 'attach', name: 'nhdev: debug greeter', workload: 'deployment/greeter' });

test('python: the nhdev session speaks DAP to debugpy, which gets pathMappings in its attach request', () => {
  const plan = attachPlan(minimal, info('python'), SOCKET, 'deployment/greeter');
  const { __nhdev: marker, ...config } = plan.config as Record<string, unknown> & { __nhdev: NhdevMarker };
  assert.deepEqual(config, {
    type: 'nhdev', request: 'attach', name: 'nhdev: debug greeter', justMyCode: false,
    connect: { host: '127.0.0.1', port: 41000 }, pathMappings: [{ localRoot: '/src/app', remoteRoot: '/home/nhdev-dev' }],
  });
  assert.deepEqual(marker, { controlSocket: SOCKET, workload: 'deployment/greeter', language: 'python', adapter: 'server', host: '127.0.0.1', port: 41000 });
  assert.ok(!('host' in config) && !('port' in config) && !('workload' in config) && !('mode' in config), 'nothing debugpy would refuse');
  assert.ok(isNhdevResolved(plan.config));
});

test('python: adapter options and unknown top-level keys reach debugpy; VS Code keys stay', () => {
  const launch = normalizeLaunch({ type: 'nocalhost', request: 'attach', name: 'n', justMyCode: true, preLaunchTask: 'build', adapterOptions: { showReturnValue: true }, mode: 'duplicate' });
  const plan = attachPlan(launch, info('python'), SOCKET, 'deployment/greeter');
  assert.equal(plan.config.type, 'nocalhost');
  assert.equal(plan.config.justMyCode, true);
  assert.equal(plan.config.showReturnValue, true);
  assert.equal(plan.config.preLaunchTask, 'build');
  assert.equal(plan.config.mode, undefined);
});

test('go: dlv gets attach mode "remote" and substitutePath local -> remote', () => {
  const launch = normalizeLaunch({ type: 'nhdev', request: 'attach', name: 'go', mode: 'duplicate', adapterOptions: { stopOnEntry: true } });
  const { __nhdev: marker, ...config } = attachPlan(launch, info('go'), SOCKET, 'deployment/greeter-go').config as Record<string, unknown> & { __nhdev: NhdevMarker };
  assert.deepEqual(config, { type: 'nhdev', request: 'attach', name: 'go', mode: 'remote', substitutePath: [{ from: '/src/app', to: '/home/nhdev-dev' }], stopOnEntry: true });
  assert.equal(marker.adapter, 'server');
  assert.equal(marker.port, 41001);
});

test('node: a parent nhdev session with a child of the built-in node attach type', () => {
  const plan = attachPlan(minimal, info('node'), SOCKET, 'deployment/greeter-node');
  assert.equal(plan.marker.adapter, 'parent');
  assert.deepEqual(plan.marker.child, {
    skipFiles: ['<node_internals>/**'], type: 'node', request: 'attach', name: 'nhdev: debug greeter (node)',
    address: '127.0.0.1', port: 41002, localRoot: '/src/app', remoteRoot: '/home/nhdev-dev',
  });
  assert.deepEqual(Object.keys(plan.config).sort(), ['__nhdev', 'name', 'request', 'type']);
  assert.equal(plan.requiresExtension, undefined);
});

test('java: a child of the java attach type, which needs the Java debugger extension', () => {
  const launch = normalizeLaunch({ type: 'nhdev', request: 'attach', name: 'j', projectName: 'app' });
  const plan = attachPlan(launch, info('java'), SOCKET, 'deployment/j');
  assert.equal(plan.requiresExtension, 'vscjava.vscode-java-debug');
  assert.deepEqual(plan.marker.child, { type: 'java', request: 'attach', name: 'j (java)', hostName: '127.0.0.1', port: 41003, projectName: 'app' });
});

test('after hot reload: the same configuration again, marked as a re-attach', () => {
  const python = attachPlan(minimal, info('python'), SOCKET, 'deployment/greeter').config;
  const again = reattachConfig(python, { ...info('python'), port: 41010 });
  assert.deepEqual(again.connect, { host: '127.0.0.1', port: 41010 });
  assert.equal((again.__nhdev as NhdevMarker).reattach, true);
  assert.equal((python.__nhdev as NhdevMarker).reattach, undefined, 'the original is not changed');
  const node = attachPlan(minimal, info('node'), SOCKET, 'deployment/greeter-node').config;
  const nodeAgain = reattachConfig(node, { ...info('node'), port: 41020 });
  assert.equal((nodeAgain.__nhdev as NhdevMarker).child?.port, 41020);
});

test('attach information from the session is checked', () => {
  assert.throws(() => parseAttachInfo(null), /no attach information/);
  assert.throws(() => parseAttachInfo({ language: 'ruby', port: 1 }), /ruby/);
  assert.throws(() => parseAttachInfo({ language: 'python', port: 0 }), /invalid debugger port/);
  assert.deepEqual(parseAttachInfo({ language: 'go', port: 2345 }), { language: 'go', host: '127.0.0.1', port: 2345, pathMappings: [], launchConfig: {} });
});
