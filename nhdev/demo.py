"""``nhdev demo``: a guided tour on the embedded sandbox cluster.

Each step prints one line with a check mark and its time. The demo grows as nhdev does; today it
shows the sandbox, the example app answering through a port-forward, a shell command in its pod,
and an edit rolled out the way teams do it without nhdev (rebuild and redeploy) — the slow loop
that dev mode replaces.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import yaml
from kubernetes import client
from kubernetes.stream import portforward, stream
from rich.console import Console

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, Obj, kind_named, kind_of
from nhdev.errors import Conflict, Timeout
from nhdev.sandbox import lifecycle

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "python-http"
NAMESPACE = "nhdev-demo"
APP = "greeter"
T = TypeVar("T")

console = Console(highlight=False)


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    started = time.monotonic()
    with console.status(title):
        yield
    console.print(f"[green]✓[/green] {title} [dim]({time.monotonic() - started:.1f}s)[/dim]")


def run_demo(*, keep: bool) -> None:
    began = time.monotonic()
    state_dir = lifecycle.default_state_dir()
    with step("sandbox cluster up"):
        rec, started_here = lifecycle.start(state_dir)
    console.print(f"  [dim]API {rec.url}, kubeconfig {rec.kubeconfig}[/dim]")
    kube = KubeRest(api_client(resolve_target(rec.kubeconfig, "nhdev-sandbox")))
    try:
        with step(f"example app deployed (namespace {NAMESPACE})"):
            _ensure_namespace(kube)
            _apply_example(kube, _app_source())
        with step("rolled out and ready"):
            pod = _wait_ready_pod(kube, timeout=60)
        with step("answers through a port-forward"):
            answer = _http_get_via_portforward(rec, pod)
        console.print(f"  [cyan]{answer}[/cyan]")
        with step("a command runs inside its pod"):
            out = _exec(rec, pod, ["sh", "-c", "echo $HOSTNAME: $(ls /app)"])
        console.print(f"  [cyan]{out.strip()}[/cyan]")
        edited = _app_source().replace("Hello from nhdev's Python example", "Hello again, after an edit")
        with step("edit rolled out the slow way (new ConfigMap + restart)"):
            _apply_example(kube, edited, restart=True)
            pod = _wait_ready_pod(kube, timeout=60, not_named=pod)
            answer = _http_get_via_portforward(rec, pod)
        console.print(f"  [cyan]{answer}[/cyan]")
    finally:
        if not keep:
            with step("cleaned up"):
                kube.delete(kind_named("namespace"), None, NAMESPACE)
                if started_here:
                    lifecycle.stop(state_dir)
    console.print(f"[bold]demo done in {time.monotonic() - began:.1f}s[/bold]")
    if keep:
        console.print(f"  kept running; try: kubectl --kubeconfig {rec.kubeconfig} -n {NAMESPACE} get pods")


def _app_source() -> str:
    return (EXAMPLE_DIR / "app.py").read_text()


def _manifests(source: str) -> list[Obj]:
    docs = [d for d in yaml.safe_load_all((EXAMPLE_DIR / "k8s" / "app.yaml").read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = NAMESPACE
        if doc["kind"] == "ConfigMap":
            doc["data"] = {"app.py": source}
    return docs


def _ensure_namespace(kube: KubeRest) -> None:
    if kube.try_get(kind_named("namespace"), None, NAMESPACE) is None:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})


def _apply_example(kube: KubeRest, source: str, *, restart: bool = False) -> None:
    for doc in _manifests(source):
        if doc["kind"] == "Deployment" and restart:
            annotations = doc["spec"]["template"]["metadata"].setdefault("annotations", {})
            annotations["nhdev.dev/restarted-at"] = str(time.time())
        try:
            kube.create(doc)
        except Conflict:
            kube.patch(kind_of(doc), NAMESPACE, doc["metadata"]["name"], doc)


def _poll(what: str, fn: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got is not None:
            return got
        time.sleep(0.1)
    raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}")


def _wait_ready_pod(kube: KubeRest, *, timeout: float, not_named: str | None = None) -> str:
    def ready_pod() -> str | None:
        for p in kube.list(kind_named("pod"), NAMESPACE, label_selector=f"app={APP}"):
            conditions = p.get("status", {}).get("conditions") or []
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            name = str(p["metadata"]["name"])
            if ready and not p["metadata"].get("deletionTimestamp") and name != not_named:
                return name
        return None

    return _poll(f"a ready {APP} pod in {NAMESPACE}", ready_pod, timeout)


def _stream_client(rec: lifecycle.ServerRecord) -> client.CoreV1Api:
    # Streams swap call_api on their ApiClient: each gets its own (kube-wire.md §1).
    return client.CoreV1Api(api_client(resolve_target(rec.kubeconfig, "nhdev-sandbox")))


def _http_get_via_portforward(rec: lifecycle.ServerRecord, pod: str) -> str:
    def answer() -> str | None:
        core = _stream_client(rec)
        pf = portforward(core.connect_get_namespaced_pod_portforward, pod, NAMESPACE, ports="8080")
        sock = pf.socket(8080)
        sock.settimeout(5)
        sock.sendall(b"GET / HTTP/1.0\r\nHost: greeter\r\n\r\n")
        data = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                data += chunk
        sock.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return body.decode().strip() if head.startswith(b"HTTP/1.0 200") else None

    return _poll(f"an HTTP answer from pod {pod}", answer, 20)


def _exec(rec: lifecycle.ServerRecord, pod: str, argv: list[str]) -> str:
    out = stream(
        _stream_client(rec).connect_get_namespaced_pod_exec, pod, NAMESPACE,
        command=argv, stdout=True, stderr=True, stdin=False, tty=False,
    )
    return str(out)
