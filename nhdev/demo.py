"""``nhdev demo``: a guided tour on the embedded sandbox cluster.

Each step prints one line with a check mark and its time: the sandbox, the example app deployed and
answering, replace dev mode with its session (tunnel, sync, forwards), the app run in the dev
container with hot reload, a local edit served by the pod within moments, dev mode ended with
the original workload back, and a duplicate-mode copy beside the original.

With ``--keep`` the sandbox stays up and the example is put into dev mode once more, from a copy
of the example kept on disk, and the demo ends with the exact commands to try next (terminal,
exec, run, debug, VS Code, dev end, sandbox down). tests/e2e/test_demo.py runs them.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import yaml
from kubernetes import client
from kubernetes.stream import portforward
from rich.console import Console

from nhdev.cluster.kubeconfig import ClusterTarget, api_client, resolve_target
from nhdev.cluster.rest import KubeRest, Obj, kind_named, kind_of
from nhdev.config import load_config
from nhdev.devmode.engine import DevModeEngine, WorkloadRef
from nhdev.devmode.identity import current_identity, new_session_id
from nhdev.devmode.spec import dev_spec
from nhdev.errors import Conflict, Timeout
from nhdev.sandbox import lifecycle
from nhdev.session import control
from nhdev.session.launcher import RunningSession, find_session, spawn_session, stop_session, wait_until_connected
from nhdev.session.state import SessionSpec

EXAMPLE_DIR = Path(__file__).resolve().parent.parent / "examples" / "python-http"
ORIGINAL_GREETING = "Hello from nhdev's Python example"
EDITED_GREETING = "Hello again, edited on your machine"
NAMESPACE = "nhdev-demo"
APP = "greeter"
T = TypeVar("T")

console = Console(highlight=False, soft_wrap=True)  # lines stay whole, to copy and paste


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
    target = resolve_target(rec.kubeconfig, "nhdev-sandbox", NAMESPACE)
    kube = KubeRest(api_client(target))
    workspace = Path(tempfile.mkdtemp(prefix="nhdev-demo-"))
    kept: RunningSession | None = None
    try:
        with step(f"example app deployed (namespace {NAMESPACE})"):
            _ensure_namespace(kube)
            _apply_example(kube, _app_source())
        with step("rolled out and ready"):
            original_pod = _wait_ready_pod(kube, timeout=60)
        with step("answers through a port-forward"):
            answer = _http_get_via_portforward(rec, original_pod)
        console.print(f"  [cyan]{answer}[/cyan]")
        shutil.copytree(EXAMPLE_DIR, workspace, dirs_exist_ok=True)
        with step("replace dev mode: dev container, sidecar, tunnel, sync"):
            session = _start_dev_mode(kube, target, workspace)
        port = _forwarded_port(session)
        with step(f"app running in the dev container, hot reload on (127.0.0.1:{port})"):
            _poll("the session's run service", lambda: _session_op(session, "run") or None, 30)
            answer = _poll("the app through the tunnel", lambda: _http_get(port), 60)
        console.print(f"  [cyan]{answer}[/cyan]")
        app = workspace / "app.py"
        with step("edited app.py locally: synced, restarted, new answer"):
            app.write_text(app.read_text().replace(ORIGINAL_GREETING, EDITED_GREETING))
            answer = _poll("the edited answer", lambda: a if (a := _http_get(port)) and EDITED_GREETING in a
                           else None, 60)
        console.print(f"  [cyan]{answer}[/cyan]")
        with step("dev mode ended: the original is back"):
            stop_session(session)
            DevModeEngine(kube, NAMESPACE, current_identity()).end(WorkloadRef(kind_named("deployment"), APP))
            restored = _wait_ready_pod(kube, timeout=60, not_named=None, image="python:3.12-slim")
            answer = _http_get_via_portforward(rec, restored)
        console.print(f"  [cyan]{answer}[/cyan]")
        with step("duplicate mode: a private copy in dev mode, the original keeps serving"):
            copy = _duplicate_while_original_serves(kube, rec, workspace, restored)
        console.print(f"  [dim]{copy} ran beside pod {restored}, which kept answering; copy removed[/dim]")
        if keep:
            app.write_text(_app_source())  # the copy starts as the example is
            with step("kept: greeter in replace dev mode again, its session running"):
                kept = _start_dev_mode(kube, target, workspace)
    finally:
        if kept is None:
            shutil.rmtree(workspace, ignore_errors=True)
        if not keep:
            with step("cleaned up"):
                leftover = find_session("nhdev-sandbox", NAMESPACE, f"deployment/{APP}")
                if leftover is not None:
                    stop_session(leftover)
                kube.delete(kind_named("namespace"), None, NAMESPACE)
                if started_here:
                    lifecycle.stop(state_dir)
    console.print(f"[bold]demo done in {time.monotonic() - began:.1f}s[/bold]")
    if kept is not None:
        console.print(next_steps(rec, workspace, _forwarded_port(kept)), markup=False, soft_wrap=True)


def next_steps(rec: lifecycle.ServerRecord, workspace: Path, port: int) -> str:
    """What to try after ``demo --keep``: commands to paste into a shell, each with what it shows.

    Every line is ``  COMMAND`` with an optional ``  # comment``; tests/e2e/test_demo.py runs them.
    """
    ns = f"-n {NAMESPACE}"
    lines: list[tuple[str, str]] = []
    venv_bin = Path(sys.executable).parent
    found = shutil.which("nhdev")
    if (venv_bin / "nhdev").exists() and (found is None or Path(found).resolve() != (venv_bin / "nhdev").resolve()):
        lines.append((f'export PATH={shlex.quote(str(venv_bin))}:"$PATH"', "nhdev and its tools"))
    sandbox_dir = os.environ.get("NHDEV_SANDBOX_DIR")
    down = "nhdev sandbox down" + (f" --state-dir {shlex.quote(rec.state_dir)}" if sandbox_dir else "")
    lines += [
        (f"export KUBECONFIG={shlex.quote(str(rec.kubeconfig))}", "the sandbox (context nhdev-sandbox)"),
        (f"cd {shlex.quote(str(workspace))}", "your copy of examples/python-http, synced into the pod"),
        (f"nhdev dev status {ns}", "greeter: replace mode, your session, the tunnel and the port forward"),
        (f"nhdev dev terminal {ns}", "a shell in the dev container (exit leaves it)"),
        (f"nhdev dev exec {ns} -- ls -la", "one command in the dev container: the synced files"),
        (f"nhdev dev run {ns}", "python3 app.py in the pod, hot reload on; Ctrl-C stops it"),
        (f"curl http://127.0.0.1:{port}/", "meanwhile, in another shell: the app through the session; "
                                            "edit app.py and ask again"),
        (f"nhdev dev debug {ns} -o json", "debugpy in the pod, forwarded; prints a VS Code attach configuration"),
        ("code .", "VS Code: F5 on 'nhdev: debug greeter' (.vscode/launch.json) with the nhdev extension; "
                   "without it, use the launchConfig printed above"),
        (f"nhdev dev end {ns}", "stops the session and brings the original greeter back"),
        (down, "stops the sandbox; namespace nhdev-demo is kept for the next `nhdev sandbox up`"),
        (f"rm -rf {shlex.quote(str(workspace))}", "the copy of the example"),
    ]
    width = max(len(command) for command, _ in lines) + 2
    body = "\n".join(f"  {command:<{width}}# {comment}" for command, comment in lines)
    return f"\nkept running. Try, in a shell:\n{body}"


def _start_dev_mode(kube: KubeRest, target: ClusterTarget, workspace: Path) -> RunningSession:
    config_path = workspace / ".nhdev" / "config.yaml"
    service = load_config(config_path).service(APP, "deployment")
    container = service.container(None)
    engine = DevModeEngine(kube, NAMESPACE, current_identity())
    ref = WorkloadRef(kind_named("deployment"), APP)
    result = engine.start(ref, dev_spec(container), mode="replace", session_id=new_session_id(), timeout=120)
    spec = SessionSpec(kubeconfig=target.kubeconfig, context=target.context, namespace=NAMESPACE,
                       workload=str(ref), session_id=result.session, dev_container=result.dev_container,
                       forwards=[f.text() for f in container.dev.port_forward], config_path=str(config_path),
                       service=service.name, container=container.name, local_root=str(workspace))
    session = spawn_session(spec)
    status = wait_until_connected(session, 30)
    if status["tunnel"]["state"] != "connected":
        raise Timeout(f"the session's tunnel did not connect: {status['tunnel'].get('reason')}")
    _poll("the initial sync", lambda: True if _session_op(session, "sync-status").get("sync", {})
          .get("state") == "idle" else None, 60)
    session.status = status
    return session


def _session_op(session: RunningSession, op: str) -> dict:
    """The session's answer, or {} while the service behind ``op`` is still starting."""
    try:
        return control.request(session.paths.control, {"op": op}, timeout=10)
    except control.ControlError:
        return {}


