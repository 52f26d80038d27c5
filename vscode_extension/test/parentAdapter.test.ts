import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { DapMessage, ParentAdapter } from '../src/lib/parentAdapter';

function harness(startChild: () => Promise<void> = async () => undefined) {
  const sent: DapMessage[] = [];
  const calls: string[] = [];
  const adapter = new ParentAdapter({
    startChild: async () => { calls.push('start'); await startChild(); },
    stop: async ({ restart }) => { calls.push(`stop restart=${restart}`); },
  });
  adapter.onDidSendMessage((m) => sent.push(m));
  let seq = 1;
  const send = (command: string, args: Record<string, unknown> = {}) => adapter.handleMessage({ seq: seq++, type: 'request', command, arguments: args });
  return { adapter, sent, calls, send };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('a parent session: initialize, configure, attach, then the child starts once', async () => {
  const { sent, calls, send } = harness();
  send('initialize', { adapterID: 'nhdev' });
  assert.deepEqual(sent.map((m) => [m.type, m.command ?? m.event]), [['response', 'initialize'], ['event', 'initialized']]);
  assert.equal((sent[0].body as Record<string, unknown>).supportsConfigurationDoneRequest, true);
  send('attach', { __nhdev: {} });
  send('setBreakpoints', { source: { path: '/a.js' }, breakpoints: [{ line: 3 }, { line: 4 }] });
  assert.deepEqual(calls, [], 'not before configurationDone');
  send('configurationDone');
  await tick();
  assert.deepEqual(calls, ['start']);
  send('threads');
  const threads = sent.find((m) => m.command === 'threads');
  assert.deepEqual(threads?.body, { threads: [] });
  assert.deepEqual((sent.find((m) => m.command === 'setBreakpoints')?.body as { breakpoints: unknown[] }).breakpoints, [{ verified: false }, { verified: false }]);
  assert.ok(sent.every((m) => m.type !== 'response' || m.success));
  const seqs = sent.map((m) => m.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
});

test('disconnect stops (restart or not) and answers afterwards; terminate also ends the session', async () => {
  const { sent, calls, send } = harness();
  send('disconnect', { restart: true });
  await tick();
  assert.deepEqual(calls, ['stop restart=true']);
  assert.equal(sent.at(-1)?.command, 'disconnect');
  send('terminate');
  await tick();
  assert.deepEqual(sent.slice(-2).map((m) => m.command ?? m.event), ['terminate', 'terminated']);
});

test('a child that cannot start: a message in the debug console and the session ends', async () => {
  const { sent, send } = harness(async () => { throw new Error('no node debugger'); });
  send('initialize');
  send('configurationDone');
  send('attach');
  await tick();
  await tick();
  const output = sent.find((m) => m.event === 'output');
  assert.deepEqual(output?.body, { category: 'stderr', output: 'nhdev: no node debugger\n' });
  assert.equal(sent.at(-1)?.event, 'terminated');
});
