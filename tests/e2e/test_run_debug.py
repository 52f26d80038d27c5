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
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dapclient import DapClient, InBackground
from tests.e2e.devpod import (
    WORK_DIR,
    DevPod,
    dev_pod_fixture,  # noqa: F401  (the fixture)
    forwarded_port,
    kill,
    read_line,
    start_cli,
    try_get,
)
from tests.e2e.workspace import web_config
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
CONFIG = web_config(image=None, dev=f'''\
      workDir: {WORK_DIR}
      command:
        run: [python, app.py]
        debug: [python, -m, debugpy, --listen, "127.0.0.1:5678", --wait-for-client, app.py]
      debug:
        language: python
        remoteDebugPort: 5678
''')


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
    with forwarded_port(dev_pod, 8000) as port:
        yield port


def app_processes(dev_pod: DevPod) -> list[str]:
    return dev_pod.processes("app.py", "debugpy")


def test_run_streams_output_and_ctrl_c_stops_the_whole_group(dev_pod: DevPod, workspace: Path, app_port: int
                                                             ) -> None:
    cli = start_cli(dev_pod, workspace, "run", "web")
    try:
        assert read_line(cli.stdout) == "serving on 8000\n"
        assert wait_for("the app answering", lambda: try_get(app_port, "run")) == "hello from run"
        assert app_processes(dev_pod)
        cli.send_signal(signal.SIGINT)
        assert cli.wait(20) == 130
        assert "stopping the run command" in cli.stderr.read()  # type: ignore[union-attr]
        assert app_processes(dev_pod) == []
    finally:
        kill(cli)


def test_debug_attach_breakpoint_by_local_path_and_no_orphans(dev_pod: DevPod, workspace: Path, app_port: int
                                                              ) -> None:
    cli = start_cli(dev_pod, workspace, "debug", "web", "--output", "json")
    try:
        info = json.loads(read_line(cli.stdout, timeout=60))
        assert info["language"] == "python" and info["host"] == "127.0.0.1"
        assert info["pathMappings"] == [{"localRoot": str(workspace), "remoteRoot": WORK_DIR}]
        assert info["launchConfig"]["connect"] == {"host": "127.0.0.1", "port": info["port"]}

        ide = DapClient("127.0.0.1", info["port"])
        local_source = str(workspace / "app.py")
        ide.attach("test", "debugpy", local_source, BREAK_LINE, pathMappings=info["pathMappings"], justMyCode=False)

        request = InBackground(lambda: wait_for("the app answering", lambda: try_get(app_port, "debug", timeout=60)))
        thread_id, frame = ide.breakpoint_hit()
        assert (frame["source"]["path"], frame["line"]) == (local_source, BREAK_LINE)
        assert ide.local_variable(frame, "greeting")["value"] == "'hello from debug'"
        ide.request("continue", threadId=thread_id)
        assert request.result(30) == "hello from debug"
        ide.close()

        cli.send_signal(signal.SIGINT)
        assert cli.wait(20) == 130
        assert app_processes(dev_pod) == [], "no debugpy or app process left in the container"
    finally:
        kill(cli)


def test_debug_fails_fast_with_the_commands_output_when_it_exits(dev_pod: DevPod, workspace: Path,
                                                                 tmp_path: Path) -> None:
    shutil.copytree(workspace, tmp_path / "ws")
    config = tmp_path / "ws" / ".nhdev" / "config.yaml"
    config.write_text(CONFIG.replace("[python, -m, debugpy,", "[python, -m, no_such_debugger,"))
    done = dev_pod.cli("dev", "debug", "web", cwd=tmp_path / "ws", timeout=30)
    assert done.returncode == 1
    assert "exited with code 1 before its debugger listened" in done.stderr
    assert "No module named no_such_debugger" in done.stderr
