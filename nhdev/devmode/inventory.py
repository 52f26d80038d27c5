"""What is in dev mode, and what nhdev left behind: found by nhdev's labels and annotations only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nhdev.cluster.rest import Kind, KubeRest, Obj, kind_named
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
    entries = [entry for kind in WORKLOAD_KINDS for obj in kube.list(kind, namespace)
               if (entry := _dev_entry(kind, obj)) is not None]
    return sorted(entries, key=lambda e: (e.namespace, e.workload, e.mode))


def _dev_entry(kind: Kind, obj: Obj) -> DevEntry | None:
    """The dev-mode entry an object stands for: a workload in replace mode, or someone's duplicate."""
    owner = owner_of(obj)
    if owner is None:
        return None
    labels = obj["metadata"].get("labels") or {}
    ns = obj["metadata"].get("namespace", "")
    if labels.get(names.ROLE) == "duplicate":
        original = f"{labels.get(names.WORKLOAD_KIND, kind.kind.lower())}/{labels.get(names.DUPLICATE_OF)}"
        return DevEntry(ns, original, "duplicate", owner.get("identity", ""), owner.get("session", ""),
                        owner.get("since", ""), copy=f"{kind.kind.lower()}/{obj['metadata']['name']}")
    if labels.get(names.ROLE) == "generated":
        return None
    return DevEntry(ns, f"{kind.kind.lower()}/{obj['metadata']['name']}", owner.get("mode", "replace"),
                    owner.get("identity", ""), owner.get("session", ""), owner.get("since", ""))


def list_workloads(kube: KubeRest, namespace: str, identity: str) -> list[dict[str, Any]]:
    """Every workload a developer can put into dev mode in ``namespace``, each with its dev state.

    What nhdev generated (dev deployments, duplicates) is not listed on its own: a duplicate shows
    as a ``dev`` entry of its original. Pods and Jobs that something else owns are left out too.
    """
    rows: dict[str, dict[str, Any]] = {}
    entries: list[DevEntry] = []
    for kind in WORKLOAD_KINDS:
        for obj in kube.list(kind, namespace):
            if (entry := _dev_entry(kind, obj)) is not None:
                entries.append(entry)
            labels = obj["metadata"].get("labels") or {}
            if labels.get(names.ROLE) in ("generated", "duplicate") or obj["metadata"].get("ownerReferences"):
                continue
            ref = f"{kind.kind.lower()}/{obj['metadata']['name']}"
            rows[ref] = {"workload": ref, "kind": kind.kind.lower(), "name": obj["metadata"]["name"],
                         "namespace": namespace, "containers": [c["name"] for c in _containers(obj)],
                         "ports": [{"container": c["name"], "port": p["containerPort"], "name": p.get("name")}
                                   for c in _containers(obj) for p in c.get("ports") or [] if p.get("containerPort")],
                         "status": _readiness(kind, obj), "dev": []}
    for entry in entries:
        if entry.workload in rows:
            rows[entry.workload]["dev"].append({**entry.to_json(), "mine": entry.identity == identity})
    return [rows[ref] for ref in sorted(rows)]


def _containers(obj: Obj) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec") or {})
    pod_spec = spec if obj.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec") or {})
    return [c for c in pod_spec.get("containers") or [] if c.get("name") != names.SIDECAR_CONTAINER]


def _readiness(kind: Kind, obj: Obj) -> str:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind.kind in ("Deployment", "StatefulSet"):
        return f"{status.get('readyReplicas') or 0}/{spec.get('replicas', 1)} ready"
    if kind.kind == "DaemonSet":
        return f"{status.get('numberReady') or 0}/{status.get('desiredNumberScheduled') or 0} ready"
    if kind.kind == "Job":
        return f"{status.get('succeeded') or 0}/{spec.get('completions', 1)} done, {status.get('active') or 0} active"
    if kind.kind == "CronJob":
        return "suspended" if spec.get("suspend") else f"schedule {spec.get('schedule', '?')}"
    return str(status.get("phase") or "Unknown")


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

