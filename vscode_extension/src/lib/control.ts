/**
 * The session's control socket (nhdev/session/control.py): a unix socket speaking JSON lines.
 * A request is one line `{"op": ...}`, its reply one line `{"ok": true, ...}` or
 * `{"ok": false, "error": "..."}`. `{"op": "subscribe"}` replies `{"ok": true, "status": {...}}`
 * and then pushes one line per event (`{"event": "sync", ...}`) until either side hangs up.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { StringDecoder } from 'node:string_decoder';

export const MAX_LINE = 1024 * 1024;
const UNIX_PATH_MAX = 100; // as nhdev: below sun_path's 108 bytes

export type ControlMessage =
  | { kind: 'reply'; ok: true; body: Record<string, unknown> }
  | { kind: 'reply'; ok: false; error: string; body: Record<string, unknown> }
  | { kind: 'event'; event: string; body: Record<string, unknown> }
  | { kind: 'invalid'; text: string; reason: string };

/** One line of the protocol, classified. Never throws. */
export function parseControlLine(line: string): ControlMessage {
  const text = line.trim();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', text, reason: 'not a JSON line' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { kind: 'invalid', text, reason: 'expected a JSON object' };
  }
  const body = value as Record<string, unknown>;
  if (typeof body.event === 'string') {
    return { kind: 'event', event: body.event, body };
  }
  if (body.ok === true) {
    return { kind: 'reply', ok: true, body };
  }
  if (body.ok === false) {
    return { kind: 'reply', ok: false, error: String(body.error ?? 'the session refused the request'), body };
  }
  return { kind: 'invalid', text, reason: 'neither a reply nor an event' };
}

/** Splits a byte stream into lines (UTF-8 safe across chunk boundaries); refuses lines longer than MAX_LINE. */
export class LineSplitter {
  private decoder = new StringDecoder('utf8');
  private buffer = '';

  constructor(private readonly maxLine = MAX_LINE) {}

  push(chunk: Buffer | string): string[] {
    this.buffer += typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const lines: string[] = [];
    let newline;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      lines.push(this.buffer.slice(0, newline));
      this.buffer = this.buffer.slice(newline + 1);
    }
    if (this.buffer.length > this.maxLine) {
      throw new Error(`a line longer than ${this.maxLine} characters`);
    }
    return lines.filter((l) => l.trim() !== '');
  }

  /** What is left when the stream ends (a last line without its newline). */
  end(): string[] {
    const rest = this.buffer + this.decoder.end();
    this.buffer = '';
    return rest.trim() ? [rest] : [];
  }
}

export class ControlError extends Error {}

/**
 * Connects to a unix socket, also when its path is longer than sun_path allows: like nhdev, through
 * /proc/self/fd/N/NAME of an open descriptor of its directory (Linux).
 */
export function connectUnix(socketPath: string): net.Socket {
  if (Buffer.byteLength(socketPath) < UNIX_PATH_MAX || !fs.existsSync('/proc/self/fd')) {
    return net.createConnection(socketPath);
  }
  const fd = fs.openSync(path.dirname(socketPath), 'r');
  const socket = net.createConnection(`/proc/self/fd/${fd}/${path.basename(socketPath)}`);
  const close = () => {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
  };
  socket.once('connect', close);
  socket.once('error', close);
  return socket;
}

/** Sends one request and resolves with the reply's body; ControlError when the session says no or does not answer. */
export function request(socketPath: string, message: Record<string, unknown>, timeoutMs = 5000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const socket = connectUnix(socketPath);
    const splitter = new LineSplitter();
    let settled = false;
    const finish = (error: Error | undefined, body?: Record<string, unknown>) => {
      if (settled) {
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) {
        reject(error);
      } else {
        resolve(body ?? {});
      }
    };
    const timer = setTimeout(() => finish(new ControlError(`the session at ${socketPath} did not answer ${String(message.op)} within ${Math.round(timeoutMs / 1000)}s`)), timeoutMs);
    socket.on('connect', () => socket.write(`${JSON.stringify(message)}\n`));
    socket.on('data', (chunk) => {
      let lines: string[];
      try {
        lines = splitter.push(chunk);
      } catch (error) {
        finish(new ControlError(String(error)));
        return;
      }
      for (const line of lines) {
        const parsed = parseControlLine(line);
        if (parsed.kind === 'reply') {
          finish(parsed.ok ? undefined : new ControlError(parsed.error), parsed.body);
          return;
        }
        if (parsed.kind === 'invalid') {
          finish(new ControlError(`the session answered something else: ${parsed.reason}`));
          return;
        }
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => finish(new ControlError(`no session answers at ${socketPath}: ${error.code ?? error.message}`)));
    socket.on('close', () => finish(new ControlError(`the session at ${socketPath} hung up`)));
  });
}

export interface SubscriptionHandlers {
  onStatus(status: Record<string, unknown>): void;
  onEvent(event: string, body: Record<string, unknown>): void;
  onClose(error?: Error): void;
}

export interface Subscription {
  close(): void;
  readonly closed: boolean;
}

/**
 * Subscribes to a session's events: `onStatus` with the status it answers first, `onEvent` for
 * each pushed line, `onClose` once (an error if it could not connect or the stream broke).
 */
export function subscribe(socketPath: string, handlers: SubscriptionHandlers): Subscription {
  const socket = connectUnix(socketPath);
  const splitter = new LineSplitter();
  let closed = false;
  let greeted = false;
  let failure: Error | undefined;
  const subscription = {
    close() {
      closed = true;
      socket.destroy();
    },
    get closed() {
      return closed;
    },
  };
  socket.on('connect', () => socket.write('{"op": "subscribe"}\n'));
  socket.on('data', (chunk) => {
    let lines: string[];
    try {
      lines = splitter.push(chunk);
    } catch (error) {
      failure = new ControlError(String(error));
      socket.destroy();
      return;
    }
    for (const line of lines) {
      const parsed = parseControlLine(line);
      if (!greeted) {
        if (parsed.kind === 'reply' && parsed.ok) {
          greeted = true;
          const status = parsed.body.status;
          handlers.onStatus(status && typeof status === 'object' ? (status as Record<string, unknown>) : {});
        } else {
          failure = new ControlError(parsed.kind === 'reply' && !parsed.ok ? parsed.error : 'the session did not accept the subscription');
          socket.destroy();
          return;
        }
      } else if (parsed.kind === 'event') {
        handlers.onEvent(parsed.event, parsed.body);
      }
    }
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    failure = new ControlError(`no session answers at ${socketPath}: ${error.code ?? error.message}`);
  });
  socket.on('close', () => {
    const wasClosedByUs = closed;
    closed = true;
    handlers.onClose(wasClosedByUs ? undefined : failure);
  });
  return subscription;
}
