/** The commands of the view, the palette and the status bar. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { clusterArgs, ClusterSelection, devEndArgs, devStartArgs, parseContexts, parseDevEnd, parseDevStart, parseNamespaces, podCommandArgs, shellQuote, WorkloadRow } from '../lib/cli';
import { containerFor, projectRootOf } from '../lib/devConfig';
import { addLaunchEntry } from '../lib/launchJson';
import { newLaunchEntry } from '../lib/launchConfig';
import { PortForwards } from '../lib/portForwards';
import { SessionsManager } from '../lib/sessions';
import { devState, portSpecProblem } from '../lib/workloadTree';
import { WorkspaceConfigs } from './configs';
import { Nhdev, NhdevMissing } from './nhdev';
import { SessionOutputs } from './sessionOutput';
import { SyncStatusBar } from './statusBar';
import { Node, WorkloadsTree } from './tree';

const LANGUAGES = ['python', 'go', 'node', 'java'];

interface Target {
  row?: WorkloadRow;
  workload: string;
  namespace?: string;
}

export class Commands {
  constructor(
    private readonly nhdev: Nhdev,
    private readonly configs: WorkspaceConfigs,
    private readonly tree: WorkloadsTree,
    private readonly sessions: SessionsManager,
    private readonly forwards: PortForwards,
    private readonly outputs: SessionOutputs,
    private readonly statusBar: SyncStatusBar,
  ) {}

  register(context: vscode.ExtensionContext): void {
    const commands: Record<string, (...args: unknown[]) => unknown> = {
      'nhdev.refresh': () => this.tree.refresh(),
      'nhdev.switchContext': () => this.switchContext(),
      'nhdev.switchNamespace': () => this.switchNamespace(),
      'nhdev.startDevReplace': (node) => this.startDev(node, 'replace'),
      'nhdev.startDevDuplicate': (node) => this.startDev(node, 'duplicate'),
      'nhdev.endDev': (node) => this.endDev(node),
      'nhdev.openTerminal': (node) => this.podTerminal(node, 'terminal'),
      'nhdev.run': (node) => this.podTerminal(node, 'run'),
      'nhdev.showLogs': (node) => this.podTerminal(node, 'logs'),
      'nhdev.debug': (node) => this.debug(node),
      'nhdev.portForward': (node) => this.portForward(node),
      'nhdev.stopPortForward': (node) => this.stopPortForward(node),
      'nhdev.openForward': (node) => this.openForward(node),
      'nhdev.copyTerminalCommand': (node) => this.copyTerminalCommand(node),
      'nhdev.showSessionOutput': (node) => this.showSessionOutput(node),
      'nhdev.openSessionLog': (node) => this.openSessionLog(node),
      'nhdev.sessionDetails': () => this.statusBar.showDetails(),
      'nhdev.resync': () => this.statusBar.resync(),
      'nhdev.addLaunchConfiguration': (node) => this.addLaunchConfiguration(node),
      'nhdev.createDevConfig': (workload) => this.createDevConfig(typeof workload === 'string' ? workload : undefined),
      'nhdev.showInstallHelp': () => this.nhdev.showInstallHelp(),
    };
    for (const [id, handler] of Object.entries(commands)) {
      context.subscriptions.push(vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          await handler(...args);
        } catch (error) {
          if (error instanceof NhdevMissing || error instanceof vscode.CancellationError) {
            return;
          }
          const message = error instanceof Error ? error.message : String(error);
          this.nhdev.log.appendLine(`nhdev: ${id}: ${message}`);
          const choice = await vscode.window.showErrorMessage(`nhdev: ${message}`, 'Show Log');
          if (choice) {
            this.nhdev.log.show(true);
          }
        }
      }));
    }
  }

  // ---------------------------------------------------------------- which workload

  /** The workload a command is about: the tree node, a `kind/name` string, or one picked from the listing. */
  private async target(arg: unknown, filter: (row: WorkloadRow) => boolean = () => true): Promise<Target> {
    if (arg && typeof arg === 'object' && 'kind' in arg) {
      const node = arg as Node;
      if (node.kind === 'workload' || node.kind === 'entry' || node.kind === 'sessionForward') {
        return { row: node.row, workload: node.row.workload, namespace: node.row.namespace };
      }
    }
    if (typeof arg === 'string' && arg) {
      const row = this.tree.rows().find((r) => r.workload === arg || r.name === arg);
      return { row, workload: row?.workload ?? arg, namespace: row?.namespace };
    }
    if (!this.tree.listing) {
      await this.tree.refresh();
    }
    const rows = this.tree.rows().filter(filter);
    if (!rows.length) {
      throw new Error(this.tree.listing ? `no workload to choose from in namespace ${this.tree.listing.namespace}` : 'the workloads could not be listed (see the nhdev view)');
    }
    const picked = await vscode.window.showQuickPick(rows.map((row) => ({ label: row.name, description: `${row.kind} · ${row.status}`, detail: row.dev.map((d) => `${d.mode} by ${d.mine ? 'you' : d.identity}`).join(', ') || undefined, row })), { title: 'nhdev: which workload?' });
    if (!picked) {
      throw new vscode.CancellationError();
    }
    return { row: picked.row, workload: picked.row.workload, namespace: picked.row.namespace };
  }

  private selectionFor(target: Target): ClusterSelection {
    const selection = this.nhdev.selection();
    return { ...selection, context: selection.context ?? this.tree.listing?.context, namespace: target.namespace ?? selection.namespace ?? this.tree.listing?.namespace };
  }

  /** Where to run a command for `workload`: the project whose dev config describes it, with that config. */
  private async placeFor(workload: string): Promise<{ cwd: string; config?: string; folder?: vscode.WorkspaceFolder; language?: string }> {
    const found = await this.configs.forWorkload(workload).catch(() => undefined);
    if (found) {
      const container = containerFor(found.candidate, workload);
      return { cwd: projectRootOf(found.candidate.path), config: found.candidate.path, folder: found.folder, language: container?.language };
    }
    // No config describes it: run where no config is found, so nhdev does not pick up another project's.
    return { cwd: os.tmpdir(), folder: vscode.workspace.workspaceFolders?.[0] };
  }

  // ---------------------------------------------------------------- context and namespace

  private async switchContext(): Promise<void> {
    const listing = await this.nhdev.json(['cluster', 'contexts', ...(this.nhdev.selection().kubeconfig ? ['--kubeconfig', this.nhdev.selection().kubeconfig!] : []), '-o', 'json'], parseContexts);
    const active = this.nhdev.selection().context ?? listing.current;
    const picked = await vscode.window.showQuickPick(listing.contexts.map((c) => ({
      label: c.name, description: `${c.cluster ?? ''} · ${c.namespace}${c.name === listing.current ? ' · current-context' : ''}`, picked: c.name === active, context: c.name,
    })), { title: `nhdev: kube context (${listing.kubeconfig})`, placeHolder: active ? `now: ${active}` : undefined });
    if (picked) {
      await this.nhdev.choose({ context: picked.context, namespace: undefined });
    }
  }

  private async switchNamespace(): Promise<void> {
    const selection = this.nhdev.selection();
    type Item = vscode.QuickPickItem & { namespace?: string; other?: boolean };
    let items: Item[] = [];
    try {
      const listing = await this.nhdev.json(['cluster', 'namespaces', ...clusterArgs(selection), '-o', 'json'], parseNamespaces, { timeoutMs: 60_000 });
      items = listing.namespaces.map((ns) => ({ label: ns, description: ns === listing.namespace ? 'now' : undefined, namespace: ns }));
    } catch (error) {
      this.nhdev.log.appendLine(`nhdev: namespaces could not be listed: ${error instanceof Error ? error.message : String(error)}`);
    }
    items.push({ label: '$(edit) Other…', other: true });
    const picked = await vscode.window.showQuickPick(items, { title: 'nhdev: namespace' });
    if (!picked) {
      return;
    }
    let namespace = picked.namespace;
    if (picked.other) {
      namespace = await vscode.window.showInputBox({ title: 'nhdev: namespace', value: selection.namespace ?? this.tree.listing?.namespace, validateInput: (v) => (/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v) ? undefined : 'a namespace name (lowercase letters, digits, -)') });
    }
    if (namespace) {
      await this.nhdev.choose({ context: selection.context, namespace });
    }
  }

  // ---------------------------------------------------------------- dev mode

  private async startDev(arg: unknown, mode: 'replace' | 'duplicate'): Promise<void> {
    const target = await this.target(arg, (row) => mode === 'duplicate' || devState(row) === 'none' || devState(row) === 'other-dup');
    const place = await this.placeFor(target.workload);
    let image: string | undefined;
    if (!place.config) {
      image = await vscode.window.showInputBox({
        title: `nhdev: dev image for ${target.workload}`,
        prompt: 'No dev config in this workspace describes this workload. Give a dev image to start it anyway (or cancel and create a dev config with "nhdev: Create Dev Config").',
        value: 'ghcr.io/nhdev/dev-python:3.12',
      });
      if (!image) {
        return;
      }
    }
    const selection = this.selectionFor(target);
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `nhdev: ${target.workload}`, cancellable: true }, (progress, token) => {
      progress.report({ message: `starting ${mode} dev mode…` });
      return this.nhdev.json(devStartArgs({ workload: target.workload, mode, config: place.config, image }, selection), parseDevStart, {
        cwd: place.cwd, token, onProgress: (message) => progress.report({ message }),
      });
    });
    const socket = result.localSession?.controlSocket;
    if (socket) {
      await this.sessions.follow(socket);
    }
    await this.tree.refresh();
    const tunnel = result.localSession?.tunnel;
    const summary = `nhdev: ${result.workload} ${result.resumed ? 'was already' : 'is'} in ${result.mode} dev mode (pod ${result.pod}, ${result.seconds.toFixed(1)}s)`
      + (tunnel && tunnel.state !== 'connected' ? `; the tunnel is ${tunnel.state}${tunnel.reason ? `: ${tunnel.reason}` : ''}` : '');
    const actions = ['Open Terminal', ...(place.config ? ['Run', 'Debug'] : [])];
    const choice = await vscode.window.showInformationMessage(summary, ...actions);
    if (choice === 'Open Terminal') {
      await this.podTerminal(target.workload, 'terminal');
    } else if (choice === 'Run') {
      await this.podTerminal(target.workload, 'run');
    } else if (choice === 'Debug') {
      await this.debug(target.workload, mode);
    }
  }

  private async endDev(arg: unknown): Promise<void> {
    const target = await this.target(arg, (row) => row.dev.some((d) => d.mine || d.mode === 'replace'));
    const row = target.row;
    const mine = row?.dev.find((d) => d.mine);
    const others = row?.dev.find((d) => !d.mine && d.mode === 'replace');
    let force = false;
    if (!mine && others) {
      const answer = await vscode.window.showWarningMessage(`${target.workload} is in dev mode by ${others.identity}. End their dev mode and restore it?`, { modal: true }, 'End Their Dev Mode');
      if (!answer) {
        return;
      }
      force = true;
    }
    const place = await this.placeFor(target.workload);
    const selection = this.selectionFor(target);
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `nhdev: ending dev mode of ${target.workload}…` }, (progress) =>
      this.nhdev.json(devEndArgs(target.workload, selection, { force, config: place.config }), parseDevEnd, { cwd: place.cwd, onProgress: (message) => progress.report({ message }) }));
    await this.tree.refresh();
    const drifts = result.drifts.length ? ` ${result.drifts.length} field(s) changed by others meanwhile: ${result.drifts.map((d) => d.path).join(', ')}` : '';
    void vscode.window.showInformationMessage(`nhdev: ${result.workload} ${result.restored ? 'restored' : 'left as it was'} (${result.mode})${result.deleted.length ? `; deleted ${result.deleted.join(', ')}` : ''}.${drifts}`);
  }

  // ---------------------------------------------------------------- terminal, run, logs, debug

  private async podTerminal(arg: unknown, command: 'terminal' | 'run' | 'logs', podLogs = false): Promise<void> {
    const target = await this.target(arg);
    const session = target.row ? this.tree.sessionFor(target.row) : undefined;
    if (command === 'logs' && session && !podLogs) {
      // In dev mode the container idles; the app's output is what the session runs (run / debug).
      this.outputs.channel(session.socket, session.status.workload).show();
      const choice = await vscode.window.showInformationMessage(`nhdev: showing what the session runs in ${target.workload} (run / debug output).`, 'Show Pod Logs Instead');
      if (choice) {
        await this.podTerminal(target.workload, 'logs', true);
      }
      return;
    }
    const place = await this.placeFor(target.workload);
    if (command === 'run' && !place.config) {
      throw new Error(`no dev config in this workspace describes ${target.workload}, so there is no command.run to run`);
    }
    const args = podCommandArgs(command, target.workload, this.selectionFor(target), { config: place.config, follow: command === 'logs', tail: command === 'logs' ? 200 : undefined });
    const label = { terminal: 'terminal', run: 'run', logs: 'logs' }[command];
    this.nhdev.terminal(`nhdev ${label}: ${target.workload.slice(target.workload.indexOf('/') + 1)}`, args, place.cwd);
  }

  private async debug(arg: unknown, mode?: 'replace' | 'duplicate'): Promise<void> {
    const target = await this.target(arg);
    const place = await this.placeFor(target.workload);
    if (!place.config) {
      const choice = await vscode.window.showErrorMessage(`nhdev: no dev config in this workspace describes ${target.workload}; debugging needs its command.debug (or debug.language).`, 'Create Dev Config');
      if (choice) {
        await this.createDevConfig(target.workload);
      }
      return;
    }
    const selection = this.selectionFor(target);
    const mine = target.row?.dev.find((d) => d.mine);
    const config: vscode.DebugConfiguration = {
      type: 'nhdev', request: 'attach', name: `nhdev: debug ${target.workload.slice(target.workload.indexOf('/') + 1)}`, workload: target.workload,
      mode: mode ?? (mine?.mode === 'duplicate' ? 'duplicate' : 'replace'), config: place.config,
      ...(selection.context ? { context: selection.context } : {}), ...(selection.namespace ? { namespace: selection.namespace } : {}),
    };
    await vscode.debug.startDebugging(place.folder, config);
  }

  // ---------------------------------------------------------------- port forwards

  private async portForward(arg: unknown): Promise<void> {
    const target = await this.target(arg);
    const declared = target.row?.ports ?? [];
    type Item = vscode.QuickPickItem & { spec?: string };
    const items: Item[] = declared.map((p) => ({ label: `${p.port}`, description: `${p.container}${p.name ? ` (${p.name})` : ''}`, detail: `any free local port → ${p.port} in the pod`, spec: `:${p.port}` }));
    items.push({ label: '$(edit) Other…', description: 'LOCAL:REMOTE, :REMOTE or PORT' });
    let spec = items.length > 1 ? (await vscode.window.showQuickPick(items, { title: `nhdev: forward which port of ${target.workload}?` }))?.spec : undefined;
    if (spec === undefined) {
      spec = await vscode.window.showInputBox({ title: `nhdev: port forward to ${target.workload}`, prompt: 'LOCAL:REMOTE, :REMOTE (any free local port) or PORT', value: declared[0] ? `:${declared[0].port}` : '', validateInput: portSpecProblem });
    }
    if (!spec) {
      return;
    }
    const selection = this.selectionFor(target);
    const executable = this.nhdev.requireExecutable();
    this.nhdev.log.appendLine(`$ ${shellQuote([executable, 'port-forward', target.workload, spec, ...clusterArgs(selection), '-o', 'json'])}`);
    const started = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `nhdev: forwarding ${spec} to ${target.workload}` }, () =>
      this.forwards.start(executable, target.workload, [spec!], { ...selection, namespace: selection.namespace ?? target.namespace ?? 'default' }));
    for (const forward of started) {
      const choice = await vscode.window.showInformationMessage(`nhdev: ${forward.local} → ${target.workload}:${forward.remote}`, 'Open in Browser', 'Copy Address');
      if (choice === 'Open in Browser') {
        await vscode.env.openExternal(vscode.Uri.parse(`http://${forward.local}/`));
      } else if (choice === 'Copy Address') {
        await vscode.env.clipboard.writeText(forward.local);
      }
    }
  }

  private stopPortForward(arg: unknown): void {
    const node = arg as Node | undefined;
    if (node?.kind === 'managedForward') {
      this.forwards.stop(node.forward.id);
    }
  }

  private async openForward(arg: unknown): Promise<void> {
    const node = arg as Node | undefined;
    const local = node?.kind === 'managedForward' ? node.forward.local : node?.kind === 'sessionForward' ? node.forward.local : undefined;
    if (local) {
      await vscode.env.openExternal(vscode.Uri.parse(`http://${local}/`));
    }
  }

  // ---------------------------------------------------------------- copy, session output, log

  private async copyTerminalCommand(arg: unknown): Promise<void> {
    const target = await this.target(arg);
    const place = await this.placeFor(target.workload);
    const words = ['nhdev', ...podCommandArgs('terminal', target.workload, this.selectionFor(target))];
    const line = place.config ? `cd ${shellQuote([place.cwd])} && ${shellQuote(words)}` : shellQuote(words);
    await vscode.env.clipboard.writeText(line);
    vscode.window.setStatusBarMessage(`nhdev: copied: ${line}`, 4000);
  }

  private async sessionOf(arg: unknown) {
    if (arg === undefined && this.statusBar.relevant().length === 1) {
      return this.statusBar.relevant()[0];
    }
    const target = await this.target(arg, (row) => !!this.tree.sessionFor(row));
    const view = target.row ? this.tree.sessionFor(target.row) : this.sessions.find({ workload: target.workload });
    if (!view) {
      throw new Error(`no session of ${target.workload} runs on this machine`);
    }
    return view;
  }

  private async showSessionOutput(arg: unknown): Promise<void> {
    const view = await this.sessionOf(arg);
    this.outputs.channel(view.socket, view.status.workload).show();
  }

  private async openSessionLog(arg: unknown): Promise<void> {
    const view = await this.sessionOf(arg);
    if (!view.status.log) {
      throw new Error('this session does not say where its log is (nhdev too old?); look in ~/.nhdev/logs/');
    }
    await vscode.window.showTextDocument(vscode.Uri.file(view.status.log), { preview: true });
  }

  // ---------------------------------------------------------------- launch.json and dev config

  private async pickFolder(title: string): Promise<vscode.WorkspaceFolder | undefined> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    if (folders.length <= 1) {
      return folders[0];
    }
    return vscode.window.showWorkspaceFolderPick({ placeHolder: title });
  }

  private async addLaunchConfiguration(arg: unknown): Promise<void> {
    let workload: string | undefined;
    let folder: vscode.WorkspaceFolder | undefined;
    if (arg) {
      const target = await this.target(arg);
      workload = target.workload;
      folder = (await this.placeFor(workload)).folder;
    } else {
      const named = await this.configs.namedWorkloads();
      const items = [
        ...named.map((n) => ({ label: n.workload, description: path.relative(n.folder?.uri.fsPath ?? '', n.candidate.path), workload: n.workload as string | undefined, folder: n.folder })),
        { label: '$(gear) From the dev config', description: 'no "workload": the dev config\'s name and serviceType', workload: undefined, folder: undefined },
      ];
      const picked = await vscode.window.showQuickPick(items, { title: 'nhdev: add a launch configuration for' });
      if (!picked) {
        return;
      }
      workload = picked.workload;
      folder = picked.folder;
    }
    folder = folder ?? (await this.pickFolder('Add the launch configuration to which folder?'));
    if (!folder) {
      throw new Error('open a folder first: launch configurations live in .vscode/launch.json of a workspace folder');
    }
    const uri = vscode.Uri.joinPath(folder.uri, '.vscode', 'launch.json');
    const entry = newLaunchEntry(workload);
    let document: vscode.TextDocument | undefined;
    if (fs.existsSync(uri.fsPath)) {
      document = await vscode.workspace.openTextDocument(uri);
    }
    const edit = addLaunchEntry(document?.getText(), entry);
    if (!edit.added) {
      if (document) {
        await vscode.window.showTextDocument(document);
      }
      void vscode.window.showInformationMessage(`nhdev: ${edit.reason}`);
      return;
    }
    if (document) {
      const workspaceEdit = new vscode.WorkspaceEdit();
      // One replacement computed by jsonc-parser edits of the text: everything outside the insertion stays byte for byte.
      const prefix = commonPrefix(document.getText(), edit.text);
      const suffix = commonSuffix(document.getText().slice(prefix), edit.text.slice(prefix));
      const range = new vscode.Range(document.positionAt(prefix), document.positionAt(document.getText().length - suffix));
      workspaceEdit.replace(uri, range, edit.text.slice(prefix, edit.text.length - suffix));
      await vscode.workspace.applyEdit(workspaceEdit);
      await document.save();
    } else {
      await vscode.workspace.fs.createDirectory(vscode.Uri.joinPath(folder.uri, '.vscode'));
      await vscode.workspace.fs.writeFile(uri, Buffer.from(edit.text, 'utf8'));
      document = await vscode.workspace.openTextDocument(uri);
    }
    await vscode.window.showTextDocument(document);
    void vscode.window.showInformationMessage(`nhdev: added "${String(entry.name)}" to ${path.relative(folder.uri.fsPath, uri.fsPath)}; press F5 to debug it in the cluster.`);
  }

  private async createDevConfig(workload?: string): Promise<void> {
    const folder = await this.pickFolder('Create the dev config in which folder?');
    if (!folder) {
      throw new Error('open a folder first: the dev config lives in .nhdev/config.yaml of the project');
    }
    if (!workload) {
      if (!this.tree.listing) {
        await this.tree.refresh().catch(() => undefined);
      }
      const rows = this.tree.rows();
      const picked = rows.length
        ? await vscode.window.showQuickPick([...rows.map((r) => ({ label: r.workload, description: r.status })), { label: '$(edit) Other…', description: '' }], { title: 'nhdev: dev config for which workload?' })
        : { label: '$(edit) Other…' };
      if (!picked) {
        return;
      }
      workload = picked.label.startsWith('$(edit)')
        ? await vscode.window.showInputBox({ title: 'nhdev: workload', prompt: 'KIND/NAME, e.g. deployment/my-app', validateInput: (v) => (/^[a-z]+\/[a-z0-9][-a-z0-9.]*$/.test(v.trim()) ? undefined : 'KIND/NAME, e.g. deployment/my-app') })
        : picked.label;
      if (!workload) {
        return;
      }
    }
    const language = await vscode.window.showQuickPick(LANGUAGES, { title: `nhdev: language of ${workload} (for the debugger and dev image presets)` });
    if (!language) {
      return;
    }
    const existing = ['.nhdev', '.nocalhost'].map((d) => path.join(folder.uri.fsPath, d, 'config.yaml')).find((p) => fs.existsSync(p));
    let force = false;
    if (existing) {
      const answer = await vscode.window.showWarningMessage(`${path.relative(folder.uri.fsPath, existing)} exists. Replace it (a timestamped backup is kept)?`, { modal: true }, 'Replace');
      if (!answer) {
        return;
      }
      force = true;
    }
    const done = await this.nhdev.text(['config', 'init', '--workload', workload.includes('/') ? workload : `deployment/${workload}`, '--language', language, '--dir', folder.uri.fsPath, ...(force ? ['--force'] : [])], { cwd: folder.uri.fsPath });
    if (done.code !== 0) {
      throw new Error(done.stderr.trim().split('\n').find((l) => l.startsWith('error: '))?.slice(7) ?? `nhdev config init failed (${done.code})`);
    }
    const created = path.join(folder.uri.fsPath, '.nhdev', 'config.yaml');
    await vscode.window.showTextDocument(vscode.Uri.file(created));
  }
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) {
    i++;
  }
  return i;
}

function commonSuffix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[a.length - 1 - i] === b[b.length - 1 - i]) {
    i++;
  }
  return i;
}
