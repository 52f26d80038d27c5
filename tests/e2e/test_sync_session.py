"""Sync hosted by the dev session, end to end: `nhdev dev start` in a project, edits reach the pod."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.stream import stream

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from tests.sandbox.contract import wait_for

NHDEV = str(Path(sys.executable).parent / "nhdev")
CONFIG = """\
name: web
serviceType: deployment
containers:
  - name: app
    dev:
      image: ghcr.io/nhdev/dev-python:3.12
      workDir: /home/nhdev-dev
      sync:
        type: send
        mode: gitIgnore
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".nhdev").mkdir(parents=True)
    (root / ".nhdev" / "config.yaml").write_text(CONFIG)
    (root / "app.py").write_text("print('v1')\n")
    (root / "pkg").mkdir()
    (root / "pkg" / "util.py").write_text("X = 1\n")
    (root / ".gitignore").write_text("*.log\n")
    (root / "debug.log").write_text("local only\n")
    return root


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    ns = f"sync-{uuid.uuid4().hex[:8]}"
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                          "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                              {"name": "app", "image": "python:3.12", "command": ["sleep", "3600"]}]}}}})
    yield ns
    kube.delete(kind_named("namespace"), None, ns)


def nhdev(*args: str, cwd: Path, home: Path, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHDEV_")}
    env.update(HOME=str(home), KUBECONFIG=str(kubeconfig))
    return subprocess.run([NHDEV, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def pod_cat(kubeconfig: Path, ns: str, pod: str, path: str) -> str | None:
    core = client.CoreV1Api(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    out = stream(core.connect_get_namespaced_pod_exec, pod, ns, container="app",
                 command=["sh", "-c", f"cat {path} 2>/dev/null || echo MISSING"], stdout=True, stderr=True,
                 stdin=False, tty=False)
    return None if str(out).strip() == "MISSING" else str(out)


def test_session_syncs_the_project(project: Path, namespace: str, kubeconfig: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    started = nhdev("dev", "start", "-n", namespace, "-o", "json", cwd=project, home=home, kubeconfig=kubeconfig)
    assert started.returncode == 0, started.stderr
    pod = json.loads(started.stdout)["pod"]
    try:
        wait_for("initial sync", lambda: pod_cat(kubeconfig, namespace, pod, "/home/nhdev-dev/pkg/util.py")
                 == "X = 1\n", timeout=30)
        assert pod_cat(kubeconfig, namespace, pod, "/home/nhdev-dev/debug.log") is None, "ignored by .gitignore"

        (project / "app.py").write_text("print('v2')\n")
        wait_for("the edit", lambda: pod_cat(kubeconfig, namespace, pod, "/home/nhdev-dev/app.py")
                 == "print('v2')\n", timeout=15)

        status = nhdev("dev", "sync", "--status", "-n", namespace, "-o", "json", cwd=project, home=home,
                       kubeconfig=kubeconfig)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["state"] in ("idle", "syncing", "watching")

        (project / "pkg" / "new.py").write_text("Y = 2\n")
        once = nhdev("dev", "sync", "--once", "-n", namespace, "-o", "json", cwd=project, home=home,
                     kubeconfig=kubeconfig)
        assert once.returncode == 0, once.stderr
        assert pod_cat(kubeconfig, namespace, pod, "/home/nhdev-dev/pkg/new.py") == "Y = 2\n"
    finally:
        ended = nhdev("dev", "end", "-n", namespace, cwd=project, home=home, kubeconfig=kubeconfig)
    assert ended.returncode == 0, ended.stderr
    assert (project / "debug.log").read_text() == "local only\n", "local files are never touched"


def test_sync_usage_errors(project: Path, tmp_path: Path, kubeconfig: Path) -> None:
    both = nhdev("dev", "sync", "--once", "--status", cwd=project, home=tmp_path, kubeconfig=kubeconfig)
    assert both.returncode == 2 and "exactly one of" in both.stderr
    none = nhdev("dev", "sync", "--once", "-n", "default", cwd=project, home=tmp_path, kubeconfig=kubeconfig)
    assert none.returncode == 2 and "no dev session of deployment/web" in none.stderr
