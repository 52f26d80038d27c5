"""StatefulSet controller: pods with stable names and claims, created and replaced in order.

Revisions are hashes of the pod template (``<set>-<hash>``, as in ``controller-revision-hash``);
no ControllerRevision objects are kept. Claims made from ``volumeClaimTemplates`` are never
deleted here: like the default retention policy, they outlive pods and scale-downs.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime

from nhdev.sandbox.controllers.base import Controller, Key
from nhdev.sandbox.controllers.hashing import template_hash
from nhdev.sandbox.controllers.owners import controlled_by, controller_keys
from nhdev.sandbox.controllers.pods import (
    create_pod,
    delete_pod,
    is_available,
    is_running_and_ready,
    is_terminating,
    next_availability_check,
    phase,
    pod_from_template,
)
from nhdev.sandbox.events import record_event

COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
REVISION_LABEL = "controller-revision-hash"


@dataclass
class StatefulSetPlan:
    create: list[int] = field(default_factory=list)  # ordinals
    delete: list[str] = field(default_factory=list)  # pod names
    status: dict = field(default_factory=dict)
    requeue_after: float | None = None


def update_revision(sts: dict) -> str:
    collisions = int((sts.get("status") or {}).get("collisionCount") or 0)
    return f"{sts['metadata']['name']}-{template_hash(sts['spec'].get('template') or {}, collisions)}"


def ordinal_of(sts: dict, pod: dict) -> int | None:
    match = re.fullmatch(re.escape(sts["metadata"]["name"]) + r"-(\d+)", pod["metadata"]["name"])
    return int(match.group(1)) if match else None


def pod_revision(pod: dict) -> str:
    return str((pod["metadata"].get("labels") or {}).get(REVISION_LABEL, ""))


def plan_stateful_set(sts: dict, pods: list[dict], now: datetime) -> StatefulSetPlan:
    """What to create and delete now, given the set's own pods (upstream's ordering rules)."""
    spec = sts["spec"]
    replicas = int(spec.get("replicas", 1))
    start = int((spec.get("ordinals") or {}).get("start") or 0)
    min_ready = int(spec.get("minReadySeconds") or 0)
    ordered = spec.get("podManagementPolicy", "OrderedReady") != "Parallel"
    revision = update_revision(sts)
    by_ordinal = {o: p for p in pods if (o := ordinal_of(sts, p)) is not None}
    wanted = range(start, start + replicas)
    condemned = sorted((o for o in by_ordinal if o not in wanted), reverse=True)

    def healthy(pod: dict) -> bool:
        return is_running_and_ready(pod) and is_available(pod, min_ready, now)

    plan = StatefulSetPlan()
    plan.status = stateful_set_status(sts, list(by_ordinal.values()), revision, min_ready, now)
    plan.requeue_after = next_availability_check(list(by_ordinal.values()), min_ready, now)
    if is_terminating(sts):
        return plan
    blocked = False
    for ordinal in wanted:
        pod = by_ordinal.get(ordinal)
        if pod is None:
            plan.create.append(ordinal)
            blocked = ordered
        elif phase(pod) == "Failed" and not is_terminating(pod):
            plan.delete.append(pod["metadata"]["name"])  # recreated on a later pass
            blocked = ordered
        elif not healthy(pod):
            blocked = ordered
        if blocked:
            return plan
    for ordinal in condemned:
        pod = by_ordinal[ordinal]
        if not is_terminating(pod):
            plan.delete.append(pod["metadata"]["name"])
        if ordered:
            return plan
    if condemned or plan.create or plan.delete:
        return plan
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for ordinal in reversed(wanted):
            if ordinal < start + partition:
                break
            pod = by_ordinal[ordinal]
            if pod_revision(pod) != revision and not is_terminating(pod):
                plan.delete.append(pod["metadata"]["name"])
                break
            if not healthy(pod):
                break
    return plan


def stateful_set_status(sts: dict, pods: list[dict], revision: str, min_ready: int, now: datetime) -> dict:
    previous = sts.get("status") or {}
    current_revision = previous.get("currentRevision") or revision
    live = [p for p in pods if not is_terminating(p)]
    replicas = int(sts["spec"].get("replicas", 1))
    status = {
        "observedGeneration": sts["metadata"].get("generation", 1),
        "replicas": len(live),
        "readyReplicas": sum(1 for p in pods if is_running_and_ready(p)),
        "availableReplicas": sum(1 for p in pods if is_running_and_ready(p) and is_available(p, min_ready, now)),
        "currentReplicas": sum(1 for p in live if pod_revision(p) == current_revision),
        "updatedReplicas": sum(1 for p in live if pod_revision(p) == revision),
        "currentRevision": current_revision,
        "updateRevision": revision,
        "collisionCount": int(previous.get("collisionCount") or 0),
    }
    rolled_out = status["updatedReplicas"] == status["replicas"] == replicas and status["readyReplicas"] == replicas
    if rolled_out:
        status["currentRevision"] = revision
        status["currentReplicas"] = status["updatedReplicas"]
    return status


def claim_name(claim_template: dict, sts: dict, ordinal: int) -> str:
    return f"{claim_template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"


def build_claim(claim_template: dict, sts: dict, ordinal: int) -> dict:
    template_meta = claim_template.get("metadata") or {}
    selector_labels = (sts["spec"].get("selector") or {}).get("matchLabels") or {}
    metadata: dict = {
        "name": claim_name(claim_template, sts, ordinal),
        "namespace": sts["metadata"]["namespace"],
        "labels": {**(template_meta.get("labels") or {}), **selector_labels},
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata,
        "spec": copy.deepcopy(claim_template.get("spec") or {}),
    }


def build_pod(sts: dict, ordinal: int, revision: str) -> dict:
    name = f"{sts['metadata']['name']}-{ordinal}"
    spec = sts["spec"]
    labels = {POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal), REVISION_LABEL: revision}
    pod = pod_from_template(spec.get("template") or {}, sts, name=name, extra_labels=labels)
    pod_spec = pod["spec"]
    pod_spec["hostname"] = name
    if spec.get("serviceName"):
        pod_spec["subdomain"] = spec["serviceName"]
    claims = spec.get("volumeClaimTemplates") or []
    claim_volumes = {
        c["metadata"]["name"]: {
            "name": c["metadata"]["name"],
            "persistentVolumeClaim": {"claimName": claim_name(c, sts, ordinal)},
        }
        for c in claims
    }
    volumes = [v for v in pod_spec.get("volumes") or [] if v.get("name") not in claim_volumes]
    if claim_volumes:
        pod_spec["volumes"] = volumes + list(claim_volumes.values())
    return pod


class StatefulSetController(Controller):
    name = "statefulset"
    resource = "statefulsets"

    def related(self) -> dict:
        return {"pods": controller_keys("StatefulSet")}

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        sts = self.store.try_get("statefulsets", namespace, name)
        if sts is None:
            return None
        pods = controlled_by(self.store.list("pods", namespace)[0], sts)
        plan = plan_stateful_set(sts, pods, self.clock.now())
        revision = plan.status["updateRevision"]
        for ordinal in plan.create:
            self._create_claims(sts, ordinal)
            pod_name = f"{name}-{ordinal}"
            create_pod(self.store, sts, build_pod(sts, ordinal, revision), COMPONENT,
                       f"create Pod {pod_name} in StatefulSet {name} successful")
        for pod_name in plan.delete:
            delete_pod(self.store, sts, pod_name, COMPONENT, f"delete Pod {pod_name} in StatefulSet {name} successful")
        self.write_status(key, plan.status)
        return plan.requeue_after

    def _create_claims(self, sts: dict, ordinal: int) -> None:
        namespace = sts["metadata"]["namespace"]
        pod_name = f"{sts['metadata']['name']}-{ordinal}"
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            claim = build_claim(template, sts, ordinal)
            if self.store.try_get("persistentvolumeclaims", namespace, claim["metadata"]["name"]) is not None:
                continue
            self.store.create("persistentvolumeclaims", namespace, claim)
            record_event(
                self.store, sts, "SuccessfulCreate",
                f"create Claim {claim['metadata']['name']} Pod {pod_name} in StatefulSet "
                f"{sts['metadata']['name']} success",
                component=COMPONENT,
            )
