import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  CliError, clusterArgs, devEndArgs, devStartArgs, errorMessage, parseContexts, parseDevStart, parseJsonDocument, parseWorkloads,
  podCommandArgs, progressMessage, runJson, shellQuote,
} from '../src/lib/cli';
import { sessionStatus, tempDir } from './helpers/fakeSession';

test('argument lists: cluster selection, dev start / end, pod commands', () => {
  assert.deepEqual(clusterArgs({}), []);
  assert.deepEqual(clusterArgs({ kubeconfig: '/k', context: 'c', namespace: 'n' }), ['--kubeconfig', '/k', '--context', 'c', '-n', 'n']);
  assert.deepEqual(devStartArgs({ workload: 'deployment/greeter' }, { namespace: 'demo' }),
    ['dev', 'start', 'deployment/greeter', '--mode', 'replace', '-n', 'demo', '-o', 'json']);
  assert.deepEqual(devStartArgs({ workload: 'web', mode: 'duplicate', container: 'app', config: '/p/.nhdev/config.yaml', image: 'img', timeout: 60 }, { context: 'c' }),
    ['dev', 'start', 'web', '--mode', 'duplicate', '-c', 'app', '--config', '/p/.nhdev/config.yaml', '--image', 'img', '--timeout', '60', '--context', 'c', '-o', 'json']);
  assert.deepEqual(devEndArgs('deployment/web', {}, { force: true }), ['dev', 'end', 'deployment/web', '--force', '-o', 'json']);
  assert.deepEqual(podCommandArgs('terminal', 'deployment/web', { context: 'c' }), ['dev', 'terminal', 'deployment/web', '--context', 'c']);
  assert.deepEqual(podCommandArgs('logs', 'web', {}, { follow: true, tail: 200 }), ['dev', 'logs', 'web', '--follow', '--tail', '200']);
});

test('shell quoting for the copied terminal command', () => {
  assert.equal(shellQuote(['nhdev', 'dev', 'terminal', 'deployment/web', '-n', 'team-a']), 'nhdev dev terminal deployment/web -n team-a');
  assert.equal(shellQuote(['cd', "/home/o'neil/my app"]), "cd '/home/o'\\''neil/my app'");
});

test('the JSON document on stdout, even after stray lines', () => {
  assert.deepEqual(parseJsonDocument('{\n  "a": 1\n}\n'), { a: 1 });
  assert.deepEqual(parseJsonDocument('warning: something\n{"a": 2}\n'), { a: 2 });
  assert.throws(() => parseJsonDocument(''), /printed nothing/);
  assert.throws(() => parseJsonDocument('hello'), /did not print JSON/);
});

test('cluster workloads and contexts JSON are checked and filled', () => {
  const listing = parseWorkloads({ context: 'nhdev-sandbox', namespace: 'demo', identity: 'me@host', workloads: [
    { workload: 'deployment/greeter', kind: 'deployment', name: 'greeter', namespace: 'demo', containers: ['greeter'],
      ports: [{ container: 'greeter', port: 8080, name: 'http' }], status: '1/1 ready',
      dev: [{ namespace: 'demo', workload: 'deployment/greeter', mode: 'replace', identity: 'me@host', session: 's1', since: 't', copy: null, mine: true }] },
    { workload: 'pod/bare', kind: 'pod', name: 'bare' },
  ] });
  assert.equal(listing.workloads[0].dev[0].mine, true);
  assert.deepEqual(listing.workloads[1], { workload: 'pod/bare', kind: 'pod', name: 'bare', namespace: 'demo', containers: [], ports: [], status: '', dev: [] });
  assert.throws(() => parseWorkloads({ workloads: [] }), /no context, namespace, identity/);
  assert.throws(() => parseWorkloads([]), /not a JSON object/);
  const contexts = parseContexts({ kubeconfig: '/k', current: 'b', contexts: [{ name: 'a', cluster: 'c1', user: 'u', namespace: 'team' }] });
  assert.equal(contexts.contexts[0].namespace, 'team');
});

test('dev start JSON, with the session and its control socket', () => {
  const result = parseDevStart({ workload: 'deployment/greeter', namespace: 'demo', mode: 'replace', session: 's', identity: 'me', pod: 'p',
    devContainer: 'greeter', target: 'deployment/greeter', seconds: 2.5, resumed: false, localSession: sessionStatus() });
  assert.equal(result.localSession?.controlSocket, '/home/u/.nhdev/sessions/k/control.sock');
  assert.equal(result.localSession?.tunnel.state, 'connected');
});

test('error messages: nhdev\'s error line and hint, else the last lines', () => {
  assert.equal(errorMessage('  · waiting\nerror: deployment/x in dev mode by bob@laptop\n  hint: add --force\n', 1), 'deployment/x in dev mode by bob@laptop (hint: add --force)');
  assert.equal(errorMessage('Traceback...\nKeyError: x\n', 1), 'Traceback... | KeyError: x');
  assert.equal(errorMessage('', 3), 'nhdev exited with code 3');
  assert.equal(progressMessage('  · waiting for pod greeter-abc (ContainerCreating)'), 'waiting for pod greeter-abc (ContainerCreating)');
  assert.equal(progressMessage('{"a": 1}'), undefined);
});

test('running a command: JSON on success, its error message on failure, stderr line by line', async () => {
  const dir = tempDir();
  const fake = path.join(dir, 'nhdev');
  fs.writeFileSync(fake, [
    '#!/bin/sh',
    'echo "  · step one" >&2',
    'printf "  · step two" >&2',
    'if [ "$1" = fail ]; then echo "" >&2; echo "error: no dev config" >&2; echo "  hint: nhdev config init" >&2; exit 2; fi',
    'echo \'{"ok": "yes", "args": "\'"$*"\'"}\'',
  ].join('\n'), { mode: 0o755 });
  const lines: string[] = [];
  const data = await runJson(fake, ['cluster', 'workloads'], (d) => d, { onStderrLine: (l) => lines.push(l) });
  assert.deepEqual(data, { ok: 'yes', args: 'cluster workloads' });
  assert.deepEqual(lines, ['  · step one', '  · step two']);
  await assert.rejects(runJson(fake, ['fail'], (d) => d), (e: unknown) => e instanceof CliError && e.message === 'no dev config (hint: nhdev config init)' && e.result.code === 2);
  await assert.rejects(runJson(path.join(dir, 'missing'), [], (d) => d), /ENOENT/);
});
