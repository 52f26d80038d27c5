/**
 * Finding the `nhdev` command: the `nhdev.path` setting, else a `.venv` with nhdev in a workspace
 * folder or above it, else `nhdev` on PATH. When none is there, `installHelp` says what to do.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type ExecutableSource = 'setting' | 'workspace venv' | 'PATH';

export interface FoundExecutable {
  path: string;
  source: ExecutableSource;
}

export interface ExecutableQuery {
  setting?: string; // nhdev.path, may use ~ and ${workspaceFolder}
  workspaceFolders: string[];
  envPath?: string; // $PATH
  platform?: NodeJS.Platform;
  home?: string;
}

export interface ExecutableLookup {
  found?: FoundExecutable;
  tried: string[];
  problem?: string; // the setting names something unusable
}

export type IsExecutable = (file: string) => boolean;

export const isExecutableFile: IsExecutable = (file) => {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) {
      return false;
    }
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

function venvCandidates(folder: string, platform: NodeJS.Platform): string[] {
  return platform === 'win32'
    ? [path.join(folder, '.venv', 'Scripts', 'nhdev.exe')]
    : [path.join(folder, '.venv', 'bin', 'nhdev')];
}

function expandSetting(setting: string, query: ExecutableQuery): string {
  const home = query.home ?? os.homedir();
  const folder = query.workspaceFolders[0] ?? process.cwd();
  let expanded = setting.trim().replace(/\$\{workspaceFolder\}/g, folder).replace(/\$\{userHome\}/g, home);
  if (expanded === '~' || expanded.startsWith('~/')) {
    expanded = path.join(home, expanded.slice(1));
  }
  if (path.isAbsolute(expanded)) {
    return path.normalize(expanded);
  }
  return expanded.includes('/') || expanded.includes('\\') ? path.resolve(folder, expanded) : expanded;
}

function onPath(name: string, envPath: string, platform: NodeJS.Platform, isExecutable: IsExecutable): string | undefined {
  const names = platform === 'win32' ? [`${name}.exe`, `${name}.cmd`, name] : [name];
  for (const dir of envPath.split(platform === 'win32' ? ';' : ':')) {
    if (!dir) {
      continue;
    }
    for (const candidate of names) {
      const full = path.join(dir, candidate);
      if (isExecutable(full)) {
        return full;
      }
    }
  }
  return undefined;
}

/** The nhdev executable to use, and every place looked at (for the message when there is none). */
export function findNhdev(query: ExecutableQuery, isExecutable: IsExecutable = isExecutableFile): ExecutableLookup {
  const platform = query.platform ?? process.platform;
  const tried: string[] = [];
  if (query.setting && query.setting.trim()) {
    const expanded = expandSetting(query.setting, query);
    if (!path.isAbsolute(expanded)) { // a bare name: look it up on PATH
      const hit = onPath(expanded, query.envPath ?? '', platform, isExecutable);
      if (hit) {
        return { found: { path: hit, source: 'setting' }, tried: [expanded] };
      }
    } else if (isExecutable(expanded)) {
      return { found: { path: expanded, source: 'setting' }, tried: [expanded] };
    }
    return { tried: [expanded], problem: `nhdev.path is set to "${query.setting}", which is not an executable file` };
  }
  for (const folder of query.workspaceFolders) {
    let directory = path.resolve(folder);
    for (;;) {
      for (const candidate of venvCandidates(directory, platform)) {
        tried.push(candidate);
        if (isExecutable(candidate)) {
          return { found: { path: candidate, source: 'workspace venv' }, tried };
        }
      }
      const parent = path.dirname(directory);
      if (parent === directory) {
        break;
      }
      directory = parent;
    }
  }
  tried.push('nhdev on PATH');
  const hit = onPath('nhdev', query.envPath ?? '', platform, isExecutable);
  return hit ? { found: { path: hit, source: 'PATH' }, tried } : { tried };
}

/** What to tell a user who has no nhdev command. */
export function installHelp(lookup: ExecutableLookup): string {
  const lines = [
    lookup.problem ?? 'The nhdev command was not found.',
    '',
    'nhdev is a Python program (3.11 or newer). From a checkout of the nhdev repository, either:',
    '  make test                                   # creates .venv with nhdev in it',
    '  python3 -m venv .venv && .venv/bin/pip install -e .',
    '  pipx install /path/to/nhdev                 # puts nhdev on PATH',
    '',
    'A .venv/bin/nhdev in a workspace folder (or a folder above it) is found by itself;',
    'otherwise put nhdev on PATH or point the "nhdev.path" setting at the executable.',
  ];
  if (lookup.tried.length) {
    lines.push('', 'Looked at:', ...lookup.tried.slice(0, 12).map((t) => `  ${t}`));
  }
  return lines.join('\n');
}
