"""The controllers' pure planning functions, without a store or a loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nhdev.sandbox.controllers.cron import CronError, CronSchedule
from nhdev.sandbox.controllers.cronjob import plan_cron_job
from nhdev.sandbox.controllers.daemonset import fits_node
from nhdev.sandbox.controllers.deployment import (
    HASH_LABEL,
    plan_rollout,
    resolve_int_or_percent,
    surge_and_unavailable,
)
from nhdev.sandbox.controllers.endpoints import build_subsets
from nhdev.sandbox.controllers.hashing import template_hash
from nhdev.sandbox.controllers.job import plan_job
from nhdev.sandbox.controllers.pods import deletion_rank
from nhdev.sandbox.controllers.pvc import parse_quantity
from nhdev.sandbox.controllers.replicaset import plan_replica_set
from nhdev.sandbox.controllers.statefulset import plan_stateful_set, update_revision
from nhdev.sandbox.events import format_timestamp

NOW = datetime(2030, 5, 17, 12, 0, 30, tzinfo=UTC)
STAMP = format_timestamp(NOW - timedelta(minutes=5))


def meta(name: str, **extra: object) -> dict:
    return {"name": name, "namespace": "default", "uid": f"uid-{name}", "generation": 1,
            "creationTimestamp": STAMP, **extra}


def template(image: str = "app:v1") -> dict:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "main", "image": image}]}}


def ready_pod(name: str, owner_uid: str | None = None, *, ready: bool = True, node: bool = True,
              phase: str = "Running", created: str = STAMP, labels: dict | None = None) -> dict:
    metadata = meta(name, creationTimestamp=created, labels=labels or {"app": "web"})
    if owner_uid:
        metadata["ownerReferences"] = [{"uid": owner_uid, "controller": True, "kind": "ReplicaSet", "name": "rs"}]
    return {
        "metadata": metadata,
        "spec": {"nodeName": "nhdev-sandbox"} if node else {},
        "status": {"phase": phase, "podIP": "127.0.0.1", "conditions": [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": STAMP}]},
    }


# --- Deployment ----------------------------------------------------------------------------------


def a_deployment(replicas: int = 4, image: str = "app:v1", **strategy: object) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"),
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": template(image),
                 "strategy": strategy or {"type": "RollingUpdate",
                                          "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "progressDeadlineSeconds": 600, "revisionHistoryLimit": 10},
    }


def a_replica_set(deployment: dict, replicas: int, available: int, revision: int) -> dict:
    pod_hash = template_hash(deployment["spec"]["template"])
    tmpl = template(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
    tmpl["metadata"]["labels"][HASH_LABEL] = pod_hash
    return {
        "metadata": meta(f"web-{pod_hash}", labels={"app": "web", HASH_LABEL: pod_hash},
                         annotations={"deployment.kubernetes.io/revision": str(revision)},
                         ownerReferences=[{"uid": "uid-web", "controller": True, "kind": "Deployment"}]),
        "spec": {"replicas": replicas, "template": tmpl},
        "status": {"replicas": replicas, "readyReplicas": available, "availableReplicas": available},
    }


@pytest.mark.parametrize(("value", "total", "round_up", "expected"), [
    (2, 10, True, 2), ("25%", 10, True, 3), ("25%", 10, False, 2), ("100%", 3, False, 3), ("0%", 5, True, 0),
])
def test_resolve_int_or_percent(value: int | str, total: int, round_up: bool, expected: int) -> None:
    assert resolve_int_or_percent(value, total, round_up=round_up) == expected


def test_surge_and_unavailable_never_both_zero() -> None:
    d = a_deployment(type="RollingUpdate", rollingUpdate={"maxSurge": 0, "maxUnavailable": "10%"})
    assert surge_and_unavailable(d) == (0, 1)
    assert surge_and_unavailable(a_deployment(type="Recreate")) == (0, 0)


def test_new_deployment_plans_a_replica_set_with_revision_one() -> None:
    plan = plan_rollout(a_deployment(replicas=4), [], [], NOW)
    assert plan.create is not None
    assert plan.create["spec"]["replicas"] == 4
    assert plan.create["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert plan.deployment_revision == "1"
    assert plan.status["conditions"][-1]["reason"] == "NewReplicaSetCreated"


def test_rolling_update_first_surges_then_scales_old_down_by_availability() -> None:
    old_deployment = a_deployment(replicas=4)
    old = a_replica_set(old_deployment, replicas=4, available=4, revision=1)
    new_deployment = a_deployment(replicas=4, image="app:v2")
    first = plan_rollout(new_deployment, [old], [], NOW)
    assert first.create is not None and first.create["spec"]["replicas"] == 1  # maxSurge 25% of 4
    assert first.create["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert not first.scale

    new = a_replica_set(new_deployment, replicas=1, available=0, revision=2)
    second = plan_rollout(new_deployment, [old, new], [], NOW)
    assert second.scale == {old["metadata"]["name"]: 3}  # maxUnavailable 1: one old pod may go

    old["spec"]["replicas"] = old["status"]["availableReplicas"] = 3
    third = plan_rollout(new_deployment, [old, new], [], NOW)
    assert third.scale == {new["metadata"]["name"]: 2}


def test_recreate_scales_old_down_and_waits_for_their_pods() -> None:
    old_deployment = a_deployment(replicas=2, type="Recreate")
    old = a_replica_set(old_deployment, replicas=2, available=2, revision=1)
    new_deployment = a_deployment(replicas=2, image="app:v2", type="Recreate")
    first = plan_rollout(new_deployment, [old], [], NOW)
    assert first.scale == {old["metadata"]["name"]: 0} and first.create is None

    old["spec"]["replicas"] = old["status"]["replicas"] = 0
    lingering = ready_pod("web-old-1", owner_uid=old["metadata"]["uid"])
    assert plan_rollout(new_deployment, [old], [lingering], NOW).create is None
    created = plan_rollout(new_deployment, [old], [], NOW).create
    assert created is not None and created["spec"]["replicas"] == 2


def test_complete_deployment_reports_new_replica_set_available() -> None:
    d = a_deployment(replicas=2)
    rs = a_replica_set(d, replicas=2, available=2, revision=1)
    plan = plan_rollout(d, [rs], [], NOW)
    conditions = {c["type"]: c for c in plan.status["conditions"]}
    assert conditions["Available"]["status"] == "True"
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert plan.status["updatedReplicas"] == plan.status["availableReplicas"] == 2


def test_stuck_rollout_exceeds_its_progress_deadline() -> None:
    d = a_deployment(replicas=1)
    d["spec"]["progressDeadlineSeconds"] = 60
    rs = a_replica_set(d, replicas=1, available=0, revision=1)
    long_ago = format_timestamp(NOW - timedelta(seconds=120))
    d["status"] = {"replicas": 1, "updatedReplicas": 1, "conditions": [
        {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
         "lastUpdateTime": long_ago, "lastTransitionTime": long_ago}]}
    plan = plan_rollout(d, [rs], [], NOW)
    progressing = next(c for c in plan.status["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


# --- ReplicaSet ----------------------------------------------------------------------------------


def a_plain_replica_set(replicas: int) -> dict:
    return {"metadata": meta("rs"), "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                                             "template": template()}}


def test_replica_set_plan_counts_only_live_pods_and_adopts_orphans() -> None:
    rs = a_plain_replica_set(3)
    owned = ready_pod("a", "uid-rs")
    terminating = ready_pod("b", "uid-rs")
    terminating["metadata"]["deletionTimestamp"] = STAMP
    orphan = ready_pod("c")
    plan = plan_replica_set(rs, [owned, terminating, orphan], NOW)
    assert plan.adopt == ["c"] and plan.create == 1
    assert plan.status["replicas"] == 2 and plan.status["readyReplicas"] == 2


def test_replica_set_deletes_unready_and_newest_pods_first() -> None:
    rs = a_plain_replica_set(1)
    old_ready = ready_pod("old", "uid-rs", created="2030-01-01T00:00:00Z")
    new_ready = ready_pod("new", "uid-rs", created="2030-01-02T00:00:00Z")
    unready = ready_pod("unready", "uid-rs", ready=False, created="2029-01-01T00:00:00Z")
    plan = plan_replica_set(rs, [old_ready, new_ready, unready], NOW)
    assert plan.delete == ["unready", "new"]
    assert sorted([old_ready, ready_pod("pending", "uid-rs", node=False)], key=deletion_rank)[0]["metadata"][
        "name"] == "pending"


def test_replica_set_releases_a_relabelled_pod() -> None:
    plan = plan_replica_set(a_plain_replica_set(1), [ready_pod("a", "uid-rs", labels={"app": "debug"})], NOW)
    assert plan.release == ["a"] and plan.create == 1


def test_min_ready_seconds_delays_availability_and_asks_to_look_again() -> None:
    rs = a_plain_replica_set(1)
    rs["spec"]["minReadySeconds"] = 600
    plan = plan_replica_set(rs, [ready_pod("a", "uid-rs")], NOW)
    assert plan.status["readyReplicas"] == 1 and plan.status["availableReplicas"] == 0
    assert plan.requeue_after is not None and 0 < plan.requeue_after <= 300


# --- StatefulSet ---------------------------------------------------------------------------------


def a_stateful_set(replicas: int, policy: str = "OrderedReady") -> dict:
    return {"metadata": meta("db"), "spec": {"replicas": replicas, "podManagementPolicy": policy,
                                             "template": template(), "updateStrategy": {"type": "RollingUpdate"}}}


def sts_pod(sts: dict, ordinal: int, *, ready: bool = True, revision: str | None = None) -> dict:
    pod = ready_pod(f"db-{ordinal}", "uid-db", ready=ready)
    pod["metadata"]["labels"]["controller-revision-hash"] = revision or update_revision(sts)
    return pod


def test_ordered_stateful_set_creates_one_pod_at_a_time() -> None:
    sts = a_stateful_set(3)
    assert plan_stateful_set(sts, [], NOW).create == [0]
    assert plan_stateful_set(sts, [sts_pod(sts, 0, ready=False)], NOW).create == []
    assert plan_stateful_set(sts, [sts_pod(sts, 0)], NOW).create == [1]
    assert plan_stateful_set(a_stateful_set(3, "Parallel"), [], NOW).create == [0, 1, 2]


def test_stateful_set_scales_down_from_the_highest_ordinal() -> None:
    sts = a_stateful_set(1)
    plan = plan_stateful_set(sts, [sts_pod(sts, i) for i in range(3)], NOW)
    assert plan.delete == ["db-2"]


def test_stateful_set_rolling_update_deletes_the_highest_outdated_pod() -> None:
    sts = a_stateful_set(3)
    pods = [sts_pod(sts, i, revision="db-old") for i in range(3)]
    assert plan_stateful_set(sts, pods, NOW).delete == ["db-2"]
    pods[2] = sts_pod(sts, 2, ready=False)
    assert plan_stateful_set(sts, pods, NOW).delete == []  # wait for the updated pod to be ready


# --- DaemonSet node fit --------------------------------------------------------------------------

NODE = {"metadata": {"name": "nhdev-sandbox", "labels": {"kubernetes.io/hostname": "nhdev-sandbox",
                                                        "kubernetes.io/os": "linux"}}, "spec": {}}


def required_terms(*terms: dict) -> dict:
    return {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": list(terms)}}}}


@pytest.mark.parametrize(("pod_spec", "fits"), [
    ({}, True),
    ({"nodeSelector": {"kubernetes.io/os": "linux"}}, True),
    ({"nodeSelector": {"kubernetes.io/hostname": "elsewhere"}}, False),
    (required_terms({"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                           "values": ["nhdev-sandbox"]}]}), True),
    (required_terms({"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                           "values": ["nope"]}]}), False),
    (required_terms({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["nhdev-sandbox"]}]}), True),
    (required_terms({}), False),
])
def test_fits_node(pod_spec: dict, fits: bool) -> None:
    assert fits_node(pod_spec, NODE) is fits


def test_taints_need_tolerations() -> None:
    tainted = {**NODE, "spec": {"taints": [{"key": "dedicated", "value": "ci", "effect": "NoSchedule"}]}}
    assert not fits_node({}, tainted)
    assert fits_node({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ci"}]}, tainted)
    assert fits_node({"tolerations": [{"operator": "Exists"}]}, tainted)


# --- Job -----------------------------------------------------------------------------------------


def a_job(**spec: object) -> dict:
    return {"metadata": meta("task"), "spec": {"completions": 2, "parallelism": 2, "backoffLimit": 1,
                                               "template": {"spec": {"restartPolicy": "Never"}}, **spec}}


def test_job_plan_creates_up_to_parallelism_and_counts_outcomes() -> None:
    plan = plan_job(a_job(), [], NOW)
    assert plan.create == 2 and plan.status["startTime"]
    done = ready_pod("a", "uid-task", phase="Succeeded")
    plan = plan_job(a_job(), [done, ready_pod("b", "uid-task")], NOW)
    assert plan.create == 0 and plan.status["succeeded"] == 1 and plan.status["active"] == 1


def test_job_plan_fails_past_backoff_limit() -> None:
    failures = [ready_pod(n, "uid-task", phase="Failed") for n in ("a", "b")]
    plan = plan_job(a_job(), failures, NOW)
    [failed] = [c for c in plan.status["conditions"] if c["type"] == "Failed"]
    assert failed["reason"] == "BackoffLimitExceeded"


def test_job_plan_counts_restarts_with_on_failure() -> None:
    job = a_job(backoffLimit=2, template={"spec": {"restartPolicy": "OnFailure"}})
    crashing = ready_pod("a", "uid-task")
    crashing["status"]["containerStatuses"] = [{"name": "main", "restartCount": 2}]
    plan = plan_job(job, [crashing], NOW)
    assert plan.delete == ["a"]
    assert any(c["type"] == "Failed" for c in plan.status["conditions"])


# --- cron ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("expression", "after", "expected"), [
    ("*/15 * * * *", datetime(2030, 1, 1, 10, 7), datetime(2030, 1, 1, 10, 15)),
    ("0 9-17/4 * * mon-fri", datetime(2030, 1, 4, 17, 0), datetime(2030, 1, 7, 9, 0)),  # Fri -> Mon
    ("30 2 1 jan,jul *", datetime(2030, 2, 1), datetime(2030, 7, 1, 2, 30)),
    ("@daily", datetime(2030, 12, 31, 23, 59), datetime(2031, 1, 1, 0, 0)),
    ("@hourly", datetime(2030, 1, 1, 10, 0), datetime(2030, 1, 1, 11, 0)),
    ("0 0 29 2 *", datetime(2030, 3, 1), datetime(2032, 2, 29)),
    ("0 0 13 * 5", datetime(2030, 1, 1), datetime(2030, 1, 4)),  # both day fields: either matches
    ("0 0 * * 7", datetime(2030, 1, 1), datetime(2030, 1, 6)),  # 7 is Sunday
])
def test_cron_next_after(expression: str, after: datetime, expected: datetime) -> None:
    assert CronSchedule.parse(expression).next_after(after) == expected


def test_cron_latest_at_or_before() -> None:
    schedule = CronSchedule.parse("0 */6 * * *")
    assert schedule.latest_at_or_before(datetime(2030, 1, 1, 11, 59, 30)) == datetime(2030, 1, 1, 6, 0)
    assert schedule.latest_at_or_before(datetime(2030, 1, 1, 6, 0)) == datetime(2030, 1, 1, 6, 0)
    assert CronSchedule.parse("0 0 30 2 *").next_after(datetime(2030, 1, 1)) is None


@pytest.mark.parametrize("expression", ["* * * *", "60 * * * *", "* * * * mon-", "5-1 * * * *", "@every 5m",
                                        "*/0 * * * *", "? * * * *"])
def test_cron_rejects_invalid_expressions(expression: str) -> None:
    with pytest.raises(CronError):
        CronSchedule.parse(expression)


def a_cron_job(**spec: object) -> dict:
    return {"metadata": meta("nightly", creationTimestamp="2030-05-17T10:00:00Z"),
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {}}, **spec}}


def test_cron_plan_runs_only_the_most_recent_missed_time() -> None:
    plan = plan_cron_job(a_cron_job(), [], NOW)
    assert plan.run_at == datetime(2030, 5, 17, 12, 0, tzinfo=UTC)
    assert plan.requeue_after == pytest.approx(3600 - 30)


def test_cron_plan_honours_suspend_deadline_and_time_zone() -> None:
    assert plan_cron_job(a_cron_job(suspend=True), [], NOW).run_at is None
    late = NOW + timedelta(minutes=10)
    assert plan_cron_job(a_cron_job(startingDeadlineSeconds=60), [], late).run_at is None
    zoned = plan_cron_job(a_cron_job(schedule="0 14 * * *", timeZone="Europe/Paris"), [], NOW)
    assert zoned.run_at == datetime(2030, 5, 17, 12, 0, tzinfo=UTC)  # 14:00 CEST


# --- endpoints, hashing, quantities ----------------------------------------------------------------


def test_endpoint_subsets_group_pods_by_their_resolved_ports() -> None:
    service = {"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
                                                     "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    a = ready_pod("a")
    a["spec"]["containers"] = [{"name": "main", "ports": [{"name": "http", "containerPort": 8080}]}]
    b = ready_pod("b", ready=False)
    b["spec"]["containers"] = [{"name": "main", "ports": [{"name": "http", "containerPort": 9090}]}]
    c = ready_pod("c")  # no port named http: not an endpoint
    subsets = build_subsets(service, [a, b, c])
    assert [(s["ports"][0]["port"], list(s)) for s in subsets] == [
        (8080, ["addresses", "ports"]), (9090, ["notReadyAddresses", "ports"])]


def test_template_hash_is_stable_and_short() -> None:
    assert template_hash(template()) == template_hash(template())
    assert template_hash(template()) != template_hash(template("app:v2"))
    assert template_hash(template(), 1) != template_hash(template())
    assert 1 <= len(template_hash(template())) <= 10
    restored = template()
    restored["metadata"]["creationTimestamp"] = None  # what `kubectl rollout undo` sends
    assert template_hash(restored) == template_hash(template())


@pytest.mark.parametrize(("text", "expected"), [("1Gi", 2**30), ("500M", 500 * 10**6), ("1.5G", 1.5e9), ("junk", 0)])
def test_parse_quantity(text: str, expected: float) -> None:
    assert parse_quantity(text) == pytest.approx(expected)
