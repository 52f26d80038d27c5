"""The pure dev-mode planner: every rule of the recipe on plain dicts."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nhdev.devmode import names
from nhdev.devmode.plan import (
    IDLE_COMMAND,
    TMP_VOLUME,
    Backup,
    CacheDir,
    DevSpec,
    PlanError,
    Session,
    cache_claim,
    dev_pod_spec,
    plan_duplicate,
    plan_generated_deployment,
    plan_neutralise,
    plan_replace_in_place,
    plan_replace_pod,
    plan_restore,
    strip_server_fields,
)

SESSION = Session(id="abcdef123456", identity="ada@laptop", started_at="2026-11-24T10:00:00Z")
CLAIMS = {"/go": "nhdev-cache-go", "/home/nhdev-dev": "nhdev-cache-src"}


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "team", "uid": "u1", "resourceVersion": "41", "generation": 3,
                     "labels": {"app": "api"}, "annotations": {"keep": "me"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "api"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {"name": "api", "image": "team/api:1", "args": ["--serve"],
                         "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}],
                         "readinessProbe": {"httpGet": {"path": "/", "port": 80}},
                         "livenessProbe": {"tcpSocket": {"port": 80}},
                         "securityContext": {"runAsUser": 1000},
                         "volumeMounts": [{"name": "conf", "mountPath": "/etc/api"}]},
                        {"name": "proxy", "image": "envoy", "readinessProbe": {"tcpSocket": {"port": 9901}}},
                    ],
                    "volumes": [{"name": "conf", "configMap": {"name": "api-conf"}}],
                },
            },
        },
        "status": {"replicas": 3},
    }


def spec(**kw: Any) -> DevSpec:
    return DevSpec(image="ghcr.io/nhdev/dev-go:1.22", container="api", env=(("MODE", "dev"),), **kw)


def test_dev_container_recipe() -> None:
    pod = dev_pod_spec(deployment()["spec"]["template"]["spec"], spec(), CLAIMS, "keys")
    dev, proxy, sidecar = pod["containers"]
    assert dev["image"] == "ghcr.io/nhdev/dev-go:1.22"
    assert dev["command"] == IDLE_COMMAND and "args" not in dev
    assert dev["workingDir"] == "/home/nhdev-dev"
    assert "readinessProbe" not in dev and "livenessProbe" not in dev
    assert proxy["readinessProbe"], "probes stay on the other containers"
    assert dev["env"] == [{"name": "LOG", "value": "info"}, {"name": "MODE", "value": "dev"}]
    assert dev["securityContext"] == {"runAsUser": 1000}
    mounts = {m["mountPath"]: m["name"] for m in dev["volumeMounts"]}
    assert mounts == {"/etc/api": "conf", "/home/nhdev-dev": names.WORKDIR_VOLUME}
    assert sidecar["name"] == names.SIDECAR_CONTAINER
    assert {"name": names.WORKDIR_VOLUME, "mountPath": "/home/nhdev-dev"} in sidecar["volumeMounts"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[names.WORKDIR_VOLUME] == {"name": names.WORKDIR_VOLUME, "emptyDir": {}}
    assert volumes[names.KEYS_VOLUME]["secret"] == {"secretName": "keys", "defaultMode": 0o444}
    assert sidecar["securityContext"] == {"runAsUser": 1000}, "the sidecar writes files as the app's user"


RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                  "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                        "seccompProfile": {"type": "RuntimeDefault"}}


def restricted_pod_spec() -> dict[str, Any]:
    pod = deployment()["spec"]["template"]["spec"]
    pod["securityContext"] = copy.deepcopy(RESTRICTED_POD)
    pod["containers"][0]["securityContext"] = copy.deepcopy(RESTRICTED_CONTAINER)
    return pod


def test_a_restricted_dev_container_keeps_its_restrictions_and_gets_a_writable_tmp() -> None:
    pod = dev_pod_spec(restricted_pod_spec(), spec(), CLAIMS, "keys")
    dev = pod["containers"][0]
    assert dev["securityContext"] == RESTRICTED_CONTAINER
    assert pod["securityContext"] == RESTRICTED_POD
    mounts = {m["mountPath"]: m["name"] for m in dev["volumeMounts"]}
    assert mounts["/tmp"] == TMP_VOLUME
    assert {"name": TMP_VOLUME, "emptyDir": {}} in pod["volumes"]
    sidecar = pod["containers"][-1]
    assert "/tmp" not in {m["mountPath"] for m in sidecar["volumeMounts"]}, "the sidecar writes only the workDir"


def test_the_sidecar_runs_under_the_dev_containers_restrictions_without_its_added_capabilities() -> None:
    sidecar = dev_pod_spec(restricted_pod_spec(), spec(), CLAIMS, "keys")["containers"][-1]
    assert sidecar["securityContext"] == {
        "runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True, "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False, "seccompProfile": {"type": "RuntimeDefault"},
        "capabilities": {"drop": ["ALL"]}}


def test_no_tmp_volume_without_a_read_only_root_or_when_tmp_is_mounted_already() -> None:
    plain = dev_pod_spec(deployment()["spec"]["template"]["spec"], spec(), CLAIMS, "keys")
    assert TMP_VOLUME not in {v["name"] for v in plain["volumes"]}
    own_tmp = restricted_pod_spec()
    own_tmp["volumes"].append({"name": "scratch", "emptyDir": {"medium": "Memory"}})
    own_tmp["containers"][0]["volumeMounts"].append({"name": "scratch", "mountPath": "/tmp"})
    pod = dev_pod_spec(own_tmp, spec(), CLAIMS, "keys")
    assert TMP_VOLUME not in {v["name"] for v in pod["volumes"]}
    assert {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}["/tmp"] == "scratch"


def test_restoring_a_restricted_workload_drops_the_tmp_volume() -> None:
    live = deployment()
    live["spec"]["template"]["spec"] = restricted_pod_spec()
    original = strip_server_fields(live)
    applied = plan_replace_in_place(live, spec(), SESSION, CLAIMS, "keys", "backup-x")
    backup = Backup(kind="Deployment", name="api", original=original, dev_applied=applied)
    restored, drifts = plan_restore(backup, {**applied, "metadata": {**applied["metadata"], "resourceVersion": "50"}})
    assert drifts == []
    assert restored["spec"]["template"] == original["spec"]["template"]


def test_workdir_on_a_cache_dir_uses_its_claim_and_no_emptydir() -> None:
    s = spec(cache_dirs=(CacheDir("/go"), CacheDir("/home/nhdev-dev", "2Gi")))
    pod = dev_pod_spec(deployment()["spec"]["template"]["spec"], s, CLAIMS, "keys")
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert names.WORKDIR_VOLUME not in volumes
    assert volumes["nhdev-cache-1"]["persistentVolumeClaim"]["claimName"] == "nhdev-cache-src"
    sidecar = pod["containers"][-1]
    assert sidecar["volumeMounts"][0] == {"name": "nhdev-cache-1", "mountPath": "/home/nhdev-dev"}


def test_workdir_under_an_existing_mount_reuses_it_with_subpath() -> None:
    s = DevSpec(image="dev", container="api", work_dir="/etc/api/src")
    pod = dev_pod_spec(deployment()["spec"]["template"]["spec"], s, {}, "keys")
    assert names.WORKDIR_VOLUME not in {v["name"] for v in pod["volumes"]}
    assert pod["containers"][-1]["volumeMounts"][0] == {"name": "conf", "mountPath": "/etc/api/src",
                                                         "subPath": "src"}


def test_container_choice_errors() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    with pytest.raises(PlanError, match="several containers"):
        dev_pod_spec(pod, DevSpec(image="x"), {}, "k")
    with pytest.raises(PlanError, match="no container 'web'"):
        dev_pod_spec(pod, DevSpec(image="x", container="web"), {}, "k")
    twice = dev_pod_spec(pod, spec(), CLAIMS, "k")
    with pytest.raises(PlanError, match="already in dev mode"):
        dev_pod_spec(twice, spec(), CLAIMS, "k")


def test_replace_in_place_deployment() -> None:
    live = deployment()
    new = plan_replace_in_place(live, spec(dev_container_name="dev"), SESSION, CLAIMS, "keys", "backup-x")
    assert live == deployment(), "input is not mutated"
    assert new["spec"]["replicas"] == 1 and new["spec"]["strategy"] == {"type": "Recreate"}
    assert new["metadata"]["resourceVersion"] == "41", "written back conditionally"
    owner = json.loads(new["metadata"]["annotations"][names.OWNER])
    assert owner["identity"] == "ada@laptop" and owner["session"] == SESSION.id
    assert new["metadata"]["annotations"][names.BACKUP] == "backup-x"
    tmpl = new["spec"]["template"]
    assert tmpl["metadata"]["annotations"][names.DEV_CONTAINER] == "dev"
    assert tmpl["spec"]["containers"][0]["name"] == "dev"
    assert "status" not in new


def test_generated_deployment_and_neutralised_daemonset() -> None:
    ds = copy.deepcopy(deployment())
    ds["kind"] = "DaemonSet"
    del ds["spec"]["replicas"], ds["spec"]["strategy"]
    gen = plan_generated_deployment(ds, spec(), SESSION, CLAIMS, "keys")
    assert gen["kind"] == "Deployment" and gen["metadata"]["name"] == "api-nhdev-dev"
    assert gen["spec"]["selector"]["matchLabels"][names.WORKLOAD_NAME] == "api"
    labels = gen["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in gen["spec"]["selector"]["matchLabels"].items())
    off = plan_neutralise(ds, SESSION, "b")
    assert off["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"] == "nhdev.unreachable"


def test_neutralised_cronjob_is_suspended_and_generated_from_job_template() -> None:
    cj = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "t"},
          "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
              "metadata": {"labels": {"job-name": "x", "app": "n"}},
              "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "n", "image": "n:1"}]}}}}}}
    assert plan_neutralise(cj, SESSION, "b")["spec"]["suspend"] is True
    gen = plan_generated_deployment(cj, DevSpec(image="dev"), SESSION, {}, "keys")
    tmpl = gen["spec"]["template"]
    assert tmpl["spec"]["restartPolicy"] == "Always"
    assert "job-name" not in tmpl["metadata"]["labels"] and tmpl["metadata"]["labels"]["app"] == "n"


def test_bare_pod_with_owner_is_refused() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "ownerReferences": [{"kind": "ReplicaSet", "name": "rs"}]},
           "spec": {"containers": [{"name": "c", "image": "i"}]}}
    with pytest.raises(PlanError, match="owned by ReplicaSet/rs"):
        plan_replace_pod(pod, DevSpec(image="dev"), SESSION, {}, "k", "b")
    del pod["metadata"]["ownerReferences"]
    pod["spec"]["nodeName"] = "n1"
    new = plan_replace_pod(pod, DevSpec(image="dev"), SESSION, {}, "k", "b")
    assert "nodeName" not in new["spec"] and new["spec"]["containers"][-1]["name"] == names.SIDECAR_CONTAINER


def test_duplicate_matches_no_service_and_keeps_original() -> None:
    live = deployment()
    dup = plan_duplicate(live, spec(), SESSION, CLAIMS, "keys", expires="2026-11-24T18:00:00Z")
    assert dup["metadata"]["name"] == "api-nhdev-abcdef"
    pod_labels = dup["spec"]["template"]["metadata"]["labels"]
    assert "app" not in pod_labels, "a Service selecting app=api must not route to the copy"
    assert dup["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert dup["metadata"]["annotations"][names.EXPIRES] == "2026-11-24T18:00:00Z"
    assert live == deployment()
    other = plan_duplicate(live, spec(), Session("zzzzzz999", "bob@pc", "t"), CLAIMS, "keys")
    assert other["metadata"]["name"] != dup["metadata"]["name"]


def test_cache_claim_labels_and_capacity() -> None:
    claim = cache_claim("team", "Deployment", "api", CacheDir("/go", "5Gi"), "fast")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["metadata"]["labels"][names.MANAGED_BY] == "nhdev"
    assert claim["metadata"]["annotations"][names.DIR] == "/go"


def test_backup_round_trip() -> None:
    b = Backup(kind="Deployment", name="api", original=strip_server_fields(deployment()),
               hpas=({"name": "api", "minReplicas": 2, "maxReplicas": 5},), session="s", identity="i")
    secret = b.to_secret("team")
    assert secret["metadata"]["name"] == "nhdev-backup-deployment-api"
    assert Backup.from_secret_data(secret["stringData"]["backup.json"]) == b


def test_restore_is_the_original_when_nobody_else_changed_it() -> None:
    live = deployment()
    dev = plan_replace_in_place(live, spec(), SESSION, CLAIMS, "keys", "b")
    dev["metadata"]["resourceVersion"] = "50"
    backup = Backup(kind="Deployment", name="api", original=strip_server_fields(live), dev_applied=dev)
    restored, drifts = plan_restore(backup, dev)
    assert drifts == []
    assert strip_server_fields(restored) == strip_server_fields(live)
    assert restored["metadata"]["resourceVersion"] == "50"


def test_restore_keeps_others_changes_and_reports_them() -> None:
    live = deployment()
    dev = plan_replace_in_place(live, spec(), SESSION, CLAIMS, "keys", "b")
    backup = Backup(kind="Deployment", name="api", original=strip_server_fields(live),
                    dev_applied=copy.deepcopy(dev))
    dev["spec"]["template"]["spec"]["containers"][1]["image"] = "envoy:2"  # a deploy changed the proxy
    dev["spec"]["replicas"] = 5  # and scaled: a field nhdev set
    dev["metadata"]["labels"]["team"] = "core"
    restored, drifts = plan_restore(backup, dev)
    by_path = {d.path: d for d in drifts}
    assert by_path["/spec/template/spec/containers/1/image"].kept
    assert restored["spec"]["template"]["spec"]["containers"][1]["image"] == "envoy:2"
    assert not by_path["/spec/replicas"].kept and restored["spec"]["replicas"] == 3
    assert restored["metadata"]["labels"]["team"] == "core"
    assert "changed during the session" in by_path["/spec/replicas"].render()
