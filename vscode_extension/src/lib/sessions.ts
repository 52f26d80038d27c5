/**
 * The sessions running on this machine, found where nhdev keeps them
 * (`~/.nhdev/sessions/<key>/control.sock`, see nhdev/session/registry.py) and followed through their
 * control sockets: one `subscribe` connection per session, pushed events only, nothing polled.
 * New sessions are noticed by watching the sessions directory (fs.watch), not by running anything.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sameWorkload } from './workload';
import { request, subscribe, Subscription } from './control';
import { applyEvent, SessionView, viewFromStatus } from './sessionView';

export function sessionsDir(home = os.homedir()): string {
  return path.join(home, '.nhdev', 'sessions');
}

/** Control sockets present under the sessions directory (a socket file need not mean a live session). */
export function listControlSockets(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const sockets: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) {
      continue;
    }
    const candidate = path.join(dir, entry.name, 'control.sock');
    try {
      if (fs.statSync(candidate).isSocket()) {
        sockets.push(candidate);
      }
    } catch {
      // no socket: a stopped session, or a key directory
    }
  }
  return sockets.sort();
}

export interface SessionQuery {
  workload: string;
  context?: string;
  namespace?: string;
}

export function matches(view: SessionView, query: SessionQuery): boolean {
  return sameWorkload(view.status.workload, query.workload)
    && (!query.context || view.status.context === query.context)
    && (!query.namespace || view.status.namespace === query.namespace);
}

export interface SessionsEvents {
  changed: [view: SessionView];
  added: [view: SessionView];
  removed: [socket: string, view: SessionView];
  event: [socket: string, event: string, body: Record<string, unknown>];
}

interface Followed {
  subscription: Subscription;
  view?: SessionView;
  ready: Promise<SessionView | undefined>;
}

/**
 * Follows every live session: `changed` on each pushed state change, `event` for every raw event
 * (output lines, attach, reload), `removed` when a session goes away.
 */
export class SessionsManager extends EventEmitter<SessionsEvents> {
  private followed = new Map<string, Followed>();
  private watchers = new Map<string, fs.FSWatcher>();
  private rescanTimer: NodeJS.Timeout | undefined;
  private disposed = false;

  constructor(readonly dir: string = sessionsDir(), private readonly debounceMs = 250) {
    super();
  }

  get views(): SessionView[] {
    return [...this.followed.values()].flatMap((f) => (f.view ? [f.view] : []));
  }

  view(socket: string): SessionView | undefined {
    return this.followed.get(socket)?.view;
  }

  find(query: SessionQuery): SessionView | undefined {
    return this.views.find((v) => matches(v, query));
  }

  /** Looks for sessions now and then whenever the sessions directory changes. */
  start(): void {
    this.rescan();
    this.watch();
  }

  /** Subscribes to every control socket not followed yet; resolves once each answered (or failed). */
  async rescan(): Promise<void> {
    if (this.disposed) {
      return;
    }
    this.watch();
    const sockets = listControlSockets(this.dir);
    await Promise.all(sockets.map((socket) => this.follow(socket)));
  }

  /** Follows one session (e.g. the one `dev start` just printed); resolves with its first view. */
  follow(socket: string): Promise<SessionView | undefined> {
    const existing = this.followed.get(socket);
    if (existing) {
      return existing.ready;
    }
    let resolveReady: (view: SessionView | undefined) => void = () => undefined;
    const ready = new Promise<SessionView | undefined>((resolve) => {
      resolveReady = resolve;
    });
    const entry: Followed = { ready, subscription: undefined as unknown as Subscription };
    this.followed.set(socket, entry);
    entry.subscription = subscribe(socket, {
      onStatus: (status) => {
        try {
          entry.view = viewFromStatus(socket, status);
        } catch {
          entry.subscription.close();
          return;
        }
        resolveReady(entry.view);
        this.emit('added', entry.view);
        this.emit('changed', entry.view);
      },
      onEvent: (event, body) => {
        if (!entry.view) {
          return;
        }
        entry.view = applyEvent(entry.view, event, body);
        this.emit('event', socket, event, body);
        if (event !== 'output') {
          this.emit('changed', entry.view);
        }
      },
      onClose: () => {
        resolveReady(undefined);
        if (this.followed.get(socket) === entry) {
          this.followed.delete(socket);
        }
        if (entry.view) {
          this.emit('removed', socket, entry.view);
        }
      },
    });
    return ready;
  }

  /** Asks each followed session for its whole status again (forwards, debugger), e.g. before showing details. */
  async refresh(): Promise<void> {
    await Promise.all([...this.followed.entries()].map(async ([socket, entry]) => {
      const fresh = await this.status(socket);
      if (fresh && entry.view && this.followed.get(socket) === entry) {
        entry.view = { ...fresh, sync: fresh.sync ?? entry.view.sync, reloads: Math.max(fresh.reloads, entry.view.reloads) };
        this.emit('changed', entry.view);
      }
    }));
  }

  /** A fresh status straight from the session (not from the pushed state). */
  async status(socket: string): Promise<SessionView | undefined> {
    try {
      const reply = await request(socket, { op: 'status' }, 3000);
      return viewFromStatus(socket, reply.status as Record<string, unknown>);
    } catch {
      return undefined;
    }
  }

  private watch(): void {
    if (this.disposed) {
      return;
    }
    const dirs = [path.dirname(this.dir), this.dir];
    try {
      for (const entry of fs.readdirSync(this.dir, { withFileTypes: true })) {
        if (entry.isDirectory()) {
          dirs.push(path.join(this.dir, entry.name));
        }
      }
    } catch {
      // no sessions directory yet: ~/.nhdev is watched for it
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) {
        continue;
      }
      try {
        const watcher = fs.watch(dir, { persistent: false }, () => this.scheduleRescan());
        watcher.on('error', () => {
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch {
        // not there (yet)
      }
    }
  }

  private scheduleRescan(): void {
    if (this.disposed) {
      return;
    }
    if (this.rescanTimer) {
      clearTimeout(this.rescanTimer);
    }
    this.rescanTimer = setTimeout(() => {
      this.rescanTimer = undefined;
      void this.rescan();
    }, this.debounceMs);
  }

  dispose(): void {
    this.disposed = true;
    if (this.rescanTimer) {
      clearTimeout(this.rescanTimer);
    }
    for (const watcher of this.watchers.values()) {
      watcher.close();
    }
    this.watchers.clear();
    for (const entry of this.followed.values()) {
      entry.subscription.close();
    }
    this.followed.clear();
    this.removeAllListeners();
  }
}
