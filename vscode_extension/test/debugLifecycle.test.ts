import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DebugLifecycle, RELOAD_WINDOW_MS } from '../src/lib/debugLifecycle';

const S = '/s/control.sock';

/** The user presses stop: VS Code asks the adapter to disconnect and the adapter answers. */
function userStops(life: DebugLifecycle, id: string, args: Record<string, unknown> = {}, command = 'disconnect'): void {
  life.clientRequest(id, command, args);
  life.adapterMessage(id, { type: 'response', command });
}
const ATTACH = { event: 'attach', language: 'python', host: '127.0.0.1', port: 41000, restart: true };

test('the user stops debugging: the debug command in the pod is stopped', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  userStops(life, 'v1', { restart: false, terminateDebuggee: false });
  assert.deepEqual(life.terminated('v1'), [{ type: 'stop-debug', socket: S }]);
  assert.deepEqual(life.terminated('v1'), [], 'once');
});

test('the user restarts: nothing stopped (resolving the configuration again restarts the debugger)', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  userStops(life, 'v1', { restart: true });
  assert.deepEqual(life.terminated('v1'), []);
});

test('hot reload: the connection drops, the attach event attaches again', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  assert.deepEqual(life.sessionEvent(S, 'reload', { roles: ['run', 'debug'] }), []);
  assert.deepEqual(life.terminated('v1'), [], 'no stop while the reload is under way');
  assert.deepEqual(life.sessionEvent(S, 'attach', ATTACH), [{ type: 'reattach', socket: S, previousSessionId: 'v1', info: ATTACH }]);
  life.attached('v2', S, false);
  userStops(life, 'v2', {}, 'terminate');
  assert.deepEqual(life.terminated('v2'), [{ type: 'stop-debug', socket: S }]);
});

test('hot reload as VS Code sees it: the connection drops and VS Code sends disconnect, which nobody answers', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  life.sessionEvent(S, 'reload', { roles: ['debug'] });
  life.clientRequest('v1', 'disconnect', { restart: false }); // VS Code, on the closed connection
  assert.deepEqual(life.terminated('v1'), []);
  assert.deepEqual(life.sessionEvent(S, 'attach', ATTACH), [{ type: 'reattach', socket: S, previousSessionId: 'v1', info: ATTACH }]);
});

test('the debugger says goodbye first (terminated), then VS Code disconnects: not a user stop', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  life.adapterMessage('v1', { type: 'event', event: 'exited' });
  life.adapterMessage('v1', { type: 'event', event: 'terminated' });
  userStops(life, 'v1'); // VS Code answering "terminated", the adapter answering that
  assert.equal(life.terminated('v1')[0].type, 'check-dropped');
  life.attached('v2', S, false);
  life.clientRequest('v2', 'disconnect', {});
  life.adapterMessage('v2', { type: 'event', event: 'terminated' }); // the adapter's goodbye after the user's stop
  life.adapterMessage('v2', { type: 'response', command: 'disconnect' });
  assert.deepEqual(life.terminated('v2'), [{ type: 'stop-debug', socket: S }]);
  life.attached('v3', S, false);
  life.clientRequest('v3', 'disconnect', {}); // unanswered, no reload: the connection dropped
  assert.equal(life.terminated('v3')[0].type, 'check-dropped');
});

test('hot reload before VS Code noticed the drop: the old session is ended quietly and replaced', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  life.sessionEvent(S, 'reload', { roles: ['debug'] });
  assert.deepEqual(life.sessionEvent(S, 'attach', ATTACH), [{ type: 'reattach', socket: S, previousSessionId: 'v1', info: ATTACH }]);
  userStops(life, 'v1'); // our own stopDebugging of it
  assert.deepEqual(life.terminated('v1'), [], 'replaced, not stopped');
});

test('a reload of the run command only is not the debugger\'s', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  life.sessionEvent(S, 'reload', { roles: ['run'] });
  const [action] = life.terminated('v1');
  assert.equal(action.type, 'check-dropped');
});

