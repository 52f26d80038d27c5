"""DaemonSet controller: one pod on the sandbox's single node, when the pod template fits the node.

Fitting follows the scheduler's hard rules: ``nodeSelector``, required node affinity and the node's
NoSchedule/NoExecute taints. A DaemonSet pinned elsewhere (what dev mode does to neutralise one)
gets its pod removed and reports ``desiredNumberScheduled: 0``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from nhdev.sandbox.controllers.base import Controller, Key, key_of
from nhdev.sandbox.controllers.hashing import template_hash
from nhdev.sandbox.controllers.owners import controlled_by, controller_keys
from nhdev.sandbox.controllers.pods import (
    NODE_NAME,
    create_pod,
    delete_pod,
    is_available,
    is_ready,
    is_terminating,
    next_availability_check,
    phase,
    pod_from_template,
)

COMPONENT = "daemonset-controller"
REVISION_LABEL = "controller-revision-hash"
TEMPLATE_GENERATION_LABEL = "pod-template-generation"
DEFAULT_NODE = {
    "metadata": {
        "name": NODE_NAME,
        "labels": {
            "kubernetes.io/hostname": NODE_NAME,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
        },
    },
    "spec": {},
}


@dataclass
class DaemonSetPlan:
    create: bool = False
    delete: list[str] = field(default_factory=list)
    status: dict = field(default_factory=dict)
    requeue_after: float | None = None


# --- node fit ------------------------------------------------------------------------------------


def fits_node(pod_spec: dict, node: dict) -> bool:
    labels = node["metadata"].get("labels") or {}
    selector = pod_spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return False
    affinity = ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if required is not None and not any(
        _term_matches(term, node) for term in required.get("nodeSelectorTerms") or []
    ):
        return False
    return all(_tolerated(taint, pod_spec.get("tolerations") or []) for taint in _hard_taints(node))


def _term_matches(term: dict, node: dict) -> bool:
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term selects nothing
    labels = node["metadata"].get("labels") or {}
    node_fields = {"metadata.name": node["metadata"]["name"]}
    return all(_requirement_matches(e, labels) for e in expressions) and all(
        _requirement_matches(f, node_fields) for f in fields
    )


def _requirement_matches(requirement: dict, values: dict[str, str]) -> bool:
    key, operator = requirement.get("key", ""), requirement.get("operator", "")
    wanted = requirement.get("values") or []
    present = key in values
    value = values.get(key)
    if operator == "In":
        return present and value in wanted
    if operator == "NotIn":
        return not present or value not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and wanted:
        try:
            number, bound = int(str(value)), int(wanted[0])
        except ValueError:
            return False
        return number > bound if operator == "Gt" else number < bound
    return False


def _hard_taints(node: dict) -> list[dict]:
    taints = (node.get("spec") or {}).get("taints") or []
    return [t for t in taints if t.get("effect") in ("NoSchedule", "NoExecute")]


def _tolerated(taint: dict, tolerations: list[dict]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        if toleration.get("operator") == "Exists":
            if not toleration.get("key") or toleration["key"] == taint.get("key"):
                return True
        elif toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


# --- planning ------------------------------------------------------------------------------------


def template_revision(ds: dict) -> str:
    collisions = int((ds.get("status") or {}).get("collisionCount") or 0)
    return template_hash(ds["spec"].get("template") or {}, collisions)


def plan_daemon_set(ds: dict, pods: list[dict], node: dict, now: datetime) -> DaemonSetPlan:
    """The pod ``ds`` should have on the node, given its own pods."""
    spec = ds["spec"]
    should_run = fits_node((spec.get("template") or {}).get("spec") or {}, node)
    revision = template_revision(ds)
    min_ready = int(spec.get("minReadySeconds") or 0)
    plan = DaemonSetPlan()
    live = [p for p in pods if not is_terminating(p)]
    if not is_terminating(ds):
        plan.delete, plan.create = _pod_moves(ds, live, pods, should_run, revision)
    running = [p for p in live if phase(p) != "Failed"]
    scheduled = [p for p in running if (p.get("spec") or {}).get("nodeName") == NODE_NAME]
    updated = [p for p in scheduled if _revision(p) == revision]
    available = [p for p in scheduled if is_available(p, min_ready, now)]
    desired = 1 if should_run else 0
    status = dict(ds.get("status") or {})
    status.update(
        observedGeneration=ds["metadata"].get("generation", 1),
        desiredNumberScheduled=desired,
        currentNumberScheduled=len(scheduled) if should_run else 0,
        numberMisscheduled=0 if should_run else len(scheduled),
        numberReady=sum(1 for p in scheduled if is_ready(p)) if should_run else 0,
        numberAvailable=len(available) if should_run else 0,
        numberUnavailable=max(desired - len(available), 0),
        updatedNumberScheduled=len(updated) if should_run else 0,
    )
    plan.status = status
    plan.requeue_after = next_availability_check(scheduled, min_ready, now)
    return plan


def _pod_moves(
    ds: dict, live: list[dict], pods: list[dict], should_run: bool, revision: str
) -> tuple[list[str], bool]:
    """(pods to delete, whether to create one)."""
    if not should_run:
        return [p["metadata"]["name"] for p in live], False
    failed = [p for p in live if phase(p) == "Failed"]
    keepers = sorted((p for p in live if phase(p) != "Failed"), key=lambda p: (_revision(p) != revision, _age(p)))
    doomed = [p["metadata"]["name"] for p in failed + keepers[1:]]
    strategy = (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
    if keepers and _revision(keepers[0]) != revision and strategy == "RollingUpdate":
        doomed.append(keepers[0]["metadata"]["name"])
    # A replacement waits until every old pod is really gone (terminating ones included): both
    # would claim the same host ports and paths.
    return doomed, not pods


def _revision(pod: dict) -> str:
    return str((pod["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))


def _age(pod: dict) -> str:
    return str(pod["metadata"].get("creationTimestamp") or "")


class DaemonSetController(Controller):
    name = "daemonset"
    resource = "daemonsets"

    def related(self) -> dict:
        return {"pods": controller_keys("DaemonSet"), "nodes": self._all_daemon_sets}

    def _all_daemon_sets(self, _node: dict) -> list[Key]:
        return [key_of(ds) for ds in self.store.list("daemonsets")[0]]

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        ds = self.store.try_get("daemonsets", namespace, name)
        if ds is None:
            return None
        node = self.store.try_get("nodes", None, NODE_NAME) or DEFAULT_NODE
        pods = controlled_by(self.store.list("pods", namespace)[0], ds)
        plan = plan_daemon_set(ds, pods, node, self.clock.now())
        for pod_name in plan.delete:
            delete_pod(self.store, ds, pod_name, COMPONENT)
        if plan.create:
            self._create_pod(ds)
        self.write_status(key, plan.status)
        return plan.requeue_after

    def _create_pod(self, ds: dict) -> None:
        labels = {
            REVISION_LABEL: template_revision(ds),
            TEMPLATE_GENERATION_LABEL: str(ds["metadata"].get("generation", 1)),
        }
        pod = pod_from_template(ds["spec"].get("template") or {}, ds, extra_labels=labels)
        pod["spec"]["nodeName"] = NODE_NAME
        create_pod(self.store, ds, pod, COMPONENT)
