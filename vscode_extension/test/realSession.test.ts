/**
 * The extension's control-socket client against nhdev's own server (nhdev/session/control.py), run
 * by the repository's Python: the same protocol, not a copy of it. Skipped without the venv.
 */
import { strict as assert } from 'node:assert';
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { request, subscribe } from '../src/lib/control';
import { SessionsManager } from '../src/lib/sessions';
import { nhdevPython, sessionStatus, tempDir, waitFor } from './helpers/fakeSession';

const SERVER = `
import json, sys, threading
from pathlib import Path
from nhdev.session.control import ControlServer, EventHub
from nhdev.errors import UserError
from nhdev.session.registry import paths_for, session_key

status = json.loads(sys.argv[1])
hub = EventHub()
paths = paths_for(session_key(status["context"], status["namespace"], status["workload"])).ensure()
status["controlSocket"] = str(paths.control)
debugging = {"on": False}

def debug(request):
    debugging["on"] = True
    info = {"language": "python", "host": "127.0.0.1", "port": 41000, "pathMappings": [], "launchConfig": {}}
    hub.publish({"event": "attach", **info, "restart": False})
    return {"attach": info, "timeout": request.get("timeout")}

def stop_debug(request):
    if not debugging["on"]:
        raise UserError("no debugger runs")
    debugging["on"] = False
    return {"exitCode": 0}

def publish(request):
    hub.publish(request["event"])
    return {}

handlers = {"status": lambda r: {"status": status}, "debug": debug, "stop-debug": stop_debug, "publish": publish}
server = ControlServer(paths.control, handlers.get, hub, lambda: status).start()
print(str(paths.control), flush=True)
sys.stdin.read()
server.stop()
`;

const python = nhdevPython();

function startServer(home: string): Promise<{ child: ChildProcess; socket: string }> {
  const child = spawn(python!, ['-c', SERVER, JSON.stringify(sessionStatus())], { env: { ...process.env, HOME: home }, stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('\n')) {
        resolve({ child, socket: out.trim() });
      }
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code})`)));
  });
}

test('against nhdev\'s ControlServer: ops, errors, subscribe and discovery under $HOME/.nhdev/sessions', { skip: python ? false : 'no .venv with nhdev' }, async () => {
  const home = tempDir();
  const { child, socket } = await startServer(home);
  const manager = new SessionsManager(path.join(home, '.nhdev', 'sessions'), 20);
  try {
    assert.ok(socket.startsWith(path.join(home, '.nhdev', 'sessions')), socket);
    assert.equal(((await request(socket, { op: 'status' })).status as { workload: string }).workload, 'deployment/greeter');
    await assert.rejects(request(socket, { op: 'stop-debug' }), /no debugger runs/);
    await assert.rejects(request(socket, { op: 'nope' }), /unknown op 'nope'/);

    const events: string[] = [];
    const sub = subscribe(socket, { onStatus: () => events.push('status'), onEvent: (e, body) => events.push(`${e}:${String(body.port ?? body.state)}`), onClose: () => events.push('closed') });
    await waitFor('the greeting', () => events.includes('status'));
    const reply = await request(socket, { op: 'debug', timeout: 45 });
    assert.deepEqual(reply.attach, { language: 'python', host: '127.0.0.1', port: 41000, pathMappings: [], launchConfig: {} });
    assert.equal(reply.timeout, 45);
    await waitFor('the attach event', () => events.includes('attach:41000'));
    assert.deepEqual(await request(socket, { op: 'stop-debug' }), { ok: true, exitCode: 0 });
    sub.close();

    manager.start();
    const view = await waitFor('discovery', () => manager.views[0]);
    assert.equal(view.socket, socket);
    assert.equal(view.status.controlSocket, socket);
    await request(socket, { op: 'publish', event: { event: 'sync', state: 'syncing', pending: 5 } });
    await waitFor('the pushed sync state', () => manager.views[0]?.sync?.state === 'syncing');
    child.stdin!.end(); // the server stops: the manager sees the session go
    await waitFor('the session to go', () => manager.views.length === 0);
  } finally {
    manager.dispose();
    child.kill();
  }
});
