import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ControlError, LineSplitter, parseControlLine, request, subscribe } from '../src/lib/control';
import { FakeSession, sessionStatus, tempDir, waitFor } from './helpers/fakeSession';

test('control lines: replies, events and garbage', () => {
  assert.deepEqual(parseControlLine('{"ok": true, "status": {"pid": 1}}'), { kind: 'reply', ok: true, body: { ok: true, status: { pid: 1 } } });
  assert.deepEqual(parseControlLine('{"ok": false, "error": "unknown op \'x\'"}'), { kind: 'reply', ok: false, error: "unknown op 'x'", body: { ok: false, error: "unknown op 'x'" } });
  assert.deepEqual(parseControlLine('{"event": "sync", "state": "idle"}\r'), { kind: 'event', event: 'sync', body: { event: 'sync', state: 'idle' } });
  assert.equal(parseControlLine('not json').kind, 'invalid');
  assert.equal(parseControlLine('[1, 2]').kind, 'invalid');
  assert.equal(parseControlLine('{"hello": 1}').kind, 'invalid');
  assert.equal((parseControlLine('{"ok": false}') as { error: string }).error, 'the session refused the request');
});

test('lines split across chunks, also inside a UTF-8 character', () => {
  const splitter = new LineSplitter();
  const bytes = Buffer.from('{"line": "héllo"}\n{"b": 2}\n{"c"', 'utf8');
  const cut = bytes.indexOf(Buffer.from('é')) + 1; // in the middle of the two bytes of é
  assert.deepEqual(splitter.push(bytes.subarray(0, cut)), []);
  assert.deepEqual(splitter.push(bytes.subarray(cut)), ['{"line": "héllo"}', '{"b": 2}']);
  assert.deepEqual(splitter.push(Buffer.from(': 3}\n\n')), ['{"c": 3}']);
  assert.deepEqual(splitter.end(), []);
  const small = new LineSplitter(10);
  assert.throws(() => small.push('x'.repeat(11)), /longer than 10/);
});

test('request: one line out, one reply back; errors say why', async () => {
  const dir = tempDir();
  const session = await new FakeSession(path.join(dir, 'control.sock'), sessionStatus(), {
    debug: (r) => ({ attach: { language: 'python', port: 41000, timeout: r.timeout } }),
    'stop-debug': () => { throw new Error('no debugger runs'); },
  }).listen();
  try {
    assert.deepEqual(await request(session.socketPath, { op: 'debug', timeout: 30 }), { ok: true, attach: { language: 'python', port: 41000, timeout: 30 } });
    await assert.rejects(request(session.socketPath, { op: 'stop-debug' }), (e: unknown) => e instanceof ControlError && e.message === 'no debugger runs');
    await assert.rejects(request(session.socketPath, { op: 'dance' }), /unknown op 'dance'/);
    await assert.rejects(request(path.join(dir, 'nobody.sock'), { op: 'status' }), /no session answers at .*nobody\.sock: ENOENT/);
  } finally {
    await session.close();
  }
});

test('request: a session that does not answer times out', async () => {
  const dir = tempDir();
  const session = await new FakeSession(path.join(dir, 'control.sock'), {}, { slow: () => new Promise(() => undefined) }).listen();
  try {
    await assert.rejects(request(session.socketPath, { op: 'slow' }, 200), /did not answer slow within/);
  } finally {
    await session.close();
  }
});

test('subscribe: the status first, then every pushed event; onClose when the session goes', async () => {
  const dir = tempDir();
  const session = await new FakeSession(path.join(dir, 'control.sock'), sessionStatus()).listen();
  const got: unknown[] = [];
  let closed = false;
  subscribe(session.socketPath, {
    onStatus: (status) => got.push(['status', status.workload]),
    onEvent: (event, body) => got.push([event, body.state]),
    onClose: () => { closed = true; },
  });
  await waitFor('the subscription', () => session.subscriberCount === 1);
  session.publish({ event: 'sync', state: 'syncing' });
  session.publish({ event: 'tunnel', state: 'reconnecting' });
  await waitFor('two events', () => got.length === 3);
  assert.deepEqual(got, [['status', 'deployment/greeter'], ['sync', 'syncing'], ['tunnel', 'reconnecting']]);
  await session.close();
  await waitFor('onClose', () => closed);
});

test('sockets deeper than a unix address allows are reached through /proc/self/fd', { skip: !fs.existsSync('/proc/self/fd') }, async () => {
  const deep = path.join(tempDir(), 'd'.repeat(60), 'e'.repeat(60));
  fs.mkdirSync(deep, { recursive: true });
  const socketPath = path.join(deep, 'control.sock');
  assert.ok(Buffer.byteLength(socketPath) > 108);
  // The server binds the same way nhdev does: through its directory's descriptor.
  const fd = fs.openSync(deep, 'r');
  const session = await new FakeSession(`/proc/self/fd/${fd}/control.sock`, sessionStatus()).listen();
  try {
    assert.ok(fs.existsSync(socketPath));
    const reply = await request(socketPath, { op: 'status' });
    assert.equal((reply.status as { workload: string }).workload, 'deployment/greeter');
  } finally {
    await session.close();
    fs.closeSync(fd);
  }
});
