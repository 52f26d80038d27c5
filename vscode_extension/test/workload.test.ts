import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { normaliseKind, parseWorkloadRef, sameWorkload, workloadText } from '../src/lib/workload';

test('kinds are normalised as nhdev and kubectl spell them', () => {
  assert.equal(normaliseKind('Deployments'), 'deployment');
  assert.equal(normaliseKind('deploy'), 'deployment');
  assert.equal(normaliseKind('deployment.apps'), 'deployment');
  assert.equal(normaliseKind('sts'), 'statefulset');
  assert.equal(normaliseKind('cj'), 'cronjob');
  assert.equal(normaliseKind('jobs.batch'), 'job');
  assert.equal(normaliseKind('service'), undefined);
});

test('workload references: NAME is a deployment, KIND/NAME any workload kind', () => {
  assert.deepEqual(parseWorkloadRef('greeter'), { kind: 'deployment', name: 'greeter' });
  assert.deepEqual(parseWorkloadRef('sts/db-0'), { kind: 'statefulset', name: 'db-0' });
  assert.deepEqual(parseWorkloadRef('web', 'daemonset'), { kind: 'daemonset', name: 'web' });
  assert.equal(workloadText(parseWorkloadRef('deploy/greeter')), 'deployment/greeter');
  assert.throws(() => parseWorkloadRef('service/web'), /not a workload kind/);
  assert.throws(() => parseWorkloadRef('deployment/'), /names no workload/);
  assert.throws(() => parseWorkloadRef('Greeter'), /not a valid Kubernetes object name/);
  assert.ok(sameWorkload('greeter', 'deployment/greeter'));
  assert.ok(!sameWorkload('greeter', 'statefulset/greeter'));
  assert.ok(!sameWorkload('bad/x', 'deployment/x'));
});