test('the user stops during a reload: stopped, and the late attach does not bring it back', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  life.sessionEvent(S, 'reload', { roles: ['debug'] });
  userStops(life, 'v1');
  assert.deepEqual(life.terminated('v1'), [{ type: 'stop-debug', socket: S }]);
  assert.deepEqual(life.sessionEvent(S, 'attach', ATTACH), [{ type: 'stop-debug', socket: S }]);
});

test('a drop without reload: checked after a grace, unless a reload or attach came meanwhile', () => {
  let now = 1000;
  const life = new DebugLifecycle(() => now);
  life.attached('v1', S, false);
  const [check] = life.terminated('v1');
  assert.equal(check.type, 'check-dropped');
  if (check.type !== 'check-dropped') {
    return;
  }
  assert.ok(life.stillDropped(S, check.generation));
  life.sessionEvent(S, 'reload', { roles: ['debug'] });
  assert.ok(!life.stillDropped(S, check.generation), 'the reload event arrived late');
  assert.deepEqual(life.sessionEvent(S, 'attach', ATTACH), [{ type: 'reattach', socket: S, previousSessionId: 'v1', info: ATTACH }]);
  // A reload long ago does not count.
  life.attached('v2', S, false);
  life.sessionEvent(S, 'reload', { roles: ['debug'] });
  now += RELOAD_WINDOW_MS + 1;
  assert.equal(life.terminated('v2')[0].type, 'check-dropped');
});

test('node / java: the parent stays, its child is replaced', () => {
  const life = new DebugLifecycle();
  life.attached('p1', S, true);
  life.sessionEvent(S, 'reload', { roles: ['debug'] });
  assert.deepEqual(life.childTerminated('p1'), [], 'the child dropped because of the reload');
  assert.deepEqual(life.sessionEvent(S, 'attach', ATTACH), [{ type: 'reattach-child', socket: S, sessionId: 'p1', info: ATTACH }]);
  assert.equal(life.childTerminated('p1')[0].type, 'check-dropped', 'a child ending by itself');
  userStops(life, 'p1');
  assert.deepEqual(life.childTerminated('p1'), [], 'the user stopped the parent');
  assert.deepEqual(life.terminated('p1'), [{ type: 'stop-debug', socket: S }]);
});

test('a failed restart and a session that goes away end the debug sessions', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  assert.deepEqual(life.sessionEvent(S, 'debug', { state: 'failed', error: 'no dev pod' }), [{ type: 'end-session', sessionId: 'v1', message: 'nhdev: restarting the debugger failed: no dev pod' }]);
  assert.deepEqual(life.terminated('v1'), [], 'nothing left to stop');
  life.attached('v2', S, false);
  assert.equal(life.sessionGone(S)[0].type, 'end-session');
  assert.deepEqual(life.terminated('v2'), [], 'nothing left to stop');
  assert.deepEqual(life.sessionEvent('/other.sock', 'attach', ATTACH), [], 'sessions we do not debug are ignored');
});

test('the debug command exits by itself or is stopped elsewhere: the VS Code session ends, nothing is stopped', () => {
  const life = new DebugLifecycle();
  life.attached('v1', S, false);
  assert.deepEqual(life.sessionEvent(S, 'debug', { state: 'exited', exitCode: 1 }), [{ type: 'end-session', sessionId: 'v1', message: 'nhdev: the debug command exited with code 1' }]);
  assert.deepEqual(life.terminated('v1'), []);
  life.attached('v2', S, false);
  const [check] = life.terminated('v2'); // the connection dropped first (someone ran stop-debug)...
  assert.equal(check.type, 'check-dropped');
  assert.deepEqual(life.sessionEvent(S, 'debug', { state: 'stopped', exitCode: 143 }), []);
  assert.ok(check.type === 'check-dropped' && !life.stillDropped(S, check.generation), '...and the stopped event settles it: no question asked');
  life.attached('v3', S, false);
  userStops(life, 'v3');
  assert.deepEqual(life.sessionEvent(S, 'debug', { state: 'stopped' }), [], 'our own stop');
  assert.deepEqual(life.terminated('v3'), [{ type: 'stop-debug', socket: S }]);
});
