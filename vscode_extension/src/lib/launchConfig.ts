/**
 * The `"type": "nhdev"` (or `"nocalhost"`) launch configuration: its own properties, the ones VS Code
 * acts on, and everything else, which is passed through to the debugger's attach request.
 */

export const DEBUG_TYPES = ['nhdev', 'nocalhost'] as const;
export type DebugType = (typeof DEBUG_TYPES)[number];

/** Properties nhdev reads itself; they do not reach the debugger. */
export const OWN_KEYS = ['workload', 'mode', 'container', 'config', 'image', 'context', 'namespace', 'kubeconfig', 'timeout', 'debuggerTimeout', 'adapterOptions'] as const;

/** Properties VS Code itself acts on; kept as they are on the resolved configuration. */
export const VSCODE_KEYS = ['preLaunchTask', 'postDebugTask', 'internalConsoleOptions', 'presentation', 'suppressMultipleSessionWarning', 'debugServer'];

export interface NormalizedLaunch {
  type: DebugType;
  name: string;
  workload?: string;
  mode: 'replace' | 'duplicate';
  container?: string;
  config?: string;
  image?: string;
  context?: string;
  namespace?: string;
  kubeconfig?: string;
  timeout: number; // seconds for the dev pod
  debuggerTimeout: number; // seconds for the debugger to listen
  adapterOptions: Record<string, unknown>; // merged into the debugger's attach request
  vscodeKeys: Record<string, unknown>;
}

export const DEFAULT_TIMEOUT = 300;
export const DEFAULT_DEBUGGER_TIMEOUT = 120;

export class LaunchConfigError extends Error {}

function optionalString(config: Record<string, unknown>, key: string): string | undefined {
  const value = config[key];
  if (value === undefined || value === null || value === '') {
    return undefined;
  }
  if (typeof value !== 'string') {
    throw new LaunchConfigError(`"${key}" must be a string, not ${JSON.stringify(value)}`);
  }
  return value.trim() || undefined;
}

function positiveNumber(config: Record<string, unknown>, key: string, fallback: number): number {
  const value = config[key];
  if (value === undefined || value === null) {
    return fallback;
  }
  if (typeof value !== 'number' || !(value > 0)) {
    throw new LaunchConfigError(`"${key}" must be a positive number of seconds, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** A launch configuration of type nhdev or nocalhost, checked, with defaults (mode: replace). */
export function normalizeLaunch(config: Record<string, unknown>): NormalizedLaunch {
  const type = (config.type === 'nocalhost' ? 'nocalhost' : 'nhdev') as DebugType;
  if (config.request !== undefined && config.request !== 'attach') {
    throw new LaunchConfigError(`"request" must be "attach" (nhdev attaches to the app it runs in the cluster), not ${JSON.stringify(config.request)}`);
  }
  const mode = config.mode === undefined || config.mode === null || config.mode === '' ? 'replace' : config.mode;
  if (mode !== 'replace' && mode !== 'duplicate') {
    throw new LaunchConfigError(`"mode" must be "replace" or "duplicate", not ${JSON.stringify(config.mode)}`);
  }
  const options = config.adapterOptions;
  if (options !== undefined && (options === null || typeof options !== 'object' || Array.isArray(options))) {
    throw new LaunchConfigError('"adapterOptions" must be an object');
  }
  const passThrough: Record<string, unknown> = {};
  const vscodeKeys: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (key === 'type' || key === 'request' || key === 'name' || key.startsWith('__') || (OWN_KEYS as readonly string[]).includes(key)) {
      continue;
    }
    if (VSCODE_KEYS.includes(key)) {
      vscodeKeys[key] = value;
    } else {
      passThrough[key] = value;
    }
  }
  const workload = optionalString(config, 'workload');
  return {
    type,
    name: typeof config.name === 'string' && config.name ? config.name : workload ? `nhdev: debug ${workload}` : 'nhdev: debug in the cluster',
    workload,
    mode,
    container: optionalString(config, 'container'),
    config: optionalString(config, 'config'),
    image: optionalString(config, 'image'),
    context: optionalString(config, 'context'),
    namespace: optionalString(config, 'namespace'),
    kubeconfig: optionalString(config, 'kubeconfig'),
    timeout: positiveNumber(config, 'timeout', DEFAULT_TIMEOUT),
    debuggerTimeout: positiveNumber(config, 'debuggerTimeout', DEFAULT_DEBUGGER_TIMEOUT),
    adapterOptions: { ...passThrough, ...((options as Record<string, unknown>) ?? {}) },
    vscodeKeys,
  };
}

/** The entry "nhdev: Add launch configuration" writes. */
export function newLaunchEntry(workload?: string, mode: 'replace' | 'duplicate' = 'replace'): Record<string, unknown> {
  const name = workload ? workload.slice(workload.lastIndexOf('/') + 1) : 'in the cluster';
  const entry: Record<string, unknown> = { name: `nhdev: debug ${name}`, type: 'nhdev', request: 'attach' };
  if (workload) {
    entry.workload = workload;
  }
  if (mode !== 'replace') {
    entry.mode = mode;
  }
  return entry;
}
