import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { PortForwards } from '../src/lib/portForwards';
import { tempDir, waitFor } from './helpers/fakeSession';

/** A stand-in for `nhdev port-forward ... -o json`: prints where it listens, runs until SIGINT. */
function fakeNhdev(dir: string): string {
  const file = path.join(dir, 'nhdev');
  fs.writeFileSync(file, [
    '#!/bin/sh',
    'echo "$*" > "$(dirname "$0")/args"',
    'if [ "$3" = "busy" ]; then echo "error: cannot listen on 127.0.0.1:80: Permission denied" >&2; exit 2; fi',
    'trap "echo stopped > \\"$(dirname "$0")/stopped\\"; exit 0" INT',
    'echo \'{"pod": "web-1", "namespace": "demo", "forwards": [{"local": "127.0.0.1:41234", "remote": 8080}]}\'',
    'while true; do sleep 0.05; done',
  ].join('\n'), { mode: 0o755 });
  return file;
}

test('a forward starts, is listed per workload, and stops with SIGINT', async () => {
  const dir = tempDir();
  const forwards = new PortForwards();
  try {
    const started = await forwards.start(fakeNhdev(dir), 'deployment/web', [':8080'], { context: 'c', namespace: 'demo' });
    assert.deepEqual(started.map((f) => [f.local, f.remote, f.workload, f.namespace]), [['127.0.0.1:41234', 8080, 'deployment/web', 'demo']]);
    assert.equal(fs.readFileSync(path.join(dir, 'args'), 'utf8').trim(), 'port-forward deployment/web :8080 --context c -n demo -o json');
    assert.equal(forwards.forWorkload('deployment/web', 'demo').length, 1);
    assert.equal(forwards.forWorkload('deployment/web', 'other').length, 0);
    let exited = false;
    forwards.on('exited', () => { exited = true; });
    forwards.stop(started[0].id);
    await waitFor('the process to stop', () => fs.existsSync(path.join(dir, 'stopped')) && forwards.list.length === 0);
    assert.equal(exited, false, 'stopped on purpose is not reported as a failure');
  } finally {
    forwards.dispose();
  }
});

test('a forward that cannot start rejects with nhdev\'s error', async () => {
  const forwards = new PortForwards();
  await assert.rejects(forwards.start(fakeNhdev(tempDir()), 'deployment/web', ['busy'], { namespace: 'demo' }), /cannot listen on 127\.0\.0\.1:80: Permission denied/);
  assert.deepEqual(forwards.list, []);
});
