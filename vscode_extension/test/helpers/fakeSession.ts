/** A unix-socket server speaking the session control protocol (JSON lines), for tests without nhdev. */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

export type Handler = (request: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>;

export class FakeSession {
  readonly requests: Record<string, unknown>[] = [];
  private subscribers = new Set<net.Socket>();
  private server: net.Server;

  constructor(readonly socketPath: string, public status: Record<string, unknown>, readonly handlers: Record<string, Handler> = {}) {
    this.server = net.createServer((conn) => {
      let buffer = '';
      conn.on('data', async (chunk) => {
        buffer += chunk.toString('utf8');
        let newline;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          const message = JSON.parse(line) as Record<string, unknown>;
          this.requests.push(message);
          if (message.op === 'subscribe') {
            this.subscribers.add(conn);
            conn.on('close', () => this.subscribers.delete(conn));
            conn.write(`${JSON.stringify({ ok: true, status: this.status })}\n`);
            continue;
          }
          const handler = message.op === 'status' ? () => ({ status: this.status }) : this.handlers[String(message.op)];
          if (!handler) {
            conn.write(`${JSON.stringify({ ok: false, error: `unknown op '${String(message.op)}'` })}\n`);
            continue;
          }
          try {
            conn.write(`${JSON.stringify({ ok: true, ...(await handler(message)) })}\n`);
          } catch (error) {
            conn.write(`${JSON.stringify({ ok: false, error: String(error instanceof Error ? error.message : error) })}\n`);
          }
        }
      });
      conn.on('error', () => undefined);
    });
  }

  listen(): Promise<this> {
    fs.mkdirSync(path.dirname(this.socketPath), { recursive: true });
    return new Promise((resolve) => this.server.listen(this.socketPath, () => resolve(this)));
  }

  publish(event: Record<string, unknown>): void {
    for (const conn of this.subscribers) {
      conn.write(`${JSON.stringify(event)}\n`);
    }
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  close(): Promise<void> {
    for (const conn of this.subscribers) {
      conn.destroy();
    }
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

export function tempDir(prefix = 'nhdev-ext-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A session status as nhdev's Session.status() reports it. */
export function sessionStatus(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    key: 'nhdev-sandbox-demo-deployment-greeter-1234abcd', pid: 4242, workload: 'deployment/greeter', namespace: 'demo',
    context: 'nhdev-sandbox', session: 'abc123def456', pod: 'greeter-5bd778856b-vqf2p', since: '2026-01-01T10:00:00Z',
    mode: 'replace', controlSocket: '/home/u/.nhdev/sessions/k/control.sock', log: '/home/u/.nhdev/logs/k.log',
    localRoot: '/src/greeter', configPath: '/src/greeter/.nhdev/config.yaml', projectRoot: '/src/greeter',
    tunnel: { state: 'connected', reason: null, generation: 1, since: '2026-01-01T10:00:01Z' },
    forwards: [{ kind: 'local', local: '127.0.0.1:35345', remote: '127.0.0.1:8080', active: true, connections: 0, total: 3, error: null }],
    forwardErrors: [],
    services: {
      sync: { state: 'idle', direction: 'send', pending: 0, files_in_sync: 12, last_batch_ms: 7.5, last_synced_at: 0, last_error: '', warnings: [], counters: { conflicts: 0 } },
      run: { run: { running: false }, debug: { running: false, attach: null }, hotReload: { enabled: true, restarts: 0 } },
    },
    ...overrides,
  };
}

export function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      const value = probe();
      if (value) {
        resolve(value);
      } else if (Date.now() > deadline) {
        reject(new Error(`timed out waiting for ${what}`));
      } else {
        setTimeout(tick, 20);
      }
    };
    tick();
  });
}

/** The repository's Python with nhdev installed (for contract tests against the real implementation), if there is one. */
export function nhdevPython(): string | undefined {
  const candidates = [process.env.NHDEV_PYTHON, path.resolve(__dirname, '..', '..', '..', '..', '.venv', 'bin', 'python')];
  return candidates.find((c): c is string => !!c && fs.existsSync(c));
}
