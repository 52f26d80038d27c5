/** The status bar item: the sync state of this workspace's sessions, as their control sockets push it. */
import * as vscode from 'vscode';
import { request } from '../lib/control';
import { SessionsManager } from '../lib/sessions';
import { belongsToWorkspace, detailLines, SessionView, statusBarLook } from '../lib/sessionView';
import { SessionOutputs } from './sessionOutput';

export class SyncStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('nhdev.sync', vscode.StatusBarAlignment.Left, 50);
  private readonly disposables: vscode.Disposable[] = [];
  private readonly update = () => this.render();

  constructor(private readonly sessions: SessionsManager, private readonly outputs: SessionOutputs, private readonly log: vscode.OutputChannel) {
    this.item.name = 'nhdev sync';
    this.item.command = 'nhdev.sessionDetails';
    sessions.on('changed', this.update);
    sessions.on('removed', this.update);
    this.disposables.push(
      vscode.workspace.onDidChangeWorkspaceFolders(this.update),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('nhdev.statusBar') && this.render()),
    );
    this.render();
  }

  /** Sessions of the open folders; with no folder open, every session on this machine. */
  relevant(): SessionView[] {
    const folders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const views = this.sessions.views;
    return folders.length ? views.filter((v) => belongsToWorkspace(v, folders)) : views;
  }

  private render(): void {
    const look = vscode.workspace.getConfiguration('nhdev').get<boolean>('statusBar.enabled', true) ? statusBarLook(this.relevant()) : undefined;
    if (!look) {
      this.item.hide();
      return;
    }
    this.item.text = look.text;
    this.item.tooltip = look.tooltip;
    this.item.backgroundColor = look.severity === 'error' ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : look.severity === 'warning' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.show();
  }

  /** The details of each session, with resync and the other things one does from here. */
  async showDetails(): Promise<void> {
    await this.sessions.refresh();
    const views = this.relevant().length ? this.relevant() : this.sessions.views;
    if (!views.length) {
      void vscode.window.showInformationMessage('nhdev: no session runs for this workspace (start dev mode from the nhdev view, or press F5 on an nhdev launch configuration).');
      return;
    }
    type Item = vscode.QuickPickItem & { run?: () => Promise<void> | void };
    const items: Item[] = [];
    for (const view of views) {
      items.push({ label: `${view.status.workload} (${view.status.namespace})`, kind: vscode.QuickPickItemKind.Separator });
      for (const line of detailLines(view)) {
        items.push({ label: `$(info) ${line}` });
      }
      if (view.sync) {
        items.push({ label: '$(sync) Resync', description: 'compare the whole tree with the pod again', run: () => this.resync(view) });
      }
      items.push({ label: '$(list-flat) Show Session Output', description: 'run / debug output from the pod', run: () => this.outputs.channel(view.socket, view.status.workload).show() });
      if (view.status.log) {
        items.push({ label: '$(file) Open Session Log', description: view.status.log, run: async () => { await vscode.window.showTextDocument(vscode.Uri.file(view.status.log!), { preview: true }); } });
      }
      items.push({ label: '$(debug-stop) End Dev Mode', description: view.status.workload, run: async () => { await vscode.commands.executeCommand('nhdev.endDev', view.status.workload); } });
    }
    const picked = await vscode.window.showQuickPick(items, { title: 'nhdev sessions', matchOnDescription: true });
    await picked?.run?.();
  }

  async resync(view?: SessionView): Promise<void> {
    const target = view ?? (await this.pick());
    if (!target) {
      return;
    }
    try {
      await request(target.socket, { op: 'resync' }, 10_000);
      this.log.appendLine(`nhdev: resync of ${target.status.workload} requested`);
      vscode.window.setStatusBarMessage(`$(sync~spin) nhdev: resyncing ${target.status.workload}`, 3000);
    } catch (error) {
      void vscode.window.showErrorMessage(`nhdev: resync of ${target.status.workload} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async pick(): Promise<SessionView | undefined> {
    const views = (this.relevant().length ? this.relevant() : this.sessions.views).filter((v) => v.sync);
    if (views.length <= 1) {
      return views[0];
    }
    const picked = await vscode.window.showQuickPick(views.map((v) => ({ label: v.status.workload, description: v.status.namespace, view: v })), { title: 'nhdev: resync which session?' });
    return picked?.view;
  }

  dispose(): void {
    this.sessions.off('changed', this.update);
    this.sessions.off('removed', this.update);
    for (const d of this.disposables) {
      d.dispose();
    }
    this.item.dispose();
  }
}
