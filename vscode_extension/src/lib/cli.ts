/**
 * Talking to the `nhdev` command: argument lists, running it, and checking its JSON output
 * (`--output json`: one JSON document on stdout, progress on stderr, `error: ...` on failure).
 */
import { ChildProcess, spawn } from 'node:child_process';

export interface ClusterSelection {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export function clusterArgs(selection: ClusterSelection): string[] {
  const args: string[] = [];
  if (selection.kubeconfig) {
    args.push('--kubeconfig', selection.kubeconfig);
  }
  if (selection.context) {
    args.push('--context', selection.context);
  }
  if (selection.namespace) {
    args.push('-n', selection.namespace);
  }
  return args;
}

export interface DevStartOptions {
  workload?: string;
  mode?: 'replace' | 'duplicate';
  container?: string;
  config?: string;
  image?: string;
  timeout?: number;
}

export function devStartArgs(options: DevStartOptions, selection: ClusterSelection): string[] {
  const args = ['dev', 'start'];
  if (options.workload) {
    args.push(options.workload);
  }
  args.push('--mode', options.mode ?? 'replace');
  if (options.container) {
    args.push('-c', options.container);
  }
  if (options.config) {
    args.push('--config', options.config);
  }
  if (options.image) {
    args.push('--image', options.image);
  }
  if (options.timeout) {
    args.push('--timeout', String(options.timeout));
  }
  return [...args, ...clusterArgs(selection), '-o', 'json'];
}

export function devEndArgs(workload: string, selection: ClusterSelection, options: { force?: boolean; session?: string; config?: string } = {}): string[] {
  const args = ['dev', 'end', workload];
  if (options.force) {
    args.push('--force');
  }
  if (options.session) {
    args.push('--session', options.session);
  }
  if (options.config) {
    args.push('--config', options.config);
  }
  return [...args, ...clusterArgs(selection), '-o', 'json'];
}

/** `nhdev dev terminal|run|logs WORKLOAD ...` as run in an integrated terminal. */
export function podCommandArgs(command: 'terminal' | 'run' | 'logs', workload: string, selection: ClusterSelection, options: { container?: string; config?: string; follow?: boolean; tail?: number } = {}): string[] {
  const args = ['dev', command, workload];
  if (options.container) {
    args.push('-c', options.container);
  }
  if (options.config) {
    args.push('--config', options.config);
  }
  if (command === 'logs') {
    if (options.follow) {
      args.push('--follow');
    }
    if (options.tail !== undefined) {
      args.push('--tail', String(options.tail));
    }
  }
  return [...args, ...clusterArgs(selection)];
}

/** A command line a POSIX shell reads back as these words. */
export function shellQuote(words: string[]): string {
  return words.map((word) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`)).join(' ');
}

// ---------------------------------------------------------------- JSON shapes

export interface DevEntry {
  namespace: string;
  workload: string;
  mode: 'replace' | 'duplicate' | string;
  identity: string;
  session: string;
  since: string;
  copy: string | null;
  mine: boolean;
}

export interface WorkloadRow {
  workload: string;
  kind: string;
  name: string;
  namespace: string;
  containers: string[];
  ports: { container: string; port: number; name: string | null }[];
  status: string;
  dev: DevEntry[];
}

export interface WorkloadsListing {
  context: string;
  namespace: string;
  identity: string;
  workloads: WorkloadRow[];
}

export interface ContextsListing {
  kubeconfig: string;
  current: string | null;
  contexts: { name: string; cluster: string | null; user: string | null; namespace: string }[];
}

export interface NamespacesListing {
  context: string;
  namespace: string;
  namespaces: string[];
}

export interface ForwardStatus {
  kind: 'local' | 'reverse' | string;
  local: string;
  remote: string;
  connections?: number;
  total?: number;
  error?: string | null;
}

export interface SessionStatus {
  key: string;
  pid: number;
  workload: string;
  namespace: string;
  context: string;
  session: string;
  pod: string | null;
  since: string;
  mode?: string;
  controlSocket?: string;
  log?: string;
  localRoot?: string | null;
  configPath?: string | null;
  projectRoot?: string;
  tunnel: { state: string; reason?: string | null; generation?: number; since?: string };
  forwards: ForwardStatus[];
  forwardErrors?: string[];
  services: Record<string, Record<string, unknown>>;
}

export interface DevStartResult {
  workload: string;
  namespace: string;
  mode: string;
  session: string;
  identity: string;
  pod: string;
  devContainer: string;
  target: string;
  seconds: number;
  resumed: boolean;
  localSession?: SessionStatus;
}

export interface DevEndResult {
  workload: string;
  namespace: string;
  mode: string;
  restored: boolean;
  deleted: string[];
  drifts: { path: string; during: unknown; now: unknown; kept: string }[];
}

export interface PortForwardStarted {
  pod: string;
  namespace: string;
  forwards: { local: string; remote: number }[];
}

export class OutputShapeError extends Error {}

function expectObject(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new OutputShapeError(`unexpected output from nhdev (${what}): not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function expectKeys(value: Record<string, unknown>, keys: string[], what: string): void {
  const missing = keys.filter((k) => !(k in value));
  if (missing.length) {
    throw new OutputShapeError(`unexpected output from nhdev (${what}): no ${missing.join(', ')} (is nhdev older than this extension?)`);
  }
}

/** The JSON document on stdout: the whole of it, or else its last line that parses (progress may precede it). */
export function parseJsonDocument(stdout: string): unknown {
  const text = stdout.trim();
  if (!text) {
    throw new OutputShapeError('nhdev printed nothing on stdout');
  }
  try {
    return JSON.parse(text);
  } catch {
    const lines = text.split('\n');
    for (let i = lines.length - 1; i >= 0; i--) {
      const line = lines[i].trim();
      if (line.startsWith('{') || line.startsWith('[')) {
        try {
          return JSON.parse(line);
        } catch {
          // keep looking
        }
      }
    }
    throw new OutputShapeError(`nhdev did not print JSON: ${text.slice(0, 200)}`);
  }
}

export function parseWorkloads(data: unknown): WorkloadsListing {
  const listing = expectObject(data, 'cluster workloads');
  expectKeys(listing, ['context', 'namespace', 'identity', 'workloads'], 'cluster workloads');
  if (!Array.isArray(listing.workloads)) {
    throw new OutputShapeError('unexpected output from nhdev (cluster workloads): workloads is not a list');
  }
  const workloads = listing.workloads.map((raw) => {
    const row = expectObject(raw, 'cluster workloads row');
    expectKeys(row, ['workload', 'kind', 'name'], 'cluster workloads row');
    return {
      workload: String(row.workload),
      kind: String(row.kind),
      name: String(row.name),
      namespace: String(row.namespace ?? listing.namespace),
      containers: Array.isArray(row.containers) ? row.containers.map(String) : [],
      ports: Array.isArray(row.ports) ? (row.ports as WorkloadRow['ports']).filter((p) => typeof p?.port === 'number') : [],
      status: String(row.status ?? ''),
      dev: Array.isArray(row.dev) ? (row.dev as DevEntry[]).map((d) => ({ ...d, copy: d.copy ?? null, mine: Boolean(d.mine) })) : [],
    };
  });
  return { context: String(listing.context), namespace: String(listing.namespace), identity: String(listing.identity), workloads };
}

export function parseContexts(data: unknown): ContextsListing {
  const listing = expectObject(data, 'cluster contexts');
  expectKeys(listing, ['contexts'], 'cluster contexts');
  return {
    kubeconfig: String(listing.kubeconfig ?? ''),
    current: typeof listing.current === 'string' ? listing.current : null,
    contexts: (Array.isArray(listing.contexts) ? listing.contexts : []).map((raw) => {
      const c = expectObject(raw, 'context');
      return { name: String(c.name), cluster: c.cluster == null ? null : String(c.cluster), user: c.user == null ? null : String(c.user), namespace: String(c.namespace ?? 'default') };
    }),
  };
}

export function parseNamespaces(data: unknown): NamespacesListing {
  const listing = expectObject(data, 'cluster namespaces');
  expectKeys(listing, ['namespaces'], 'cluster namespaces');
  return { context: String(listing.context ?? ''), namespace: String(listing.namespace ?? ''), namespaces: (listing.namespaces as unknown[]).map(String) };
}

export function parseSessionStatus(data: unknown): SessionStatus {
  const status = expectObject(data, 'session status');
  expectKeys(status, ['workload', 'namespace', 'context', 'tunnel'], 'session status');
  const tunnel = expectObject(status.tunnel, 'session tunnel');
  return {
    ...(status as unknown as SessionStatus),
    tunnel: { ...tunnel, state: String(tunnel.state ?? 'unknown') },
    forwards: Array.isArray(status.forwards) ? (status.forwards as ForwardStatus[]) : [],
    services: (status.services && typeof status.services === 'object' ? status.services : {}) as SessionStatus['services'],
  };
}

export function parseDevStart(data: unknown): DevStartResult {
  const result = expectObject(data, 'dev start');
  expectKeys(result, ['workload', 'namespace', 'mode', 'session', 'pod'], 'dev start');
  return {
    ...(result as unknown as DevStartResult),
    localSession: result.localSession ? parseSessionStatus(result.localSession) : undefined,
  };
}

export function parseDevEnd(data: unknown): DevEndResult {
  const result = expectObject(data, 'dev end');
  expectKeys(result, ['workload', 'restored'], 'dev end');
  return { ...(result as unknown as DevEndResult), deleted: Array.isArray(result.deleted) ? result.deleted.map(String) : [], drifts: Array.isArray(result.drifts) ? (result.drifts as DevEndResult['drifts']) : [] };
}

export function parsePortForward(data: unknown): PortForwardStarted {
  const result = expectObject(data, 'port-forward');
  expectKeys(result, ['pod', 'forwards'], 'port-forward');
  return result as unknown as PortForwardStarted;
}

/** The user-facing part of a failed command's stderr: its `error:` line and hint, else its last lines. */
export function errorMessage(stderr: string, code: number | null): string {
  const lines = stderr.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim());
  const start = lines.findIndex((l) => l.startsWith('error: '));
  if (start >= 0) {
    const message = lines[start].slice('error: '.length);
    const hint = lines.slice(start + 1).find((l) => l.trim().startsWith('hint: '));
    return hint ? `${message} (${hint.trim()})` : message;
  }
  const tail = lines.slice(-3).join(' | ');
  return tail || `nhdev exited with code ${code}`;
}

/** A progress line on stderr (`  · waiting for the pod`) as a short message, or undefined for other lines. */
export function progressMessage(line: string): string | undefined {
  const trimmed = line.trim();
  if (trimmed.startsWith('· ')) {
    return trimmed.slice(2);
  }
  if (/^(starting|waiting|connecting)\b/.test(trimmed)) {
    return trimmed;
  }
  return undefined;
}

// ---------------------------------------------------------------- running it

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  onStderrLine?: (line: string) => void;
  onSpawn?: (child: ChildProcess) => void;
  timeoutMs?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export class CliError extends Error {
  constructor(message: string, readonly result: RunResult, readonly args: string[]) {
    super(message);
  }
}

/** The environment nhdev runs in from the extension: no colours or pagers in captured output. */
export function cliEnvironment(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, NO_COLOR: '1', PYTHONUNBUFFERED: '1', PYTHONIOENCODING: 'utf-8' };
  delete env.NHDEV_DEBUG;
  return env;
}

/** Runs `executable args`, collecting stdout and stderr (stderr also line by line). */
export function run(executable: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(executable, args, { cwd: options.cwd, env: options.env ?? cliEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    options.onSpawn?.(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let pending = '';
    let timer: NodeJS.Timeout | undefined;
    if (options.timeoutMs) {
      timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs);
    }
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      err.push(chunk);
      if (options.onStderrLine) {
        pending += chunk.toString('utf8');
        let newline;
        while ((newline = pending.indexOf('\n')) >= 0) {
          options.onStderrLine(pending.slice(0, newline));
          pending = pending.slice(newline + 1);
        }
      }
    });
    child.on('error', (error) => {
      if (timer) {
        clearTimeout(timer);
      }
      reject(error);
    });
    child.on('close', (code, signal) => {
      if (timer) {
        clearTimeout(timer);
      }
      if (pending && options.onStderrLine) {
        options.onStderrLine(pending);
      }
      resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Runs nhdev with `-o json` arguments and returns the parsed document; CliError with nhdev's own message on failure. */
export async function runJson<T>(executable: string, args: string[], parse: (data: unknown) => T, options: RunOptions = {}): Promise<T> {
  const result = await run(executable, args, options);
  if (result.code !== 0) {
    const why = result.signal ? `nhdev was stopped (${result.signal})` : errorMessage(result.stderr, result.code);
    throw new CliError(why, result, args);
  }
  return parse(parseJsonDocument(result.stdout));
}
