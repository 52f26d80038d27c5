"""Run under the session with hot reload, end to end: edit locally, the pod's app restarts once per
burst and serves the new text through the tunnel; an ignored file restarts nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.session import control
from nhdev.session.registry import paths_for, session_key
from tests.sandbox.contract import wait_for

NHDEV = str(Path(sys.executable).parent / "nhdev")
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
CONFIG = """\
name: web
serviceType: deployment
containers:
  - name: app
    dev:
      image: ghcr.io/nhdev/dev-python:3.12
      command:
        run: [python3, app.py]
      hotReload:
        enabled: true
        ignore: ["*.tmp"]
        delayMs: 300
      portForward: [":8080"]
"""


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    ns = f"hot-{uuid.uuid4().hex[:8]}"
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                          "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                              {"name": "app", "image": "python:3.12", "command": ["sleep", "3600"]}]}}}})
    yield ns
    kube.delete(kind_named("namespace"), None, ns)


def get(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def test_hot_reload_restarts_once_per_burst(namespace: str, kubeconfig: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    (project / ".nhdev").mkdir(parents=True)
    (project / ".nhdev" / "config.yaml").write_text(CONFIG)
    (project / "app.py").write_text(APP.format(greeting="v1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHDEV_")}
    env.update(HOME=str(home), KUBECONFIG=str(kubeconfig))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([NHDEV, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)

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
        assert wait_for("v1 served", lambda: get(port) == "v1", timeout=30)

        for text in ("v2", "v3", "v4"):  # a burst of saves: one restart
            (project / "app.py").write_text(APP.format(greeting=text))
            time.sleep(0.05)
        assert wait_for("v4 served", lambda: get(port) == "v4", timeout=30)
        time.sleep(1.0)
        assert restarts() == 1

        (project / "scratch.tmp").write_text("ignored by hotReload.ignore")
        time.sleep(1.5)
        assert restarts() == 1, "an ignored file restarts nothing"
        assert get(port) == "v4"

        stopped = session("stop-run")
        assert "exitCode" in stopped
        assert wait_for("the app stopped", lambda: get(port) is None, timeout=15)
    finally:
        ended = cli("dev", "end", "-n", namespace)
    assert ended.returncode == 0, ended.stderr


def test_dev_run_goes_through_the_session(namespace: str, kubeconfig: Path, tmp_path: Path) -> None:
    import signal

    home, project = tmp_path / "home", tmp_path / "project"
    (project / ".nhdev").mkdir(parents=True)
    (project / ".nhdev" / "config.yaml").write_text(CONFIG)
    (project / "app.py").write_text(APP.format(greeting="through the session"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHDEV_")}
    env.update(HOME=str(home), KUBECONFIG=str(kubeconfig))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([NHDEV, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)

    started = cli("dev", "start", "-n", namespace, "-o", "json")
    assert started.returncode == 0, started.stderr
    port = int(json.loads(started.stdout)["localSession"]["forwards"][0]["local"].rsplit(":", 1)[1])
    run = subprocess.Popen([NHDEV, "dev", "run", "-n", namespace], cwd=project, env=env, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for("the app through the tunnel", lambda: get(port) == "through the session", timeout=40)
        run.send_signal(signal.SIGINT)
        _out, err = run.communicate(timeout=30)
        assert run.returncode == 130, err
        assert "in the session" in err and "GET / HTTP" in err, "the app's output is streamed to the caller"
        assert wait_for("the app stopped", lambda: get(port) is None, timeout=15)
    finally:
        if run.poll() is None:
            run.kill()
        ended = cli("dev", "end", "-n", namespace)
    assert ended.returncode == 0, ended.stderr
