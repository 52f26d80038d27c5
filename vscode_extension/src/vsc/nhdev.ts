/** The nhdev command as the extension uses it: found, explained when missing, run with logging and cancellation. */
import * as vscode from 'vscode';
import { ChildProcess } from 'node:child_process';
import { CliError, ClusterSelection, run, RunResult, runJson } from '../lib/cli';
import { findNhdev, installHelp, ExecutableLookup } from '../lib/executable';
import { shellQuote } from '../lib/cli';

const SELECTION_KEY = 'nhdev.clusterSelection';

export class NhdevMissing extends Error {}

export interface JsonOptions {
  cwd?: string;
  token?: vscode.CancellationToken;
  onProgress?: (message: string) => void;
  timeoutMs?: number;
}

export class Nhdev implements vscode.Disposable {
  private readonly selectionChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeSelection = this.selectionChanged.event;
  private lastLookup: ExecutableLookup | undefined;

  constructor(private readonly context: vscode.ExtensionContext, readonly log: vscode.OutputChannel) {}

  dispose(): void {
    this.selectionChanged.dispose();
  }

  /** Looks for the executable again (a few stat calls) and updates the `nhdev.cliMissing` context key. */
  lookup(): ExecutableLookup {
    const setting = vscode.workspace.getConfiguration('nhdev').get<string>('path', '');
    const lookup = findNhdev({
      setting,
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      envPath: process.env.PATH,
    });
    if (lookup.found?.path !== this.lastLookup?.found?.path) {
      this.log.appendLine(lookup.found ? `nhdev: using ${lookup.found.path} (${lookup.found.source})` : `nhdev: no executable (${lookup.problem ?? lookup.tried.join(', ')})`);
    }
    this.lastLookup = lookup;
    void vscode.commands.executeCommand('setContext', 'nhdev.cliMissing', !lookup.found);
    return lookup;
  }

  executable(): string | undefined {
    return this.lookup().found?.path;
  }

  /** The executable, or a message with the way out and NhdevMissing. */
  requireExecutable(): string {
    const lookup = this.lookup();
    if (lookup.found) {
      return lookup.found.path;
    }
    void this.explainMissing(lookup);
    throw new NhdevMissing(lookup.problem ?? 'the nhdev command was not found');
  }

  async explainMissing(lookup: ExecutableLookup = this.lookup()): Promise<void> {
    const choice = await vscode.window.showErrorMessage(
      lookup.problem ?? 'nhdev: the nhdev command was not found (nhdev.path, the workspace\'s .venv/bin/nhdev, PATH).',
      'How to Install', 'Set nhdev.path');
    if (choice === 'How to Install') {
      this.showInstallHelp(lookup);
    } else if (choice === 'Set nhdev.path') {
      void vscode.commands.executeCommand('workbench.action.openSettings', 'nhdev.path');
    }
  }

  showInstallHelp(lookup: ExecutableLookup = this.lookup()): void {
    this.log.appendLine('');
    this.log.appendLine(installHelp(lookup));
    this.log.show(true);
  }

  // ---------------------------------------------------------------- kube context and namespace

  /** The cluster every command goes to: the nhdev.kubeconfig setting and the context / namespace chosen in the view. */
  selection(): ClusterSelection {
    const stored = this.context.workspaceState.get<ClusterSelection>(SELECTION_KEY) ?? {};
    const kubeconfig = vscode.workspace.getConfiguration('nhdev').get<string>('kubeconfig', '') || undefined;
    return { kubeconfig, context: stored.context, namespace: stored.namespace };
  }

  async choose(selection: { context?: string; namespace?: string }): Promise<void> {
    await this.context.workspaceState.update(SELECTION_KEY, { context: selection.context, namespace: selection.namespace });
    this.selectionChanged.fire();
  }

  /** The environment for terminals and child processes: KUBECONFIG from the setting, as kubectl would see it. */
  terminalEnv(): Record<string, string> {
    const kubeconfig = this.selection().kubeconfig;
    return kubeconfig ? { KUBECONFIG: kubeconfig } : {};
  }

  // ---------------------------------------------------------------- running

  private logCommand(executable: string, args: string[], cwd?: string): void {
    this.log.appendLine(`$ ${shellQuote([executable, ...args])}${cwd ? `   (in ${cwd})` : ''}`);
  }

  /** Runs `nhdev args` (which must include `-o json`) and parses its JSON; errors carry nhdev's own message. */
  async json<T>(args: string[], parse: (data: unknown) => T, options: JsonOptions = {}): Promise<T> {
    const executable = this.requireExecutable();
    this.logCommand(executable, args, options.cwd);
    let child: ChildProcess | undefined;
    const cancel = options.token?.onCancellationRequested(() => child?.kill('SIGINT'));
    try {
      return await runJson(executable, args, parse, {
        cwd: options.cwd,
        timeoutMs: options.timeoutMs,
        onSpawn: (spawned) => {
          child = spawned;
        },
        onStderrLine: (line) => {
          if (line.trim()) {
            this.log.appendLine(`  ${line.trimEnd()}`);
            const message = line.trim().replace(/^· /, '');
            options.onProgress?.(message);
          }
        },
      });
    } catch (error) {
      if (error instanceof CliError) {
        this.log.appendLine(`  -> exit ${error.result.code ?? error.result.signal}: ${error.message}`);
      }
      throw error;
    } finally {
      cancel?.dispose();
    }
  }

  /** Runs `nhdev args` for its text output. */
  async text(args: string[], options: { cwd?: string } = {}): Promise<RunResult> {
    const executable = this.requireExecutable();
    this.logCommand(executable, args, options.cwd);
    const result = await run(executable, args, { cwd: options.cwd });
    if (result.stderr.trim()) {
      this.log.appendLine(result.stderr.trimEnd().split('\n').map((l) => `  ${l}`).join('\n'));
    }
    return result;
  }

  /** An integrated terminal running `nhdev args` (it closes when the command ends). */
  terminal(name: string, args: string[], cwd?: string): vscode.Terminal {
    const executable = this.requireExecutable();
    this.logCommand(executable, args, cwd);
    const terminal = vscode.window.createTerminal({ name, shellPath: executable, shellArgs: args, cwd, env: this.terminalEnv(), iconPath: new vscode.ThemeIcon('cloud') });
    terminal.show();
    return terminal;
  }
}
