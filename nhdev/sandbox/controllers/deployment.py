"""Deployment controller: one ReplicaSet per pod template, rolled out by Recreate or RollingUpdate.

The planning half (:func:`plan_rollout`) is pure and follows the upstream controller step by step:
each sync makes one kind of move (create/scale up the new ReplicaSet, or scale old ones down) and
relies on the resulting ReplicaSet status changes to come back for the next move.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nhdev.sandbox.controllers.base import Controller, Key
from nhdev.sandbox.controllers.hashing import canonical_json, template_hash
from nhdev.sandbox.controllers.owners import (
    controlled_by,
    controller_keys,
    controller_reference,
    is_controlled_by,
    owner_reference,
)
from nhdev.sandbox.controllers.pods import TERMINAL_PHASES, is_terminating, phase
from nhdev.sandbox.events import format_timestamp, parse_timestamp, record_event
from nhdev.sandbox.store import AlreadyExistsError, NotFoundError

COMPONENT = "deployment-controller"
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# Deployment annotations that describe the deployment itself and are not copied to its ReplicaSets.
_NOT_COPIED = (LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS)

NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
RS_UPDATED = "ReplicaSetUpdated"
NEW_RS_CREATED = "NewReplicaSetCreated"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"


@dataclass
class RolloutPlan:
    create: dict | None = None  # the new ReplicaSet to create
    scale: dict[str, int] = field(default_factory=dict)  # ReplicaSet name -> replicas
    revisions: dict[str, str] = field(default_factory=dict)  # ReplicaSet name -> new revision
    delete: list[str] = field(default_factory=list)  # old ReplicaSets past revisionHistoryLimit
    deployment_revision: str | None = None
    status: dict = field(default_factory=dict)
    requeue_after: float | None = None


@dataclass
class _Rollout:
    """The working state of one plan: ReplicaSets with their replicas as planned so far."""

    deployment: dict
    new: dict | None
    old: list[dict]
    plan: RolloutPlan

    @property
    def replicas(self) -> int:
        return int(self.deployment["spec"].get("replicas", 1))

    def all(self) -> list[dict]:
        return ([self.new] if self.new else []) + self.old

    def scale(self, rs: dict, replicas: int) -> None:
        rs["spec"]["replicas"] = replicas
        if self.plan.create is not None and rs is self.new:
            self.plan.create["spec"]["replicas"] = replicas
        else:
            self.plan.scale[rs["metadata"]["name"]] = replicas


# --- pure planning -----------------------------------------------------------------------------


def resolve_int_or_percent(value: int | str | None, total: int, *, round_up: bool) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        scaled = int(text[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(text)


def surge_and_unavailable(deployment: dict) -> tuple[int, int]:
    """maxSurge and maxUnavailable as pod counts; Recreate allows neither."""
    spec = deployment["spec"]
    strategy = spec.get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, 0
    rolling = strategy.get("rollingUpdate") or {}
    replicas = int(spec.get("replicas", 1))
    surge = resolve_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = resolve_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # the API forbids both zero; be safe if it slipped through
    return surge, min(unavailable, replicas)


def revision_of(obj: dict) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def template_without_hash(template: dict) -> dict:
    stripped = copy.deepcopy(template)
    labels = (stripped.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return stripped


def same_template(a: dict, b: dict) -> bool:
    return canonical_json(template_without_hash(a)) == canonical_json(template_without_hash(b))


def find_new_replica_set(deployment: dict, replica_sets: list[dict], pod_hash: str) -> dict | None:
    live = [rs for rs in replica_sets if not is_terminating(rs)]
    template = deployment["spec"].get("template") or {}
    for rs in sorted(live, key=_age):
        if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == pod_hash:
            return rs
    for rs in sorted(live, key=_age):
        if same_template(rs["spec"].get("template") or {}, template):
            return rs
    return None


def build_replica_set(deployment: dict, pod_hash: str, revision: int, replicas: int) -> dict:
    spec = deployment["spec"]
    meta = deployment["metadata"]
    template = copy.deepcopy(spec.get("template") or {})
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
    selector = copy.deepcopy(spec.get("selector") or {})
    selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
    surge, _ = surge_and_unavailable(deployment)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_COPIED}
    annotations.update({
        REVISION: str(revision),
        DESIRED_REPLICAS: str(spec.get("replicas", 1)),
        MAX_REPLICAS: str(int(spec.get("replicas", 1)) + surge),
    })
    rs_spec: dict = {"replicas": replicas, "selector": selector, "template": template}
    if spec.get("minReadySeconds"):
        rs_spec["minReadySeconds"] = spec["minReadySeconds"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{meta['name']}-{pod_hash}",
            "namespace": meta["namespace"],
            "labels": dict(template["metadata"]["labels"]),
            "annotations": annotations,
            "ownerReferences": [owner_reference(deployment)],
        },
        "spec": rs_spec,
    }


def plan_rollout(deployment: dict, replica_sets: list[dict], pods: list[dict], now: datetime) -> RolloutPlan:
    """Everything the Deployment controller should do now, given the deployment's ReplicaSets and pods."""
    plan = RolloutPlan()
    spec = deployment["spec"]
    collision_count = int((deployment.get("status") or {}).get("collisionCount") or 0)
    pod_hash = template_hash(spec.get("template") or {}, collision_count)
    replica_sets = [copy.deepcopy(rs) for rs in replica_sets]
    new = find_new_replica_set(deployment, replica_sets, pod_hash)
    old = [rs for rs in replica_sets if rs is not new]
    rollout = _Rollout(deployment, new, old, plan)
    next_revision = max((revision_of(rs) for rs in old), default=0) + 1
    if new is not None and revision_of(new) < next_revision:
        plan.revisions[new["metadata"]["name"]] = str(next_revision)
    created = False

    if spec.get("paused"):
        _scale_while_paused(rollout)
    elif (spec.get("strategy") or {}).get("type") == "Recreate":
        created = _recreate(rollout, pods, pod_hash, next_revision)
    else:
        created = _rolling_update(rollout, pod_hash, next_revision)

    if rollout.new is not None:
        plan.deployment_revision = plan.revisions.get(
            rollout.new["metadata"]["name"], str(revision_of(rollout.new) or next_revision)
        )
    plan.status = deployment_status(deployment, rollout.new, rollout.old, now, created=created)
    if _is_complete(deployment, plan.status) or spec.get("paused"):
        plan.delete = _prunable(rollout.old, int(spec.get("revisionHistoryLimit", 10)))
    plan.requeue_after = _seconds_to_deadline(deployment, plan.status, now)
    return plan


