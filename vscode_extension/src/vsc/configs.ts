/** The dev configs of the workspace and what they describe (read through `nhdev config show`, cached by mtime). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { CliError } from '../lib/cli';
import { ConfigCandidate, ConfigNotFound, configFor, discoverConfig, parseConfigShow, projectRootOf, serviceWorkload } from '../lib/devConfig';
import { Nhdev } from './nhdev';

export class WorkspaceConfigs {
  private cache = new Map<string, { mtimeMs: number; candidate: ConfigCandidate }>();

  constructor(private readonly nhdev: Nhdev) {}

  /** One config file's services; a broken config throws nhdev's message (file:line:col). */
  async load(configPath: string): Promise<ConfigCandidate> {
    const mtimeMs = fs.statSync(configPath).mtimeMs;
    const cached = this.cache.get(configPath);
    if (cached && cached.mtimeMs === mtimeMs) {
      return cached.candidate;
    }
    const data = await this.nhdev.json(['config', 'show', '--config', configPath, '-o', 'json'], (d) => d, { cwd: path.dirname(configPath) });
    const candidate = { path: configPath, services: parseConfigShow(data) };
    this.cache.set(configPath, { mtimeMs, candidate });
    return candidate;
  }

  /** Config files for `folder`: the one nhdev itself would use there (in it or above), then nested projects. */
  async paths(folder: vscode.WorkspaceFolder | undefined): Promise<string[]> {
    const found: string[] = [];
    if (folder) {
      try {
        found.push(discoverConfig(folder.uri.fsPath));
      } catch (error) {
        if (!(error instanceof ConfigNotFound)) {
          throw error;
        }
      }
    }
    const pattern = folder ? new vscode.RelativePattern(folder, '**/{.nhdev,.nocalhost}/config.yaml') : '**/{.nhdev,.nocalhost}/config.yaml';
    const nested = await vscode.workspace.findFiles(pattern, '{**/node_modules/**,**/.git/**}', 50);
    const byDirectory = new Map<string, string>();
    for (const uri of nested.map((u) => u.fsPath).sort()) {
      const root = projectRootOf(uri);
      const already = byDirectory.get(root);
      if (!already || uri.includes(`${path.sep}.nhdev${path.sep}`)) { // .nhdev/ beats .nocalhost/ in one project
        byDirectory.set(root, uri);
      }
    }
    for (const file of byDirectory.values()) {
      if (!found.includes(file)) {
        found.push(file);
      }
    }
    return found;
  }

  /** The loaded candidates of `folder`; configs that fail to load are reported and skipped. */
  async candidates(folder: vscode.WorkspaceFolder | undefined): Promise<ConfigCandidate[]> {
    const candidates: ConfigCandidate[] = [];
    for (const file of await this.paths(folder)) {
      try {
        candidates.push(await this.load(file));
      } catch (error) {
        const message = error instanceof CliError || error instanceof Error ? error.message : String(error);
        this.nhdev.log.appendLine(`nhdev: skipping ${file}: ${message}`);
      }
    }
    return candidates;
  }

  /** The config describing `workload` in any workspace folder, with that folder. */
  async forWorkload(workload: string): Promise<{ folder?: vscode.WorkspaceFolder; candidate: ConfigCandidate } | undefined> {
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      const hit = configFor(await this.candidates(folder), workload);
      if (hit) {
        return { folder, candidate: hit };
      }
    }
    return undefined;
  }

  /** Every workload the workspace's configs name, with the config and folder for each. */
  async namedWorkloads(folder?: vscode.WorkspaceFolder): Promise<{ workload: string; folder?: vscode.WorkspaceFolder; candidate: ConfigCandidate }[]> {
    const folders = folder ? [folder] : vscode.workspace.workspaceFolders ?? [];
    const out: { workload: string; folder?: vscode.WorkspaceFolder; candidate: ConfigCandidate }[] = [];
    for (const f of folders) {
      for (const candidate of await this.candidates(f)) {
        for (const service of candidate.services) {
          const workload = serviceWorkload(service);
          if (workload && !out.some((o) => o.workload === workload)) {
            out.push({ workload, folder: f, candidate });
          }
        }
      }
    }
    return out;
  }
}
