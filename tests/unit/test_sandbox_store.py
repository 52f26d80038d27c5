"""The sandbox Store: resourceVersions, generations, conflicts, deletion, watch, persistence, admission."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from nhdev.sandbox.store import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidError,
    NotFoundError,
    Store,
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path)
    yield opened
    opened.close()


def deployment(name: str = "web", image: str = "app:1", labels: dict | None = None) -> dict:
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": dict(labels)},
        "spec": {
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)},
                         "spec": {"containers": [{"name": "app", "image": image}]}},
        },
    }


def pod(name: str = "p", node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "p"}}, "spec": spec}


def test_initial_objects(store: Store) -> None:
    names = [ns["metadata"]["name"] for ns in store.list("namespaces")[0]]
    assert names == ["default", "kube-public", "kube-system"]
    node = store.get("nodes", None, "nhdev-sandbox")
    assert {"type": "Ready", "status": "True"}.items() <= node["status"]["conditions"][-1].items()
    storage_class = store.get("storageclasses", None, "local-path")
    assert storage_class["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert store.get("serviceaccounts", "default", "default")["metadata"]["namespace"] == "default"


def test_resource_version_increases_on_every_write(store: Store) -> None:
    start = store.resource_version
    created = store.create("configmaps", "default", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    assert int(created["metadata"]["resourceVersion"]) == start + 1
    created["data"]["k"] = "w"
    updated = store.update("configmaps", "default", created)
    assert int(updated["metadata"]["resourceVersion"]) == start + 2
    assert store.list("configmaps", "default")[1] == str(start + 2)
    assert created["metadata"]["uid"] == updated["metadata"]["uid"]


def test_returned_objects_are_copies(store: Store) -> None:
    created = store.create("configmaps", "default", {"metadata": {"name": "a"}, "data": {"k": "v"}})
    created["data"]["k"] = "changed"
    store.get("configmaps", "default", "a")["data"]["k"] = "changed too"
    assert store.get("configmaps", "default", "a")["data"] == {"k": "v"}


def test_generation_bumps_on_spec_changes_only(store: Store) -> None:
    created = store.create("deployments", "default", deployment())
    assert created["metadata"]["generation"] == 1
    created["metadata"]["labels"]["extra"] = "1"
    relabeled = store.update("deployments", "default", created)
    assert relabeled["metadata"]["generation"] == 1
    relabeled["spec"]["replicas"] = 3
    scaled = store.update("deployments", "default", relabeled)
    assert scaled["metadata"]["generation"] == 2
    status = store.mutate("deployments", "default", "web", lambda d: d["status"].update(replicas=3),
                          subresource="status")
    assert status["metadata"]["generation"] == 2
    assert status["status"] == {"replicas": 3}


def test_noop_update_does_not_write(store: Store) -> None:
    created = store.create("deployments", "default", deployment())
    again = store.update("deployments", "default", created)
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    same = store.mutate("deployments", "default", "web", lambda d: None)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_status_is_kept_on_update_and_only_status_changes_on_status_update(store: Store) -> None:
    store.create("deployments", "default", deployment())
    store.mutate("deployments", "default", "web", lambda d: d["status"].update(replicas=1), subresource="status")
    current = store.get("deployments", "default", "web")
    current["status"] = {"replicas": 99}
    current["spec"]["replicas"] = 2
    updated = store.update("deployments", "default", current)
    assert updated["status"] == {"replicas": 1} and updated["spec"]["replicas"] == 2
    updated["status"] = {"replicas": 2}
    updated["spec"]["replicas"] = 7
    status_only = store.update("deployments", "default", updated, subresource="status")
    assert status_only["status"] == {"replicas": 2} and status_only["spec"]["replicas"] == 2


def test_stale_update_conflicts(store: Store) -> None:
    created = store.create("configmaps", "default", {"metadata": {"name": "a"}, "data": {"k": "1"}})
    store.update("configmaps", "default", {**created, "data": {"k": "2"}})
    with pytest.raises(ConflictError) as caught:
        store.update("configmaps", "default", {**created, "data": {"k": "3"}})
    assert caught.value.code == 409
    assert caught.value.message == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    unconditional = {**created, "metadata": {"name": "a"}, "data": {"k": "4"}}
    assert store.update("configmaps", "default", unconditional)["data"] == {"k": "4"}


def test_create_errors(store: Store) -> None:
    store.create("deployments", "default", deployment())
    with pytest.raises(AlreadyExistsError) as exists:
        store.create("deployments", "default", deployment())
    assert exists.value.to_status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'deployments.apps "web" already exists', "reason": "AlreadyExists",
        "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 409,
    }
    with pytest.raises(NotFoundError) as missing:
        store.get("pods", "default", "x")
    assert missing.value.to_status()["message"] == 'pods "x" not found'
    assert missing.value.to_status()["details"] == {"name": "x", "kind": "pods"}
    with pytest.raises(NotFoundError, match='namespaces "nowhere" not found'):
        store.create("configmaps", "nowhere", {"metadata": {"name": "a"}})
    with pytest.raises(BadRequestError):
        store.create("configmaps", "default", {"metadata": {"name": "a", "resourceVersion": "5"}})


def test_generate_name(store: Store) -> None:
    created = store.create("pods", "default", {"metadata": {"generateName": "web-"}, "spec": pod()["spec"]})
    name = created["metadata"]["name"]
    assert name.startswith("web-") and len(name) == len("web-") + 5


def test_validation_errors_are_worded_like_the_apiserver(store: Store) -> None:
    bad = deployment()
    bad["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(InvalidError) as caught:
        store.create("deployments", "default", bad)
    status = caught.value.to_status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["message"].startswith('Deployment.apps "web" is invalid: spec.template.metadata.labels: '
                                        'Invalid value: {"app":"other"}: `selector` does not match template `labels`')
    assert status["details"]["causes"][0]["field"] == "spec.template.metadata.labels"
    twice = pod()
    twice["spec"]["containers"].append({"name": "c", "image": "x"})
    with pytest.raises(InvalidError, match=r'spec.containers\[1\].name: Duplicate value: "c"'):
        store.create("pods", "default", twice)
    with pytest.raises(InvalidError, match=r"metadata\.name: Required value: name or generateName is required"):
        store.create("configmaps", "default", {"metadata": {}})
    with pytest.raises(InvalidError, match=r'metadata\.name: Invalid value: "Bad_Name"'):
        store.create("configmaps", "default", {"metadata": {"name": "Bad_Name"}})


def test_immutable_fields(store: Store) -> None:
    created = store.create("deployments", "default", deployment())
    created["spec"]["selector"] = {"matchLabels": {"app": "web", "v": "2"}}
    created["spec"]["template"]["metadata"]["labels"]["v"] = "2"
    with pytest.raises(InvalidError, match=r"spec\.selector: .*field is immutable"):
        store.update("deployments", "default", created)
    claim = store.create("persistentvolumeclaims", "default", {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
    claim["spec"]["resources"]["requests"]["storage"] = "2Gi"
    claim = store.update("persistentvolumeclaims", "default", claim)
    claim["spec"]["accessModes"] = ["ReadWriteMany"]
    with pytest.raises(InvalidError, match="spec is immutable after creation"):
        store.update("persistentvolumeclaims", "default", claim)
    service = store.create("services", "default", {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}})
    service["spec"]["clusterIP"] = "10.96.9.9"
    service["spec"]["clusterIPs"] = ["10.96.9.9"]
    with pytest.raises(InvalidError, match="may not change once set"):
        store.update("services", "default", service)


def test_defaults(store: Store) -> None:
    created = store.create("pods", "default", pod())
    spec, container = created["spec"], created["spec"]["containers"][0]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"], spec["dnsPolicy"]) == (
        "Always", 30, "ClusterFirst")
    assert spec["schedulerName"] == "default-scheduler" and spec["serviceAccountName"] == "default"
    assert container["imagePullPolicy"] == "Always"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert created["status"]["phase"] == "Pending"
    dep = store.create("deployments", "default", deployment(image="app:1.2"))["spec"]
    assert dep["replicas"] == 1 and dep["revisionHistoryLimit"] == 10 and dep["progressDeadlineSeconds"] == 600
    assert dep["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert dep["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    svc = store.create("services", "default", {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}})
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["clusterIP"].startswith("10.96.")
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    replaced = store.update("services", "default", {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 81}]}})
    assert replaced["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    other = store.create("services", "default", {"metadata": {"name": "svc2"}, "spec": {"ports": [{"port": 80}]}})
    assert other["spec"]["clusterIP"] != svc["spec"]["clusterIP"]
    claim = store.create("persistentvolumeclaims", "default", {
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    })
    assert claim["spec"]["storageClassName"] == "local-path" and claim["status"]["phase"] == "Pending"
    job = store.create("jobs", "default", {"metadata": {"name": "j"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}})
    assert (job["spec"]["completions"], job["spec"]["parallelism"], job["spec"]["backoffLimit"]) == (1, 1, 6)
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "j"


def test_finalizers_delay_deletion(store: Store) -> None:
    obj = {"metadata": {"name": "a", "finalizers": ["example.com/hold"]}, "data": {}}
    store.create("configmaps", "default", obj)
    deleting = store.delete("configmaps", "default", "a")
    assert deleting["metadata"]["deletionTimestamp"]
    assert store.get("configmaps", "default", "a")["metadata"]["finalizers"] == ["example.com/hold"]
    store.mutate("configmaps", "default", "a", lambda o: o["metadata"].pop("finalizers"))
    assert store.try_get("configmaps", "default", "a") is None


def test_propagation_policies_add_finalizers(store: Store) -> None:
    store.create("deployments", "default", deployment())
    store.create("deployments", "default", deployment("other"))
    foreground = store.delete("deployments", "default", "web", propagation="Foreground")
    assert foreground["metadata"]["finalizers"] == ["foregroundDeletion"]
    orphan = store.delete("deployments", "default", "other", propagation="Orphan")
    assert orphan["metadata"]["finalizers"] == ["orphan"]


def test_graceful_pod_deletion(store: Store) -> None:
    store.create("pods", "default", pod("bound", node="nhdev-sandbox"))
    deleting = store.delete("pods", "default", "bound")
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 30
    assert deleting["metadata"]["deletionTimestamp"]
    # The kubelet's status updates do not delete it; its final delete with grace 0 does.
    store.mutate("pods", "default", "bound", lambda p: p["status"].update(phase="Running"), subresource="status")
    assert store.try_get("pods", "default", "bound") is not None
    store.delete("pods", "default", "bound", grace_period_seconds=0)
    assert store.try_get("pods", "default", "bound") is None
    store.create("pods", "default", pod("unbound"))
    assert store.delete("pods", "default", "unbound")["metadata"].get("deletionTimestamp") is None
    assert store.try_get("pods", "default", "unbound") is None


def test_delete_preconditions_and_collection(store: Store) -> None:
    created = store.create("configmaps", "default", {"metadata": {"name": "a", "labels": {"x": "1"}}})
    store.create("configmaps", "default", {"metadata": {"name": "b", "labels": {"x": "2"}}})
    with pytest.raises(ConflictError, match="Precondition failed: UID in precondition: nope"):
        store.delete("configmaps", "default", "a", preconditions={"uid": "nope"})
    store.delete("configmaps", "default", "a", preconditions={"uid": created["metadata"]["uid"]})
    deleted = store.delete_collection("configmaps", "default", label_selector="x=2")
    assert [d["metadata"]["name"] for d in deleted] == ["b"]
    assert store.list("configmaps", "default")[0] == []


def test_namespace_deletion_terminates_and_refuses_creates(store: Store) -> None:
    store.create("namespaces", None, {"metadata": {"name": "team"}})
    terminating = store.delete("namespaces", None, "team")
    assert terminating["status"]["phase"] == "Terminating"
    with pytest.raises(ForbiddenError) as caught:
        store.create("configmaps", "team", {"metadata": {"name": "a"}})
    assert caught.value.message == (
        'configmaps "a" is forbidden: unable to create new content in namespace team because it is being terminated'
    )
    store.mutate("namespaces", None, "team", lambda ns: ns["spec"].update(finalizers=[]))
    assert store.try_get("namespaces", None, "team") is None


def test_list_selectors(store: Store) -> None:
    store.create("pods", "default", pod("a", node="nhdev-sandbox"))
    store.create("pods", "default", {**pod("b"), "metadata": {"name": "b", "labels": {"app": "q"}}})
    store.create("namespaces", None, {"metadata": {"name": "other"}})
    store.create("pods", "other", pod("c"))
    names = lambda items: [i["metadata"]["name"] for i in items[0]]  # noqa: E731
    assert names(store.list("pods")) == ["a", "b", "c"]
    assert names(store.list("pods", "default")) == ["a", "b"]
    assert names(store.list("pods", label_selector="app=p")) == ["a", "c"]
    assert names(store.list("pods", field_selector="spec.nodeName=nhdev-sandbox")) == ["a"]
    assert names(store.list("pods", field_selector="metadata.namespace!=default")) == ["c"]
    with pytest.raises(BadRequestError, match="field label not supported"):
        store.list("pods", field_selector="spec.bogus=1")


def test_watch_from_now_and_replay(store: Store) -> None:
    async def scenario() -> None:
        start = store.resource_version
        live = store.watch("configmaps", "default", resource_version=str(start))
        created = store.create("configmaps", "default", {"metadata": {"name": "a"}, "data": {"k": "1"}})
        store.mutate("configmaps", "default", "a", lambda o: o["data"].update(k="2"))
        store.delete("configmaps", "default", "a")
        events = [await live.__anext__() for _ in range(3)]
        assert [e.type for e in events] == ["ADDED", "MODIFIED", "DELETED"]
        assert [e.object["data"]["k"] for e in events] == ["1", "2", "2"]
        assert int(events[2].object["metadata"]["resourceVersion"]) == start + 3
        live.close()
        replay = store.watch("configmaps", "default", resource_version=created["metadata"]["resourceVersion"])
        assert [(await replay.__anext__()).type for _ in range(2)] == ["MODIFIED", "DELETED"]
        replay.close()
        initial = store.watch("namespaces", resource_version="0")
        assert (await initial.__anext__()).type == "ADDED"
        initial.close()

    asyncio.run(scenario())


def test_watch_label_selector_transitions(store: Store) -> None:
    async def scenario() -> None:
        watch = store.watch("configmaps", "default", resource_version=str(store.resource_version),
                            label_selector="app=web")
        store.create("configmaps", "default", {"metadata": {"name": "a", "labels": {"app": "other"}}})
        store.mutate("configmaps", "default", "a", lambda o: o["metadata"]["labels"].update(app="web"))
        store.mutate("configmaps", "default", "a", lambda o: o["metadata"]["labels"].update(app="gone"))
        assert [(await watch.__anext__()).type for _ in range(2)] == ["ADDED", "DELETED"]
        watch.close()

    asyncio.run(scenario())


def test_watch_too_old_resource_version_is_gone(tmp_path: Path) -> None:
    small = Store(tmp_path, history_size=5)
    try:
        start = small.resource_version
        for index in range(10):
            small.create("configmaps", "default", {"metadata": {"name": f"c{index}"}})
        with pytest.raises(GoneError) as caught:
            small.watch("configmaps", resource_version=str(start))
        assert caught.value.code == 410 and caught.value.reason == "Expired"
        assert caught.value.message.startswith(f"too old resource version: {start}")
        small.watch("configmaps", resource_version=str(small.resource_version - 2)).close()
    finally:
        small.close()


def test_watch_initial_events_end_bookmark(store: Store) -> None:
    async def scenario() -> None:
        watch = store.watch("namespaces", send_initial_events=True)
        events = [await watch.__anext__() for _ in range(4)]
        assert [e.type for e in events] == ["ADDED", "ADDED", "ADDED", "BOOKMARK"]
        assert events[3].object["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        assert watch.bookmark().object["metadata"]["resourceVersion"] == str(store.resource_version)
        watch.close()
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()

    asyncio.run(scenario())


def test_persistence_across_reopen(tmp_path: Path) -> None:
    first = Store(tmp_path)
    first.create("deployments", "default", deployment())
    first.create("configmaps", "default", {"metadata": {"name": "gone"}})
    first.delete("configmaps", "default", "gone")
    last_rv = first.resource_version
    first.close()
    assert (tmp_path / "store").is_dir()
    second = Store(tmp_path)
    try:
        assert second.resource_version == last_rv
        assert second.get("deployments", "default", "web")["spec"]["replicas"] == 1
        assert second.try_get("configmaps", "default", "gone") is None
        assert len(second.list("namespaces")[0]) == 3  # not seeded twice
        created = second.create("configmaps", "default", {"metadata": {"name": "new"}})
        assert int(created["metadata"]["resourceVersion"]) == last_rv + 1
        with pytest.raises(GoneError):
            second.watch("configmaps", resource_version=str(last_rv - 1))
    finally:
        second.close()
