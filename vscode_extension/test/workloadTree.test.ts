import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { WorkloadRow } from '../src/lib/cli';
import { viewFromStatus } from '../src/lib/sessionView';
import { devState, entryLook, managedForwardLook, portSpecProblem, sessionForwardLook, sortRows, workloadLook } from '../src/lib/workloadTree';
import { sessionStatus } from './helpers/fakeSession';

function row(name: string, dev: Partial<WorkloadRow['dev'][number]>[] = []): WorkloadRow {
  return {
    workload: `deployment/${name}`, kind: 'deployment', name, namespace: 'demo', containers: ['app'], ports: [], status: '1/1 ready',
    dev: dev.map((d) => ({ namespace: 'demo', workload: `deployment/${name}`, mode: 'replace', identity: 'me@host', session: 's', since: 't', copy: null, mine: true, ...d })),
  };
}

test('dev state: mine, someone else\'s replace, only others\' duplicates, none', () => {
  assert.equal(devState(row('a')), 'none');
  assert.equal(devState(row('a', [{}])), 'mine');
  assert.equal(devState(row('a', [{ mine: false, identity: 'bob' }])), 'other');
  assert.equal(devState(row('a', [{ mine: false, mode: 'duplicate', copy: 'deployment/a-nhdev-1' }])), 'other-dup');
  assert.equal(devState(row('a', [{ mine: false, mode: 'duplicate' }, { mode: 'duplicate' }])), 'mine');
});

test('workload items: what the menus match and what the user reads', () => {
  const free = workloadLook(row('web'), 'ctx');
  assert.equal(free.contextValue, 'workload;dev=none');
  assert.equal(free.description, 'deployment · 1/1 ready');
  assert.equal(free.icon, 'package');
  assert.equal(free.collapsible, false);
  const session = viewFromStatus('/s', sessionStatus());
  const mine = workloadLook(row('greeter', [{}]), 'ctx', session);
  assert.equal(mine.contextValue, 'workload;dev=mine;session');
  assert.equal(mine.description, 'deployment · 1/1 ready · replace by you');
  assert.equal(mine.icon, 'tools');
  assert.ok(mine.collapsible);
  assert.match(mine.tooltip, /session: tunnel connected, sync idle/);
  const theirs = workloadLook(row('api', [{ mine: false, identity: 'bob@laptop' }]), 'ctx');
  assert.equal(theirs.contextValue, 'workload;dev=other');
  assert.equal(theirs.icon, 'lock');
  assert.match(theirs.description ?? '', /replace by bob@laptop/);
  // The menus' regular expressions (package.json) against these values.
  assert.match('workload;dev=none', /workload;dev=(none|other-dup)/);
  assert.doesNotMatch(theirs.contextValue, /workload;dev=(none|other-dup)/);
  assert.match(mine.contextValue, /workload;dev=(mine|other)/);
  assert.match(mine.contextValue, /workload.*;session/);
});

test('entries and forwards', () => {
  const r = row('api', [{ mine: false, identity: 'bob', mode: 'duplicate', copy: 'deployment/api-nhdev-1' }]);
  const entry = entryLook(r, r.dev[0]);
  assert.equal(entry.label, 'duplicate by bob');
  assert.match(entry.description ?? '', /deployment\/api-nhdev-1/);
  assert.equal(sessionForwardLook(r, { kind: 'local', local: '127.0.0.1:3000', remote: '127.0.0.1:8080', connections: 2 }).label, '127.0.0.1:3000 → pod 127.0.0.1:8080');
  assert.equal(sessionForwardLook(r, { kind: 'reverse', local: '127.0.0.1:5432', remote: '127.0.0.1:9000' }).contextValue, 'reverse;session');
  const managed = managedForwardLook({ id: 3, workload: 'deployment/api', namespace: 'demo', local: '127.0.0.1:41234', remote: 8080 });
  assert.equal(managed.contextValue, 'forward;managed');
  assert.match(managed.contextValue, /^forward;managed/);
});

test('port-forward specs typed by the user', () => {
  for (const ok of ['8080', ':8080', '3000:8080']) {
    assert.equal(portSpecProblem(ok), undefined, ok);
  }
  assert.match(portSpecProblem('http') ?? '', /LOCAL:REMOTE/);
  assert.match(portSpecProblem('70000') ?? '', /1 to 65535/);
  assert.match(portSpecProblem('R:9000:5432') ?? '', /LOCAL:REMOTE/);
});

test('mine first, then others\' dev mode, then the rest, by name', () => {
  const rows = [row('zeta'), row('alpha'), row('mid', [{ mine: false, identity: 'bob' }]), row('web', [{}])];
  assert.deepEqual(sortRows(rows).map((r) => r.name), ['web', 'mid', 'alpha', 'zeta']);
});
