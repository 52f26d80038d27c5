/**
 * The debug adapter of an nhdev session whose debugger VS Code reaches through another debug type
 * (node: js-debug; java: the Java debugger). It speaks just enough DAP to be a parent session: it
 * starts the real debugger as a child once VS Code has configured it, stays up across hot reloads
 * (the child is replaced), and ends the debugger in the pod when the user stops it. It fits
 * `vscode.DebugAdapter` (handleMessage, onDidSendMessage, dispose) without importing vscode.
 */

export interface DapMessage {
  seq: number;
  type: string;
  command?: string;
  event?: string;
  arguments?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface ParentAdapterHooks {
  /** Start the child session; rejects with a message for the user. */
  startChild(): Promise<void>;
  /** The user stopped (or restarts) the session: stop children, and the debugger in the pod unless restarting. */
  stop(args: { restart: boolean }): Promise<void>;
}

type Listener = (message: DapMessage) => void;

export class ParentAdapter {
  private seq = 1;
  private listeners: Listener[] = [];
  private configured = false;
  private attached = false;
  private started = false;
  private ended = false;

  constructor(private readonly hooks: ParentAdapterHooks) {}

  /** vscode.Event<DebugProtocolMessage>-shaped. */
  readonly onDidSendMessage = (listener: Listener): { dispose(): void } => {
    this.listeners.push(listener);
    return { dispose: () => { this.listeners = this.listeners.filter((l) => l !== listener); } };
  };

  private send(message: Omit<DapMessage, 'seq'>): void {
    const full = { ...message, seq: this.seq++ } as DapMessage;
    for (const listener of [...this.listeners]) {
      listener(full);
    }
  }

  private respond(request: DapMessage, body: Record<string, unknown> = {}, error?: string): void {
    this.send({
      type: 'response', request_seq: request.seq, command: request.command, success: !error, body,
      ...(error ? { message: error } : {}),
    });
  }

  /** Tell VS Code the session is over (the debugger is gone, or the user chose to stop it). */
  terminate(): void {
    if (!this.ended) {
      this.ended = true;
      this.send({ type: 'event', event: 'terminated', body: {} });
    }
  }

  /** A line in the debug console of the parent session. */
  output(text: string, category: 'console' | 'stderr' | 'stdout' = 'console'): void {
    this.send({ type: 'event', event: 'output', body: { category, output: text.endsWith('\n') ? text : `${text}\n` } });
  }

  handleMessage(message: DapMessage): void {
    if (message.type !== 'request') {
      return;
    }
    switch (message.command) {
      case 'initialize':
        this.respond(message, { supportsConfigurationDoneRequest: true, supportsTerminateRequest: true });
        this.send({ type: 'event', event: 'initialized', body: {} });
        return;
      case 'attach':
      case 'launch':
        this.attached = true;
        this.respond(message);
        this.maybeStart();
        return;
      case 'configurationDone':
        this.configured = true;
        this.respond(message);
        this.maybeStart();
        return;
      case 'threads':
        this.respond(message, { threads: [] });
        return;
      case 'setBreakpoints': {
        const wanted = (message.arguments?.breakpoints as unknown[] | undefined) ?? [];
        this.respond(message, { breakpoints: wanted.map(() => ({ verified: false })) });
        return;
      }
      case 'setFunctionBreakpoints':
      case 'setDataBreakpoints':
      case 'setInstructionBreakpoints':
        this.respond(message, { breakpoints: [] });
        return;
      case 'disconnect':
      case 'terminate': {
        const restart = message.arguments?.restart === true;
        this.hooks.stop({ restart }).then(
          () => {
            this.respond(message);
            if (message.command === 'terminate') {
              this.terminate();
            }
          },
          (error: unknown) => this.respond(message, {}, String(error instanceof Error ? error.message : error)),
        );
        return;
      }
      default:
        this.respond(message);
    }
  }

  private maybeStart(): void {
    if (!this.attached || !this.configured || this.started) {
      return;
    }
    this.started = true;
    this.hooks.startChild().catch((error: unknown) => {
      this.output(`nhdev: ${error instanceof Error ? error.message : String(error)}`, 'stderr');
      this.terminate();
    });
  }

  dispose(): void {
    this.listeners = [];
  }
}
