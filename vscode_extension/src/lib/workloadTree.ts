/**
 * The workloads view as data: labels, descriptions, icons and the `contextValue` the menus match
 * (`workload;dev=none|mine|other|other-dup[;session]`, `forward;managed|session`, `entry`). Pure.
 */
import { DevEntry, WorkloadRow } from './cli';
import { SessionView } from './sessionView';

export type DevState = 'none' | 'mine' | 'other' | 'other-dup';

export interface ManagedForward {
  id: number;
  workload: string;
  namespace: string;
  context?: string;
  local: string; // 127.0.0.1:PORT
  remote: number;
}

export interface ItemLook {
  id: string;
  label: string;
  description?: string;
  tooltip: string;
  icon: string; // a codicon id
  contextValue: string;
  collapsible: boolean;
}

/**
 * Who holds the workload: `mine` (I have replace or a duplicate), `other` (someone else has it in
 * replace mode: I cannot replace it), `other-dup` (only others' duplicates: replace is free).
 */
export function devState(row: WorkloadRow): DevState {
  if (row.dev.some((d) => d.mine)) {
    return 'mine';
  }
  if (row.dev.some((d) => d.mode === 'replace')) {
    return 'other';
  }
  return row.dev.length ? 'other-dup' : 'none';
}

function who(entry: DevEntry): string {
  return entry.mine ? 'you' : entry.identity || 'someone';
}

export function devSummary(row: WorkloadRow): string {
  return row.dev.map((d) => `${d.mode} by ${who(d)}`).join(', ');
}

export function workloadLook(row: WorkloadRow, context: string, session?: SessionView, forwards: ManagedForward[] = []): ItemLook {
  const state = devState(row);
  const summary = devSummary(row);
  const description = [row.kind, row.status, summary].filter(Boolean).join(' · ');
  const icon = state === 'mine' ? (row.dev.find((d) => d.mine)?.mode === 'duplicate' ? 'files' : 'tools')
    : state === 'other' ? 'lock' : state === 'other-dup' ? 'person' : 'package';
  const tooltip = [
    `${row.workload} in ${row.namespace} (${context})`,
    row.status,
    row.containers.length ? `containers: ${row.containers.join(', ')}` : '',
    ...row.dev.map((d) => `${d.mode} by ${who(d)} since ${d.since}${d.copy ? ` (copy ${d.copy})` : ''}`),
    session ? `session: tunnel ${session.tunnel.state}${session.sync ? `, sync ${session.sync.state}` : ''}` : '',
  ].filter(Boolean).join('\n');
  return {
    id: `workload:${context}/${row.namespace}/${row.workload}`,
    label: row.name,
    description,
    tooltip,
    icon,
    contextValue: `workload;dev=${state}${session ? ';session' : ''}`,
    collapsible: row.dev.length > 0 || !!session || forwards.length > 0,
  };
}

export function entryLook(row: WorkloadRow, entry: DevEntry): ItemLook {
  return {
    id: `entry:${row.namespace}/${row.workload}/${entry.session}`,
    label: `${entry.mode} by ${who(entry)}`,
    description: [entry.copy, entry.since].filter(Boolean).join(' · '),
    tooltip: `${entry.mode} dev mode of ${row.workload} by ${entry.identity}, session ${entry.session}, since ${entry.since}${entry.copy ? `\ncopy: ${entry.copy}` : ''}`,
    icon: entry.mine ? 'account' : 'person',
    contextValue: `entry;${entry.mine ? 'mine' : 'other'}`,
    collapsible: false,
  };
}

export function sessionForwardLook(row: WorkloadRow, forward: { kind: string; local: string; remote: string; connections?: number; error?: string | null }): ItemLook {
  const reverse = forward.kind === 'reverse';
  return {
    id: `forward:session:${row.namespace}/${row.workload}/${forward.kind}/${forward.local}`,
    label: reverse ? `pod ${forward.remote} → ${forward.local}` : `${forward.local} → pod ${forward.remote}`,
    description: [forward.connections ? `${forward.connections} live` : '', forward.error ?? ''].filter(Boolean).join(' · ') || 'session',
    tooltip: `${reverse ? 'Reverse forward' : 'Port forward'} of the dev session (portForward in the dev config)`,
    icon: reverse ? 'arrow-left' : 'arrow-right',
    contextValue: reverse ? 'reverse;session' : 'forward;session',
    collapsible: false,
  };
}

export function managedForwardLook(forward: ManagedForward): ItemLook {
  return {
    id: `forward:managed:${forward.id}`,
    label: `${forward.local} → ${forward.remote}`,
    description: 'nhdev port-forward',
    tooltip: `nhdev port-forward ${forward.workload} (started from VS Code; stop it from here)`,
    icon: 'plug',
    contextValue: 'forward;managed',
    collapsible: false,
  };
}

/** Check a port-forward entry typed by the user: `LOCAL:REMOTE`, `:REMOTE` or `PORT`; undefined if fine. */
export function portSpecProblem(text: string): string | undefined {
  const spec = text.trim();
  const match = /^(\d*):(\d+)$/.exec(spec) ?? /^()(\d+)$/.exec(spec);
  if (!match) {
    return 'LOCAL:REMOTE, :REMOTE (any free local port) or PORT';
  }
  const ports = [match[1], match[2]].filter(Boolean).map(Number);
  if (ports.some((p) => p < 1 || p > 65535)) {
    return 'ports are 1 to 65535';
  }
  return undefined;
}

/** Sorted for the view: mine first, then others' dev mode, then the rest, by name. */
export function sortRows(rows: WorkloadRow[]): WorkloadRow[] {
  const rank: Record<DevState, number> = { mine: 0, other: 1, 'other-dup': 1, none: 2 };
  return [...rows].sort((a, b) => rank[devState(a)] - rank[devState(b)] || a.name.localeCompare(b.name) || a.kind.localeCompare(b.kind));
}
