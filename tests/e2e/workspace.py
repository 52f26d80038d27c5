"""What the session e2e tests share: a namespace with a `web` Deployment, a project on disk, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from tests.sandbox.contract import wait_for

NHDEV = str(Path(sys.executable).parent / "nhdev")


IDLE = ["sleep", "3600"]
HTTP_SERVER = ["python3", "-m", "http.server", "8080"]
DEV_PYTHON = "ghcr.io/nhdev/dev-python:3.12"


def web_config(dev: str, image: str | None = DEV_PYTHON) -> str:
    """A `.nhdev/config.yaml` for Deployment `web`, container `app`, in dev image ``image`` (none:
    the default); ``dev`` is the rest of its `dev:` block, lines indented by six spaces."""
    head = "name: web\nserviceType: deployment\ncontainers:\n  - name: app\n    dev:\n"
    return head + (f"      image: {image}\n" if image else "") + dev


@contextmanager
def web_namespace(kubeconfig: Path, prefix: str, *, command: list[str] = IDLE, probe_port: int | None = None,
                  wait_ready: bool = False) -> Iterator[str]:
    """A fresh namespace holding Deployment `web` (container `app`, python:3.12, running ``command``,
    with a tcpSocket readiness probe on ``probe_port`` if given); deleted after."""
    ns = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    container: dict[str, object] = {"name": "app", "image": "python:3.12", "command": command}
    if probe_port is not None:
        container["readinessProbe"] = {"tcpSocket": {"port": probe_port}, "periodSeconds": 1}
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                 "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                          "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}})
    try:
        if wait_ready:
            wait_for("a ready web pod", lambda: any(
                c["type"] == "Ready" and c["status"] == "True"
                for p in kube.list(kind_named("pod"), ns, label_selector="app=web")
                for c in p.get("status", {}).get("conditions", [])), timeout=60)
        yield ns
    finally:
        kube.delete(kind_named("namespace"), None, ns)


def http_text(port: int) -> str | None:
    """The body of GET / on 127.0.0.1:``port``, or None while nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def write_project(root: Path, config: str, files: dict[str, str]) -> Path:
    """A project directory: `.nhdev/config.yaml` plus ``files`` (relative path -> text)."""
    (root / ".nhdev").mkdir(parents=True)
    (root / ".nhdev" / "config.yaml").write_text(config)
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def cli_env(home: Path, kubeconfig: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHDEV_")}
    env.update(HOME=str(home), KUBECONFIG=str(kubeconfig))
    return env


def nhdev(*args: str, cwd: Path, home: Path, kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NHDEV, *args], cwd=cwd, env=cli_env(home, kubeconfig), capture_output=True, text=True,
                          timeout=120)