def _duplicate_while_original_serves(kube: KubeRest, rec: lifecycle.ServerRecord, workspace: Path,
                                     original_pod: str) -> str:
    service = load_config(workspace / ".nhdev" / "config.yaml").service(APP, "deployment")
    engine = DevModeEngine(kube, NAMESPACE, current_identity())
    ref = WorkloadRef(kind_named("deployment"), APP)
    result = engine.start(ref, dev_spec(service.container(None)), mode="duplicate", session_id=new_session_id(),
                          timeout=120)
    try:
        if ORIGINAL_GREETING not in _http_get_via_portforward(rec, original_pod):
            raise Timeout(f"pod {original_pod} stopped answering while the duplicate ran")
    finally:
        engine.end(ref, session_id=result.session)
    return result.target


def _forwarded_port(session: RunningSession) -> int:
    local = session.status["forwards"][0]["local"]
    return int(str(local).rsplit(":", 1)[1])


def _http_get(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return str(resp.read().decode()).strip()
    except OSError:
        return None


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


def _wait_ready_pod(kube: KubeRest, *, timeout: float, not_named: str | None = None,
                    image: str | None = None) -> str:
    def ready_pod() -> str | None:
        for p in kube.list(kind_named("pod"), NAMESPACE, label_selector=f"app={APP}"):
            conditions = p.get("status", {}).get("conditions") or []
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            name = str(p["metadata"]["name"])
            images = {c.get("image") for c in p["spec"]["containers"]}
            if ready and not p["metadata"].get("deletionTimestamp") and name != not_named and (
                    image is None or images == {image}):
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


