"""The sandbox API against the official Python client: CRUD, patches, selectors, watch, scale, errors."""

# The tests send plain dict bodies (accepted by the client at runtime, typed as models) and read
# optional model fields the server always fills.
# mypy: disable-error-code="arg-type, union-attr, index, attr-defined"

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.sandbox.api_fixtures import ApiServer, running_api_server

NS = "default"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with running_api_server(tmp_path_factory.mktemp("sandbox-api")) as running:
        yield running


@pytest.fixture(scope="module")
def core(server: ApiServer) -> client.CoreV1Api:
    return client.CoreV1Api(server.api_client())


@pytest.fixture(scope="module")
def apps(server: ApiServer) -> client.AppsV1Api:
    return client.AppsV1Api(server.api_client())


def deployment_body(name: str, image: str = "app:1") -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [
                    {"name": "app", "image": image, "ports": [{"containerPort": 80}]},
                    {"name": "sidecar", "image": "sidecar:1"},
                ]},
            },
        },
    }


def images(dep: client.V1Deployment) -> dict[str, str | None]:
    return {c.name: c.image for c in dep.spec.template.spec.containers}


def test_crud_round_trip(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map(NS, {"metadata": {"name": "crud"}, "data": {"k": "v"}})
    assert created.metadata.uid and created.metadata.resource_version
    fetched = core.read_namespaced_config_map("crud", NS)
    assert fetched.data == {"k": "v"}
    fetched.data = {"k": "w"}
    replaced = core.replace_namespaced_config_map("crud", NS, fetched)
    assert replaced.data == {"k": "w"}
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    names = [cm.metadata.name for cm in core.list_namespaced_config_map(NS).items]
    assert "crud" in names
    status = core.delete_namespaced_config_map("crud", NS)
    assert status["status"] == "Success"
    assert status["details"] == {"name": "crud", "kind": "configmaps", "uid": created.metadata.uid}
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("crud", NS)
    assert caught.value.status == 404


def test_not_found_status_wording(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        apps.read_namespaced_deployment("missing", NS)
    body = json.loads(caught.value.body)
    assert body == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'deployments.apps "missing" not found', "reason": "NotFound",
        "details": {"name": "missing", "group": "apps", "kind": "deployments"}, "code": 404,
    }


def test_stale_update_is_409(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map(NS, {"metadata": {"name": "stale"}, "data": {"k": "1"}})
    core.patch_namespaced_config_map("stale", NS, {"data": {"k": "2"}})
    created.data = {"k": "3"}
    with pytest.raises(ApiException) as caught:
        core.replace_namespaced_config_map("stale", NS, created)
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["reason"] == "Conflict"
    with pytest.raises(ApiException) as duplicate:
        core.create_namespaced_config_map(NS, {"metadata": {"name": "stale"}})
    assert duplicate.value.status == 409
    assert json.loads(duplicate.value.body)["reason"] == "AlreadyExists"


def test_three_patch_types(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment_body("patched"))
    strategic = apps.patch_namespaced_deployment(
        "patched", NS, {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}}
    )
    assert images(strategic) == {"app": "app:2", "sidecar": "sidecar:1"}
    assert strategic.metadata.generation == 2
    merged = apps.patch_namespaced_deployment(
        "patched", NS, {"metadata": {"labels": {"tier": "fe"}}}, _content_type="application/merge-patch+json"
    )
    assert merged.metadata.labels == {"app": "patched", "tier": "fe"}
    assert merged.metadata.generation == 2
    json_patched = apps.patch_namespaced_deployment(
        "patched", NS, [{"op": "replace", "path": "/spec/replicas", "value": 3}],
        _content_type="application/json-patch+json",
    )
    assert json_patched.spec.replicas == 3
    with pytest.raises(ApiException) as failed_test:
        apps.patch_namespaced_deployment(
            "patched", NS, [{"op": "test", "path": "/spec/replicas", "value": 9}],
            _content_type="application/json-patch+json",
        )
    assert failed_test.value.status == 422
    with pytest.raises(ApiException) as missing:
        apps.patch_namespaced_deployment("nope", NS, {"metadata": {"labels": {"a": "b"}}})
    assert missing.value.status == 404


def test_invalid_object_is_422_with_causes(apps: client.AppsV1Api) -> None:
    body = deployment_body("invalid")
    body["spec"]["template"]["metadata"]["labels"] = {"app": "else"}
    with pytest.raises(ApiException) as caught:
        apps.create_namespaced_deployment(NS, body)
    status = json.loads(caught.value.body)
    assert caught.value.status == 422
    assert status["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def test_label_and_field_selectors(core: client.CoreV1Api) -> None:
    for name, tier in (("sel-a", "fe"), ("sel-b", "be"), ("sel-c", "fe")):
        core.create_namespaced_config_map(NS, {"metadata": {"name": name, "labels": {"tier": tier, "sel": "1"}}})
    by_label = core.list_namespaced_config_map(NS, label_selector="sel,tier in (fe)")
    assert [cm.metadata.name for cm in by_label.items] == ["sel-a", "sel-c"]
    by_field = core.list_namespaced_config_map(NS, field_selector="metadata.name=sel-b")
    assert [cm.metadata.name for cm in by_field.items] == ["sel-b"]
    page = core.list_namespaced_config_map(NS, label_selector="sel", limit=2)
    assert len(page.items) == 2 and page.metadata._continue
    rest = core.list_namespaced_config_map(NS, label_selector="sel", limit=2, _continue=page.metadata._continue)
    assert [cm.metadata.name for cm in rest.items] == ["sel-c"]
    with pytest.raises(ApiException) as caught:
        core.list_namespaced_config_map(NS, label_selector="tier in fe")
    assert caught.value.status == 400


def test_watch_sees_changes_in_order_and_resumes(core: client.CoreV1Api) -> None:
    start_rv = core.list_namespaced_config_map(NS).metadata.resource_version

    def writer() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map(NS, {"metadata": {"name": "watched"}, "data": {"k": "1"}})
        core.patch_namespaced_config_map("watched", NS, {"data": {"k": "2"}})
        core.delete_namespaced_config_map("watched", NS)

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[tuple[str, str]] = []
    watcher = watch.Watch()
    for event in watcher.stream(core.list_namespaced_config_map, NS, resource_version=start_rv,
                                field_selector="metadata.name=watched", timeout_seconds=5):
        seen.append((event["type"], event["object"].data["k"]))
        if len(seen) == 3:
            watcher.stop()
    thread.join()
    assert seen == [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]
    # Resume from the first event's resourceVersion: the later two are replayed.
    resumed = []
    added_rv = str(int(start_rv) + 1)
    for event in watcher.stream(core.list_namespaced_config_map, NS, resource_version=added_rv,
                                field_selector="metadata.name=watched", timeout_seconds=1):
        resumed.append(event["type"])
        if len(resumed) == 2:
            watcher.stop()
    assert resumed == ["MODIFIED", "DELETED"]


def test_restart_keeps_objects_and_old_watches_get_410(tmp_path: Path) -> None:
    with running_api_server(tmp_path) as first:
        first_core = client.CoreV1Api(first.api_client())
        kept = first_core.create_namespaced_config_map(NS, {"metadata": {"name": "kept"}, "data": {"k": "v"}})
    with running_api_server(tmp_path) as second:
        second_core = client.CoreV1Api(second.api_client())
        assert second_core.read_namespaced_config_map("kept", NS).metadata.uid == kept.metadata.uid
        # History does not survive a restart: resuming from an older resourceVersion is 410 Expired,
        # sent as an ERROR event the way the apiserver does.
        with pytest.raises(ApiException) as caught:
            for _ in watch.Watch().stream(second_core.list_namespaced_config_map, NS, resource_version="1",
                                          timeout_seconds=2):
                pass
        assert caught.value.status == 410


def test_watch_bookmarks_and_timeout(server: ApiServer) -> None:
    http = urllib3.PoolManager()
    started = time.monotonic()
    response = http.request(
        "GET", f"{server.url}/api/v1/namespaces/default/configmaps?watch=1&allowWatchBookmarks=true"
               f"&timeoutSeconds=2&resourceVersion={server.store.resource_version}",
        preload_content=True,
    )
    lines = [json.loads(line) for line in response.data.decode().splitlines()]
    assert 1.5 < time.monotonic() - started < 4
    assert lines and all(line["type"] == "BOOKMARK" for line in lines)
    assert lines[-1]["object"]["kind"] == "ConfigMap"
    assert lines[-1]["object"]["metadata"]["resourceVersion"]


def test_scale_subresource(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment_body("scaled"))
    scale = apps.read_namespaced_deployment_scale("scaled", NS)
    assert scale.spec.replicas == 1 and scale.status.selector == "app=scaled"
    patched = apps.patch_namespaced_deployment_scale("scaled", NS, {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4
    scale = apps.read_namespaced_deployment_scale("scaled", NS)
    scale.spec.replicas = 2
    assert apps.replace_namespaced_deployment_scale("scaled", NS, scale).spec.replicas == 2
    assert apps.read_namespaced_deployment("scaled", NS).spec.replicas == 2


def test_status_subresource(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment(NS, deployment_body("with-status"))
    updated = apps.patch_namespaced_deployment_status(
        "with-status", NS, {"status": {"replicas": 1, "observedGeneration": 1}, "spec": {"replicas": 5}}
    )
    assert updated.status.replicas == 1 and updated.spec.replicas == 1
    # A main-resource patch cannot touch status.
    patched = apps.patch_namespaced_deployment("with-status", NS, {"status": {"replicas": 9}})
    assert patched.status.replicas == 1


def test_namespaced_create_needs_a_namespace(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    assert caught.value.status == 404
    assert json.loads(caught.value.body)["message"] == 'namespaces "no-such-ns" not found'


def test_delete_options_and_pods(core: client.CoreV1Api) -> None:
    pod = {"metadata": {"name": "victim", "labels": {"kill": "me"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    created = core.create_namespaced_pod(NS, pod)
    assert created.status.phase == "Pending" and created.spec.restart_policy == "Always"
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_pod("victim", NS, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid="wrong")))
    assert caught.value.status == 409
    deleted = core.delete_namespaced_pod("victim", NS, grace_period_seconds=0, propagation_policy="Background")
    assert deleted.metadata.name == "victim"
    core.create_namespaced_pod(NS, pod)
    core.delete_collection_namespaced_pod(NS, label_selector="kill=me")
    assert core.list_namespaced_pod(NS, label_selector="kill=me").items == []


def test_pod_io_without_kubelet_is_501(server: ApiServer, core: client.CoreV1Api) -> None:
    core.create_namespaced_pod(NS, {"metadata": {"name": "io"}, "spec": {"containers": [{"name": "c", "image": "b"}]}})
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_pod_log("io", NS)
    assert caught.value.status == 501
