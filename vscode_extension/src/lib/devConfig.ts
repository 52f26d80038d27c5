/**
 * Where the dev config is, and what it describes (as `nhdev config show --output json` prints it).
 *
 * Discovery mirrors nhdev's own (nhdev/config/discovery.py): an explicit path (a file, or a
 * directory holding one), else `.nhdev/config.yaml`, else `.nocalhost/config.yaml`, in the start
 * directory and then each parent. The project root, which the session syncs and which path mappings
 * start from, is the directory holding `.nhdev/` (or `.nocalhost/`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { normaliseKind, parseWorkloadRef, WorkloadKind, workloadText } from './workload';

export const CONFIG_LOCATIONS = [path.join('.nhdev', 'config.yaml'), path.join('.nocalhost', 'config.yaml')];
export const INIT_HINT = 'create one with: nhdev config init --workload deployment/NAME --language python';

export interface FileProbe {
  isFile(p: string): boolean;
  isDirectory(p: string): boolean;
}

export const realFiles: FileProbe = {
  isFile: (p) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  },
  isDirectory: (p) => {
    try {
      return fs.statSync(p).isDirectory();
    } catch {
      return false;
    }
  },
};

export class ConfigNotFound extends Error {}

function inDirectory(directory: string, files: FileProbe): string | undefined {
  for (const location of CONFIG_LOCATIONS) {
    const candidate = path.join(directory, location);
    if (files.isFile(candidate)) {
      return candidate;
    }
  }
  return undefined;
}

/**
 * The dev config for `start`: `explicit` (relative to `start`) if given, else the nearest one in
 * `start` or above. Throws ConfigNotFound with nhdev's wording.
 */
export function discoverConfig(start: string, explicit?: string, files: FileProbe = realFiles): string {
  if (explicit) {
    const given = path.resolve(start, explicit);
    if (files.isDirectory(given)) {
      const found = inDirectory(given, files);
      if (!found) {
        throw new ConfigNotFound(`no dev config in directory ${given}; ${INIT_HINT}`);
      }
      return found;
    }
    if (!files.isFile(given)) {
      throw new ConfigNotFound(`${given}: no such file; ${INIT_HINT}`);
    }
    return given;
  }
  let directory = path.resolve(start);
  for (;;) {
    const found = inDirectory(directory, files);
    if (found) {
      return found;
    }
    const parent = path.dirname(directory);
    if (parent === directory) {
      break;
    }
    directory = parent;
  }
  throw new ConfigNotFound(`no dev config: no .nhdev/config.yaml or .nocalhost/config.yaml in ${path.resolve(start)} or its parents; ${INIT_HINT}`);
}

/** The project a config belongs to: the directory holding `.nhdev/` or `.nocalhost/`, else the file's own directory. */
export function projectRootOf(configPath: string): string {
  const folder = path.dirname(path.resolve(configPath));
  const name = path.basename(folder);
  return name === '.nhdev' || name === '.nocalhost' ? path.dirname(folder) : folder;
}

export interface ConfiguredContainer {
  name?: string;
  language?: string;
  debugPort?: number;
  hasDebugCommand: boolean;
  hasRunCommand: boolean;
  image?: string;
}

export interface ConfiguredService {
  name?: string; // undefined: the config applies to any workload
  kind?: WorkloadKind; // undefined: any kind
  containers: ConfiguredContainer[];
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value ? value : undefined;
}

/** The services of `nhdev config show --output json` (one object, or a list of them). */
export function parseConfigShow(data: unknown): ConfiguredService[] {
  const items = Array.isArray(data) ? data : [data];
  return items.map((item, index) => {
    const service = asObject(item);
    if (!service) {
      throw new Error(`unexpected dev config JSON: item ${index} is not an object`);
    }
    const kindText = optionalString(service.serviceType);
    const containers = Array.isArray(service.containers) ? service.containers : [];
    return {
      name: optionalString(service.name),
      kind: kindText ? normaliseKind(kindText) : undefined,
      containers: containers.map((raw) => {
        const container = asObject(raw) ?? {};
        const dev = asObject(container.dev) ?? {};
        const debug = asObject(dev.debug) ?? {};
        const command = asObject(dev.command) ?? {};
        const port = debug.remoteDebugPort;
        return {
          name: optionalString(container.name),
          language: optionalString(debug.language),
          debugPort: typeof port === 'number' ? port : undefined,
          hasDebugCommand: command.debug !== null && command.debug !== undefined,
          hasRunCommand: command.run !== null && command.run !== undefined,
          image: optionalString(dev.image),
        };
      }),
    };
  });
}

/** Whether `service` describes `workload` (NAME or KIND/NAME), the way nhdev's `service(name, kind)` matches. */
export function describes(service: ConfiguredService, workload: string): boolean {
  let ref;
  try {
    ref = parseWorkloadRef(workload, service.kind ?? 'deployment');
  } catch {
    return false;
  }
  const kindOk = service.kind === undefined || service.kind === ref.kind;
  return kindOk && (service.name === undefined || service.name === ref.name);
}

/** `kind/name` of a service that names its workload, or undefined for a catch-all service. */
export function serviceWorkload(service: ConfiguredService): string | undefined {
  return service.name ? workloadText({ kind: service.kind ?? 'deployment', name: service.name }) : undefined;
}

export interface ConfigCandidate {
  path: string;
  services: ConfiguredService[];
}

/**
 * The config for `workload` among candidates (nearest first): one that names it beats a catch-all.
 */
export function configFor(candidates: ConfigCandidate[], workload: string): ConfigCandidate | undefined {
  const named = candidates.find((c) => c.services.some((s) => s.name !== undefined && describes(s, workload)));
  return named ?? candidates.find((c) => c.services.some((s) => describes(s, workload)));
}

/** The container config for `container` (or the only / first one) of the service describing `workload`. */
export function containerFor(candidate: ConfigCandidate, workload: string, container?: string): ConfiguredContainer | undefined {
  const service = candidate.services.find((s) => s.name !== undefined && describes(s, workload))
    ?? candidate.services.find((s) => describes(s, workload));
  if (!service) {
    return undefined;
  }
  return container ? service.containers.find((c) => c.name === container) ?? service.containers.find((c) => c.name === undefined)
    : service.containers[0];
}
