"""A workload in dev mode on the sandbox, shared by the terminal, exec and run/debug tests.

One namespace and one Deployment in replace dev mode per test module (dev mode takes seconds;
the tests only need its pod). ``cli`` runs the real ``nhdev`` with the sandbox's kubeconfig, as
the identity that started dev mode.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nhdev.cluster.exec import run_in_pod
from nhdev.cluster.kubeconfig import ClusterTarget, api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.devmode.engine import DevModeEngine, parse_workload_ref
from nhdev.devmode.plan import DevSpec

NHDEV = str(Path(sys.executable).parent / "nhdev")
IDENTITY = "tess@terminal"
WORK_DIR = "/home/nhdev-dev"
APP_CONTAINER = {"name": "app", "image": "python:3.12", "command": ["python3", "-m", "http.server", "8080"]}


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


def start_dev_pod(kubeconfig: Path, tmp_path: Path) -> Iterator[DevPod]:
    target = resolve_target(kubeconfig, "nhdev-sandbox", f"sh-{uuid.uuid4().hex[:8]}")
    kube = KubeRest(api_client(target))
    ns = target.namespace
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    labels = {"app": "web"}
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                 "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                          "template": {"metadata": {"labels": labels}, "spec": {"containers": [APP_CONTAINER]}}}})
    engine = DevModeEngine(kube, ns, IDENTITY, state_dir=tmp_path / "state")
    result = engine.start(parse_workload_ref("deployment/web"),
                          DevSpec(image="ghcr.io/nhdev/dev-python:3.12", container="app", work_dir=WORK_DIR),
                          mode="replace", session_id=uuid.uuid4().hex[:12], timeout=60)
    try:
        yield DevPod(kubeconfig, ns, target, kube, result.session)
    finally:
        kube.delete(kind_named("namespace"), None, ns)


@pytest.fixture(scope="module", name="dev_pod")
def dev_pod_fixture(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPod]:
    yield from start_dev_pod(kubeconfig, tmp_path_factory.mktemp("devpod"))
