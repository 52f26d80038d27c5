"""``nhdev port-forward [WORKLOAD|pod/NAME] L:R ...``: kubectl-style forwarding to any pod, no dev mode.

One port-forward stream per accepted connection, listeners on 127.0.0.1 only, until Ctrl-C. The
pod is chosen once (a running, ready one of the workload's) and chosen again after a connection
to it fails, so a restarted workload is followed.
"""

from __future__ import annotations

import json
import threading
import time

import click

from nhdev.cluster.kubeconfig import ClusterTarget, api_client, resolve_target
from nhdev.cluster.portforward import PortForwardListener
from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.config.ports import PortForward
from nhdev.errors import NotFound, UsageError

PODS = kind_named("pod")


class PodChooser:
    """The pod behind WORKLOAD: resolved once, again after a failure."""

    def __init__(self, kube: KubeRest, namespace: str, workload: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.workload = workload
        self._pod: str | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            if self._pod is None:
                self._pod = self._choose()
            return self._pod

    def forget(self, _message: str = "") -> None:
        with self._lock:
            self._pod = None

    def _choose(self) -> str:
        kind_text, _, name = self.workload.rpartition("/")
        try:
            kind = kind_named(kind_text or "deployment")
        except KeyError:
            raise UsageError(f"unknown kind {kind_text!r}", hint="WORKLOAD is NAME, KIND/NAME or pod/NAME") from None
        if kind is PODS:
            return name
        workload = self.kube.get(kind, self.namespace, name)
        selector = _selector(workload)
        pods = [p for p in self.kube.list(PODS, self.namespace, label_selector=selector)
                if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
        if not pods:
            raise NotFound(f"no running pod for {self.workload} in {self.namespace}")
        ready = [p for p in pods if _ready(p)] or pods
        return str(max(ready, key=lambda p: p["metadata"].get("creationTimestamp", ""))["metadata"]["name"])


def _selector(workload: Obj) -> str:
    spec = workload.get("spec", {})
    labels = (spec.get("selector") or {}).get("matchLabels") if isinstance(spec.get("selector"), dict) else None
    if labels is None and isinstance(spec.get("selector"), dict):
        labels = spec["selector"]  # a Service's selector is a plain map
    if not labels:
        raise UsageError(f"{workload['kind'].lower()}/{workload['metadata']['name']} has no label selector")
    return ",".join(f"{k}={v}" for k, v in labels.items())


def _ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def _parse_forwards(texts: tuple[str, ...]) -> list[PortForward]:
    forwards = []
    for text in texts:
        try:
            forward = PortForward.model_validate(text)
        except ValueError as err:
            raise UsageError(f"{text!r} is not a port forward (expected LOCAL:REMOTE, :REMOTE or PORT)") from err
        if forward.reverse:
            raise UsageError(f"{text!r}: reverse forwards need a dev session (portForward in the dev config)")
        forwards.append(forward)
    return forwards


@click.command("port-forward")
@click.argument("workload")
@click.argument("ports", nargs=-1, required=True)
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
@click.option("--context", default=None, help="Kube context (default: current-context).")
@click.option("--kubeconfig", default=None, help="Kubeconfig file(s) (default: $KUBECONFIG, ~/.kube/config).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
              help="Text for people, or json: the pod and the local addresses, once listening.")
def port_forward(workload: str, ports: tuple[str, ...], namespace: str | None, context: str | None,
                 kubeconfig: str | None, output: str) -> None:
    """Forward 127.0.0.1:LOCAL to REMOTE in a pod of WORKLOAD (NAME, KIND/NAME or pod/NAME) until Ctrl-C.

    PORTS are LOCAL:REMOTE, :REMOTE (any free local port) or PORT.
    """
    forwards = _parse_forwards(ports)
    target = resolve_target(kubeconfig, context, namespace)
    chooser = PodChooser(KubeRest(api_client(target)), target.namespace, workload)
    pod = chooser()
    listeners = _listen(target, chooser, forwards)
    if output == "json":
        click.echo(json.dumps({"pod": pod, "namespace": target.namespace, "forwards": [
            {"local": f"127.0.0.1:{lst.local_port}", "remote": lst.remote_port} for lst in listeners]}), nl=True)
    else:
        for lst in listeners:
            click.echo(f"Forwarding from 127.0.0.1:{lst.local_port} -> {lst.remote_port} (pod {pod})")
    try:
        while True:  # short sleeps: Ctrl-C is only seen when the main thread is back in Python
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        for lst in listeners:
            lst.stop()


def _listen(target: ClusterTarget, chooser: PodChooser, forwards: list[PortForward]) -> list[PortForwardListener]:
    def failed(message: str) -> None:
        click.echo(f"  ! {message}", err=True)
        chooser.forget()

    listeners: list[PortForwardListener] = []
    try:
        for forward in forwards:
            listeners.append(PortForwardListener(target, target.namespace, chooser, forward.remote,
                                                 forward.local or 0, on_error=failed).start())
    except OSError as err:
        for lst in listeners:
            lst.stop()
        raise UsageError(f"cannot listen on 127.0.0.1:{forward.local}: {err.strerror or err}") from None
    return listeners