def _scale_while_paused(rollout: _Rollout) -> None:
    """A paused deployment is only scaled, and only when one ReplicaSet is in use."""
    active = [rs for rs in rollout.all() if rs["spec"].get("replicas", 0) > 0]
    target = active[0] if len(active) == 1 else (rollout.new if not active else None)
    if target is not None and target["spec"].get("replicas", 0) != rollout.replicas:
        rollout.scale(target, rollout.replicas)


def _recreate(rollout: _Rollout, pods: list[dict], pod_hash: str, revision: int) -> bool:
    for rs in rollout.old:
        if rs["spec"].get("replicas", 0) != 0:
            rollout.scale(rs, 0)
    if rollout.plan.scale or _old_pods_running(rollout.old, pods):
        return False
    created = rollout.new is None
    if created:
        rollout.new = build_replica_set(rollout.deployment, pod_hash, revision, rollout.replicas)
        rollout.plan.create = rollout.new
    elif rollout.new is not None and rollout.new["spec"].get("replicas", 0) != rollout.replicas:
        rollout.scale(rollout.new, rollout.replicas)
    return created


def _old_pods_running(old: list[dict], pods: list[dict]) -> bool:
    if any((rs.get("status") or {}).get("replicas", 0) > 0 for rs in old):
        return True
    old_uids = {rs["metadata"]["uid"] for rs in old}
    return any(
        (controller_reference(pod) or {}).get("uid") in old_uids and phase(pod) not in TERMINAL_PHASES
        for pod in pods
    )


def _rolling_update(rollout: _Rollout, pod_hash: str, revision: int) -> bool:
    if rollout.new is None:
        rollout.new = build_replica_set(rollout.deployment, pod_hash, revision, 0)
        rollout.new["spec"]["replicas"] = _new_replicas(rollout)
        rollout.plan.create = rollout.new
        return True
    if _scale_new(rollout):
        return False
    _scale_down_old(rollout)
    return False


