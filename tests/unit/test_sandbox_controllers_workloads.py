"""Deployments, ReplicaSets, StatefulSets, DaemonSets and garbage collection against a real Store."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from nhdev.sandbox.controllers.deployment import REVISION
from nhdev.sandbox.store import WatchEvent
from tests.unit.sandbox_controllers_harness import (
    NODE,
    Cluster,
    deployment,
    eventually,
    run_cluster,
    set_image,
    set_pod_status,
    stays,
)


def rolled_out(cluster: Cluster, name: str = "web") -> bool:
    """What `kubectl rollout status` checks before printing "successfully rolled out"."""
    d = cluster.find("deployments", name)
    if d is None:
        return False
    status, replicas = d.get("status") or {}, d["spec"]["replicas"]
    progressing: dict = next((c for c in status.get("conditions") or [] if c["type"] == "Progressing"), {})
    return (
        status.get("observedGeneration", 0) >= d["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas
        and status.get("replicas") == replicas
        and status.get("availableReplicas") == replicas
        and progressing.get("reason") == "NewReplicaSetAvailable"
    )


def pod_hashes(cluster: Cluster) -> set[str]:
    return {p["metadata"]["labels"]["pod-template-hash"] for p in cluster.items("pods")}


def test_deployment_creates_replica_set_and_pods(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=3))
        await eventually("rollout", lambda: rolled_out(cluster))
        [rs] = cluster.items("replicasets")
        pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
        assert rs["metadata"]["name"] == f"web-{pod_hash}"
        assert re.fullmatch(r"[a-z0-9]{6,10}", pod_hash)
        assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
        [owner] = rs["metadata"]["ownerReferences"]
        assert owner["kind"] == "Deployment" and owner["controller"] and owner["blockOwnerDeletion"]
        assert rs["metadata"]["annotations"][REVISION] == "1"
        assert cluster.get("deployments", "web")["metadata"]["annotations"][REVISION] == "1"
        pods = cluster.items("pods")
        assert len(pods) == 3
        for pod in pods:
            assert pod["metadata"]["name"].startswith(f"web-{pod_hash}-")
            assert len(pod["metadata"]["name"]) == len(f"web-{pod_hash}-") + 5
            assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
            assert pod["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"]
        status = cluster.get("deployments", "web")["status"]
        assert status["readyReplicas"] == 3 and status["unavailableReplicas"] == 0
        assert {c["type"]: c["status"] for c in status["conditions"]} == {"Available": "True", "Progressing": "True"}
        assert ("ScalingReplicaSet", f"Scaled up replica set web-{pod_hash} to 3 from 0") in cluster.events()

    run_cluster(tmp_path, scenario)


def test_rolling_update_replaces_pods_within_surge_and_unavailability(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=4, strategy={
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
        await eventually("first rollout", lambda: rolled_out(cluster))
        [old_hash] = pod_hashes(cluster)
        most_pods = [0]

        def count_pods(_: WatchEvent) -> None:
            live = [p for p in cluster.items("pods") if not p["metadata"].get("deletionTimestamp")]
            most_pods[0] = max(most_pods[0], len(live))

        watch = cluster.store.watch("pods", "default", resource_version=str(cluster.store.resource_version))
        cluster.edit("deployments", "web", set_image("app:v2"))

        async def observe() -> None:
            async for event in watch:
                count_pods(event)

        observer = asyncio.create_task(observe())
        await eventually("second rollout", lambda: rolled_out(cluster) and len(pod_hashes(cluster)) == 1
                         and pod_hashes(cluster) != {old_hash} and len(cluster.items("pods")) == 4, timeout=10)
        watch.close()
        await observer
        assert most_pods[0] <= 5  # replicas + maxSurge
        d = cluster.get("deployments", "web")
        assert d["metadata"]["annotations"][REVISION] == "2"
        replica_sets = {rs["metadata"]["labels"]["pod-template-hash"]: rs for rs in cluster.items("replicasets")}
        assert replica_sets[old_hash]["spec"]["replicas"] == 0
        progressing = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
        assert progressing["reason"] == "NewReplicaSetAvailable"

    run_cluster(tmp_path, scenario)


def test_rolling_update_waits_for_readiness(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=2, strategy={
            "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}))
        await eventually("first rollout", lambda: rolled_out(cluster))
        cluster.kubelet.behaviour = lambda pod: "running"  # new pods never become ready
        cluster.edit("deployments", "web", set_image("app:v2"))
        await eventually("a surge pod", lambda: len(cluster.items("pods")) == 3)
        await stays("old pods are kept while the new one is not ready",
                    lambda: len([p for p in cluster.items("pods") if not p["metadata"].get("deletionTimestamp")]) == 3)
        status = cluster.get("deployments", "web")["status"]
        progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
        assert progressing["reason"] in ("ReplicaSetUpdated", "NewReplicaSetCreated")
        cluster.kubelet.behaviour = lambda pod: "ready"
        for pod in cluster.items("pods"):
            if pod["status"]["conditions"][0]["status"] == "False":
                set_pod_status(cluster.store, "default", pod["metadata"]["name"], "ready")
        await eventually("rollout completes", lambda: rolled_out(cluster) and len(cluster.items("pods")) == 2)

    run_cluster(tmp_path, scenario)


def test_recreate_removes_every_old_pod_before_creating_new_ones(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=2, strategy={"type": "Recreate"}))
        await eventually("first rollout", lambda: rolled_out(cluster))
        [old_hash] = pod_hashes(cluster)
        cluster.kubelet.finish_terminations = False  # old pods linger in Terminating
        cluster.edit("deployments", "web", set_image("app:v2"))
        await eventually("old pods terminating", lambda: all(
            p["metadata"].get("deletionTimestamp") for p in cluster.items("pods")) and cluster.items("pods"))
        await stays("no new pod while old ones terminate", lambda: pod_hashes(cluster) == {old_hash})
        cluster.kubelet.resume_terminations()
        await eventually("new pods", lambda: rolled_out(cluster) and len(cluster.items("pods")) == 2)
        assert old_hash not in pod_hashes(cluster)

    run_cluster(tmp_path, scenario)


def test_scaling_resizes_the_current_replica_set_without_a_new_revision(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=2))
        await eventually("rollout", lambda: rolled_out(cluster))
        cluster.edit("deployments", "web", lambda d: d["spec"].__setitem__("replicas", 5))
        await eventually("scaled up", lambda: rolled_out(cluster) and len(cluster.items("pods")) == 5)
        cluster.edit("deployments", "web", lambda d: d["spec"].__setitem__("replicas", 1))
        await eventually("scaled down", lambda: rolled_out(cluster) and len(cluster.items("pods")) == 1)
        [rs] = cluster.items("replicasets")
        assert rs["spec"]["replicas"] == 1
        assert rs["metadata"]["annotations"][REVISION] == "1"
        assert cluster.get("deployments", "web")["metadata"]["annotations"][REVISION] == "1"

    run_cluster(tmp_path, scenario)


def test_rollback_to_an_old_template_reuses_its_replica_set_with_a_new_revision(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=1))
        await eventually("v1", lambda: rolled_out(cluster))
        [first] = cluster.names("replicasets")
        cluster.edit("deployments", "web", set_image("app:v2"))
        await eventually("v2", lambda: rolled_out(cluster) and len(pod_hashes(cluster)) == 1
                         and f"web-{next(iter(pod_hashes(cluster)))}" != first)
        cluster.edit("deployments", "web", set_image("app:v1"))
        await eventually("back to v1", lambda: rolled_out(cluster)
                         and {f"web-{h}" for h in pod_hashes(cluster)} == {first})
        assert len(cluster.items("replicasets")) == 2
        reused = cluster.get("replicasets", first)
        assert reused["metadata"]["annotations"][REVISION] == "3"
        assert reused["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
        assert cluster.get("deployments", "web")["metadata"]["annotations"][REVISION] == "3"

    run_cluster(tmp_path, scenario)


def test_paused_deployment_does_not_roll_out(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=1))
        await eventually("rollout", lambda: rolled_out(cluster))
        [old_hash] = pod_hashes(cluster)

        def pause_and_change(d: dict) -> None:
            d["spec"]["paused"] = True
            set_image("app:v2")(d)

        cluster.edit("deployments", "web", pause_and_change)
        await eventually("paused condition", lambda: any(
            c.get("reason") == "DeploymentPaused" for c in cluster.get("deployments", "web")["status"]["conditions"]))
        await stays("no new replica set", lambda: len(cluster.items("replicasets")) == 1 and
                    pod_hashes(cluster) == {old_hash})
        cluster.edit("deployments", "web", lambda d: d["spec"].__setitem__("paused", False))
        await eventually("resumed rollout", lambda: rolled_out(cluster) and pod_hashes(cluster) != {old_hash}
                         and len(cluster.items("pods")) == 1)

    run_cluster(tmp_path, scenario)


def test_revision_history_limit_prunes_old_replica_sets(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=1, revisionHistoryLimit=1))
        for version in ("v2", "v3", "v4"):
            await eventually("rollout", lambda: rolled_out(cluster))
            cluster.edit("deployments", "web", set_image(f"app:{version}"))
        await eventually("pruned", lambda: rolled_out(cluster) and len(cluster.items("replicasets")) == 2)
        revisions = sorted(int(rs["metadata"]["annotations"][REVISION]) for rs in cluster.items("replicasets"))
        assert revisions == [3, 4]

    run_cluster(tmp_path, scenario)


def test_deleting_a_deployment_collects_its_replica_sets_and_pods(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=2))
        await eventually("rollout", lambda: rolled_out(cluster))
        cluster.store.delete("deployments", "default", "web")
        await eventually("everything gone", lambda: not cluster.items("replicasets") and not cluster.items("pods"))

    run_cluster(tmp_path, scenario)


def test_foreground_deletion_removes_dependents_first(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=2))
        await eventually("rollout", lambda: rolled_out(cluster))
        since = str(cluster.store.resource_version)
        watches = {r: cluster.store.watch(r, "default", resource_version=since)
                   for r in ("pods", "replicasets", "deployments")}
        cluster.kubelet.finish_terminations = False
        cluster.store.delete("deployments", "default", "web", propagation="Foreground")
        await eventually("pods terminating", lambda: cluster.items("pods") and all(
            p["metadata"].get("deletionTimestamp") for p in cluster.items("pods")))
        await stays("owners wait for their pods", lambda: cluster.find("deployments", "web") is not None
                    and len(cluster.items("replicasets")) == 1)
        assert "foregroundDeletion" in cluster.get("deployments", "web")["metadata"]["finalizers"]
        cluster.kubelet.resume_terminations()
        await eventually("deployment gone", lambda: cluster.find("deployments", "web") is None)
        deleted_at: dict[str, int] = {}
        for resource, watch in watches.items():
            watch.close()
            async for event in watch:
                if event.type == "DELETED":
                    deleted_at[resource] = max(deleted_at.get(resource, 0),
                                               int(event.object["metadata"]["resourceVersion"]))
        assert deleted_at["pods"] < deleted_at["replicasets"] < deleted_at["deployments"]

    run_cluster(tmp_path, scenario)


def test_orphan_deletion_keeps_dependents_without_the_owner_reference(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("deployments", deployment(replicas=1))
        await eventually("rollout", lambda: rolled_out(cluster))
        cluster.store.delete("deployments", "default", "web", propagation="Orphan")
        await eventually("deployment gone", lambda: cluster.find("deployments", "web") is None)
        [rs] = cluster.items("replicasets")
        assert not rs["metadata"].get("ownerReferences")
        await stays("pods stay", lambda: len(cluster.items("pods")) == 1)

    run_cluster(tmp_path, scenario)


def test_replica_set_replaces_deleted_pods_and_prefers_deleting_unready_ones(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        rs = deployment("cache", replicas=3)
        rs.update(kind="ReplicaSet")
        cluster.create("replicasets", rs)
        await eventually("3 pods", lambda: (cluster.get("replicasets", "cache")["status"] or {})
                         .get("readyReplicas") == 3)
        victim = cluster.names("pods")[0]
        cluster.store.delete("pods", "default", victim, grace_period_seconds=0)
        await eventually("replacement", lambda: len(cluster.names("pods")) == 3 and victim not in cluster.names("pods"))
        await eventually("all ready", lambda: cluster.get("replicasets", "cache")["status"]["readyReplicas"] == 3)
        unready = cluster.names("pods")[1]
        set_pod_status(cluster.store, "default", unready, "running")
        cluster.edit("replicasets", "cache", lambda r: r["spec"].__setitem__("replicas", 2))
        await eventually("scaled down", lambda: len(cluster.names("pods")) == 2)
        assert unready not in cluster.names("pods")
        status = cluster.get("replicasets", "cache")["status"]
        assert status["replicas"] == 2 and status["fullyLabeledReplicas"] == 2
        assert status["observedGeneration"] == cluster.get("replicasets", "cache")["metadata"]["generation"]

    run_cluster(tmp_path, scenario)


# --- StatefulSet ---------------------------------------------------------------------------------


def stateful_set(replicas: int = 3, image: str = "db:v1", **spec: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": replicas,
            "serviceName": "db",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "main", "image": image,
                                         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
            **spec,
        },
    }


def test_stateful_set_creates_pods_in_order_with_their_claims(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.kubelet.behaviour = lambda pod: "running"  # not ready: creation must wait
        cluster.create("statefulsets", stateful_set(replicas=3))
        await eventually("db-0", lambda: cluster.names("pods") == ["db-0"])
        await stays("db-1 waits for db-0 to be ready", lambda: cluster.names("pods") == ["db-0"])
        assert cluster.names("persistentvolumeclaims") == ["data-db-0"]
        pod = cluster.get("pods", "db-0")
        assert pod["spec"]["hostname"] == "db-0" and pod["spec"]["subdomain"] == "db"
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}} in pod["spec"]["volumes"]
        labels = pod["metadata"]["labels"]
        assert labels["statefulset.kubernetes.io/pod-name"] == "db-0"
        assert labels["controller-revision-hash"].startswith("db-")
        set_pod_status(cluster.store, "default", "db-0", "ready")
        await eventually("db-1", lambda: cluster.names("pods") == ["db-0", "db-1"])
        await stays("db-2 waits for db-1 to be ready", lambda: cluster.names("pods") == ["db-0", "db-1"])
        cluster.kubelet.behaviour = lambda pod: "ready"
        set_pod_status(cluster.store, "default", "db-1", "ready")
        await eventually("all ready", lambda: (cluster.get("statefulsets", "db")["status"] or {})
                         .get("readyReplicas") == 3)
        assert cluster.names("persistentvolumeclaims") == ["data-db-0", "data-db-1", "data-db-2"]
        status = cluster.get("statefulsets", "db")["status"]
        assert status["currentRevision"] == status["updateRevision"] == labels["controller-revision-hash"]

    run_cluster(tmp_path, scenario)


def test_stateful_set_scales_down_in_reverse_and_keeps_claims(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("statefulsets", stateful_set(replicas=3))
        await eventually("3 ready", lambda: (cluster.get("statefulsets", "db")["status"] or {})
                         .get("readyReplicas") == 3)
        cluster.kubelet.finish_terminations = False
        cluster.edit("statefulsets", "db", lambda s: s["spec"].__setitem__("replicas", 1))
        await eventually("db-2 terminating", lambda: (cluster.find("pods", "db-2") or {}).get(
            "metadata", {}).get("deletionTimestamp"))
        await stays("db-1 waits for db-2", lambda: not cluster.get("pods", "db-1")["metadata"].get("deletionTimestamp"))
        cluster.kubelet.resume_terminations()
        await eventually("scaled down", lambda: cluster.names("pods") == ["db-0"])
        assert cluster.names("persistentvolumeclaims") == ["data-db-0", "data-db-1", "data-db-2"]

    run_cluster(tmp_path, scenario)


def test_stateful_set_rolling_update_replaces_pods_from_the_highest_ordinal(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("statefulsets", stateful_set(replicas=2))
        await eventually("ready", lambda: (cluster.get("statefulsets", "db")["status"] or {})
                         .get("readyReplicas") == 2)
        old_revision = cluster.get("statefulsets", "db")["status"]["currentRevision"]
        recreated: list[str] = []
        watch = cluster.store.watch("pods", "default", resource_version=str(cluster.store.resource_version))
        cluster.edit("statefulsets", "db", set_image("db:v2"))

        def done() -> bool:
            status = cluster.get("statefulsets", "db")["status"]
            return (status["updateRevision"] != old_revision and status["currentRevision"] == status["updateRevision"]
                    and status["readyReplicas"] == 2 and status["updatedReplicas"] == 2)

        await eventually("rolled", done, timeout=10)
        watch.close()
        async for event in watch:
            if event.type == "ADDED":
                recreated.append(event.object["metadata"]["name"])
        assert recreated == ["db-1", "db-0"]
        images = {p["spec"]["containers"][0]["image"] for p in cluster.items("pods")}
        assert images == {"db:v2"}

    run_cluster(tmp_path, scenario)


# --- DaemonSet -----------------------------------------------------------------------------------


def daemon_set(**pod_spec: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent"},
        "spec": {
            "selector": {"matchLabels": {"app": "agent"}},
            "template": {
                "metadata": {"labels": {"app": "agent"}},
                "spec": {"containers": [{"name": "main", "image": "agent:v1"}], **pod_spec},
            },
        },
    }


def ds_status(cluster: Cluster) -> dict:
    return (cluster.find("daemonsets", "agent") or {}).get("status") or {}


def test_daemon_set_pod_follows_its_node_selector(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("daemonsets", daemon_set(nodeSelector={"kubernetes.io/os": "linux"}))
        await eventually("a ready daemon pod", lambda: ds_status(cluster).get("numberReady") == 1)
        [pod] = cluster.items("pods")
        assert pod["spec"]["nodeName"] == NODE
        assert pod["metadata"]["name"].startswith("agent-") and len(pod["metadata"]["name"]) == len("agent-") + 5
        assert ds_status(cluster)["desiredNumberScheduled"] == 1
        assert ds_status(cluster)["updatedNumberScheduled"] == 1

        def pin_elsewhere(ds: dict) -> None:
            ds["spec"]["template"]["spec"]["nodeSelector"] = {"kubernetes.io/hostname": "nowhere"}

        cluster.edit("daemonsets", "agent", pin_elsewhere)
        await eventually("pod gone", lambda: not cluster.items("pods"))
        await eventually("nothing desired", lambda: ds_status(cluster).get("desiredNumberScheduled") == 0
                         and ds_status(cluster).get("currentNumberScheduled") == 0)

        def unpin(ds: dict) -> None:
            ds["spec"]["template"]["spec"].pop("nodeSelector")

        cluster.edit("daemonsets", "agent", unpin)
        await eventually("pod back", lambda: ds_status(cluster).get("numberAvailable") == 1)

    run_cluster(tmp_path, scenario)


def test_daemon_set_pinned_away_by_node_affinity_has_no_pod(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["nhdev-none"]}]}]}}}
        cluster.create("daemonsets", daemon_set(affinity=affinity))
        await eventually("status", lambda: ds_status(cluster).get("observedGeneration") == 1)
        await stays("no pod", lambda: not cluster.items("pods"))
        assert ds_status(cluster)["desiredNumberScheduled"] == 0

    run_cluster(tmp_path, scenario)


def test_daemon_set_rolls_its_pod_on_template_change(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("daemonsets", daemon_set())
        await eventually("ready", lambda: ds_status(cluster).get("numberAvailable") == 1)
        [first] = cluster.names("pods")
        cluster.edit("daemonsets", "agent", set_image("agent:v2"))

        def updated() -> bool:
            status = ds_status(cluster)
            return (status.get("observedGeneration") == 2 and status.get("updatedNumberScheduled") == 1
                    and status.get("numberAvailable") == 1)

        await eventually("rolled", updated)
        [second] = cluster.items("pods")
        assert second["metadata"]["name"] != first
        assert second["spec"]["containers"][0]["image"] == "agent:v2"

    run_cluster(tmp_path, scenario)
