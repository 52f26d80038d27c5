"""``nhdev dev run`` and ``nhdev dev debug`` on a Python app in dev mode, as a user and an IDE use them.

The app file is put into the pod's workDir by exec (as sync will), the config lives in a local
workspace. Debugging is checked at the protocol level: a DAP client attaches with the published
path mappings, sets a breakpoint by its *local* path, and an HTTP request through a port-forward
stops there.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from nhdev.cluster.portforward import PortForwardListener
from tests.dapclient import DapClient
from tests.e2e.devpod import WORK_DIR, DevPod, dev_pod_fixture  # noqa: F401  (the fixture)
from tests.sandbox.contract import wait_for

APP = '''\
import http.server


class Greeter(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        greeting = "hello from " + self.path.strip("/")
        body = greeting.encode()  # BREAK
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


print("serving on 8000", flush=True)
http.server.HTTPServer(("127.0.0.1", 8000), Greeter).serve_forever()
'''
BREAK_LINE = next(i for i, line in enumerate(APP.splitlines(), 1) if "# BREAK" in line)
CONFIG = f'''\
name: web
serviceType: deployment
containers:
  - name: app
    dev:
      workDir: {WORK_DIR}
      command:
        run: [python, app.py]
        debug: [python, -m, debugpy, --listen, "127.0.0.1:5678", --wait-for-client, app.py]
      debug:
        language: python
        remoteDebugPort: 5678
'''


@pytest.fixture(scope="module")
def workspace(dev_pod: DevPod, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workspace")
    (root / ".nhdev").mkdir()
    (root / ".nhdev" / "config.yaml").write_text(CONFIG)
    (root / "app.py").write_text(APP)
    dev_pod.sh(f"cat > {WORK_DIR}/app.py", stdin=APP.encode())
    return root


@pytest.fixture
def app_port(dev_pod: DevPod) -> Iterator[int]:
    pod = dev_pod.pod()
    listener = PortForwardListener(dev_pod.target, dev_pod.namespace, lambda: pod, 8000).start()
    try:
        yield listener.local_port
    finally:
        listener.stop()


def get(port: int, path: str, timeout: float = 20) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=timeout) as response:
        return str(response.read().decode())


def app_processes(dev_pod: DevPod) -> list[str]:
    out = dev_pod.sh("for d in /proc/[0-9]*; do echo \"${d#/proc/} $(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\"; done")
    return [line for line in out.splitlines() if "app.py" in line or "debugpy" in line]


def start_cli(dev_pod: DevPod, workspace: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(dev_pod.argv("dev", *args), cwd=workspace, env=dev_pod.env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_line(stream: object, timeout: float = 30) -> str:
    """The next line of a pipe, or AssertionError after ``timeout`` (readline alone could hang)."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)  # type: ignore[attr-defined]
    reader.start()
    reader.join(timeout)
    assert got, f"no line within {timeout}s"
    return got[0]


def test_run_streams_output_and_ctrl_c_stops_the_whole_group(dev_pod: DevPod, workspace: Path, app_port: int
                                                             ) -> None:
    cli = start_cli(dev_pod, workspace, "run", "web")
    try:
        assert read_line(cli.stdout) == "serving on 8000\n"
        assert wait_for("the app answering", lambda: _try_get(app_port, "run")) == "hello from run"
        assert app_processes(dev_pod)
        cli.send_signal(signal.SIGINT)
        assert cli.wait(20) == 130
        assert "stopping the run command" in cli.stderr.read()  # type: ignore[union-attr]
        assert app_processes(dev_pod) == []
    finally:
        _kill(cli)


def test_debug_attach_breakpoint_by_local_path_and_no_orphans(dev_pod: DevPod, workspace: Path, app_port: int
                                                              ) -> None:
    cli = start_cli(dev_pod, workspace, "debug", "web", "--output", "json")
    try:
        info = json.loads(read_line(cli.stdout, timeout=60))
        assert info["language"] == "python" and info["host"] == "127.0.0.1"
        assert info["pathMappings"] == [{"localRoot": str(workspace), "remoteRoot": WORK_DIR}]
        assert info["launchConfig"]["connect"] == {"host": "127.0.0.1", "port": info["port"]}

        ide = DapClient("127.0.0.1", info["port"])
        ide.request("initialize", clientID="test", adapterID="debugpy", pathFormat="path",
                    linesStartAt1=True, columnsStartAt1=True)
        attached = ide.send("attach", pathMappings=info["pathMappings"], justMyCode=False)
        ide.event("initialized")
        local_source = str(workspace / "app.py")
        set_bp = ide.request("setBreakpoints", source={"path": local_source}, breakpoints=[{"line": BREAK_LINE}])
        assert set_bp["body"]["breakpoints"][0]["verified"]
        ide.request("configurationDone")
        ide.response(attached)

        answers: list[str] = []
        request = threading.Thread(target=lambda: answers.append(
            wait_for("the app answering", lambda: _try_get(app_port, "debug", timeout=60))), daemon=True)
        request.start()
        stopped = ide.event("stopped", timeout=60)
        assert stopped["body"]["reason"] == "breakpoint"
        thread_id = stopped["body"]["threadId"]
        frame = ide.request("stackTrace", threadId=thread_id, levels=1)["body"]["stackFrames"][0]
        assert (frame["source"]["path"], frame["line"]) == (local_source, BREAK_LINE)
        scopes = ide.request("scopes", frameId=frame["id"])["body"]["scopes"]
        local_scope = next(s for s in scopes if s["name"].lower().startswith("locals"))
        variables = ide.request("variables", variablesReference=local_scope["variablesReference"])["body"]
        greeting = next(v for v in variables["variables"] if v["name"] == "greeting")
        assert greeting["value"] == "'hello from debug'"
        ide.request("continue", threadId=thread_id)
        request.join(30)
        assert answers == ["hello from debug"]
        ide.close()

        cli.send_signal(signal.SIGINT)
        assert cli.wait(20) == 130
        assert app_processes(dev_pod) == [], "no debugpy or app process left in the container"
    finally:
        _kill(cli)


def test_debug_fails_fast_with_the_commands_output_when_it_exits(dev_pod: DevPod, workspace: Path,
                                                                 tmp_path: Path) -> None:
    shutil.copytree(workspace, tmp_path / "ws")
    config = tmp_path / "ws" / ".nhdev" / "config.yaml"
    config.write_text(CONFIG.replace("[python, -m, debugpy,", "[python, -m, no_such_debugger,"))
    done = dev_pod.cli("dev", "debug", "web", cwd=tmp_path / "ws", timeout=30)
    assert done.returncode == 1
    assert "exited with code 1 before its debugger listened" in done.stderr
    assert "No module named no_such_debugger" in done.stderr


def _try_get(port: int, path: str, timeout: float = 5) -> str | None:
    try:
        return get(port, path, timeout)
    except OSError:
        return None


def _kill(cli: subprocess.Popen[str]) -> None:
    if cli.poll() is None:
        cli.kill()
        cli.wait()