def _scale_new(rollout: _Rollout) -> bool:
    assert rollout.new is not None
    current = rollout.new["spec"].get("replicas", 0)
    target = rollout.replicas if current > rollout.replicas else _new_replicas(rollout)
    if target == current:
        return False
    rollout.scale(rollout.new, target)
    return True


def _new_replicas(rollout: _Rollout) -> int:
    surge, _ = surge_and_unavailable(rollout.deployment)
    current_new = rollout.new["spec"].get("replicas", 0) if rollout.new else 0
    total = sum(rs["spec"].get("replicas", 0) for rs in rollout.all())
    room = rollout.replicas + surge - total
    if room <= 0:
        return current_new
    return current_new + min(room, rollout.replicas - current_new)


def _scale_down_old(rollout: _Rollout) -> None:
    old = sorted((rs for rs in rollout.old if not is_terminating(rs)), key=_age)
    if sum(rs["spec"].get("replicas", 0) for rs in old) == 0:
        return
    _, max_unavailable = surge_and_unavailable(rollout.deployment)
    min_available = rollout.replicas - max_unavailable
    assert rollout.new is not None
    new_unavailable = rollout.new["spec"].get("replicas", 0) - _available(rollout.new)
    all_pods = sum(rs["spec"].get("replicas", 0) for rs in rollout.all())
    budget = all_pods - min_available - new_unavailable
    if budget <= 0:
        return
    # Unhealthy old pods go first: removing them costs no availability.
    for rs in old:
        if budget <= 0:
            break
        unhealthy = rs["spec"].get("replicas", 0) - _available(rs)
        cut = min(budget, max(unhealthy, 0))
        if cut > 0:
            rollout.scale(rs, rs["spec"]["replicas"] - cut)
            budget -= cut
    available = sum(_available(rs) for rs in rollout.all())
    allowed = available - min_available
    for rs in old:
        if allowed <= 0:
            break
        replicas = rs["spec"].get("replicas", 0)
        cut = min(replicas, allowed)
        if cut > 0:
            rollout.scale(rs, replicas - cut)
            allowed -= cut


def _available(rs: dict) -> int:
    return int((rs.get("status") or {}).get("availableReplicas") or 0)


def _age(rs: dict) -> tuple[str, str]:
    return (rs["metadata"].get("creationTimestamp") or "", rs["metadata"]["name"])


def _prunable(old: list[dict], history_limit: int) -> list[str]:
    cleanable = [
        rs for rs in old
        if not is_terminating(rs)
        and rs["spec"].get("replicas", 0) == 0
        and (rs.get("status") or {}).get("replicas", 0) == 0
    ]
    surplus = len(cleanable) - history_limit
    if surplus <= 0:
        return []
    cleanable.sort(key=lambda rs: (revision_of(rs), *_age(rs)))
    return [rs["metadata"]["name"] for rs in cleanable[:surplus]]


