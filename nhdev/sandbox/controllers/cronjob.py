"""CronJob controller: creates a Job for each schedule time, never while suspended.

Only the most recent missed schedule time is run (as upstream does); ``startingDeadlineSeconds``
bounds how late that may be. Jobs are named ``<cronjob>-<minutes since the epoch>`` so a schedule
time is never run twice, even if the status write that records it was lost.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nhdev.sandbox.controllers.base import Controller, Key
from nhdev.sandbox.controllers.cron import CronError, CronSchedule
from nhdev.sandbox.controllers.job import finished_condition
from nhdev.sandbox.controllers.owners import controlled_by, controller_keys, owner_reference
from nhdev.sandbox.controllers.pods import is_terminating
from nhdev.sandbox.events import format_timestamp, parse_timestamp, record_event
from nhdev.sandbox.store import AlreadyExistsError, NotFoundError

COMPONENT = "cronjob-controller"
SCHEDULED_AT = "batch.kubernetes.io/cronjob-scheduled-timestamp"


@dataclass
class CronPlan:
    """``run_at``: the schedule time to create a Job for now, if any."""

    run_at: datetime | None = None
    replace: list[str] = field(default_factory=list)  # active Jobs to delete first (Replace policy)
    prune: list[str] = field(default_factory=list)  # finished Jobs past the history limits
    status: dict = field(default_factory=dict)
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    requeue_after: float | None = None


def job_name(cronjob: dict, scheduled: datetime) -> str:
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def plan_cron_job(cronjob: dict, jobs: list[dict], now: datetime) -> CronPlan:
    """What to do now, given the cronjob's own Jobs and the time."""
    spec = cronjob["spec"]
    plan = CronPlan()
    active = [j for j in jobs if finished_condition(j) is None and not is_terminating(j)]
    plan.status = _status(cronjob, jobs, active, plan)
    plan.prune = _past_history_limits(spec, jobs)
    if is_terminating(cronjob) or spec.get("suspend"):
        return plan
    try:
        schedule = CronSchedule.parse(str(spec.get("schedule", "")))
        zone: tzinfo = ZoneInfo(spec["timeZone"]) if spec.get("timeZone") else UTC
    except CronError as exc:
        plan.events.append(("Warning", "UnparseableSchedule", f"unparseable schedule: {exc}"))
        return plan
    except (ZoneInfoNotFoundError, ValueError) as exc:
        plan.events.append(("Warning", "UnknownTimeZone", f"invalid timeZone {spec.get('timeZone')!r}: {exc}"))
        return plan
    plan.requeue_after = _seconds_to_next(schedule, zone, now)
    due = _most_recent_due(cronjob, schedule, zone, now)
    if due is None:
        return plan
    policy = spec.get("concurrencyPolicy", "Allow")
    if active and policy == "Forbid":
        return plan  # the Job watch brings us back when the active one finishes
    if policy == "Replace":
        plan.replace = [j["metadata"]["name"] for j in active]
    plan.run_at = due
    return plan


def _seconds_to_next(schedule: CronSchedule, zone: tzinfo, now: datetime) -> float | None:
    local_now = now.astimezone(zone).replace(tzinfo=None)
    upcoming = schedule.next_after(local_now)
    if upcoming is None:
        return None
    return max((_to_utc(upcoming, zone) - now).total_seconds(), 0.0)


def _most_recent_due(cronjob: dict, schedule: CronSchedule, zone: tzinfo, now: datetime) -> datetime | None:
    """The latest schedule time after the last one run (or creation), within the starting deadline."""
    meta, spec = cronjob["metadata"], cronjob["spec"]
    status = cronjob.get("status") or {}
    earliest = parse_timestamp(status.get("lastScheduleTime")) or parse_timestamp(meta.get("creationTimestamp"))
    if earliest is None:
        return None
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None:
        earliest = max(earliest, now - timedelta(seconds=int(deadline)))
    latest = schedule.latest_at_or_before(now.astimezone(zone).replace(tzinfo=None))
    if latest is None:
        return None
    due = _to_utc(latest, zone)
    return due if due > earliest else None


