"""A workload in dev mode on the sandbox, shared by the terminal, exec and run/debug tests.

One namespace and one Deployment in replace dev mode per test module (dev mode takes seconds;
the tests only need its pod). ``cli`` runs the real ``nhdev`` with the sandbox's kubeconfig, as
the identity that started dev mode; ``start_cli`` runs a long one (``dev run``, ``dev debug``)
whose output a test reads line by line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nhdev.cluster.exec import run_in_pod
from nhdev.cluster.kubeconfig import ClusterTarget, api_client, resolve_target
from nhdev.cluster.portforward import PortForwardListener
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.devmode.engine import DevModeEngine, parse_workload_ref
from nhdev.devmode.plan import DevSpec

NHDEV = str(Path(sys.executable).parent / "nhdev")
IDENTITY = "tess@terminal"
WORK_DIR = "/home/nhdev-dev"
APP_CONTAINER = {"name": "app", "image": "python:3.12", "command": ["python3", "-m", "http.server", "8080"]}
DEV_SPEC = DevSpec(image="ghcr.io/nhdev/dev-python:3.12", container="app", work_dir=WORK_DIR)
# Every process of a container: "pid cmdline" per line.
LIST_PROCESSES = "for d in /proc/[0-9]*; do echo \"${d#/proc/} $(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\"; done"


@dataclass(frozen=True)
class DevPod:
    """A Deployment ``web`` in dev mode: where it is and how to reach it."""

    kubeconfig: Path
    namespace: str
    target: ClusterTarget
    kube: KubeRest
    session: str

    def pod(self) -> str:
        """The current running dev pod (it changes when a test replaces it)."""
        pods = [p for p in self.kube.list(kind_named("pod"), self.namespace,
                                          label_selector=f"nhdev.dev/session={self.session}")
                if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
        assert pods, "no running dev pod"
        return str(max(pods, key=lambda p: p["metadata"]["creationTimestamp"])["metadata"]["name"])

    def sh(self, script: str, stdin: bytes | None = None) -> str:
        result = run_in_pod(self.target, self.namespace, self.pod(), "app", ["sh", "-c", script],
                            stdin_data=stdin, timeout=30)
        assert result.code == 0, result
        return result.out

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "NHDEV_IDENTITY": IDENTITY,
                "PYTHONUNBUFFERED": "1", **extra}

    def cli(self, *args: str, cwd: Path | None = None, stdin: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), capture_output=True, text=True,
                              env=self.env(), cwd=cwd, input=stdin, timeout=timeout)

    def argv(self, group: str, command: str, *rest: str) -> list[str]:
        """``nhdev GROUP COMMAND -n NAMESPACE REST...`` (before any ``--``)."""
        return [NHDEV, group, command, "-n", self.namespace, *rest]

    def processes(self, *names: str) -> list[str]:
        """``pid cmdline`` of the container's processes whose command line holds any of ``names``."""
        return [line for line in self.sh(LIST_PROCESSES).splitlines() if any(name in line for name in names)]


@contextmanager
def start_dev_pod(kubeconfig: Path, tmp_path: Path, *, prefix: str = "sh", container: dict[str, Any] = APP_CONTAINER,
                  spec: DevSpec = DEV_SPEC) -> Iterator[DevPod]:
    """A fresh namespace ``PREFIX-...`` whose Deployment ``web`` (``container``) is in replace dev mode
    with ``spec`` (its state under ``tmp_path/state``); the namespace is deleted after."""
    target = resolve_target(kubeconfig, "nhdev-sandbox", f"{prefix}-{uuid.uuid4().hex[:8]}")
    kube = KubeRest(api_client(target))
    ns = target.namespace
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    labels = {"app": "web"}
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                 "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                          "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}}}})
    try:
        engine = DevModeEngine(kube, ns, IDENTITY, state_dir=tmp_path / "state")
        result = engine.start(parse_workload_ref("deployment/web"), spec, mode="replace",
                              session_id=uuid.uuid4().hex[:12], timeout=60)
        yield DevPod(kubeconfig, ns, target, kube, result.session)
    finally:
        kube.delete(kind_named("namespace"), None, ns)


@pytest.fixture(scope="module", name="dev_pod")
def dev_pod_fixture(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPod]:
    with start_dev_pod(kubeconfig, tmp_path_factory.mktemp("devpod")) as dev_pod:
        yield dev_pod


@contextmanager
def forwarded_port(dev_pod: DevPod, port: int) -> Iterator[int]:
    """A local port forwarded to ``port`` of the current dev pod."""
    pod = dev_pod.pod()
    listener = PortForwardListener(dev_pod.target, dev_pod.namespace, lambda: pod, port).start()
    try:
        yield listener.local_port
    finally:
        listener.stop()


def start_cli(dev_pod: DevPod, workspace: Path, *args: str) -> subprocess.Popen[str]:
    """``nhdev dev ARGS...`` in ``workspace``, its stdout and stderr piped (``read_line`` reads them)."""
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


def kill(cli: subprocess.Popen[str]) -> None:
    """Kill ``cli`` if it still runs (what a test leaves behind when it fails half-way)."""
    if cli.poll() is None:
        cli.kill()
        cli.wait()


def try_get(port: int, path: str, timeout: float = 5) -> str | None:
    """The body of GET /``path`` on 127.0.0.1:``port``, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=timeout) as response:
            return str(response.read().decode())
    except OSError:
        return None