def deployment_status(
    deployment: dict, new: dict | None, old: list[dict], now: datetime, *, created: bool = False
) -> dict:
    spec = deployment["spec"]
    replicas = int(spec.get("replicas", 1))
    previous = deployment.get("status") or {}
    all_rs = ([new] if new else []) + old

    def total(field_name: str) -> int:
        return sum(int((rs.get("status") or {}).get(field_name) or 0) for rs in all_rs)

    available = total("availableReplicas")
    status: dict = {
        "observedGeneration": deployment["metadata"].get("generation", 1),
        "replicas": total("replicas"),
        "updatedReplicas": int(((new or {}).get("status") or {}).get("replicas") or 0),
        "readyReplicas": total("readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": max(sum(rs["spec"].get("replicas", 0) for rs in all_rs) - available, 0),
    }
    if previous.get("collisionCount"):
        status["collisionCount"] = previous["collisionCount"]
    conditions = [dict(c) for c in previous.get("conditions") or []]
    _, max_unavailable = surge_and_unavailable(deployment)
    if available >= replicas - max_unavailable:
        _set_condition(conditions, "Available", "True", "MinimumReplicasAvailable",
                       "Deployment has minimum availability.", now)
    else:
        _set_condition(conditions, "Available", "False", "MinimumReplicasUnavailable",
                       "Deployment does not have minimum availability.", now)
    _update_progressing(deployment, new, status, conditions, now, created)
    status["conditions"] = conditions
    return status


def _update_progressing(
    deployment: dict, new: dict | None, status: dict, conditions: list[dict], now: datetime, created: bool
) -> None:
    spec = deployment["spec"]
    current = _condition(conditions, "Progressing")
    rs_name = (new or {}).get("metadata", {}).get("name", "")
    if spec.get("paused"):
        if current is None or current.get("reason") != PAUSED:
            _set_condition(conditions, "Progressing", "Unknown", PAUSED, "Deployment is paused", now)
        return
    if current is not None and current.get("reason") == PAUSED:
        _set_condition(conditions, "Progressing", "Unknown", RESUMED, "Deployment is resumed", now)
        current = _condition(conditions, "Progressing")
    if created:
        _set_condition(conditions, "Progressing", "True", NEW_RS_CREATED,
                       f'Created new replica set "{rs_name}"', now)
        return
    already_complete = (
        status["replicas"] == status["updatedReplicas"]
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    )
    if already_complete:
        return
    if _is_complete(deployment, status):
        _set_condition(conditions, "Progressing", "True", NEW_RS_AVAILABLE,
                       f'ReplicaSet "{rs_name}" has successfully progressed.', now)
    elif _made_progress(deployment.get("status") or {}, status):
        _set_condition(conditions, "Progressing", "True", RS_UPDATED,
                       f'ReplicaSet "{rs_name}" is progressing.', now, force_update=True)
    elif _timed_out(deployment, current, now):
        _set_condition(conditions, "Progressing", "False", TIMED_OUT,
                       f'ReplicaSet "{rs_name}" has timed out progressing.', now)


def _is_complete(deployment: dict, status: dict) -> bool:
    replicas = int(deployment["spec"].get("replicas", 1))
    return (
        status["updatedReplicas"] == replicas
        and status["replicas"] == replicas
        and status["availableReplicas"] == replicas
        and status["observedGeneration"] >= deployment["metadata"].get("generation", 1)
    )


def _made_progress(before: dict, after: dict) -> bool:
    old_before = before.get("replicas", 0) - before.get("updatedReplicas", 0)
    old_after = after["replicas"] - after["updatedReplicas"]
    return (
        after["updatedReplicas"] > before.get("updatedReplicas", 0)
        or old_after < old_before
        or after["readyReplicas"] > before.get("readyReplicas", 0)
        or after["availableReplicas"] > before.get("availableReplicas", 0)
    )


def _deadline(deployment: dict, condition: dict | None) -> datetime | None:
    seconds = deployment["spec"].get("progressDeadlineSeconds")
    if seconds is None or condition is None or condition.get("reason") in (NEW_RS_AVAILABLE, TIMED_OUT, PAUSED):
        return None
    since = parse_timestamp(condition.get("lastUpdateTime"))
    return since + timedelta(seconds=int(seconds)) if since else None


def _timed_out(deployment: dict, condition: dict | None, now: datetime) -> bool:
    if condition is not None and condition.get("reason") == TIMED_OUT:
        return True
    deadline = _deadline(deployment, condition)
    return deadline is not None and deadline < now


def _seconds_to_deadline(deployment: dict, status: dict, now: datetime) -> float | None:
    deadline = _deadline(deployment, _condition(status["conditions"], "Progressing"))
    if deadline is None:
        return None
    return max((deadline - now).total_seconds(), 0.0) + 0.5


def _condition(conditions: list[dict], type_: str) -> dict | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def _set_condition(
    conditions: list[dict], type_: str, status: str, reason: str, message: str, now: datetime,
    *, force_update: bool = False,
) -> None:
    """Set a condition the way the upstream helpers do: same status keeps lastTransitionTime,
    same status and reason is no change at all (unless ``force_update``: progress was seen)."""
    current = _condition(conditions, type_)
    unchanged = current is not None and current.get("status") == status and current.get("reason") == reason
    if unchanged and not force_update:
        return
    stamp = format_timestamp(now)
    condition = {"type": type_, "status": status, "lastUpdateTime": stamp, "lastTransitionTime": stamp,
                 "reason": reason, "message": message}
    if current is not None:
        if current.get("status") == status:
            condition["lastTransitionTime"] = current.get("lastTransitionTime", stamp)
        conditions[conditions.index(current)] = condition
    else:
        conditions.append(condition)


# --- effects -----------------------------------------------------------------------------------


class DeploymentController(Controller):
    name = "deployment"
    resource = "deployments"

    def related(self) -> dict:
        return {"replicasets": controller_keys("Deployment"), "pods": self._deployment_of_pod}

    def _deployment_of_pod(self, pod: dict) -> list[Key]:
        ref = controller_reference(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return []
        namespace = pod["metadata"].get("namespace") or ""
        rs = self.store.try_get("replicasets", namespace, ref.get("name", ""))
        return controller_keys("Deployment")(rs) if rs else []

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        deployment = self.store.try_get("deployments", namespace, name)
        if deployment is None or is_terminating(deployment):
            return None
        replica_sets = controlled_by(self.store.list("replicasets", namespace)[0], deployment)
        pods = self.store.list("pods", namespace)[0]
        plan = plan_rollout(deployment, replica_sets, pods, self.clock.now())
        if plan.create is not None and not self._create(deployment, plan.create):
            return 0.0
        self._apply_revisions(namespace, plan.revisions)
        self._scale(deployment, replica_sets, plan.scale)
        self._prune(namespace, plan.delete)
        if plan.deployment_revision is not None:
            revision = plan.deployment_revision

            def annotate(obj: dict) -> None:
                obj["metadata"].setdefault("annotations", {})[REVISION] = revision

            self.store.mutate("deployments", namespace, name, annotate)
        self.write_status(key, plan.status)
        return plan.requeue_after

    def _create(self, deployment: dict, rs: dict) -> bool:
        """Create the new ReplicaSet; False when its name is taken by another object (hash collision)."""
        namespace = deployment["metadata"]["namespace"]
        try:
            created = self.store.create("replicasets", namespace, rs)
        except AlreadyExistsError:
            existing = self.store.try_get("replicasets", namespace, rs["metadata"]["name"])
            if existing is not None and is_controlled_by(existing, deployment):
                return True  # made by an earlier sync whose list did not see it yet
            self._bump_collision_count(deployment)
            return False
        replicas = created["spec"].get("replicas", 0)
        if replicas:
            record_event(self.store, deployment, "ScalingReplicaSet",
                         f"Scaled up replica set {created['metadata']['name']} to {replicas} from 0",
                         component=COMPONENT)
        return True

    def _bump_collision_count(self, deployment: dict) -> None:
        def bump(obj: dict) -> None:
            status = obj.setdefault("status", {})
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1

        meta = deployment["metadata"]
        self.store.mutate("deployments", meta["namespace"], meta["name"], bump, subresource="status")

    def _apply_revisions(self, namespace: str, revisions: dict[str, str]) -> None:
        for rs_name, revision in revisions.items():

            def set_revision(rs: dict, revision: str = revision) -> None:
                annotations = rs["metadata"].setdefault("annotations", {})
                previous = annotations.get(REVISION)
                if previous:
                    history = [h for h in annotations.get(REVISION_HISTORY, "").split(",") if h]
                    annotations[REVISION_HISTORY] = ",".join([*history, previous])
                annotations[REVISION] = revision

            self.store.mutate("replicasets", namespace, rs_name, set_revision)

    def _scale(self, deployment: dict, replica_sets: list[dict], targets: dict[str, int]) -> None:
        namespace = deployment["metadata"]["namespace"]
        replicas = int(deployment["spec"].get("replicas", 1))
        surge, _ = surge_and_unavailable(deployment)
        before = {rs["metadata"]["name"]: rs["spec"].get("replicas", 0) for rs in replica_sets}
        for rs_name, target in targets.items():

            def set_replicas(rs: dict, target: int = target) -> None:
                rs["spec"]["replicas"] = target
                annotations = rs["metadata"].setdefault("annotations", {})
                annotations[DESIRED_REPLICAS] = str(replicas)
                annotations[MAX_REPLICAS] = str(replicas + surge)

            self.store.mutate("replicasets", namespace, rs_name, set_replicas)
            previous = before.get(rs_name, 0)
            direction = "up" if target > previous else "down"
            record_event(self.store, deployment, "ScalingReplicaSet",
                         f"Scaled {direction} replica set {rs_name} to {target} from {previous}",
                         component=COMPONENT)

    def _prune(self, namespace: str, names: list[str]) -> None:
        for rs_name in names:
            try:
                self.store.delete("replicasets", namespace, rs_name)
            except NotFoundError:
                continue
