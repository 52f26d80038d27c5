/** The Workloads view: the namespace's workloads with their dev state, forwards, and the commands on them. */
import * as vscode from 'vscode';
import { DevEntry, ForwardStatus, parseWorkloads, WorkloadRow, WorkloadsListing, clusterArgs } from '../lib/cli';
import { PortForwards } from '../lib/portForwards';
import { SessionsManager } from '../lib/sessions';
import { SessionView } from '../lib/sessionView';
import { entryLook, ItemLook, ManagedForward, managedForwardLook, sessionForwardLook, sortRows, workloadLook } from '../lib/workloadTree';
import { Nhdev, NhdevMissing } from './nhdev';

export type Node =
  | { kind: 'workload'; row: WorkloadRow }
  | { kind: 'entry'; row: WorkloadRow; entry: DevEntry }
  | { kind: 'sessionForward'; row: WorkloadRow; forward: ForwardStatus }
  | { kind: 'managedForward'; forward: ManagedForward }
  | { kind: 'message'; text: string; icon: string; command?: vscode.Command; tooltip?: string };

export class WorkloadsTree implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<Node>;
  listing: WorkloadsListing | undefined;
  private error: string | undefined;
  private loading: Promise<void> | undefined;
  private again = false;
  private loadedOnce = false;
  private readonly disposables: vscode.Disposable[] = [];
  private sessionTimer: NodeJS.Timeout | undefined;

  constructor(private readonly nhdev: Nhdev, private readonly sessions: SessionsManager, private readonly forwards: PortForwards) {
    this.view = vscode.window.createTreeView('nhdev.workloads', { treeDataProvider: this, showCollapseAll: true });
    this.disposables.push(
      this.view,
      this.view.onDidChangeVisibility((e) => {
        if (e.visible && !this.loadedOnce) {
          void this.refresh();
        }
      }),
      nhdev.onDidChangeSelection(() => void this.refresh()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('nhdev.path') || e.affectsConfiguration('nhdev.kubeconfig')) {
          void this.refresh();
        }
      }),
    );
    // A session starting or ending changes what the view shows about it (not the cluster listing).
    const redraw = () => this.changed.fire(undefined);
    const sessionsChanged = () => {
      if (this.sessionTimer) {
        clearTimeout(this.sessionTimer);
      }
      this.sessionTimer = setTimeout(redraw, 300);
    };
    sessions.on('added', sessionsChanged);
    sessions.on('removed', sessionsChanged);
    forwards.on('changed', redraw);
    this.disposables.push({ dispose: () => { sessions.off('added', sessionsChanged); sessions.off('removed', sessionsChanged); forwards.off('changed', redraw); } });
    if (this.view.visible) {
      void this.refresh();
    }
  }

  dispose(): void {
    if (this.sessionTimer) {
      clearTimeout(this.sessionTimer);
    }
    for (const d of this.disposables) {
      d.dispose();
    }
    this.changed.dispose();
  }

  /** Lists the workloads again (one `nhdev cluster workloads` run; refreshes asked for meanwhile are folded into one more). */
  refresh(): Promise<void> {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = (async () => {
      do {
        this.again = false;
        await this.load();
      } while (this.again);
    })().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<void> {
    this.loadedOnce = true;
    if (!this.nhdev.executable()) {
      this.listing = undefined;
      this.error = undefined;
      this.view.description = undefined;
      this.changed.fire(undefined);
      return;
    }
    this.view.message = 'Loading…';
    void this.sessions.refresh(); // their forwards, shown under the workloads
    try {
      this.listing = await this.nhdev.json(['cluster', 'workloads', ...clusterArgs(this.nhdev.selection()), '-o', 'json'], parseWorkloads, { timeoutMs: 60_000 });
      this.error = undefined;
      this.view.description = `${this.listing.context} / ${this.listing.namespace}`;
    } catch (error) {
      this.listing = undefined;
      this.error = error instanceof NhdevMissing ? undefined : error instanceof Error ? error.message : String(error);
      const selection = this.nhdev.selection();
      this.view.description = [selection.context, selection.namespace].filter(Boolean).join(' / ') || undefined;
    }
    this.view.message = undefined;
    this.changed.fire(undefined);
  }

  sessionFor(row: WorkloadRow): SessionView | undefined {
    return this.listing ? this.sessions.find({ workload: row.workload, context: this.listing.context, namespace: row.namespace }) : undefined;
  }

  rows(): WorkloadRow[] {
    return this.listing ? sortRows(this.listing.workloads) : [];
  }

  getChildren(node?: Node): Node[] {
    if (!node) {
      if (!this.nhdev.executable()) {
        return []; // the welcome view explains
      }
      if (this.error) {
        return [
          { kind: 'message', text: this.error, icon: 'error', tooltip: this.error },
          { kind: 'message', text: 'Retry', icon: 'refresh', command: { command: 'nhdev.refresh', title: 'Retry' } },
          { kind: 'message', text: 'Switch kube context…', icon: 'server-environment', command: { command: 'nhdev.switchContext', title: 'Switch' } },
        ];
      }
      if (!this.listing) {
        return [];
      }
      if (!this.listing.workloads.length) {
        return [
          { kind: 'message', text: `No workloads in namespace ${this.listing.namespace}`, icon: 'info' },
          { kind: 'message', text: 'Switch namespace…', icon: 'symbol-namespace', command: { command: 'nhdev.switchNamespace', title: 'Switch' } },
        ];
      }
      return this.rows().map((row) => ({ kind: 'workload', row }));
    }
    if (node.kind !== 'workload') {
      return [];
    }
    const row = node.row;
    const session = this.sessionFor(row);
    return [
      ...row.dev.map((entry) => ({ kind: 'entry', row, entry }) as Node),
      ...(session?.status.forwards ?? []).map((forward) => ({ kind: 'sessionForward', row, forward }) as Node),
      ...this.forwards.forWorkload(row.workload, row.namespace).map((forward) => ({ kind: 'managedForward', forward }) as Node),
    ];
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === 'message') {
      const item = new vscode.TreeItem(node.text, vscode.TreeItemCollapsibleState.None);
      item.iconPath = new vscode.ThemeIcon(node.icon);
      item.command = node.command;
      item.tooltip = node.tooltip;
      item.contextValue = 'message';
      return item;
    }
    let look: ItemLook;
    switch (node.kind) {
      case 'workload': {
        const row = node.row;
        look = workloadLook(row, this.listing?.context ?? '', this.sessionFor(row), this.forwards.forWorkload(row.workload, row.namespace));
        break;
      }
      case 'entry':
        look = entryLook(node.row, node.entry);
        break;
      case 'sessionForward':
        look = sessionForwardLook(node.row, node.forward);
        break;
      case 'managedForward':
        look = managedForwardLook(node.forward);
        break;
    }
    const item = new vscode.TreeItem(look.label, look.collapsible ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
    item.id = look.id;
    item.description = look.description;
    item.tooltip = look.tooltip;
    item.iconPath = new vscode.ThemeIcon(look.icon);
    item.contextValue = look.contextValue;
    return item;
  }
}
