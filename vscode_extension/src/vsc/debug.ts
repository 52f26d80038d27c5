/**
 * The `nhdev` (and `nocalhost`) debug type: F5 finds the workload, starts dev mode and the session
 * if needed, runs the debug command through the session's control socket, waits for the attach
 * information and connects VS Code to the debugger: DAP directly for Python (debugpy) and Go (dlv),
 * a child session for Node (js-debug) and Java (the Java debugger). Hot reload re-attaches; stopping
 * the session stops the debug command in the pod.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { attachPlan, isNhdevResolved, NhdevMarker, parseAttachInfo, reattachConfig } from '../lib/attach';
import { devStartArgs, parseDevStart } from '../lib/cli';
import { ControlError, request } from '../lib/control';
import { Action, DebugLifecycle } from '../lib/debugLifecycle';
import { ConfigCandidate, configFor, containerFor, discoverConfig, projectRootOf, serviceWorkload } from '../lib/devConfig';
import { LaunchConfigError, NormalizedLaunch, normalizeLaunch } from '../lib/launchConfig';
import { ParentAdapter } from '../lib/parentAdapter';
import { SessionsManager } from '../lib/sessions';
import { SessionView } from '../lib/sessionView';
import { parseWorkloadRef, sameWorkload, workloadText } from '../lib/workload';
import { WorkspaceConfigs } from './configs';
import { Nhdev, NhdevMissing } from './nhdev';
import { SessionOutputs } from './sessionOutput';

export const DEBUG_TYPES = ['nhdev', 'nocalhost'];
const CHILD_MARK = '__nhdevChildOf';

class UserFacing extends Error {
  constructor(message: string, readonly actions: { title: string; run: () => void }[] = []) {
    super(message);
  }
}

/** A parent session (node/java): its inline adapter and its current child. */
class ParentSession {
  readonly adapter: ParentAdapter;
  child?: vscode.DebugSession;
  private replacing = false;

  constructor(readonly session: vscode.DebugSession, private marker: NhdevMarker, private readonly log: vscode.OutputChannel) {
    this.adapter = new ParentAdapter({
      startChild: () => this.startChild(),
      stop: async () => {
        if (this.child) {
          const child = this.child;
          this.child = undefined;
          await vscode.debug.stopDebugging(child);
        }
      },
    });
  }

  get isReplacing(): boolean {
    return this.replacing;
  }

  async startChild(): Promise<void> {
    const child: Record<string, unknown> = { ...(this.marker.child ?? {}), [CHILD_MARK]: this.session.id };
    this.log.appendLine(`nhdev: starting the ${this.marker.language} debugger on ${this.marker.host}:${this.marker.port}`);
    const started = await vscode.debug.startDebugging(this.session.workspaceFolder, child as vscode.DebugConfiguration, {
      parentSession: this.session,
      // Not lifecycleManagedByParent: VS Code would then end this parent whenever the child ends,
      // and hot reload ends the child (the debugger restarts) while the parent must stay.
      compact: true,
      consoleMode: vscode.DebugConsoleMode.MergeWithParent,
    });
    if (!started) {
      throw new Error(`VS Code could not start the ${String(child.type)} debugger (is its extension enabled?)`);
    }
  }

  /** Hot reload restarted the debugger: end the old child, attach a new one. */
  async replaceChild(info: Record<string, unknown>): Promise<void> {
    const next = reattachConfig({ __nhdev: this.marker }, parseAttachInfo(info));
    this.marker = next.__nhdev as NhdevMarker;
    this.replacing = true;
    try {
      if (this.child) {
        const old = this.child;
        this.child = undefined;
        await vscode.debug.stopDebugging(old);
      }
      this.adapter.output(`nhdev: hot reload: attaching again to ${this.marker.host}:${this.marker.port}`);
      await this.startChild();
    } finally {
      this.replacing = false;
    }
  }
}

