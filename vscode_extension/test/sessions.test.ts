import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { listControlSockets, SessionsManager } from '../src/lib/sessions';
import { FakeSession, sessionStatus, tempDir, waitFor } from './helpers/fakeSession';

test('control sockets are found under ~/.nhdev/sessions/<key>/, nothing else', async () => {
  const home = tempDir();
  const dir = path.join(home, '.nhdev', 'sessions');
  assert.deepEqual(listControlSockets(dir), [], 'no directory yet');
  const live = await new FakeSession(path.join(dir, 'ctx-ns-deployment-web-1', 'control.sock'), sessionStatus()).listen();
  fs.mkdirSync(path.join(dir, 'abc123def456'), { recursive: true }); // a key directory
  fs.writeFileSync(path.join(dir, 'abc123def456', 'client_key'), 'x');
  fs.mkdirSync(path.join(dir, 'stopped-1'));
  fs.writeFileSync(path.join(dir, 'stopped-1', 'control.sock'), ''); // not a socket
  try {
    assert.deepEqual(listControlSockets(dir), [live.socketPath]);
  } finally {
    await live.close();
  }
});

test('the manager follows every session: status, pushed changes, and a new session appearing', async () => {
  const home = tempDir();
  const dir = path.join(home, '.nhdev', 'sessions');
  const first = await new FakeSession(path.join(dir, 'k1', 'control.sock'), sessionStatus()).listen();
  const manager = new SessionsManager(dir, 20);
  const changes: string[] = [];
  const events: string[] = [];
  const removed: string[] = [];
  manager.on('changed', (v) => changes.push(`${v.status.workload}:${v.tunnel.state}:${v.sync?.state}`));
  manager.on('event', (_socket, event) => events.push(event));
  manager.on('removed', (socket) => removed.push(socket));
  let second: FakeSession | undefined;
  try {
    manager.start();
    await waitFor('the first session', () => manager.views.length === 1);
    assert.equal(manager.find({ workload: 'greeter', context: 'nhdev-sandbox' })?.socket, first.socketPath);
    assert.equal(manager.find({ workload: 'greeter', namespace: 'other' }), undefined);
    first.publish({ event: 'sync', state: 'syncing', pending: 2 });
    first.publish({ event: 'output', role: 'run', stream: 'stdout', line: 'hello' });
    await waitFor('the pushed change', () => changes.includes('deployment/greeter:connected:syncing'));
    await waitFor('the output event', () => events.includes('output'));
    assert.equal(changes.length, 2, 'output lines do not count as state changes');

    // A session started later (from a terminal, say) is noticed through the directory watch.
    second = await new FakeSession(path.join(dir, 'k2', 'control.sock'), sessionStatus({ workload: 'deployment/api' })).listen();
    await waitFor('the second session', () => manager.views.length === 2, 5000);
    assert.ok(manager.find({ workload: 'deployment/api' }));

    await first.close();
    await waitFor('the first to be gone', () => removed.includes(first.socketPath));
    assert.deepEqual(manager.views.map((v) => v.status.workload), ['deployment/api']);
    assert.equal((await manager.status(second.socketPath))?.status.workload, 'deployment/api');
    // A refresh asks for the whole status again (the debugger's forward appeared meanwhile).
    second.status = sessionStatus({ workload: 'deployment/api', forwards: [{ kind: 'local', local: '127.0.0.1:41000', remote: '127.0.0.1:5678' }] });
    await manager.refresh();
    assert.deepEqual(manager.find({ workload: 'deployment/api' })?.status.forwards.map((f) => f.local), ['127.0.0.1:41000']);
    assert.equal(await manager.status(first.socketPath), undefined);
  } finally {
    manager.dispose();
    await second?.close();
  }
});

test('following a socket nobody answers on resolves with nothing', async () => {
  const manager = new SessionsManager(path.join(tempDir(), 'sessions'));
  try {
    assert.equal(await manager.follow(path.join(tempDir(), 'control.sock')), undefined);
    assert.deepEqual(manager.views, []);
  } finally {
    manager.dispose();
  }
});
