/** Workload references as nhdev spells them: `NAME` or `KIND/NAME`, with kubectl's kind aliases. */

export const WORKLOAD_KINDS = ['deployment', 'statefulset', 'daemonset', 'job', 'cronjob', 'pod'] as const;
export type WorkloadKind = (typeof WORKLOAD_KINDS)[number];

const ALIASES: Record<string, WorkloadKind> = { deploy: 'deployment', sts: 'statefulset', ds: 'daemonset', cj: 'cronjob', po: 'pod' };

export interface WorkloadRef {
  kind: WorkloadKind;
  name: string;
}

/** `Deployments`, `deploy`, `deployment.apps` -> `deployment`; undefined if not a workload kind (as nhdev's normalise_kind). */
export function normaliseKind(text: string): WorkloadKind | undefined {
  let word = text.trim().toLowerCase();
  for (const group of ['.v1.apps', '.v1.batch', '.apps', '.batch']) {
    if (word.endsWith(group)) {
      word = word.slice(0, -group.length);
    }
  }
  word = ALIASES[word] ?? word;
  if (!(WORKLOAD_KINDS as readonly string[]).includes(word) && word.endsWith('s')) {
    word = word.slice(0, -1);
  }
  return (WORKLOAD_KINDS as readonly string[]).includes(word) ? (word as WorkloadKind) : undefined;
}

/** `NAME` (a deployment, or `defaultKind`) or `KIND/NAME`; throws with a readable message otherwise. */
export function parseWorkloadRef(text: string, defaultKind: WorkloadKind = 'deployment'): WorkloadRef {
  const trimmed = text.trim();
  const slash = trimmed.lastIndexOf('/');
  const kindText = slash >= 0 ? trimmed.slice(0, slash) : '';
  const name = slash >= 0 ? trimmed.slice(slash + 1) : trimmed;
  if (!name) {
    throw new Error(`"${text}" names no workload (expected NAME or KIND/NAME, e.g. deployment/greeter)`);
  }
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) {
    throw new Error(`"${name}" is not a valid Kubernetes object name`);
  }
  if (!kindText) {
    return { kind: defaultKind, name };
  }
  const kind = normaliseKind(kindText);
  if (!kind) {
    throw new Error(`"${kindText}" is not a workload kind (expected one of: ${WORKLOAD_KINDS.join(', ')})`);
  }
  return { kind, name };
}

export function workloadText(ref: WorkloadRef): string {
  return `${ref.kind}/${ref.name}`;
}

/** Whether two references name the same workload (`greeter` and `deploy/greeter` do). */
export function sameWorkload(a: string, b: string): boolean {
  try {
    return workloadText(parseWorkloadRef(a)) === workloadText(parseWorkloadRef(b));
  } catch {
    return false;
  }
}
