/**
 * From the attach information a session publishes (nhdev/debug/attach.py `AttachInfo`: language,
 * host, port, pathMappings, launchConfig) to what VS Code connects:
 *
 * - python (debugpy) and go (dlv): the nhdev session itself talks DAP to the forwarded port
 *   (`vscode.DebugAdapterServer`); the attach request debugpy / dlv receive is the resolved
 *   configuration, so it carries pathMappings (python) or mode "remote" + substitutePath (go).
 * - node: a child session of VS Code's built-in `node` attach type (js-debug).
 * - java: a child session of `java` attach, from the Java debugger extension.
 */
import { NormalizedLaunch } from './launchConfig';

export type Language = 'python' | 'go' | 'node' | 'java';
export const JAVA_DEBUGGER_EXTENSION = 'vscjava.vscode-java-debug';

export interface PathMapping {
  localRoot: string;
  remoteRoot: string;
}

export interface AttachInfo {
  language: Language;
  host: string;
  port: number;
  pathMappings: PathMapping[];
  launchConfig: Record<string, unknown>;
}

/** What travels in a resolved configuration under `__nhdev`, for the adapter factory and hot reload. */
export interface NhdevMarker {
  controlSocket: string;
  workload: string;
  language: Language;
  adapter: 'server' | 'parent';
  host: string;
  port: number;
  child?: Record<string, unknown>; // the node / java configuration a parent session starts
  reattach?: boolean; // a re-attach after hot reload: connect, do not start anything
  folder?: string;
}

export function parseAttachInfo(data: unknown): AttachInfo {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new Error('the session published no attach information');
  }
  const info = data as Record<string, unknown>;
  const language = info.language;
  if (language !== 'python' && language !== 'go' && language !== 'node' && language !== 'java') {
    throw new Error(`the session's debugger is for ${String(language)}, which this extension cannot attach to`);
  }
  const port = Number(info.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error(`the session published an invalid debugger port: ${String(info.port)}`);
  }
  const mappings = Array.isArray(info.pathMappings) ? info.pathMappings : [];
  return {
    language,
    host: typeof info.host === 'string' && info.host ? info.host : '127.0.0.1',
    port,
    pathMappings: mappings
      .filter((m): m is PathMapping => !!m && typeof m.localRoot === 'string' && typeof m.remoteRoot === 'string')
      .map((m) => ({ localRoot: m.localRoot, remoteRoot: m.remoteRoot })),
    launchConfig: info.launchConfig && typeof info.launchConfig === 'object' ? (info.launchConfig as Record<string, unknown>) : {},
  };
}

/** Keys of the session's suggested configuration that VS Code or the adapter get from us instead. */
const SUGGESTION_KEYS_NOT_TAKEN = new Set(['type', 'request', 'name', 'debugServer']);

function suggested(info: AttachInfo, drop: string[] = []): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(info.launchConfig)) {
    if (!SUGGESTION_KEYS_NOT_TAKEN.has(key) && !drop.includes(key)) {
      copy[key] = value;
    }
  }
  return copy;
}

export interface AttachPlan {
  /** The configuration the `nhdev` session resolves to (what a DAP server receives in `attach`). */
  config: Record<string, unknown>;
  marker: NhdevMarker;
  requiresExtension?: string;
}

/**
 * The resolved configuration for `launch` attached through `info`. `controlSocket` and `workload`
 * identify the session for hot reload and stop.
 */
export function attachPlan(launch: NormalizedLaunch, info: AttachInfo, controlSocket: string, workload: string): AttachPlan {
  const base = { type: launch.type, request: 'attach', name: launch.name, ...launch.vscodeKeys };
  const mapping = info.pathMappings[0];
  const marker: NhdevMarker = { controlSocket, workload, language: info.language, adapter: 'server', host: info.host, port: info.port };
  switch (info.language) {
    case 'python': {
      const config = {
        ...base,
        justMyCode: false,
        ...suggested(info),
        connect: { host: info.host, port: info.port },
        pathMappings: info.pathMappings,
        ...launch.adapterOptions,
      };
      return { config: { ...config, __nhdev: marker }, marker };
    }
    case 'go': {
      // dlv's DAP server: attach mode "remote" to the headless server; substitutePath local -> remote.
      const config = {
        ...base,
        ...suggested(info, ['host', 'port', 'debugAdapter']),
        mode: 'remote',
        substitutePath: mapping ? [{ from: mapping.localRoot, to: mapping.remoteRoot }] : [],
        ...launch.adapterOptions,
      };
      return { config: { ...config, __nhdev: marker }, marker };
    }
    case 'node': {
      const child = {
        skipFiles: ['<node_internals>/**'],
        ...suggested(info),
        type: 'node',
        request: 'attach',
        name: `${launch.name} (node)`,
        address: info.host,
        port: info.port,
        ...(mapping ? { localRoot: mapping.localRoot, remoteRoot: mapping.remoteRoot } : {}),
        ...launch.adapterOptions,
      };
      const parentMarker: NhdevMarker = { ...marker, adapter: 'parent', child };
      return { config: { ...base, __nhdev: parentMarker }, marker: parentMarker };
    }
    case 'java': {
      const child = {
        ...suggested(info),
        type: 'java',
        request: 'attach',
        name: `${launch.name} (java)`,
        hostName: info.host,
        port: info.port,
        ...launch.adapterOptions,
      };
      const parentMarker: NhdevMarker = { ...marker, adapter: 'parent', child };
      return { config: { ...base, __nhdev: parentMarker }, marker: parentMarker, requiresExtension: JAVA_DEBUGGER_EXTENSION };
    }
  }
}

/** The configuration to attach again after hot reload restarted the debugger (same port, maybe new mappings). */
export function reattachConfig(previous: Record<string, unknown>, info: AttachInfo): Record<string, unknown> {
  const marker = previous.__nhdev as NhdevMarker;
  const next: Record<string, unknown> = { ...previous, __nhdev: { ...marker, host: info.host, port: info.port, reattach: true } };
  if (info.language === 'python') {
    next.connect = { host: info.host, port: info.port };
    next.pathMappings = info.pathMappings.length ? info.pathMappings : previous.pathMappings;
  } else if (info.language === 'go' && info.pathMappings[0]) {
    next.substitutePath = [{ from: info.pathMappings[0].localRoot, to: info.pathMappings[0].remoteRoot }];
  } else if (marker.child) {
    const child = { ...marker.child };
    if (info.language === 'node') {
      child.address = info.host;
      child.port = info.port;
    } else {
      child.hostName = info.host;
      child.port = info.port;
    }
    next.__nhdev = { ...(next.__nhdev as NhdevMarker), child };
  }
  return next;
}

export function isNhdevResolved(config: Record<string, unknown>): config is Record<string, unknown> & { __nhdev: NhdevMarker } {
  const marker = config.__nhdev as NhdevMarker | undefined;
  return !!marker && typeof marker.controlSocket === 'string' && typeof marker.port === 'number';
}