export class NhdevDebug implements vscode.DebugConfigurationProvider, vscode.DebugAdapterDescriptorFactory, vscode.DebugAdapterTrackerFactory, vscode.Disposable {
  private readonly lifecycle = new DebugLifecycle();
  private readonly live = new Map<string, vscode.DebugSession>();
  private readonly parents = new Map<string, ParentSession>();
  private readonly childEnd = new Map<string, 'user' | 'debugger'>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly nhdev: Nhdev,
    private readonly configs: WorkspaceConfigs,
    private readonly sessions: SessionsManager,
    private readonly outputs: SessionOutputs,
  ) {
    this.disposables.push(
      vscode.debug.onDidStartDebugSession((session) => this.started(session)),
      vscode.debug.onDidTerminateDebugSession((session) => this.terminated(session)),
    );
    const onEvent = (socket: string, event: string, body: Record<string, unknown>) => this.execute(this.lifecycle.sessionEvent(socket, event, body));
    const onRemoved = (socket: string) => this.execute(this.lifecycle.sessionGone(socket));
    sessions.on('event', onEvent);
    sessions.on('removed', onRemoved);
    this.disposables.push({ dispose: () => { sessions.off('event', onEvent); sessions.off('removed', onRemoved); } });
  }

  register(context: vscode.ExtensionContext): void {
    for (const type of DEBUG_TYPES) {
      context.subscriptions.push(
        vscode.debug.registerDebugConfigurationProvider(type, this),
        vscode.debug.registerDebugAdapterDescriptorFactory(type, this),
        vscode.debug.registerDebugAdapterTrackerFactory(type, this),
      );
    }
    // The node / java children: who ended them, the user (a request first) or the debugger (an event first).
    context.subscriptions.push(vscode.debug.registerDebugAdapterTrackerFactory('*', {
      createDebugAdapterTracker: (session) => {
        if (typeof session.configuration[CHILD_MARK] !== 'string') {
          return undefined;
        }
        return {
          onWillReceiveMessage: (message: { type?: string; command?: string }) => {
            if (message.type === 'request' && (message.command === 'disconnect' || message.command === 'terminate') && !this.childEnd.has(session.id)) {
              this.childEnd.set(session.id, 'user');
            }
          },
          onDidSendMessage: (message: { type?: string; event?: string }) => {
            if (message.type === 'event' && message.event === 'terminated' && !this.childEnd.has(session.id)) {
              this.childEnd.set(session.id, 'debugger');
            }
          },
        };
      },
    }));
    context.subscriptions.push(vscode.debug.registerDebugConfigurationProvider('nhdev', {
      provideDebugConfigurations: (folder) => this.provideDebugConfigurations(folder),
    }, vscode.DebugConfigurationProviderTriggerKind.Dynamic));
  }

  dispose(): void {
    for (const d of this.disposables) {
      d.dispose();
    }
  }

  // ---------------------------------------------------------------- configuration

  async provideDebugConfigurations(folder: vscode.WorkspaceFolder | undefined): Promise<vscode.DebugConfiguration[]> {
    let named: { workload: string }[] = [];
    try {
      named = await this.configs.namedWorkloads(folder);
    } catch {
      // no nhdev: offer the plain entry
    }
    if (!named.length) {
      return [{ type: 'nhdev', request: 'attach', name: 'nhdev: debug in the cluster' }];
    }
    return named.map(({ workload }) => ({ type: 'nhdev', request: 'attach', name: `nhdev: debug ${workload.slice(workload.indexOf('/') + 1)}`, workload }));
  }

  resolveDebugConfiguration(_folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration {
    if (!config.type && !config.request && !config.name) { // F5 without a launch.json
      return { type: 'nhdev', request: 'attach', name: 'nhdev: debug in the cluster' };
    }
    return config;
  }

  async resolveDebugConfigurationWithSubstitutedVariables(folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration, token?: vscode.CancellationToken): Promise<vscode.DebugConfiguration | undefined> {
    if (isNhdevResolved(config) && config.__nhdev.reattach) {
      return config; // hot reload: the debugger already listens on the same port
    }
    try {
      return await this.prepare(folder, config, token);
    } catch (error) {
      if (error instanceof NhdevMissing || error instanceof vscode.CancellationError || token?.isCancellationRequested) {
        return undefined;
      }
      const message = error instanceof LaunchConfigError ? `nhdev launch configuration "${String(config.name)}": ${error.message}`
        : `nhdev: ${error instanceof Error ? error.message : String(error)}`;
      this.nhdev.log.appendLine(message);
      const actions = error instanceof UserFacing ? error.actions : [];
      void vscode.window.showErrorMessage(message, ...actions.map((a) => a.title), 'Show Log').then((choice) => {
        if (choice === 'Show Log') {
          this.nhdev.log.show(true);
        }
        actions.find((a) => a.title === choice)?.run();
      });
      return undefined;
    }
  }

  /** Everything F5 does before VS Code connects. */
  private async prepare(folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration, token?: vscode.CancellationToken): Promise<vscode.DebugConfiguration | undefined> {
    const launch = normalizeLaunch(config);
    this.nhdev.requireExecutable();
    folder = folder ?? vscode.workspace.workspaceFolders?.[0];
    const { workload, candidate } = await this.findWorkload(folder, launch);
    const projectRoot = projectRootOf(candidate.path);
    const container = containerFor(candidate, workload, launch.container);
    if (container?.language === 'java' && !vscode.extensions.getExtension('vscjava.vscode-java-debug')) {
      throw this.javaMissing();
    }
    const base = this.nhdev.selection();
    const selection = { kubeconfig: launch.kubeconfig ?? base.kubeconfig, context: launch.context ?? base.context, namespace: launch.namespace ?? base.namespace };

    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `nhdev: ${workload}`, cancellable: true }, async (progress, progressToken) => {
      const cancelled = () => token?.isCancellationRequested || progressToken.isCancellationRequested;
      let view = this.existingSession(workload, selection, projectRoot, launch.mode);
      if (!view) {
        progress.report({ message: `starting ${launch.mode} dev mode…` });
        const started = await this.nhdev.json(devStartArgs({
          workload, mode: launch.mode, container: launch.container, config: candidate.path, image: launch.image, timeout: launch.timeout,
        }, selection), parseDevStart, { cwd: projectRoot, token: progressToken, onProgress: (message) => progress.report({ message }) });
        const socket = started.localSession?.controlSocket;
        if (!socket) {
          throw new Error(`dev mode started (pod ${started.pod}) but the session did not report its control socket; is nhdev older than this extension?`);
        }
        if (started.localSession && started.localSession.tunnel.state !== 'connected') {
          throw new Error(`the session could not reach the dev pod (tunnel ${started.localSession.tunnel.state}: ${started.localSession.tunnel.reason ?? 'no reason given'})`);
        }
        const syncing = started.localSession?.projectRoot;
        if (syncing && syncing !== projectRoot) {
          throw new UserFacing(`the session of ${workload} syncs ${syncing}, not this project (${projectRoot}); end it first (nhdev dev end ${workload}) or open that folder`);
        }
        view = await this.sessions.follow(socket);
        if (!view) {
          throw new Error(`the session of ${workload} stopped right after it started (see ${started.localSession?.log ?? '~/.nhdev/logs'})`);
        }
      }
      if (cancelled()) {
        return undefined;
      }
      const socket = view.socket;
      progress.report({ message: `starting the debugger (command.debug) in pod ${view.tunnel.pod ?? ''}…` });
      if (vscode.workspace.getConfiguration('nhdev').get<boolean>('debug.revealOutput', true)) {
        this.outputs.channel(socket, view.status.workload).show(true);
      }
      let reply: Record<string, unknown>;
      try {
        reply = await request(socket, { op: 'debug', timeout: launch.debuggerTimeout }, (launch.debuggerTimeout + 30) * 1000);
      } catch (error) {
        if (error instanceof ControlError) {
          throw new UserFacing(`the debugger did not start: ${error.message}`, [{ title: 'Show Output', run: () => this.outputs.channel(socket, view!.status.workload).show() }]);
        }
        throw error;
      }
      const info = parseAttachInfo(reply.attach);
      if (cancelled()) {
        await request(socket, { op: 'stop-debug' }, 30_000).catch(() => undefined);
        return undefined;
      }
      const plan = attachPlan(launch, info, socket, view.status.workload);
      if (plan.requiresExtension && !vscode.extensions.getExtension(plan.requiresExtension)) {
        await request(socket, { op: 'stop-debug' }, 30_000).catch(() => undefined);
        throw this.javaMissing();
      }
      plan.marker.folder = folder?.uri.fsPath;
      this.nhdev.log.appendLine(`nhdev: ${info.language} debugger of ${workload} on ${info.host}:${info.port} (${info.pathMappings.map((m) => `${m.localRoot} -> ${m.remoteRoot}`).join(', ') || 'no path mappings'})`);
      return plan.config as vscode.DebugConfiguration;
    });
  }

  private javaMissing(): UserFacing {
    return new UserFacing('debugging Java needs the "Debugger for Java" extension (vscjava.vscode-java-debug)', [
      { title: 'Install Debugger for Java', run: () => void vscode.commands.executeCommand('workbench.extensions.search', 'vscjava.vscode-java-debug') },
    ]);
  }

  /**
   * A live, connected session of this workload (and mode) that F5 can use as it is: same cluster
   * target as far as it is known, and the same project (whose files it syncs and maps).
   */
  private existingSession(workload: string, selection: { context?: string; namespace?: string }, projectRoot: string, mode: string): SessionView | undefined {
    return this.sessions.views.find((v) => sameWorkload(v.status.workload, workload)
      && (!selection.context || v.status.context === selection.context)
      && (!selection.namespace || v.status.namespace === selection.namespace)
      && (v.status.mode ?? 'replace') === mode
      && v.tunnel.state === 'connected'
      && (!v.status.projectRoot || v.status.projectRoot === projectRoot));
  }

  /** The workload and the dev config describing it, from the launch configuration or the workspace. */
  private async findWorkload(folder: vscode.WorkspaceFolder | undefined, launch: NormalizedLaunch): Promise<{ workload: string; candidate: ConfigCandidate }> {
    const createConfig = { title: 'Create Dev Config', run: () => void vscode.commands.executeCommand('nhdev.createDevConfig', launch.workload) };
    if (launch.config) {
      if (!folder && !path.isAbsolute(launch.config)) {
        throw new UserFacing(`"config": ${launch.config} is relative, but no workspace folder is open`);
      }
      const candidate = await this.configs.load(discoverConfig(folder?.uri.fsPath ?? '/', launch.config));
      if (launch.workload) {
        const workload = workloadText(parseWorkloadRef(launch.workload, candidate.services.find((s) => s.name === parseWorkloadRef(launch.workload!).name)?.kind));
        if (!configFor([candidate], workload)) {
          throw new UserFacing(`${candidate.path} has no dev config for ${workload}`, [createConfig]);
        }
        return { workload, candidate };
      }
      return { workload: await this.pickService([candidate]), candidate };
    }
    const candidates = await this.configs.candidates(folder);
    if (launch.workload) {
      const named = parseWorkloadRef(launch.workload);
      const hit = configFor(candidates, launch.workload.includes('/') ? launch.workload : workloadText(named))
        ?? candidates.find((c) => c.services.some((s) => s.name === named.name));
      if (!hit) {
        throw new UserFacing(candidates.length
          ? `no dev config in this workspace describes ${launch.workload} (looked at ${candidates.map((c) => c.path).join(', ')})`
          : `no dev config (.nhdev/config.yaml or .nocalhost/config.yaml) in ${folder?.uri.fsPath ?? 'the workspace'} or above it`, [createConfig]);
      }
      const service = hit.services.find((s) => s.name === named.name) ?? hit.services.find((s) => s.name === undefined);
      const kind = launch.workload.includes('/') ? named.kind : service?.kind ?? 'deployment';
      return { workload: workloadText({ kind, name: named.name }), candidate: hit };
    }
    if (!candidates.length) {
      throw new UserFacing(`no dev config (.nhdev/config.yaml or .nocalhost/config.yaml) in ${folder?.uri.fsPath ?? 'the workspace'} or above it, and the launch configuration names no workload`, [createConfig]);
    }
    const workload = await this.pickService(candidates);
    return { workload, candidate: configFor(candidates, workload)! };
  }

  private async pickService(candidates: ConfigCandidate[]): Promise<string> {
    const workloads = [...new Set(candidates.flatMap((c) => c.services.map(serviceWorkload).filter((w): w is string => !!w)))];
    if (workloads.length === 1) {
      return workloads[0];
    }
    if (!workloads.length) {
      throw new UserFacing('the dev config names no workload: set "workload" in the launch configuration');
    }
    const picked = await vscode.window.showQuickPick(workloads, { title: 'nhdev: which workload?', placeHolder: 'The dev config describes several workloads' });
    if (!picked) {
      throw new vscode.CancellationError();
    }
    return picked;
  }

  // ---------------------------------------------------------------- adapters

  createDebugAdapterDescriptor(session: vscode.DebugSession): vscode.ProviderResult<vscode.DebugAdapterDescriptor> {
    const config = session.configuration;
    if (!isNhdevResolved(config)) {
      throw new Error('nhdev: this debug configuration was not prepared by the nhdev extension');
    }
    const marker = config.__nhdev;
    if (marker.adapter === 'server') {
      return new vscode.DebugAdapterServer(marker.port, marker.host);
    }
    const parent = new ParentSession(session, marker, this.nhdev.log);
    this.parents.set(session.id, parent);
    return new vscode.DebugAdapterInlineImplementation(parent.adapter as unknown as vscode.DebugAdapter);
  }

  createDebugAdapterTracker(session: vscode.DebugSession): vscode.DebugAdapterTracker {
    return {
      onWillReceiveMessage: (message: { type?: string; command?: string; arguments?: Record<string, unknown> }) => {
        if (message.type === 'request' && message.command) {
          this.lifecycle.clientRequest(session.id, message.command, message.arguments);
        }
      },
      onDidSendMessage: (message: { type?: string; event?: string; command?: string }) => this.lifecycle.adapterMessage(session.id, message),
    };
  }

  // ---------------------------------------------------------------- lifecycle

  private started(session: vscode.DebugSession): void {
    const config = session.configuration;
    if (DEBUG_TYPES.includes(session.type) && isNhdevResolved(config)) {
      this.live.set(session.id, session);
      this.lifecycle.attached(session.id, config.__nhdev.controlSocket, config.__nhdev.adapter === 'parent');
      return;
    }
    const parentId = config[CHILD_MARK];
    if (typeof parentId === 'string' && this.parents.has(parentId)) {
      this.parents.get(parentId)!.child = session;
    }
  }

  private terminated(session: vscode.DebugSession): void {
    if (this.live.has(session.id)) {
      this.remember(session);
      this.execute(this.lifecycle.terminated(session.id));
      this.live.delete(session.id);
      this.parents.delete(session.id);
      return;
    }
    const parentId = session.configuration[CHILD_MARK];
    const parent = typeof parentId === 'string' ? this.parents.get(parentId) : undefined;
    const endedBy = this.childEnd.get(session.id);
    this.childEnd.delete(session.id);
    if (parent && !parent.isReplacing && parent.child?.id === session.id) {
      parent.child = undefined;
      if (endedBy === 'user') {
        // Stop on the child is stop for all of it: the parent ends, and with it the debugger in the pod.
        void vscode.debug.stopDebugging(parent.session);
        return;
      }
      this.execute(this.lifecycle.childTerminated(parent.session.id));
    }
  }

  private execute(actions: Action[]): void {
    for (const action of actions) {
      void this.perform(action).catch((error: unknown) => this.nhdev.log.appendLine(`nhdev: ${action.type} failed: ${error instanceof Error ? error.message : String(error)}`));
    }
  }

  private async perform(action: Action): Promise<void> {
    switch (action.type) {
      case 'stop-debug':
        this.nhdev.log.appendLine(`nhdev: stopping the debug command (${action.socket})`);
        await request(action.socket, { op: 'stop-debug' }, 30_000);
        return;
      case 'end-session': {
        const session = this.live.get(action.sessionId);
        const parent = this.parents.get(action.sessionId);
        if (action.message) {
          void vscode.window.showWarningMessage(action.message);
        }
        if (parent) {
          parent.adapter.terminate();
        } else if (session) {
          await vscode.debug.stopDebugging(session);
        }
        return;
      }
      case 'reattach': {
        const previous = this.live.get(action.previousSessionId);
        const config = previous?.configuration ?? this.forgotten.get(action.previousSessionId)?.configuration;
        const folder = previous?.workspaceFolder ?? this.forgotten.get(action.previousSessionId)?.workspaceFolder;
        if (!config) {
          return;
        }
        if (previous) {
          await vscode.debug.stopDebugging(previous);
        }
        const next = reattachConfig(config, parseAttachInfo(action.info));
        this.nhdev.log.appendLine(`nhdev: hot reload restarted the debugger; attaching again on port ${String(action.info.port)}`);
        await vscode.debug.startDebugging(folder, next as vscode.DebugConfiguration);
        return;
      }
      case 'reattach-child':
        await this.parents.get(action.sessionId)?.replaceChild(action.info);
        return;
      case 'check-dropped':
        await new Promise((resolve) => setTimeout(resolve, action.afterMs));
        if (this.lifecycle.stillDropped(action.socket, action.generation)) {
          await this.dropped(action.socket, action.sessionId);
        }
        return;
    }
  }

  /** Sessions that ended while a reload was under way, remembered so the `attach` event can start them again. */
  private readonly forgotten = new Map<string, { configuration: vscode.DebugConfiguration; workspaceFolder?: vscode.WorkspaceFolder }>();

  /** The connection to the debugger dropped without hot reload: ask the session what is left, and the user what to do. */
  private async dropped(socket: string, sessionId: string): Promise<void> {
    const parent = this.parents.get(sessionId);
    const view = await this.sessions.status(socket);
    const debug = view ? ((view.status.services.run ?? {}) as Record<string, unknown>).debug as Record<string, unknown> | undefined : undefined;
    if (!view || !debug?.running || !debug.attach) {
      const code = debug?.exitCode;
      this.lifecycle.forget(sessionId);
      parent?.adapter.terminate();
      if (view) {
        void vscode.window.showInformationMessage(`nhdev: the debug command of ${view.status.workload} exited${typeof code === 'number' ? ` with code ${code}` : ''}.`, 'Show Output')
          .then((c) => c && this.outputs.channel(socket, view.status.workload).show());
      }
      return;
    }
    const choice = await vscode.window.showWarningMessage(`nhdev: the debugger connection of ${view.status.workload} dropped; the debugger still runs in the pod.`, 'Attach Again', 'Stop Debugger');
    if (choice === 'Attach Again') {
      if (parent) {
        await parent.replaceChild(debug.attach as Record<string, unknown>);
      } else {
        const remembered = this.forgotten.get(sessionId);
        if (remembered) {
          await vscode.debug.startDebugging(remembered.workspaceFolder, reattachConfig(remembered.configuration, parseAttachInfo(debug.attach)) as vscode.DebugConfiguration);
        }
      }
    } else {
      this.lifecycle.forget(sessionId);
      if (parent) {
        await vscode.debug.stopDebugging(parent.session);
      } else {
        await request(socket, { op: 'stop-debug' }, 30_000).catch((e: unknown) => this.nhdev.log.appendLine(`nhdev: stop-debug: ${String(e)}`));
      }
    }
  }

  /** Remember a terminated session's configuration for a later re-attach. */
  remember(session: vscode.DebugSession): void {
    this.forgotten.set(session.id, { configuration: session.configuration, workspaceFolder: session.workspaceFolder });
    if (this.forgotten.size > 20) {
      this.forgotten.delete(this.forgotten.keys().next().value as string);
    }
  }
}
