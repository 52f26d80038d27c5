/**
 * The nhdev extension: the thin VS Code layer over the logic in ./lib (which never imports vscode).
 *
 * - debug types `nhdev` and `nocalhost` (./vsc/debug.ts),
 * - the Workloads view and its commands (./vsc/tree.ts, ./vsc/commands.ts),
 * - the sync status bar, fed by the sessions' control sockets (./vsc/statusBar.ts, ./lib/sessions.ts).
 */
import * as vscode from 'vscode';
import { PortForwards } from './lib/portForwards';
import { SessionsManager } from './lib/sessions';
import { Commands } from './vsc/commands';
import { WorkspaceConfigs } from './vsc/configs';
import { NhdevDebug } from './vsc/debug';
import { Nhdev } from './vsc/nhdev';
import { SessionOutputs } from './vsc/sessionOutput';
import { SyncStatusBar } from './vsc/statusBar';
import { WorkloadsTree } from './vsc/tree';

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel('nhdev');
  const nhdev = new Nhdev(context, log);
  const sessions = new SessionsManager();
  const forwards = new PortForwards();
  const outputs = new SessionOutputs(sessions);
  const configs = new WorkspaceConfigs(nhdev);
  const statusBar = new SyncStatusBar(sessions, outputs, log);
  const tree = new WorkloadsTree(nhdev, sessions, forwards);
  const debug = new NhdevDebug(nhdev, configs, sessions, outputs);
  debug.register(context);
  new Commands(nhdev, configs, tree, sessions, forwards, outputs, statusBar).register(context);

  forwards.on('exited', (forward, message) => {
    void vscode.window.showWarningMessage(`nhdev: the port forward ${forward.local} → ${forward.workload}:${forward.remote} ended: ${message}`);
  });
  context.subscriptions.push(
    log, nhdev, outputs, statusBar, tree, debug,
    { dispose: () => forwards.dispose() },
    { dispose: () => sessions.dispose() },
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('nhdev.path')) {
        nhdev.lookup();
      }
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => nhdev.lookup()),
  );
  nhdev.lookup();
  sessions.start();
}

export function deactivate(): void {
  // Everything is disposed through context.subscriptions; sessions keep running (they outlive the editor).
}
