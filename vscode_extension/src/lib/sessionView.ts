/**
 * What the extension knows of one running session, kept up to date from the events its control
 * socket pushes, and how the status bar shows it. Pure: no sockets, no VS Code.
 */
import { parseSessionStatus, SessionStatus } from './cli';

export interface SyncState {
  state: string; // starting | scanning | syncing | idle | paused | error | stopped
  pending?: number;
  files_in_sync?: number;
  last_batch_ms?: number;
  last_synced_at?: number;
  last_error?: string;
  warnings?: string[];
  direction?: string;
  counters?: Record<string, number>;
  progress?: { phase: string; files_done: number; files_total: number; bytes_done: number; bytes_total: number } | null;
}

export interface DebugState {
  running: boolean;
  language?: string;
  port?: number;
  restarts: number;
}

export interface SessionView {
  socket: string;
  status: SessionStatus;
  tunnel: { state: string; reason?: string | null; pod?: string | null };
  sync?: SyncState;
  run: { running: boolean; command?: string; exitCode?: number | null };
  debug: DebugState;
  reloads: number;
  lastEvent?: string;
}

function asRecord(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** The view from a session's status (what `subscribe` answers first). */
export function viewFromStatus(socket: string, raw: Record<string, unknown>): SessionView {
  const status = parseSessionStatus(raw);
  const services = status.services ?? {};
  const sync = services.sync ? (services.sync as unknown as SyncState) : undefined;
  const runService = asRecord(services.run);
  const run = asRecord(runService.run);
  const debug = asRecord(runService.debug);
  const attach = asRecord(debug.attach);
  const hot = asRecord(runService.hotReload);
  return {
    socket,
    status,
    tunnel: { state: status.tunnel.state, reason: status.tunnel.reason, pod: status.pod },
    sync,
    run: { running: Boolean(run.running), command: typeof run.command === 'string' ? run.command : undefined },
    debug: {
      running: Boolean(debug.running),
      language: typeof attach.language === 'string' ? attach.language : undefined,
      port: typeof attach.port === 'number' ? attach.port : undefined,
      restarts: typeof hot.restarts === 'number' ? hot.restarts : 0,
    },
    reloads: typeof hot.restarts === 'number' ? hot.restarts : 0,
  };
}

/** The view after one pushed event. Unknown events change nothing. */
export function applyEvent(view: SessionView, event: string, body: Record<string, unknown>): SessionView {
  const next: SessionView = { ...view, lastEvent: event };
  switch (event) {
    case 'tunnel':
      next.tunnel = { state: String(body.state ?? view.tunnel.state), reason: (body.reason as string | null) ?? null, pod: (body.pod as string | null) ?? view.tunnel.pod };
      next.status = { ...view.status, pod: next.tunnel.pod ?? view.status.pod, tunnel: { ...view.status.tunnel, state: next.tunnel.state, reason: next.tunnel.reason } };
      return next;
    case 'sync': {
      const { event: _event, ...sync } = body;
      next.sync = sync as unknown as SyncState;
      return next;
    }
    case 'attach':
      next.debug = { ...view.debug, running: true, language: String(body.language ?? view.debug.language ?? ''), port: typeof body.port === 'number' ? body.port : view.debug.port };
      return next;
    case 'reload':
      next.reloads = view.reloads + 1;
      return next;
    case 'run':
      if (body.state === 'started') {
        next.run = { running: true, command: typeof body.command === 'string' ? body.command : view.run.command };
      } else if (body.state === 'exited' || body.state === 'failed' || body.state === 'stopped') {
        next.run = { ...view.run, running: false, exitCode: typeof body.exitCode === 'number' ? body.exitCode : null };
      }
      return next;
    case 'debug':
      if (body.state === 'exited' || body.state === 'failed' || body.state === 'stopped') {
        next.debug = { ...view.debug, running: false };
      }
      return next;
    default:
      return next;
  }
}

export type Severity = 'ok' | 'busy' | 'warning' | 'error';

export interface StatusBarLook {
  text: string;
  tooltip: string;
  severity: Severity;
}

const SEVERITY_ORDER: Severity[] = ['ok', 'busy', 'warning', 'error'];

function shortName(view: SessionView): string {
  const workload = view.status.workload;
  return workload.slice(workload.lastIndexOf('/') + 1);
}

/** How bad things are for one session, and a few words about it. */
export function summarize(view: SessionView): { severity: Severity; words: string; icon: string } {
  const tunnel = view.tunnel.state;
  if (tunnel === 'failed' || tunnel === 'stopped') {
    return { severity: 'error', words: `tunnel ${tunnel}`, icon: 'error' };
  }
  if (tunnel !== 'connected') {
    return { severity: 'warning', words: tunnel === 'connecting' ? 'connecting' : 'reconnecting', icon: 'debug-disconnect' };
  }
  const sync = view.sync;
  if (!sync) {
    return { severity: 'ok', words: 'connected', icon: 'check' };
  }
  switch (sync.state) {
    case 'idle':
      if (sync.warnings?.length) {
        return { severity: 'warning', words: `synced, ${sync.warnings.length} warning${sync.warnings.length === 1 ? '' : 's'}`, icon: 'warning' };
      }
      return { severity: 'ok', words: 'synced', icon: 'check' };
    case 'syncing':
    case 'scanning':
    case 'starting': {
      const pending = sync.pending ? ` (${sync.pending})` : '';
      const progress = sync.progress && sync.progress.files_total ? ` ${sync.progress.files_done}/${sync.progress.files_total}` : '';
      return { severity: 'busy', words: `${sync.state}${progress || pending}`, icon: 'sync~spin' };
    }
    case 'paused':
      return { severity: 'warning', words: 'sync paused', icon: 'debug-pause' };
    case 'error':
      return { severity: 'error', words: 'sync error', icon: 'error' };
    default:
      return { severity: 'warning', words: `sync ${sync.state}`, icon: 'warning' };
  }
}

/** The status bar item for the sessions of this workspace (none: undefined, hide it). */
export function statusBarLook(views: SessionView[]): StatusBarLook | undefined {
  if (!views.length) {
    return undefined;
  }
  const summaries = views.map((v) => ({ view: v, ...summarize(v) }));
  const worst = summaries.reduce((a, b) => (SEVERITY_ORDER.indexOf(b.severity) > SEVERITY_ORDER.indexOf(a.severity) ? b : a));
  const text = views.length === 1
    ? `$(${worst.icon}) nhdev: ${shortName(worst.view)} ${worst.words}`
    : `$(${worst.icon}) nhdev: ${views.length} sessions${worst.severity === 'ok' ? '' : `, ${shortName(worst.view)} ${worst.words}`}`;
  const tooltip = summaries.map((s) => `${s.view.status.workload} (${s.view.status.namespace}): ${s.words}${s.view.tunnel.pod ? `, pod ${s.view.tunnel.pod}` : ''}`).join('\n')
    + '\nClick for details and resync';
  return { text, tooltip, severity: worst.severity };
}

function ago(epochSeconds: number | undefined, now: number): string {
  if (!epochSeconds) {
    return 'never';
  }
  const seconds = Math.max(0, Math.round(now / 1000 - epochSeconds));
  return seconds < 60 ? `${seconds}s ago` : seconds < 3600 ? `${Math.round(seconds / 60)} min ago` : `${Math.round(seconds / 3600)} h ago`;
}

/** Lines describing a session, for the details the status bar opens. */
export function detailLines(view: SessionView, now = Date.now()): string[] {
  const s = view.status;
  const lines = [
    `Tunnel: ${view.tunnel.state}${view.tunnel.pod ? ` to pod ${view.tunnel.pod}` : ''}${view.tunnel.reason && view.tunnel.state !== 'connected' ? ` (${view.tunnel.reason})` : ''}`,
  ];
  if (view.sync) {
    const sync = view.sync;
    lines.push(`Sync (${sync.direction ?? 'send'}): ${sync.state}, ${sync.files_in_sync ?? 0} files in sync, ${sync.pending ?? 0} pending, last ${ago(sync.last_synced_at, now)}`
      + (sync.last_batch_ms ? `, last batch ${sync.last_batch_ms.toFixed(1)} ms` : ''));
    if (sync.last_error) {
      lines.push(`Sync error: ${sync.last_error}`);
    }
    if (sync.counters?.conflicts) {
      lines.push(`Conflicts kept: ${sync.counters.conflicts} (*.nhdev-conflict-*)`);
    }
    for (const warning of (sync.warnings ?? []).slice(-5)) {
      lines.push(`Warning: ${warning}`);
    }
  } else {
    lines.push('Sync: off (no dev config for this session)');
  }
  for (const forward of s.forwards) {
    const arrow = forward.kind === 'reverse' ? '<-' : '->';
    lines.push(`Forward: ${forward.local} ${arrow} pod ${forward.remote}${forward.connections ? `, ${forward.connections} live` : ''}${forward.error ? ` (${forward.error})` : ''}`);
  }
  for (const error of s.forwardErrors ?? []) {
    lines.push(`Forward error: ${error}`);
  }
  if (view.run.running) {
    lines.push(`Run: ${view.run.command ?? 'running'}`);
  }
  if (view.debug.running) {
    lines.push(`Debugger: ${view.debug.language ?? ''} on 127.0.0.1:${view.debug.port ?? '?'}`);
  }
  if (view.reloads) {
    lines.push(`Hot reloads: ${view.reloads}`);
  }
  lines.push(`Session: pid ${s.pid}, ${s.mode ?? 'replace'} mode, context ${s.context}, since ${s.since}`);
  return lines;
}

/** Whether `dir` is `root` or inside it (paths as given, no symlink resolution). */
export function isWithin(dir: string, root: string): boolean {
  const a = dir.replace(/[\\/]+$/, '');
  const b = root.replace(/[\\/]+$/, '');
  return a === b || a.startsWith(`${b}/`) || a.startsWith(`${b}\\`);
}

/** Whether a session belongs to one of the workspace folders: its project is in a folder, or a folder is in its project. */
export function belongsToWorkspace(view: SessionView, folders: string[]): boolean {
  const root = view.status.projectRoot ?? view.status.localRoot ?? undefined;
  if (!root) {
    return false;
  }
  return folders.some((folder) => isWithin(root, folder) || isWithin(folder, root));
}

/** A pushed event as a line of the session's output channel (undefined: not shown there). */
export function outputLine(event: string, body: Record<string, unknown>): string | undefined {
  switch (event) {
    case 'output':
      return `[${String(body.role ?? '?')}${body.stream === 'stderr' ? ' stderr' : ''}] ${String(body.line ?? '')}`;
    case 'reload':
      return `-- hot reload (${String(body.changed ?? '?')} changed: ${(Array.isArray(body.paths) ? body.paths : []).slice(0, 5).join(', ')}) restarts ${(Array.isArray(body.roles) ? body.roles : []).join(' and ')}`;
    case 'attach':
      return `-- ${String(body.language)} debugger listening on ${String(body.host)}:${String(body.port)}${body.restart ? ' (after hot reload)' : ''}`;
    case 'run':
      return body.state === 'started' ? `-- run: ${String(body.command ?? '')}` : `-- run ${String(body.state)}${body.exitCode !== undefined ? ` (exit code ${String(body.exitCode)})` : ''}${body.error ? `: ${String(body.error)}` : ''}`;
    case 'debug':
      return `-- debug command ${String(body.state)}${typeof body.exitCode === 'number' ? ` (exit code ${body.exitCode})` : ''}${body.error ? `: ${String(body.error)}` : ''}`;
    case 'tunnel':
      return body.state === 'connected' ? `-- tunnel connected to pod ${String(body.pod ?? '')}` : `-- tunnel ${String(body.state)}${body.reason ? `: ${String(body.reason)}` : ''}`;
    default:
      return undefined;
  }
}