def _to_utc(local: datetime, zone: tzinfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def _status(cronjob: dict, jobs: list[dict], active: list[dict], plan: CronPlan) -> dict:
    status = dict(cronjob.get("status") or {})
    was_active = {ref.get("uid") for ref in status.get("active") or []}
    for job in jobs:
        finished = finished_condition(job)
        if finished is None or job["metadata"]["uid"] not in was_active:
            continue
        plan.events.append(("Normal", "SawCompletedJob",
                            f"Saw completed job: {job['metadata']['name']}, status: {finished['type']}"))
        if finished["type"] == "Complete":
            done_at = (job.get("status") or {}).get("completionTime") or finished.get("lastTransitionTime")
            if done_at and done_at > status.get("lastSuccessfulTime", ""):
                status["lastSuccessfulTime"] = done_at
    refs = [_object_reference(j) for j in active]
    if refs:
        status["active"] = refs
    else:
        status.pop("active", None)
    return status


def _object_reference(job: dict) -> dict:
    meta = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion", "")}


def _past_history_limits(spec: dict, jobs: list[dict]) -> list[str]:
    doomed = []
    for kind, limit_field, default in (("Complete", "successfulJobsHistoryLimit", 3),
                                       ("Failed", "failedJobsHistoryLimit", 1)):
        limit = spec.get(limit_field)
        limit = default if limit is None else int(limit)
        finished = [j for j in jobs if (finished_condition(j) or {}).get("type") == kind and not is_terminating(j)]
        finished.sort(key=_finished_at)
        doomed += [j["metadata"]["name"] for j in finished[: max(len(finished) - limit, 0)]]
    return doomed


def _finished_at(job: dict) -> str:
    status = job.get("status") or {}
    return str(status.get("completionTime") or (finished_condition(job) or {}).get("lastTransitionTime")
               or job["metadata"].get("creationTimestamp") or "")


def build_job(cronjob: dict, scheduled: datetime) -> dict:
    template = cronjob["spec"].get("jobTemplate") or {}
    template_meta = template.get("metadata") or {}
    annotations = {**(template_meta.get("annotations") or {}), SCHEDULED_AT: format_timestamp(scheduled)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(cronjob, scheduled),
            "namespace": cronjob["metadata"]["namespace"],
            "labels": dict(template_meta.get("labels") or {}),
            "annotations": annotations,
            "ownerReferences": [owner_reference(cronjob)],
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
    }


class CronJobController(Controller):
    name = "cronjob"
    resource = "cronjobs"

    def related(self) -> dict:
        return {"jobs": controller_keys("CronJob")}

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        cronjob = self.store.try_get("cronjobs", namespace, name)
        if cronjob is None:
            return None
        jobs = controlled_by(self.store.list("jobs", namespace)[0], cronjob)
        plan = plan_cron_job(cronjob, jobs, self.clock.now())
        for job_to_delete in plan.prune + plan.replace:
            self._delete_job(cronjob, job_to_delete)
        status = plan.status
        if plan.run_at is not None:
            job = self._create_job(cronjob, plan.run_at)
            status["lastScheduleTime"] = format_timestamp(plan.run_at)
            active = [ref for ref in status.get("active") or [] if ref["name"] not in plan.replace]
            if job is not None:
                active.append(_object_reference(job))
            status["active"] = active
        self.write_status(key, status)
        for type_, reason, message in plan.events:
            record_event(self.store, cronjob, reason, message, type=type_, component=COMPONENT)
        return plan.requeue_after

    def _create_job(self, cronjob: dict, scheduled: datetime) -> dict | None:
        try:
            job = self.store.create("jobs", cronjob["metadata"]["namespace"], build_job(cronjob, scheduled))
        except AlreadyExistsError:
            return None  # made for this schedule time already; only the status write was missing
        record_event(self.store, cronjob, "SuccessfulCreate", f"Created job {job['metadata']['name']}",
                     component=COMPONENT)
        return job

    def _delete_job(self, cronjob: dict, name: str) -> None:
        try:
            self.store.delete("jobs", cronjob["metadata"]["namespace"], name, propagation="Background")
        except NotFoundError:
            return
        record_event(self.store, cronjob, "SuccessfulDelete", f"Deleted job {name}", component=COMPONENT)
