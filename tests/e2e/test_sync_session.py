"""Sync hosted by the dev session, end to end: `nhdev dev start` in a project, edits reach the pod."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.stream import stream

from nhdev.cluster.kubeconfig import api_client, resolve_target
from tests.e2e.workspace import nhdev, web_config, web_namespace, write_project
from tests.sandbox.contract import wait_for

CONFIG = web_config("""\
      workDir: /home/nhdev-dev
      sync:
        type: send
        mode: gitIgnore
""")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", CONFIG, {
        "app.py": "print('v1')\n", "pkg/util.py": "X = 1\n", ".gitignore": "*.log\n", "debug.log": "local only\n"})


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    with web_namespace(kubeconfig, "sync") as ns:
        yield ns


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
