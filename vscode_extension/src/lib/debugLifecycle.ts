/**
 * What to do when a debug session, its debugger in the pod, or hot reload changes state. Pure: the
 * VS Code layer feeds it facts and carries out the actions it returns.
 *
 * Facts: a VS Code session attached to a session's debugger (`attached`); the DAP messages between
 * VS Code and the adapter (`clientRequest`, `adapterMessage`): the user's stop is a disconnect /
 * terminate the adapter answers, while a dropped connection shows as a disconnect nobody answers;
 * the VS Code session ended (`terminated`); and what the nhdev session pushes: `reload` (hot reload
 * restarts the debugger), `attach` with restart (it is back, same local port), `debug` stopped /
 * exited / failed, or the session itself going away.
 *
 * Rules:
 * - The user stopped the session (an answered disconnect/terminate without restart): stop the
 *   debug command in the pod (`stop-debug`), even in the middle of a reload.
 * - The user pressed restart: nothing here; VS Code resolves the configuration again, which runs
 *   the debug command again.
 * - The connection dropped while a reload is under way: wait for the `attach` event and attach again.
 * - The connection dropped otherwise: after a short grace (a `reload` event may still be on its way)
 *   ask the session whether the debugger still runs, and offer to re-attach or stop it.
 * - `attach` with restart while a VS Code session is still attached (it has not noticed yet): end
 *   it quietly and attach again. For node and java the parent session stays; only its child is replaced.
 * - The debugger stopped, exited or failed to restart: the VS Code sessions on it end, nothing to stop.
 */

export interface Tracked {
  sessionId: string; // the VS Code debug session (for node/java: the parent)
  socket: string; // the nhdev session's control socket
  parent: boolean; // a parent session with a node/java child
  endRequested: boolean; // VS Code sent disconnect / terminate (it also does so when the connection just dropped)
  clientEnded: boolean; // ... and the adapter answered it: the user stopped (or restarts) it
  adapterEnded: boolean; // the debugger said it ended (terminated / exited) before VS Code asked
  restartRequested: boolean;
  replacing: boolean; // we end it ourselves to attach again
  terminated: boolean;
}

export type Action =
  | { type: 'stop-debug'; socket: string }
  | { type: 'end-session'; sessionId: string; message?: string }
  | { type: 'reattach'; socket: string; previousSessionId: string; info: Record<string, unknown> }
  | { type: 'reattach-child'; socket: string; sessionId: string; info: Record<string, unknown> }
  | { type: 'check-dropped'; socket: string; sessionId: string; afterMs: number; generation: number };

export const DROP_GRACE_MS = 750;
export const RELOAD_WINDOW_MS = 120_000;

interface SocketState {
  reloadSince?: number; // a reload of the debugger is under way since then
  generation: number; // bumped by each attach and reload; a stale check-dropped sees it moved
  stopped: boolean; // the user stopped debugging: a late attach must not bring it back
}

export class DebugLifecycle {
  private sessions = new Map<string, Tracked>();
  private sockets = new Map<string, SocketState>();

  constructor(private readonly now: () => number = Date.now) {}

  private socketState(socket: string): SocketState {
    let state = this.sockets.get(socket);
    if (!state) {
      state = { generation: 0, stopped: false };
      this.sockets.set(socket, state);
    }
    return state;
  }

  tracked(sessionId: string): Tracked | undefined {
    return this.sessions.get(sessionId);
  }

  /** The live VS Code session attached to `socket`'s debugger, if any. */
  liveFor(socket: string): Tracked | undefined {
    return [...this.sessions.values()].find((t) => t.socket === socket && !t.terminated && !t.replacing);
  }

  /** A VS Code session attached to the debugger of the nhdev session at `socket`. */
  attached(sessionId: string, socket: string, parent: boolean): void {
    const state = this.socketState(socket);
    state.generation++;
    state.stopped = false;
    state.reloadSince = undefined;
    this.sessions.set(sessionId, { sessionId, socket, parent, endRequested: false, clientEnded: false, adapterEnded: false, restartRequested: false, replacing: false, terminated: false });
  }

  /**
   * VS Code sent the adapter a request. `disconnect` / `terminate` end the session; but VS Code sends
   * `disconnect` also when the connection to the debugger just dropped (hot reload killed it), so
   * only the adapter's answer to it (`adapterMessage`) says the user ended it.
   */
  clientRequest(sessionId: string, command: string, args: Record<string, unknown> | undefined): void {
    const tracked = this.sessions.get(sessionId);
    if (!tracked || tracked.adapterEnded || (command !== 'disconnect' && command !== 'terminate')) {
      return;
    }
    tracked.endRequested = true;
    if (args?.restart === true) {
      tracked.restartRequested = true;
    }
  }

