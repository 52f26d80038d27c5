"""What the dev-mode container tests share: the examples' Python app as manifests and as a
project, the CLI as a developer runs it, and ways to reach a pod and see its podman containers."""

from __future__ import annotations

import http.client
import shutil
import signal
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.stream import portforward, stream

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.cluster.waiting import wait_for_ready_pod
from nhdev.session import control
from nhdev.session.registry import session_key
from tests.containers.podman_support import BASE_IMAGE, CONTEXT, SIDECAR_IMAGE, podman
from tests.e2e.workspace import NHDEV, cli_env
from tests.sandbox.contract import wait_for

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python-http"


def example_objects() -> list[Obj]:
    """The example's manifests, its ConfigMap filled with app.py (as `nhdev demo` does) and its
    image swapped for the locally built base (it has python3; no registry is reachable here)."""
    objects = [o for o in yaml.safe_load_all((EXAMPLE / "k8s" / "app.yaml").read_text()) if o]
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            obj["data"]["app.py"] = (EXAMPLE / "app.py").read_text()
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = BASE_IMAGE
    return objects


def exec_output(core: client.CoreV1Api, namespace: str, pod: str, container: str, script: str) -> str:
    return str(stream(core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                      command=["sh", "-c", script], stdout=True, stderr=True, stdin=False, tty=False))


def http_get_through_port_forward(core: client.CoreV1Api, namespace: str, pod: str, port: int) -> bytes:
    forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
    sock = forward.socket(port)
    sock.settimeout(10)
    sock.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    sock.close()
    return reply


def http_get(port: int) -> bytes:
    """GET / from 127.0.0.1:port; empty when nothing answers (yet)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
            return reply
    except OSError:
        return b""


class Cli:
    """``nhdev`` as the developer runs it: in the project, with its own HOME and the sandbox's
    kubeconfig, in namespace ``namespace``."""

    def __init__(self, project: Path, home: Path, kubeconfig: Path, namespace: str) -> None:
        self.project, self.home, self.kubeconfig, self.namespace = project, home, kubeconfig, namespace

    def env(self, **extra: str) -> dict[str, str]:
        return {**cli_env(self.home, self.kubeconfig), "PYTHONUNBUFFERED": "1", **extra}

    def argv(self, *args: str) -> list[str]:
        """``nhdev GROUP COMMAND -n NAMESPACE ARGS...``"""
        return [NHDEV, *args[:2], "-n", self.namespace, *args[2:]]

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), cwd=self.project, env=self.env(), capture_output=True, text=True,
                              timeout=timeout)

    def popen(self, *args: str, output: Path) -> subprocess.Popen[str]:
        """A long-running command whose stdout and stderr go to ``output`` (a pipe nobody reads
        could fill up and stall it), and that Ctrl-C (SIGINT) stops: run in the background by a
        non-interactive shell, the tests inherit SIGINT ignored, and Python then leaves it so."""
        with output.open("w") as sink:
            return subprocess.Popen(self.argv(*args), cwd=self.project, env=self.env(), text=True,
                                    stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                    preexec_fn=_default_sigint)

    def session_log(self) -> str:
        """The end of the session's log (for failure messages)."""
        logs = sorted((self.home / ".nhdev" / "logs").glob("*.log"))
        return "\n".join(log.read_text()[-4000:] for log in logs)

    def exec_out(self, script: str, container: str | None = None) -> str:
        chosen = ["-c", container] if container else []
        done = self.run("dev", "exec", *chosen, "--", "sh", "-c", script, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def session(self, op: str, timeout: float = 30) -> dict[str, Any]:
        key = session_key(CONTEXT, self.namespace, "deployment/greeter")
        socket_path = self.home / ".nhdev" / "sessions" / key / "control.sock"  # registry.paths_for under HOME
        return control.request(socket_path, {"op": op}, timeout=timeout)

    def wait_for_initial_sync(self) -> None:
        """Until the session's sync is idle with the project in the pod (60 s at most)."""
        def synced() -> bool:
            sync = self.session("sync-status")["sync"]
            return bool(sync["state"] == "idle" and sync["files_in_sync"] >= 1)

        wait_for("the initial sync", synced, timeout=60)


@contextmanager
def namespace_named(kubeconfig: Path, prefix: str) -> Iterator[str]:
    """A fresh name ``PREFIX-...`` for a namespace the test creates; the namespace is deleted after."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    kube = KubeRest(api_client(resolve_target(kubeconfig, CONTEXT)))
    yield name
    kube.delete(kind_named("namespace"), None, name)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def project_from_example(root: Path) -> Path:
    """A copy of examples/python-http whose dev config also names the sidecar image."""
    project = root / "python-http"
    shutil.copytree(EXAMPLE, project)
    config_path = project / ".nhdev" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["containers"][0]["dev"]["sidecarImage"] = SIDECAR_IMAGE
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return project


def deploy_example(kube: KubeRest, namespace: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for obj in objects:
        kube.create({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})
    return wait_for_ready_pod(kube, namespace, "app=greeter", timeout=120)


def pod_containers(uid: str) -> dict[str, str]:
    """The podman containers of a sandbox pod: container name -> image (the infra one left out)."""
    listed = podman("ps", "--format", "{{if not .IsInfra}}{{.Names}} {{.Image}}{{end}}",
                    "--filter", f"label=org.nhdev.sandbox.pod-uid={uid}").stdout.split("\n")
    return {name.removeprefix(f"nhdev-{uid}-"): image for name, image in (line.split() for line in listed if line)}


def forwarded_port(started: dict[str, Any], remote: int) -> int:
    """The local port of the session's forward to ``remote``, from ``nhdev dev start -o json``."""
    forward = next(f for f in started["localSession"]["forwards"] if str(f["remote"]).rsplit(":", 1)[-1] == str(remote))
    return int(forward["local"].rsplit(":", 1)[1])


def http_text(port: int, timeout: float = 5) -> str | None:
    """The body of GET / on 127.0.0.1:``port``; None while nothing answers there, or when the app
    went away in the middle of answering (a hot reload restarting it)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as response:
            return str(response.read().decode())
    except (OSError, http.client.HTTPException):
        return None
