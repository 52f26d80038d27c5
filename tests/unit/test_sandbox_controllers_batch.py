"""Jobs and CronJobs against a real Store; CronJobs on a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from nhdev.sandbox.controllers.clock import ManualClock
from tests.unit.sandbox_controllers_harness import Cluster, eventually, run_cluster, stays


def job(name: str = "task", **spec: object) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "task:v1"}]}},
            **spec,
        },
    }


def condition(cluster: Cluster, name: str, type_: str) -> dict | None:
    status = (cluster.find("jobs", name) or {}).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == type_ and c["status"] == "True"), None)


def test_job_runs_pods_until_completions_succeed(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("jobs", job(completions=3, parallelism=2))
        await eventually("complete", lambda: condition(cluster, "task", "Complete"))
        status = cluster.get("jobs", "task")["status"]
        assert status["succeeded"] == 3 and "active" not in status
        assert status["startTime"] and status["completionTime"]
        pods = cluster.items("pods")
        assert len(pods) == 3
        uid = cluster.get("jobs", "task")["metadata"]["uid"]
        for pod in pods:
            labels = pod["metadata"]["labels"]
            assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "task"
            assert labels["controller-uid"] == labels["batch.kubernetes.io/controller-uid"] == uid
            assert pod["spec"]["restartPolicy"] == "Never"
        assert ("Completed", "Job completed") in cluster.events()

    run_cluster(tmp_path, scenario, behaviour=lambda pod: "succeed")


def test_job_honours_parallelism(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("jobs", job(completions=5, parallelism=2))
        await eventually("two active", lambda: ((cluster.find("jobs", "task") or {}).get("status") or {})
                         .get("active") == 2)
        await stays("never more than two", lambda: len(cluster.items("pods")) == 2)

    run_cluster(tmp_path, scenario, behaviour=lambda pod: "running")


def test_job_fails_at_its_backoff_limit(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("jobs", job(backoffLimit=2))
        failed = await eventually("failed", lambda: condition(cluster, "task", "Failed"))
        assert failed["reason"] == "BackoffLimitExceeded"
        assert cluster.get("jobs", "task")["status"]["failed"] == 3
        await stays("no more pods", lambda: len(cluster.items("pods")) == 3)

    run_cluster(tmp_path, scenario, behaviour=lambda pod: "fail")


def test_job_past_its_active_deadline_fails_and_stops_its_pods(tmp_path: Path) -> None:
    clock = ManualClock()

    async def scenario(cluster: Cluster) -> None:
        cluster.create("jobs", job(activeDeadlineSeconds=30))
        await eventually("running", lambda: ((cluster.find("jobs", "task") or {}).get("status") or {}).get("active"))
        clock.advance(31)
        failed = await eventually("failed", lambda: condition(cluster, "task", "Failed"))
        assert failed["reason"] == "DeadlineExceeded"
        await eventually("pods stopped", lambda: not cluster.items("pods"))

    run_cluster(tmp_path, scenario, clock=clock, behaviour=lambda pod: "running")


def test_suspended_job_has_no_pods_until_resumed(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("jobs", job(suspend=True))
        await eventually("suspended", lambda: condition(cluster, "task", "Suspended"))
        await stays("no pods", lambda: not cluster.items("pods"))
        cluster.edit("jobs", "task", lambda j: j["spec"].__setitem__("suspend", False))
        await eventually("complete", lambda: condition(cluster, "task", "Complete"))

    run_cluster(tmp_path, scenario, behaviour=lambda pod: "succeed")


def test_finished_job_is_deleted_after_its_ttl(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("jobs", job(ttlSecondsAfterFinished=0))
        await eventually("job deleted", lambda: cluster.find("jobs", "task") is None)
        await eventually("its pods collected", lambda: not cluster.items("pods"))

    run_cluster(tmp_path, scenario, behaviour=lambda pod: "succeed")


# --- CronJob -------------------------------------------------------------------------------------


def cron_job(schedule: str = "*/5 * * * *", **spec: object) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {
                "metadata": {"labels": {"team": "data"}},
                "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                                               "containers": [{"name": "main", "image": "task:v1"}]}}},
            },
            **spec,
        },
    }


def next_multiple_of_five_minutes(moment: datetime) -> datetime:
    base = moment.replace(second=0, microsecond=0)
    return base + timedelta(minutes=5 - base.minute % 5)


def test_cron_job_creates_a_job_per_schedule_time(tmp_path: Path) -> None:
    clock = ManualClock(datetime.now(UTC))

    async def scenario(cluster: Cluster) -> None:
        cluster.create("cronjobs", cron_job())
        await eventually("cronjob seen", lambda: cluster.get("cronjobs", "nightly")["metadata"]["resourceVersion"])
        await stays("nothing before the schedule", lambda: not cluster.items("jobs"), seconds=0.2)
        first = next_multiple_of_five_minutes(clock.now())
        clock.set(first + timedelta(seconds=1))
        expected = f"nightly-{int(first.timestamp()) // 60}"
        await eventually("first job", lambda: cluster.names("jobs") == [expected])
        created = cluster.get("jobs", expected)
        assert created["metadata"]["labels"]["team"] == "data"
        assert created["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
        assert created["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
        status = cluster.get("cronjobs", "nightly")["status"]
        assert status["lastScheduleTime"] == first.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert [ref["name"] for ref in status["active"]] == [expected]
        clock.set(first + timedelta(minutes=5, seconds=1))
        await eventually("second job", lambda: len(cluster.items("jobs")) == 2)

    run_cluster(tmp_path, scenario, clock=clock, behaviour=lambda pod: "running")


def test_suspended_cron_job_creates_nothing(tmp_path: Path) -> None:
    clock = ManualClock(datetime.now(UTC))

    async def scenario(cluster: Cluster) -> None:
        cluster.create("cronjobs", cron_job("* * * * *", suspend=True))
        for _ in range(3):
            clock.advance(60)
            await stays("no job while suspended", lambda: not cluster.items("jobs"), seconds=0.1)
        cluster.edit("cronjobs", "nightly", lambda c: c["spec"].__setitem__("suspend", False))
        await eventually("a job once resumed", lambda: len(cluster.items("jobs")) == 1)

    run_cluster(tmp_path, scenario, clock=clock, behaviour=lambda pod: "running")


def test_cron_job_forbid_skips_while_a_job_runs_and_history_is_pruned(tmp_path: Path) -> None:
    clock = ManualClock(datetime.now(UTC))

    async def scenario(cluster: Cluster) -> None:
        cluster.create("cronjobs", cron_job("* * * * *", concurrencyPolicy="Forbid", successfulJobsHistoryLimit=1))
        clock.advance(60)
        await eventually("first job", lambda: len(cluster.items("jobs")) == 1)
        clock.advance(60)
        await stays("forbidden while the first runs", lambda: len(cluster.items("jobs")) == 1, seconds=0.2)
        cluster.kubelet.behaviour = lambda pod: "succeed"
        cluster.kubelet.revisit_running()

        def jobs_created() -> int:
            return sum(1 for reason, message in cluster.events() if message.startswith("Created job"))

        await eventually("the missed run once the first finished", lambda: jobs_created() == 2)
        clock.advance(60)
        await eventually("a third run", lambda: jobs_created() == 3)
        await eventually("history kept to the last success", lambda: len(cluster.items("jobs")) == 1)
        assert "SawCompletedJob" in {reason for reason, _ in cluster.events()}

    run_cluster(tmp_path, scenario, clock=clock, behaviour=lambda pod: "running")