  /** The adapter sent a message: its answer to disconnect / terminate confirms the user's stop. */
  adapterMessage(sessionId: string, message: { type?: string; command?: string; event?: string }): void {
    const tracked = this.sessions.get(sessionId);
    if (!tracked) {
      return;
    }
    if (message.type === 'response' && (message.command === 'disconnect' || message.command === 'terminate') && tracked.endRequested) {
      tracked.clientEnded = true;
    } else if (message.type === 'event' && (message.event === 'terminated' || message.event === 'exited') && !tracked.endRequested) {
      tracked.adapterEnded = true;
    }
  }

  private reloading(state: SocketState): boolean {
    return state.reloadSince !== undefined && this.now() - state.reloadSince < RELOAD_WINDOW_MS;
  }

  /** The VS Code session ended. */
  terminated(sessionId: string): Action[] {
    const tracked = this.sessions.get(sessionId);
    if (!tracked || tracked.terminated) {
      return [];
    }
    tracked.terminated = true;
    const state = this.socketState(tracked.socket);
    if (tracked.replacing || tracked.restartRequested) {
      this.sessions.delete(sessionId);
      return [];
    }
    if (tracked.clientEnded) {
      this.sessions.delete(sessionId);
      state.stopped = true;
      state.reloadSince = undefined;
      return [{ type: 'stop-debug', socket: tracked.socket }];
    }
    if (this.reloading(state)) {
      return []; // kept: the attach event re-attaches it
    }
    return [{ type: 'check-dropped', socket: tracked.socket, sessionId, afterMs: DROP_GRACE_MS, generation: state.generation }];
  }

  /** After the grace of a dropped connection: true if nothing happened meanwhile (no reload, no new attach). */
  stillDropped(socket: string, generation: number): boolean {
    const state = this.socketState(socket);
    return state.generation === generation && !this.reloading(state) && !state.stopped;
  }

  /** The dropped session is given up (the user chose, or the debugger is gone). */
  forget(sessionId: string): void {
    this.sessions.delete(sessionId);
  }

  /** A child (node/java) of a parent session ended by itself. */
  childTerminated(parentId: string): Action[] {
    const tracked = this.sessions.get(parentId);
    if (!tracked || tracked.terminated || tracked.clientEnded) {
      return [];
    }
    const state = this.socketState(tracked.socket);
    if (this.reloading(state)) {
      return [];
    }
    return [{ type: 'check-dropped', socket: tracked.socket, sessionId: parentId, afterMs: DROP_GRACE_MS, generation: state.generation }];
  }

  /** An event pushed by the nhdev session at `socket`. */
  sessionEvent(socket: string, event: string, body: Record<string, unknown>): Action[] {
    const state = this.sockets.get(socket);
    if (!state) {
      return []; // not a session we debug
    }
    if (event === 'reload' && Array.isArray(body.roles) && body.roles.includes('debug')) {
      state.reloadSince = this.now();
      state.generation++;
      return [];
    }
    if (event === 'attach' && body.restart === true) {
      state.generation++;
      const waiting = [...this.sessions.values()].filter((t) => t.socket === socket);
      if (state.stopped) {
        state.reloadSince = undefined;
        return [{ type: 'stop-debug', socket }];
      }
      state.reloadSince = undefined;
      const live = waiting.find((t) => !t.terminated && !t.replacing);
      if (live?.parent) {
        return [{ type: 'reattach-child', socket, sessionId: live.sessionId, info: body }];
      }
      const previous = live ?? waiting.find((t) => t.terminated);
      if (!previous) {
        return [];
      }
      if (live) {
        live.replacing = true; // ended by us below: no stop-debug when it terminates
      } else {
        this.sessions.delete(previous.sessionId);
      }
      return [{ type: 'reattach', socket, previousSessionId: previous.sessionId, info: body }];
    }
    if (event === 'debug' && (body.state === 'failed' || body.state === 'exited' || body.state === 'stopped')) {
      // The debugger is gone (its restart failed, it ended by itself, or it was stopped): nothing to
      // attach to, nothing to stop; the VS Code sessions still on it end.
      state.reloadSince = undefined;
      state.generation++;
      const message = body.state === 'failed'
        ? `nhdev: restarting the debugger failed: ${String(body.error ?? 'unknown error')}`
        : body.state === 'exited'
          ? `nhdev: the debug command exited${typeof body.exitCode === 'number' ? ` with code ${body.exitCode}` : ''}${body.error ? `: ${String(body.error)}` : ''}`
          : undefined;
      return [...this.sessions.values()].filter((t) => t.socket === socket && !t.terminated && !t.clientEnded)
        .map((t) => {
          t.replacing = true;
          return { type: 'end-session', sessionId: t.sessionId, message } as Action;
        });
    }
    return [];
  }

  /** The nhdev session went away (dev end, crash): every VS Code session on it ends. */
  sessionGone(socket: string): Action[] {
    const actions = [...this.sessions.values()].filter((t) => t.socket === socket && !t.terminated)
      .map((t) => {
        t.replacing = true; // nothing left to stop
        return { type: 'end-session', sessionId: t.sessionId, message: 'nhdev: the session ended (dev mode ended or the session stopped)' } as Action;
      });
    this.sockets.delete(socket);
    return actions;
  }
}
