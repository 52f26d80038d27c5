"""The session through the CLI, as users run it: `dev start` spawns it, `dev status` reads its control
socket, `dev end` stops it (and no session process remains); a stale socket after a crash is cleaned."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.stream import stream

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.session.control import unix_address
from nhdev.session.registry import paths_for, pid_alive, session_key
from tests.e2e.workspace import HTTP_SERVER, web_namespace

pytestmark = pytest.mark.timeout(180)

NHDEV = str(Path(sys.executable).parent / "nhdev")
DEV_IMAGE = "ghcr.io/nhdev/dev-python:3.12"


@pytest.fixture()
def namespace(kubeconfig: Path) -> Iterator[str]:
    with web_namespace(kubeconfig, "ses", command=HTTP_SERVER) as ns:
        yield ns


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(*args: str, home: Path, cwd: Path, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NHDEV_")},
           "HOME": str(home), "KUBECONFIG": str(kubeconfig)}
    return subprocess.run([NHDEV, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=150)


def test_dev_start_spawns_a_session_that_status_shows_and_end_stops(
        namespace: str, kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, project = tmp_path / "home", tmp_path / "project"
    (project / ".nhdev").mkdir(parents=True)
    home.mkdir()
    local = free_port()
    (project / ".nhdev" / "config.yaml").write_text(
        f'name: web\nserviceType: deployment\ncontainers:\n  - name: app\n    dev:\n      image: "{DEV_IMAGE}"\n'
        f'      portForward: ["{local}:8080"]\n')
    started = cli("dev", "start", "-n", namespace, "-o", "json", home=home, cwd=project, kubeconfig=kubeconfig)
    assert started.returncode == 0, started.stderr
    result = json.loads(started.stdout)
    session = result["localSession"]
    assert session["tunnel"]["state"] == "connected"
    assert [f["local"] for f in session["forwards"]] == [f"127.0.0.1:{local}"]
    pid = session["pid"]
    assert pid_alive(pid)
    try:
        _check_running_session(pid, local, result, namespace, kubeconfig, home, project, monkeypatch)
    finally:
        if pid_alive(pid):  # a failed check must not leave the session process behind
            os.kill(pid, signal.SIGTERM)


def _check_running_session(pid: int, local: int, result: dict[str, str], namespace: str, kubeconfig: Path,
                           home: Path, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv("HOME", str(home))
    paths = paths_for(session_key("nhdev-sandbox", namespace, "deployment/web"))
    assert stat.S_IMODE(paths.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(paths.control.stat().st_mode) == 0o600
    assert stat.S_ISSOCK(paths.control.stat().st_mode)
    assert paths.log.exists()

    _serve_in_pod(kubeconfig, namespace, result["pod"], result["devContainer"])
    with socket.create_connection(("127.0.0.1", local), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.0 200")

    status = cli("dev", "status", "-n", namespace, "-o", "json", home=home, cwd=project, kubeconfig=kubeconfig)
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)["localSession"]
    assert shown["pid"] == pid and shown["forwards"][0]["remote"] == "127.0.0.1:8080"
    assert shown["forwards"][0]["total"] >= 1
    text = cli("dev", "status", "-n", namespace, home=home, cwd=project, kubeconfig=kubeconfig).stdout
    assert f"127.0.0.1:{local} -> pod 127.0.0.1:8080" in text and "tunnel connected" in text

    ended = cli("dev", "end", "-n", namespace, home=home, cwd=project, kubeconfig=kubeconfig)
    assert ended.returncode == 0, ended.stderr
    assert "stopped the session" in ended.stderr
    assert not pid_alive(pid), "the session process is gone"
    assert not paths.control.exists() and not paths.pid_file.exists()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", local), timeout=2)


def test_a_stale_session_is_cleaned(namespace: str, kubeconfig: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    paths = paths_for(session_key("nhdev-sandbox", namespace, "deployment/web")).ensure()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths.write_pid(dead.pid)
    crashed = socket.socket(socket.AF_UNIX)
    with unix_address(paths.control) as address:
        crashed.bind(address)  # bound, never listening, then gone: what a crash leaves
    crashed.close()
    status = cli("dev", "status", "deployment/web", "-n", namespace, home=tmp_path, cwd=tmp_path,
                 kubeconfig=kubeconfig)
    assert status.returncode == 0, status.stderr
    assert "session:" not in status.stdout
    assert not paths.control.exists() and not paths.pid_file.exists()


def test_a_foreground_session_reports_and_stops_on_ctrl_c(namespace: str, kubeconfig: Path, tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NHDEV_")},
           "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig), "PYTHONFAULTHANDLER": "1"}
    process = subprocess.Popen([NHDEV, "dev", "start", "deployment/web", "-n", namespace, "-c", "app", "--image",
                                DEV_IMAGE, "--foreground"], env=env, cwd=tmp_path, stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "tunnel connected" in line:
            break
    assert any("tunnel connected" in line for line in lines), "".join(lines)
    process.send_signal(signal.SIGINT)
    try:
        code = process.wait(20)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack on stderr
        process.wait(5)
        raise AssertionError("".join(lines) + process.stderr.read()) from None
    assert code == 0, "".join(lines) + process.stderr.read()
    assert cli("dev", "end", "deployment/web", "-n", namespace, home=tmp_path, cwd=tmp_path,
               kubeconfig=kubeconfig).returncode == 0


def _serve_in_pod(kubeconfig: Path, namespace: str, pod: str, container: str) -> None:
    core = client.CoreV1Api(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    script = ("setsid nohup python3 -m http.server 8080 >/dev/null 2>&1 </dev/null & "
              "for i in $(seq 50); do python3 -c \"import socket; socket.create_connection(('127.0.0.1', 8080))\" "
              "2>/dev/null && exit 0; sleep 0.1; done; exit 1")
    stream(core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
           command=["sh", "-c", script], stdout=True, stderr=True, stdin=False, tty=False)
