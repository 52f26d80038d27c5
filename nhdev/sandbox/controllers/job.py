"""Job controller: runs pods until enough succeed, or gives up (backoff limit, active deadline).

Succeeded and failed counts never go down, even when finished pods are deleted, since they are
kept in the Job's status as upstream does with its pod-tracking finalizers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from nhdev.sandbox.controllers.base import Controller, Key
from nhdev.sandbox.controllers.owners import controlled_by, controller_keys
from nhdev.sandbox.controllers.pods import (
    create_pod,
    delete_pod,
    deletion_rank,
    is_active,
    is_ready,
    is_terminating,
    phase,
    pod_from_template,
)
from nhdev.sandbox.events import format_timestamp, parse_timestamp, record_event

COMPONENT = "job-controller"
UID_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid")
NAME_LABELS = ("job-name", "batch.kubernetes.io/job-name")
DEFAULT_BACKOFF_LIMIT = 6


@dataclass
class JobPlan:
    create: int = 0
    delete: list[str] = field(default_factory=list)
    delete_job: bool = False
    status: dict = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    requeue_after: float | None = None


def finished_condition(job: dict) -> dict | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return dict(condition)
    return None


def plan_job(job: dict, pods: list[dict], now: datetime) -> JobPlan:
    """What the Job controller should do now, given the job's own pods."""
    spec = job["spec"]
    status = dict(job.get("status") or {})
    conditions = [dict(c) for c in status.get("conditions") or []]
    plan = JobPlan()
    active = [p for p in pods if is_active(p)]
    finished = finished_condition(job)
    if finished is not None:
        plan.delete = [p["metadata"]["name"] for p in active]
        _plan_expiry(job, finished, plan, now)
        status["active"] = 0
        plan.status = _without_zero_counts(status)
        return plan

    stamp = format_timestamp(now)
    succeeded = max(int(status.get("succeeded") or 0), sum(1 for p in pods if phase(p) == "Succeeded"))
    failed = max(int(status.get("failed") or 0), sum(1 for p in pods if phase(p) == "Failed"))
    status.update(succeeded=succeeded, failed=failed)

    if spec.get("suspend"):
        plan.delete = [p["metadata"]["name"] for p in active]
        if _set_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", stamp):
            plan.events.append(("Normal", "Suspended", "Job suspended"))
        status.update(active=0, ready=0, conditions=conditions)
        plan.status = _without_zero_counts(status)
        return plan
    if _set_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", stamp, only_if_present=True):
        plan.events.append(("Normal", "Resumed", "Job resumed"))
        status["startTime"] = stamp
    status.setdefault("startTime", stamp)

    failure = _failure(job, status, active, now)
    if failure is not None:
        reason, message = failure
        plan.delete = [p["metadata"]["name"] for p in active]
        _set_condition(conditions, "Failed", "True", reason, message, stamp)
        plan.events.append(("Warning", reason, message))
        active = []
    elif _is_complete(spec, succeeded, active):
        plan.delete = [p["metadata"]["name"] for p in active]
        _set_condition(conditions, "Complete", "True", "", "", stamp)
        status["completionTime"] = stamp
        plan.events.append(("Normal", "Completed", "Job completed"))
        active = []
    elif not is_terminating(job):
        surplus = len(active) - _wanted_active(spec, succeeded)
        if surplus < 0:
            plan.create = -surplus
        elif surplus > 0:
            plan.delete = [p["metadata"]["name"] for p in sorted(active, key=deletion_rank)[:surplus]]
        plan.requeue_after = _seconds_to_deadline(spec, status, now)
    kept = [p for p in active if p["metadata"]["name"] not in plan.delete]
    status.update(active=len(kept), ready=sum(1 for p in kept if is_ready(p)), conditions=conditions)
    plan.status = _without_zero_counts(status)
    return plan


def _failure(job: dict, status: dict, active: list[dict], now: datetime) -> tuple[str, str] | None:
    spec = job["spec"]
    deadline = _seconds_to_deadline(spec, status, now)
    if deadline is not None and deadline <= 0:
        return "DeadlineExceeded", "Job was active longer than specified deadline"
    limit = int(spec.get("backoffLimit", DEFAULT_BACKOFF_LIMIT))
    if status["failed"] > limit or _restarts_past_limit(spec, active, limit):
        return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
    return None


