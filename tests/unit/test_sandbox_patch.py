"""JSON patch, merge patch and strategic merge patch with the real merge keys and directives."""

from __future__ import annotations

import copy

import pytest

from nhdev.sandbox.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)

DEPLOYMENT = "io.k8s.api.apps.v1.Deployment"
POD = "io.k8s.api.core.v1.Pod"


def deployment() -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["a"]},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "args": ["--a"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}],
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                        },
                        {"name": "sidecar", "image": "sidecar:1", "ports": [{"containerPort": 9000}]},
                    ],
                    "volumes": [
                        {"name": "data", "emptyDir": {}},
                        {"name": "config", "configMap": {"name": "cfg"}},
                    ],
                },
            },
        },
    }


def pod_spec(obj: dict) -> dict:
    return obj["spec"]["template"]["spec"]


def containers(obj: dict) -> dict[str, dict]:
    return {c["name"]: c for c in pod_spec(obj)["containers"]}


def smp(patch: dict, obj: dict | None = None) -> dict:
    return apply_strategic_merge_patch(obj or deployment(), patch, DEPLOYMENT)


def test_containers_merge_by_name_keeping_the_others() -> None:
    result = smp({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}})
    by_name = containers(result)
    assert [c["name"] for c in pod_spec(result)["containers"]] == ["app", "sidecar"]
    assert by_name["app"]["image"] == "app:2"
    assert by_name["app"]["ports"] == deployment()["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert by_name["sidecar"] == deployment()["spec"]["template"]["spec"]["containers"][1]


def test_new_container_is_appended() -> None:
    result = smp({"spec": {"template": {"spec": {"containers": [{"name": "debug", "image": "dbg"}]}}}})
    assert [c["name"] for c in pod_spec(result)["containers"]] == ["app", "sidecar", "debug"]


def test_ports_merge_by_container_port_and_env_by_name() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{
        "name": "app",
        "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 8080}],
        "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
    }]}}}}
    app = containers(smp(patch))["app"]
    assert app["ports"] == [
        {"containerPort": 80, "protocol": "TCP", "name": "http"},
        {"containerPort": 443},
        {"containerPort": 8080},
    ]
    assert app["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}]


def test_lists_without_merge_strategy_are_replaced() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "args": ["--b"]}]}}}}
    assert containers(smp(patch))["app"]["args"] == ["--b"]


def test_volumes_merge_by_name() -> None:
    patch = {"spec": {"template": {"spec": {"volumes": [{"name": "cache", "emptyDir": {"medium": "Memory"}}]}}}}
    assert [v["name"] for v in pod_spec(smp(patch))["volumes"]] == ["data", "config", "cache"]


def test_patch_delete_directive_removes_a_container_and_a_map() -> None:
    patch = {"spec": {
        "template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}},
        "strategy": {"rollingUpdate": {"$patch": "delete"}},
    }}
    result = smp(patch)
    assert list(containers(result)) == ["app"]
    assert result["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_patch_replace_directive_on_a_map_and_a_list() -> None:
    patch = {"spec": {
        "strategy": {"$patch": "replace", "type": "Recreate"},
        "template": {"spec": {"containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]}},
    }}
    result = smp(patch)
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec(result)["containers"] == [{"name": "only", "image": "x"}]


def test_retain_keys_clears_fields_not_listed() -> None:
    # spec.strategy has patch strategy retainKeys: switching to Recreate drops rollingUpdate.
    result = smp({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert result["spec"]["strategy"] == {"type": "Recreate"}
    patch = {"spec": {"template": {"spec": {"volumes": [
        {"name": "config", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}},
    ]}}}}
    volumes = {v["name"]: v for v in pod_spec(smp(patch))["volumes"]}
    assert volumes["config"] == {"name": "config", "secret": {"secretName": "s"}}


def test_null_deletes_and_primitive_merge_lists() -> None:
    result = smp({"metadata": {"labels": {"app": None, "new": "1"}, "finalizers": ["b", "a"]}})
    assert result["metadata"]["labels"] == {"new": "1"}
    assert result["metadata"]["finalizers"] == ["a", "b"]
    result = smp({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert result["metadata"]["finalizers"] == []


def test_set_element_order() -> None:
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
        "containers": [{"name": "app", "image": "app:3"}],
    }}}}
    result = smp(patch)
    assert [c["name"] for c in pod_spec(result)["containers"]] == ["sidecar", "app"]
    assert "$setElementOrder/containers" not in pod_spec(result)


def test_strategic_merge_does_not_touch_its_input() -> None:
    original = deployment()
    smp({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "x"}]}}}}, original)
    assert original == deployment()


def test_missing_merge_key_is_an_error() -> None:
    with pytest.raises(PatchError) as caught:
        smp({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    assert caught.value.code == 422


def test_pod_schema_lookup() -> None:
    two_containers = [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]
    pod = {"metadata": {"name": "p"}, "spec": {"containers": two_containers}}
    result = apply_strategic_merge_patch(pod, {"spec": {"containers": [{"name": "b", "image": "3"}]}}, POD)
    assert [c["image"] for c in result["spec"]["containers"]] == ["1", "3"]


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "list": [3], "new": {"x": None, "y": 1}}
    assert apply_merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "list": [3], "new": {"y": 1}}
    assert apply_merge_patch(target, "scalar") == "scalar"


def test_json_patch_operations() -> None:
    original = deployment()
    result = apply_json_patch(original, [
        {"op": "replace", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/labels/tier", "value": "fe"},
        {"op": "remove", "path": "/spec/template/spec/containers/1"},
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"},
        {"op": "move", "from": "/metadata/annotations", "path": "/metadata/copied"},
    ])
    assert result["spec"]["replicas"] == 3
    assert result["metadata"]["labels"] == {"app": "web", "tier": "fe"}
    assert result["metadata"]["copied"] == {"app": "web", "tier": "fe"}
    assert list(containers(result)) == ["app"]
    assert original == deployment()


def test_json_patch_failures() -> None:
    with pytest.raises(PatchError) as caught:
        apply_json_patch(deployment(), [{"op": "test", "path": "/spec/replicas", "value": 5}])
    assert caught.value.code == 422
    with pytest.raises(PatchError) as caught:
        apply_json_patch(deployment(), [{"op": "remove", "path": "/spec/nothing"}])
    assert caught.value.code == 422
    with pytest.raises(PatchError) as caught:
        apply_json_patch(deployment(), {"op": "remove"})
    assert caught.value.code == 400
    with pytest.raises(PatchError) as caught:
        apply_json_patch(copy.deepcopy(deployment()), [{"op": "bogus", "path": "/a"}])
    assert caught.value.code == 400
