"""Run under the session with hot reload, end to end: edit locally, the pod's app restarts once per
burst and serves the new text through the tunnel; an ignored file restarts nothing."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nhdev.session import control
from nhdev.session.registry import paths_for, session_key
from tests.e2e.workspace import NHDEV, cli_env, http_text, nhdev, web_config, web_namespace, write_project
from tests.sandbox.contract import wait_for

APP = """\
import http.server
GREETING = "{greeting}"
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = GREETING.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.ThreadingHTTPServer(("127.0.0.1", 8080), H).serve_forever()
"""
CONFIG = web_config("""\
      command:
        run: [python3, app.py]
      hotReload:
        enabled: true
        ignore: ["*.tmp"]
        delayMs: 300
      portForward: [":8080"]
""")


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    with web_namespace(kubeconfig, "hot") as ns:
        yield ns



def test_hot_reload_restarts_once_per_burst(namespace: str, kubeconfig: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    project = write_project(tmp_path / "project", CONFIG, {"app.py": APP.format(greeting="v1")})

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return nhdev(*args, cwd=project, home=home, kubeconfig=kubeconfig)

    started = cli("dev", "start", "-n", namespace, "-o", "json")
    assert started.returncode == 0, started.stderr
    local = json.loads(started.stdout)["localSession"]["forwards"][0]["local"]
    port = int(local.rsplit(":", 1)[1])
    monkeypatch.setenv("HOME", str(home))
    socket_path = paths_for(session_key("nhdev-sandbox", namespace, "deployment/web")).control

    def session(op: str) -> dict[str, Any]:
        return control.request(socket_path, {"op": op}, timeout=30)

    def restarts() -> int:
        return int(session("status")["status"]["services"]["run"]["hotReload"]["restarts"])

    try:
        def synced() -> bool:
            sync = session("sync-status")["sync"]
            return bool(sync["state"] == "idle" and sync["files_in_sync"] >= 2)

        wait_for("the initial sync", synced, timeout=30)
        session("run")
        assert wait_for("v1 served", lambda: http_text(port) == "v1", timeout=30)

        for text in ("v2", "v3", "v4"):  # a burst of saves: one restart
            (project / "app.py").write_text(APP.format(greeting=text))
            time.sleep(0.05)
        assert wait_for("v4 served", lambda: http_text(port) == "v4", timeout=30)
        time.sleep(1.0)
        assert restarts() == 1

        (project / "scratch.tmp").write_text("ignored by hotReload.ignore")
        time.sleep(1.5)
        assert restarts() == 1, "an ignored file restarts nothing"
        assert http_text(port) == "v4"

        stopped = session("stop-run")
        assert "exitCode" in stopped
        assert wait_for("the app stopped", lambda: http_text(port) is None, timeout=15)
    finally:
        ended = cli("dev", "end", "-n", namespace)
    assert ended.returncode == 0, ended.stderr


def test_dev_run_goes_through_the_session(namespace: str, kubeconfig: Path, tmp_path: Path) -> None:
    import signal
    import threading

    home = tmp_path / "home"
    project = write_project(tmp_path / "project", CONFIG, {"app.py": APP.format(greeting="through the session")})
    env = cli_env(home, kubeconfig)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return nhdev(*args, cwd=project, home=home, kubeconfig=kubeconfig)

    started = cli("dev", "start", "-n", namespace, "-o", "json")
    assert started.returncode == 0, started.stderr
    port = int(json.loads(started.stdout)["localSession"]["forwards"][0]["local"].rsplit(":", 1)[1])
    run = subprocess.Popen([NHDEV, "dev", "run", "-n", namespace], cwd=project, env=env, text=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    lines: list[str] = []
    stderr = run.stderr
    assert stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(iter(stderr.readline, "")), daemon=True)
    reader.start()
    try:
        assert wait_for("the app through the tunnel", lambda: http_text(port) == "through the session", timeout=40)
        wait_for("the app's own output, streamed to the caller", lambda: any("GET / HTTP" in x for x in lines),
                 timeout=15)
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 130, "".join(lines)
        reader.join(timeout=5)
        assert any("in the session" in x for x in lines)
        assert wait_for("the app stopped", lambda: http_text(port) is None, timeout=15)
    finally:
        if run.poll() is None:
            run.kill()
        ended = cli("dev", "end", "-n", namespace)
    assert ended.returncode == 0, ended.stderr