def _restarts_past_limit(spec: dict, active: list[dict], limit: int) -> bool:
    """With restartPolicy OnFailure, failures are container restarts in the running pods."""
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = sum(
        int(s.get("restartCount") or 0)
        for pod in active
        for key in ("initContainerStatuses", "containerStatuses")
        for s in (pod.get("status") or {}).get(key) or []
    )
    return restarts > 0 if limit == 0 else restarts >= limit


def _is_complete(spec: dict, succeeded: int, active: list[dict]) -> bool:
    completions = spec.get("completions")
    if completions is None:  # a work queue: done once one pod succeeded and the others finished
        return succeeded > 0 and not active
    return succeeded >= int(completions)


def _wanted_active(spec: dict, succeeded: int) -> int:
    parallelism = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    if completions is None:
        return 0 if succeeded > 0 else parallelism
    return max(min(parallelism, int(completions) - succeeded), 0)


def _seconds_to_deadline(spec: dict, status: dict, now: datetime) -> float | None:
    seconds = spec.get("activeDeadlineSeconds")
    started = parse_timestamp(status.get("startTime"))
    if seconds is None or started is None:
        return None
    return (started + timedelta(seconds=int(seconds)) - now).total_seconds()


def _plan_expiry(job: dict, finished: dict, plan: JobPlan, now: datetime) -> None:
    ttl = job["spec"].get("ttlSecondsAfterFinished")
    status = job.get("status") or {}
    finished_at = parse_timestamp(status.get("completionTime") or finished.get("lastTransitionTime"))
    if ttl is None or finished_at is None or is_terminating(job):
        return
    remaining = (finished_at + timedelta(seconds=int(ttl)) - now).total_seconds()
    if remaining <= 0:
        plan.delete_job = True
    else:
        plan.requeue_after = remaining


def _set_condition(
    conditions: list[dict], type_: str, status: str, reason: str, message: str, stamp: str,
    *, only_if_present: bool = False,
) -> bool:
    """Set a condition; True when it changed."""
    current = next((c for c in conditions if c.get("type") == type_), None)
    if current is None and only_if_present:
        return False
    if current is not None and current.get("status") == status:
        return False
    condition = {"type": type_, "status": status, "lastProbeTime": stamp, "lastTransitionTime": stamp}
    if reason:
        condition.update(reason=reason, message=message)
    if current is None:
        conditions.append(condition)
    else:
        conditions[conditions.index(current)] = condition
    return True


def _without_zero_counts(status: dict) -> dict:
    """Upstream omits zero counters (``omitempty``); kubectl shows them the same either way."""
    return {k: v for k, v in status.items() if not (k in ("active", "ready", "succeeded", "failed") and not v)}


class JobController(Controller):
    name = "job"
    resource = "jobs"

    def related(self) -> dict:
        return {"pods": controller_keys("Job")}

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        job = self.store.try_get("jobs", namespace, name)
        if job is None:
            return None
        pods = controlled_by(self.store.list("pods", namespace)[0], job)
        plan = plan_job(job, pods, self.clock.now())
        if plan.delete_job:
            self.store.delete("jobs", namespace, name, propagation="Background",
                              preconditions={"uid": job["metadata"]["uid"]})
            return None
        for _ in range(plan.create):
            self._create_pod(job)
        for pod_name in plan.delete:
            delete_pod(self.store, job, pod_name, COMPONENT)
        self.write_status(key, plan.status)
        for type_, reason, message in plan.events:
            record_event(self.store, job, reason, message, type=type_, component=COMPONENT)
        return plan.requeue_after

    def _create_pod(self, job: dict) -> None:
        meta = job["metadata"]
        labels = {**dict.fromkeys(UID_LABELS, meta["uid"]), **dict.fromkeys(NAME_LABELS, meta["name"])}
        create_pod(self.store, job, pod_from_template(job["spec"].get("template") or {}, job, extra_labels=labels),
                   COMPONENT)
