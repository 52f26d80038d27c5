/** One output channel per session: the run and debug commands' output in the pod, hot reloads, attaches. */
import * as vscode from 'vscode';
import { SessionsManager } from '../lib/sessions';
import { outputLine } from '../lib/sessionView';

export class SessionOutputs implements vscode.Disposable {
  private channels = new Map<string, vscode.OutputChannel>();
  private readonly onEvent = (socket: string, event: string, body: Record<string, unknown>) => {
    const line = outputLine(event, body);
    if (line === undefined) {
      return;
    }
    const view = this.sessions.view(socket);
    if (event === 'output' || this.channels.has(socket)) {
      this.channel(socket, view?.status.workload ?? socket).appendLine(line);
    }
  };

  constructor(private readonly sessions: SessionsManager) {
    sessions.on('event', this.onEvent);
  }

  channel(socket: string, workload: string): vscode.OutputChannel {
    let channel = this.channels.get(socket);
    if (!channel) {
      channel = vscode.window.createOutputChannel(`nhdev: ${workload.slice(workload.lastIndexOf('/') + 1)} (session)`);
      this.channels.set(socket, channel);
    }
    return channel;
  }

  dispose(): void {
    this.sessions.off('event', this.onEvent);
    for (const channel of this.channels.values()) {
      channel.dispose();
    }
    this.channels.clear();
  }
}
