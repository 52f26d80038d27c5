"""Waiting for a pod to be ready, with progress and a fast, explained failure.

A dev pod that cannot start should not leave the user staring at "waiting..." (Nocalhost #1068):
image pull errors, crash loops, bad container config, unschedulable pods and unbound claims are
recognised as soon as they show, and reported with the pod's events and last log lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.errors import ClusterError, Timeout

# Waiting reasons that will not fix themselves in the time a user waits.
FATAL_WAITING = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff",
                 "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
PODS = kind_named("pod")
EVENTS = kind_named("event")


class PodFailed(ClusterError):
    """The pod cannot become ready; the message carries the reason, events and logs."""


@dataclass(frozen=True)
class PodProgress:
    """One observation of the pod being waited for."""

    pod: str | None
    phase: str
    ready: int
    total: int
    detail: str  # e.g. "pulling", "ContainerCreating", "waiting for a pod"

    def render(self) -> str:
        if self.pod is None:
            return self.detail
        return f"pod {self.pod}: {self.phase}, {self.ready}/{self.total} containers ready" + (
            f" ({self.detail})" if self.detail else "")


def wait_for_ready_pod(kube: KubeRest, namespace: str, label_selector: str, *, timeout: float,
                       on_progress: Callable[[PodProgress], None] = lambda _: None,
                       poll: float = 0.2) -> Obj:
    """The newest non-terminating pod matching ``label_selector`` once all its containers are ready."""
    deadline = time.monotonic() + timeout
    last: PodProgress | None = None
    while True:
        pods = [p for p in kube.list(PODS, namespace, label_selector=label_selector)
                if not p["metadata"].get("deletionTimestamp")]
        pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)
        progress = observe(pod)
        if progress != last:
            on_progress(progress)
            last = progress
        if pod is not None:
            if progress.total and progress.ready == progress.total:
                return pod
            problem = diagnose(pod, _events(kube, namespace, pod["metadata"]["name"]))
            if problem:
                raise PodFailed(_explain(kube, namespace, pod, problem))
        if time.monotonic() >= deadline:
            what = progress.render() if pod is not None else f"no pod matching {label_selector}"
            hint = _explain(kube, namespace, pod, "") if pod is not None else None
            raise Timeout(f"timed out after {timeout:.0f}s waiting for the dev pod in {namespace}: {what}",
                          hint=hint)
        time.sleep(poll)


def observe(pod: Obj | None) -> PodProgress:
    if pod is None:
        return PodProgress(None, "", 0, 0, "waiting for a pod to be created")
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    ready = sum(1 for s in statuses if s.get("ready"))
    waiting = sorted({(s.get("state") or {}).get("waiting", {}).get("reason", "") for s in statuses} - {""})
    return PodProgress(pod["metadata"]["name"], status.get("phase", "Pending"), ready, total, ", ".join(waiting))


def diagnose(pod: Obj, events: list[Obj]) -> str:
    """Why the pod will not become ready by itself, or "" while there is still hope."""
    for s in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (s.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            message = waiting.get("message") or ""
            return f"container {s['name']}: {waiting['reason']}" + (f": {message}" if message else "")
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False" and "claim" in (
                cond.get("message") or "").lower():
            return f"unschedulable: {cond.get('message')}"
    for ev in events:
        if ev.get("reason") in ("FailedScheduling", "FailedMount", "ProvisioningFailed") and ev.get("count", 1) >= 3:
            return f"{ev['reason']}: {ev.get('message', '')}"
    if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
        return f"pod {pod['status']['phase'].lower()}"
    return ""


def _events(kube: KubeRest, namespace: str, pod: str) -> list[Obj]:
    events = kube.list(EVENTS, namespace, field_selector=f"involvedObject.name={pod}")
    return sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


def _explain(kube: KubeRest, namespace: str, pod: Obj, problem: str) -> str:
    name = pod["metadata"]["name"]
    lines = [f"dev pod {name} in {namespace} cannot start: {problem}" if problem else f"pod {name}:"]
    warnings = [e for e in _events(kube, namespace, name) if e.get("type") == "Warning"][-5:]
    lines += [f"  event {e.get('reason')}: {e.get('message', '')}" for e in warnings]
    for c in (pod.get("spec") or {}).get("containers") or []:
        tail = _log_tail(kube, namespace, name, c["name"])
        lines += [f"  log {c['name']}: {line}" for line in tail]
    return "\n".join(lines)


def _log_tail(kube: KubeRest, namespace: str, pod: str, container: str, lines: int = 5) -> list[str]:
    try:
        text = kube.pod_log(namespace, pod, container, tail_lines=lines)
    except ClusterError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]
