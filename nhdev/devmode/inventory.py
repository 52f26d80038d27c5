"""What is in dev mode, and what nhdev left behind: found by nhdev's labels and annotations only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.devmode import names
from nhdev.devmode.engine import WorkloadRef, owner_of

WORKLOAD_KINDS = tuple(kind_named(k) for k in ("deployment", "statefulset", "daemonset", "job", "cronjob", "pod"))
SECRETS, PVCS = kind_named("secret"), kind_named("pvc")


@dataclass(frozen=True)
class DevEntry:
    namespace: str
    workload: str
    mode: str
    identity: str
    session: str
    since: str
    copy: str | None = None  # the duplicate's own name

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_dev_mode(kube: KubeRest, namespace: str | None) -> list[DevEntry]:
    """Workloads in replace mode (owner annotation) and duplicates (labels), in ``namespace`` or all."""
    entries: list[DevEntry] = []
    for kind in WORKLOAD_KINDS:
        for obj in kube.list(kind, namespace):
            owner = owner_of(obj)
            if owner is None:
                continue
            labels = obj["metadata"].get("labels") or {}
            ns = obj["metadata"].get("namespace", "")
            if labels.get(names.ROLE) == "duplicate":
                original = f"{labels.get(names.WORKLOAD_KIND, kind.kind.lower())}/{labels.get(names.DUPLICATE_OF)}"
                entries.append(DevEntry(ns, original, "duplicate", owner.get("identity", ""),
                                        owner.get("session", ""), owner.get("since", ""),
                                        copy=f"{kind.kind.lower()}/{obj['metadata']['name']}"))
            elif labels.get(names.ROLE) != "generated":
                entries.append(DevEntry(ns, f"{kind.kind.lower()}/{obj['metadata']['name']}",
                                        owner.get("mode", "replace"), owner.get("identity", ""),
                                        owner.get("session", ""), owner.get("since", "")))
    return sorted(entries, key=lambda e: (e.namespace, e.workload, e.mode))


def workload_status(kube: KubeRest, namespace: str, ref: WorkloadRef, identity: str) -> dict[str, Any]:
    """Mode, owner, pod and containers ready: what ``nhdev dev status`` shows."""
    live = kube.get(ref.kind, namespace, ref.name)
    owner = owner_of(live)
    entries = [e for e in list_dev_mode(kube, namespace) if e.workload == str(ref)]
    status: dict[str, Any] = {"workload": str(ref), "namespace": namespace, "inDevMode": bool(entries),
                              "sessions": []}
    for entry in entries:
        pods = kube.list(kind_named("pod"), namespace, label_selector=f"{names.SESSION}={entry.session}")
        pod = max(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)
        status["sessions"].append({**entry.to_json(), "mine": entry.identity == identity,
                                   "pod": _pod_summary(pod)})
    if owner is None and not entries:
        status["mode"] = None
    return status


def _pod_summary(pod: Obj | None) -> dict[str, Any] | None:
    if pod is None:
        return None
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return {"name": pod["metadata"]["name"], "phase": (pod.get("status") or {}).get("phase"),
            "containers": {s["name"]: bool(s.get("ready")) for s in statuses},
            "started": (pod.get("status") or {}).get("startTime")}


def plan_cleanup(kube: KubeRest, namespace: str | None, *, pvcs: bool, now: float | None = None) -> list[Obj]:
    """What ``nhdev cleanup`` deletes: expired duplicates, keys of sessions that are gone, backups of
    workloads that no longer exist, and (only when asked) cache PVCs. Never anything without nhdev's label."""
    now = time.time() if now is None else now
    doomed: list[Obj] = []
    managed = f"{names.MANAGED_BY}=nhdev"
    live_sessions: set[str] = set()
    for kind in WORKLOAD_KINDS:
        for obj in kube.list(kind, namespace):
            owner = owner_of(obj)
            if owner is None:
                continue
            expires = (obj["metadata"].get("annotations") or {}).get(names.EXPIRES)
            if expires and _epoch(expires) <= now:
                doomed.append(obj)
                continue
            live_sessions.add(str(owner.get("session", "")))
    for secret in kube.list(SECRETS, namespace, label_selector=managed):
        labels = secret["metadata"].get("labels") or {}
        role = labels.get(names.ROLE)
        stale_keys = role == "keys" and labels.get(names.SESSION) not in live_sessions
        if stale_keys or (role == "backup" and _backup_orphaned(kube, secret)):
            doomed.append(secret)
    if pvcs:
        doomed += kube.list(PVCS, namespace, label_selector=f"{managed},{names.ROLE}=cache")
    return doomed


def _backup_orphaned(kube: KubeRest, secret: Obj) -> bool:
    labels = secret["metadata"].get("labels") or {}
    try:
        kind = kind_named(labels.get(names.WORKLOAD_KIND, ""))
    except KeyError:
        return False
    return kube.try_get(kind, secret["metadata"]["namespace"], labels.get(names.WORKLOAD_NAME, "")) is None


def _epoch(rfc3339: str) -> float:
    return time.mktime(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone

