/**
 * Port forwards the extension starts (`nhdev port-forward WORKLOAD SPEC -o json`): each is a child
 * process it owns; the first stdout line says which local ports listen. Stopping one sends SIGINT
 * to that child (nhdev closes its listeners and exits), SIGKILL if it lingers.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { ClusterSelection, clusterArgs, cliEnvironment, errorMessage, parseJsonDocument, parsePortForward } from './cli';
import { LineSplitter } from './control';
import { ManagedForward } from './workloadTree';

export interface ForwardsEvents {
  changed: [];
  exited: [forward: ManagedForward, message: string];
}

export class PortForwards extends EventEmitter<ForwardsEvents> {
  private nextId = 1;
  private children = new Map<number, { forward: ManagedForward; child: ChildProcess; stopping: boolean }>();

  get list(): ManagedForward[] {
    return [...this.children.values()].map((c) => c.forward);
  }

  forWorkload(workload: string, namespace: string): ManagedForward[] {
    return this.list.filter((f) => f.workload === workload && f.namespace === namespace);
  }

  /** Starts one; resolves with the forwards once they listen, rejects with nhdev's error. */
  start(executable: string, workload: string, specs: string[], selection: ClusterSelection & { namespace: string }, timeoutMs = 60_000): Promise<ManagedForward[]> {
    const args = ['port-forward', workload, ...specs, ...clusterArgs(selection), '-o', 'json'];
    const child = spawn(executable, args, { env: cliEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    const splitter = new LineSplitter();
    let stderr = '';
    return new Promise((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (!settled) {
          settled = true;
          child.kill('SIGKILL');
          reject(new Error(`nhdev port-forward did not start within ${timeoutMs / 1000}s`));
        }
      }, timeoutMs);
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
      });
      child.stdout.on('data', (chunk: Buffer) => {
        for (const line of splitter.push(chunk)) {
          if (settled) {
            continue;
          }
          settled = true;
          clearTimeout(timer);
          try {
            const started = parsePortForward(parseJsonDocument(line));
            const forwards = started.forwards.map((f) => ({
              id: this.nextId++, workload, namespace: selection.namespace, context: selection.context, local: f.local, remote: f.remote,
            }));
            for (const forward of forwards) {
              this.children.set(forward.id, { forward, child, stopping: false });
            }
            this.emit('changed');
            resolve(forwards);
          } catch (error) {
            child.kill('SIGINT');
            reject(error);
          }
        }
      });
      child.on('error', (error) => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          reject(error);
        }
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (!settled) {
          settled = true;
          reject(new Error(errorMessage(stderr, code)));
          return;
        }
        const mine = [...this.children.entries()].filter(([, c]) => c.child === child);
        for (const [id, entry] of mine) {
          this.children.delete(id);
          if (!entry.stopping) {
            this.emit('exited', entry.forward, errorMessage(stderr, code));
          }
        }
        if (mine.length) {
          this.emit('changed');
        }
      });
    });
  }

  /** Stops the process behind forward `id` (and with it the other forwards it serves). */
  stop(id: number): void {
    const entry = this.children.get(id);
    if (!entry) {
      return;
    }
    for (const other of this.children.values()) {
      if (other.child === entry.child) {
        other.stopping = true;
      }
    }
    const child = entry.child;
    child.kill('SIGINT');
    const killer = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
      }
    }, 5000);
    killer.unref();
  }

  dispose(): void {
    for (const id of [...this.children.keys()]) {
      this.stop(id);
    }
    this.removeAllListeners();
  }
}
