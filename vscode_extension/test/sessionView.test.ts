import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { applyEvent, belongsToWorkspace, detailLines, outputLine, statusBarLook, summarize, viewFromStatus } from '../src/lib/sessionView';
import { sessionStatus } from './helpers/fakeSession';

const SOCKET = '/s/control.sock';

test('a view from the session status', () => {
  const view = viewFromStatus(SOCKET, sessionStatus());
  assert.equal(view.tunnel.state, 'connected');
  assert.equal(view.tunnel.pod, 'greeter-5bd778856b-vqf2p');
  assert.equal(view.sync?.state, 'idle');
  assert.equal(view.debug.running, false);
  assert.throws(() => viewFromStatus(SOCKET, { pid: 1 }), /no workload, namespace, context, tunnel/);
});

test('pushed events move the view: tunnel, sync, attach, reload, run', () => {
  let view = viewFromStatus(SOCKET, sessionStatus());
  view = applyEvent(view, 'tunnel', { event: 'tunnel', state: 'reconnecting', reason: 'stream closed', generation: 1, pod: 'greeter-1' });
  assert.deepEqual(view.tunnel, { state: 'reconnecting', reason: 'stream closed', pod: 'greeter-1' });
  assert.equal(view.status.tunnel.state, 'reconnecting');
  view = applyEvent(view, 'sync', { event: 'sync', state: 'syncing', pending: 3, files_in_sync: 12 });
  assert.equal(view.sync?.state, 'syncing');
  assert.equal((view.sync as unknown as Record<string, unknown>).event, undefined);
  view = applyEvent(view, 'attach', { event: 'attach', language: 'python', host: '127.0.0.1', port: 41000, restart: false });
  assert.deepEqual(view.debug, { running: true, language: 'python', port: 41000, restarts: 0 });
  view = applyEvent(view, 'reload', { event: 'reload', roles: ['debug'], changed: 1 });
  assert.equal(view.reloads, 1);
  view = applyEvent(view, 'run', { event: 'run', state: 'started', command: 'python3 app.py' });
  assert.deepEqual(view.run, { running: true, command: 'python3 app.py' });
  view = applyEvent(view, 'run', { event: 'run', state: 'exited', exitCode: 3 });
  assert.deepEqual(view.run, { running: false, command: 'python3 app.py', exitCode: 3 });
  assert.equal(applyEvent(view, 'service', { name: 'sync' }).lastEvent, 'service');
  view = applyEvent(applyEvent(view, 'run', { state: 'started', command: 'x' }), 'run', { state: 'stopped', exitCode: 143 });
  assert.equal(view.run.running, false);
  view = applyEvent(view, 'debug', { state: 'stopped', exitCode: 143 });
  assert.equal(view.debug.running, false);
});

test('the status bar: one session, several, and the worst state first', () => {
  const idle = viewFromStatus(SOCKET, sessionStatus());
  assert.deepEqual(statusBarLook([idle])?.text, '$(check) nhdev: greeter synced');
  assert.equal(statusBarLook([]), undefined);
  const busy = applyEvent(idle, 'sync', { state: 'syncing', pending: 4 });
  assert.equal(statusBarLook([busy])?.text, '$(sync~spin) nhdev: greeter syncing (4)');
  const down = applyEvent(viewFromStatus('/t', sessionStatus({ workload: 'deployment/api' })), 'tunnel', { state: 'reconnecting', reason: 'x' });
  const look = statusBarLook([idle, down]);
  assert.equal(look?.text, '$(debug-disconnect) nhdev: 2 sessions, api reconnecting');
  assert.equal(look?.severity, 'warning');
  assert.match(look?.tooltip ?? '', /deployment\/api \(demo\): reconnecting/);
  assert.equal(summarize(applyEvent(idle, 'sync', { state: 'error', last_error: 'disk full' })).severity, 'error');
  assert.equal(summarize(applyEvent(idle, 'sync', { state: 'idle', warnings: ['w'] })).words, 'synced, 1 warning');
  assert.equal(summarize(viewFromStatus(SOCKET, sessionStatus({ services: {} }))).words, 'connected');
});

test('details: tunnel, sync, forwards, debugger', () => {
  let view = viewFromStatus(SOCKET, sessionStatus());
  view = applyEvent(view, 'attach', { language: 'python', port: 41000 });
  const lines = detailLines(view, 10_000);
  assert.equal(lines[0], 'Tunnel: connected to pod greeter-5bd778856b-vqf2p');
  assert.match(lines[1], /^Sync \(send\): idle, 12 files in sync, 0 pending, last never, last batch 7\.5 ms$/);
  assert.ok(lines.includes('Forward: 127.0.0.1:35345 -> pod 127.0.0.1:8080'));
  assert.ok(lines.includes('Debugger: python on 127.0.0.1:41000'));
  assert.match(lines[lines.length - 1], /Session: pid 4242, replace mode, context nhdev-sandbox/);
});

test('which sessions belong to the workspace', () => {
  const view = viewFromStatus(SOCKET, sessionStatus());
  assert.ok(belongsToWorkspace(view, ['/src/greeter']));
  assert.ok(belongsToWorkspace(view, ['/src']), 'a folder above the project');
  assert.ok(belongsToWorkspace(view, ['/src/greeter/pkg']), 'a folder inside the project');
  assert.ok(!belongsToWorkspace(view, ['/src/greeter-two']));
  assert.ok(!belongsToWorkspace(viewFromStatus(SOCKET, sessionStatus({ projectRoot: undefined, localRoot: undefined })), ['/src']));
});

test('session output lines', () => {
  assert.equal(outputLine('output', { role: 'debug', stream: 'stderr', line: 'boom' }), '[debug stderr] boom');
  assert.equal(outputLine('output', { role: 'run', stream: 'stdout', line: 'hi' }), '[run] hi');
  assert.match(outputLine('reload', { changed: 2, paths: ['a.py', 'b.py'], roles: ['run', 'debug'] }) ?? '', /hot reload \(2 changed: a\.py, b\.py\) restarts run and debug/);
  assert.equal(outputLine('attach', { language: 'go', host: '127.0.0.1', port: 1, restart: true }), '-- go debugger listening on 127.0.0.1:1 (after hot reload)');
  assert.equal(outputLine('debug', { state: 'stopped', exitCode: 143 }), '-- debug command stopped (exit code 143)');
  assert.equal(outputLine('sync', {}), undefined);
});
