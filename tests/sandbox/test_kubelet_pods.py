"""The kubelet against the real Store: scheduling, images, restarts, volumes, probes, deletion."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client

from nhdev.sandbox.images import ImageList
from tests.sandbox.contract import processes_with_env
from tests.sandbox.kubelet_fixtures import (
    LocalSandbox,
    container_status,
    local_sandbox,  # noqa: F401 - the fixture
    needs_bwrap,
    waiting_reason,
)

pytestmark = needs_bwrap


def logs(sandbox: LocalSandbox, pod: str, container: str, *, previous: bool = False) -> str:
    core = client.CoreV1Api(sandbox.api_client())
    return str(core.read_namespaced_pod_log(pod, "default", container=container, previous=previous))


def phase(pod: dict) -> str:
    return str(pod["status"].get("phase"))


def test_unknown_image_backs_off_until_added(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "pull"}, "spec": {"containers": [
        {"name": "c", "image": "registry.invalid/team/tool:1", "command": ["sleep", "60"]}]}})
    local_sandbox.wait_pod("pull", lambda p: waiting_reason(p, "c") == "ImagePullBackOff")
    reasons = {r for r, _ in local_sandbox.events("pull")}
    assert {"Failed", "BackOff", "Scheduled"} <= reasons
    assert any("registry.invalid/team/tool:1" in m for r, m in local_sandbox.events("pull") if r == "Failed")
    assert phase(local_sandbox.pod("pull") or {}) == "Pending"
    ImageList(local_sandbox.state_dir).add("registry.invalid/team/*")
    local_sandbox.wait_pod("pull", lambda p: phase(p) == "Running", timeout=15)


def test_crash_loop_back_off_keeps_the_previous_logs(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "crash"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo boom; exit 7"]}]}})
    pod = local_sandbox.wait_pod("crash", lambda p: waiting_reason(p, "c") == "CrashLoopBackOff")
    status = container_status(pod, "c")
    assert status["restartCount"] >= 1
    assert status["lastState"]["terminated"]["exitCode"] == 7
    assert status["lastState"]["terminated"]["reason"] == "Error"
    assert phase(pod) == "Running"
    assert logs(local_sandbox, "crash", "c", previous=True) == "boom\n"
    assert logs(local_sandbox, "crash", "c") == "boom\n"
    assert ("BackOff", "Back-off restarting failed container c in pod "
            f"crash_default({pod['metadata']['uid']})") in local_sandbox.events("crash")


@pytest.mark.parametrize(("policy", "script", "expected"), [
    ("Never", "exit 0", "Succeeded"), ("Never", "exit 2", "Failed"), ("OnFailure", "exit 0", "Succeeded"),
])
def test_restart_policies_end_in_a_phase(local_sandbox: LocalSandbox, policy: str, script: str,  # noqa: F811
                                         expected: str) -> None:
    name = f"end-{uuid.uuid4().hex[:6]}"
    local_sandbox.create_pod({"metadata": {"name": name}, "spec": {"restartPolicy": policy, "containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", script]}]}})
    pod = local_sandbox.wait_pod(name, lambda p: phase(p) in ("Succeeded", "Failed"))
    assert phase(pod) == expected
    terminated = container_status(pod, "c")["state"]["terminated"]
    assert terminated["reason"] == ("Completed" if expected == "Succeeded" else "Error")
    ready = next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"


def test_on_failure_restarts_a_failing_container(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "retry"}, "spec": {"restartPolicy": "OnFailure", "volumes": [
        {"name": "v", "emptyDir": {}}], "containers": [
        {"name": "c", "image": "busybox", "volumeMounts": [{"name": "v", "mountPath": "/v"}],
         "command": ["sh", "-c", "test -e /v/once && exit 0; touch /v/once; exit 1"]}]}})
    pod = local_sandbox.wait_pod("retry", lambda p: phase(p) == "Succeeded")
    assert container_status(pod, "c")["restartCount"] == 1


def test_missing_entrypoint_is_reported(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "noentry"}, "spec": {"containers": [
        {"name": "c", "image": "python:3.12"}]}})
    pod = local_sandbox.wait_pod("noentry", lambda p: waiting_reason(p, "c") == "CreateContainerConfigError")
    assert "has no entrypoint; set command" in container_status(pod, "c")["state"]["waiting"]["message"]


def test_args_alone_run_as_the_command(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "argsonly"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "busybox", "args": ["echo", "from args"]}]}})
    local_sandbox.wait_pod("argsonly", lambda p: phase(p) == "Succeeded")
    assert logs(local_sandbox, "argsonly", "c") == "from args\n"


@pytest.mark.parametrize("spec", [
    {"nodeSelector": {"disk": "ssd"}},
    {"nodeName": "elsewhere"},
    {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["windows"]}]}]}}}},
])
def test_pods_that_do_not_fit_stay_pending(local_sandbox: LocalSandbox, spec: dict) -> None:  # noqa: F811
    name = f"nofit-{uuid.uuid4().hex[:6]}"
    local_sandbox.create_pod({"metadata": {"name": name}, "spec": {**spec, "containers": [
        {"name": "c", "image": "busybox", "command": ["sleep", "60"]}]}})
    pod = local_sandbox.wait_pod(name, lambda p: any(
        c["type"] == "PodScheduled" and c["status"] == "False" for c in p["status"].get("conditions") or []))
    assert phase(pod) == "Pending" and not pod["status"].get("containerStatuses")
    assert [r for r, _ in local_sandbox.events(name)] == ["FailedScheduling"]
    local_sandbox.call(lambda: local_sandbox.store.delete("pods", "default", name))
    deadline = time.monotonic() + 5
    while local_sandbox.pod(name) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local_sandbox.pod(name) is None, "an unscheduled pod is deleted without waiting for a node"


def test_matching_node_selector_binds_the_pod(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "fits"}, "spec": {
        "nodeSelector": {"kubernetes.io/os": "linux"}, "restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}})
    pod = local_sandbox.wait_pod("fits", lambda p: phase(p) == "Succeeded")
    assert pod["spec"]["nodeName"] == "nhdev-sandbox"
    assert ("Scheduled", "Successfully assigned default/fits to nhdev-sandbox") in local_sandbox.events("fits")


def test_unbound_claim_keeps_the_pod_pending_until_bound(local_sandbox: LocalSandbox, tmp_path: Path) -> None:  # noqa: F811
    store = local_sandbox.store
    local_sandbox.call(lambda: store.create("persistentvolumeclaims", "default", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "claim"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "manual",
                 "resources": {"requests": {"storage": "1Gi"}}}}))
    local_sandbox.create_pod({"metadata": {"name": "claimer"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo data > /data/f"],
         "volumeMounts": [{"name": "d", "mountPath": "/data"}]}],
        "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "claim"}}]}})
    local_sandbox.wait_pod("claimer", lambda p: any(
        "unbound immediate PersistentVolumeClaims" in (c.get("message") or "")
        for c in p["status"].get("conditions") or []))
    directory = tmp_path / "pv"

    def bind() -> None:
        store.create("persistentvolumes", None, {
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-claim"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "manual", "hostPath": {"path": str(directory)}}})

        def bound(pvc: dict) -> None:
            pvc["spec"]["volumeName"] = "pv-claim"
            pvc.setdefault("status", {})["phase"] = "Bound"

        store.mutate("persistentvolumeclaims", "default", "claim", lambda pvc: pvc["spec"].update(
            volumeName="pv-claim"))
        store.mutate("persistentvolumeclaims", "default", "claim", bound, subresource="status")

    local_sandbox.call(bind)
    local_sandbox.wait_pod("claimer", lambda p: phase(p) == "Succeeded")
    assert (directory / "f").read_text() == "data\n"


def test_config_maps_secrets_env_and_expansion(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    store = local_sandbox.store

    def objects() -> None:
        store.create("configmaps", "default", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
                                               "data": {"mode": "fast", "app.conf": "x=1\n"}})
        store.create("secrets", "default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "sec"},
                                            "data": {"token": base64.b64encode(b"s3cret").decode()}})

    local_sandbox.call(objects)
    script = ('echo "$MODE $TOKEN $CFG_mode $POD_NS $GREETING $(MODE)"; cat /etc/app/app.conf /etc/sec/t;'
              "stat -c %a /etc/sec/t; echo sub > /work/sub/f; touch /etc/app/w 2>/dev/null || echo ro; pwd")
    local_sandbox.create_pod({"metadata": {"name": "cfgpod", "labels": {"a": "b"}}, "spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", script], "workingDir": "/work/wd",
                        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}],
                        "env": [{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
                                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
                                {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                                {"name": "GREETING", "value": "mode-$(MODE)"}],
                        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"},
                                         {"name": "sec", "mountPath": "/etc/sec"},
                                         {"name": "scratch", "mountPath": "/work/sub", "subPath": "nested"},
                                         {"name": "scratch", "mountPath": "/work/wd", "subPath": "wd"}]}],
        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}},
                    {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400,
                                               "items": [{"key": "token", "path": "t"}]}},
                    {"name": "scratch", "emptyDir": {}}]}})
    pod = local_sandbox.wait_pod("cfgpod", lambda p: phase(p) in ("Succeeded", "Failed"))
    assert phase(pod) == "Succeeded", logs(local_sandbox, "cfgpod", "c")
    assert logs(local_sandbox, "cfgpod", "c").splitlines() == [
        "fast s3cret fast default mode-fast fast", "x=1", "s3cret400", "ro", "/work/wd"]
    scratch = local_sandbox.state_dir / "pods" / pod["metadata"]["uid"] / "volumes" / "scratch"
    assert (scratch / "nested" / "f").read_text() == "sub\n"


def test_missing_config_map_waits_then_runs(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "waitcfg"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "echo $V"],
         "env": [{"name": "V", "valueFrom": {"configMapKeyRef": {"name": "later", "key": "v"}}}]}]}})
    pod = local_sandbox.wait_pod("waitcfg", lambda p: waiting_reason(p, "c") == "CreateContainerConfigError")
    assert 'configmap "later" not found' in container_status(pod, "c")["state"]["waiting"]["message"]
    local_sandbox.call(lambda: local_sandbox.store.create("configmaps", "default", {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later"}, "data": {"v": "now"}}))
    local_sandbox.wait_pod("waitcfg", lambda p: phase(p) == "Succeeded", timeout=15)
    assert logs(local_sandbox, "waitcfg", "c") == "now\n"


def test_init_containers_run_in_order_first(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    mount = [{"name": "v", "mountPath": "/v"}]

    def appending(name: str) -> dict:
        return {"name": name, "image": "busybox", "command": ["sh", "-c", f"echo {name} >> /v/order"],
                "volumeMounts": mount}

    local_sandbox.create_pod({"metadata": {"name": "inits"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "app", "image": "busybox", "command": ["cat", "/v/order"], "volumeMounts": mount}],
        "initContainers": [appending("one"), appending("two")],
        "volumes": [{"name": "v", "emptyDir": {}}]}})
    local_sandbox.wait_pod("inits", lambda p: phase(p) == "Succeeded")
    assert logs(local_sandbox, "inits", "app") == "one\ntwo\n"


def test_failing_init_container_with_never_fails_the_pod(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "badinit"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "app", "image": "busybox", "command": ["true"]}],
        "initContainers": [{"name": "i", "image": "busybox", "command": ["false"]}]}})
    pod = local_sandbox.wait_pod("badinit", lambda p: phase(p) == "Failed")
    assert waiting_reason(pod, "app") == "PodInitializing"


def test_liveness_failure_restarts_and_readiness_gates_ready(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "probed"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "command": ["sh", "-c", "touch /tmp/ok; sleep 1.5; rm /tmp/ok; sleep 60"],
         "livenessProbe": {"exec": {"command": ["test", "-e", "/tmp/ok"]}, "periodSeconds": 1,
                           "failureThreshold": 1},
         "readinessProbe": {"exec": {"command": ["test", "-e", "/tmp/ok"]}, "periodSeconds": 1}}],
        "terminationGracePeriodSeconds": 1}})
    local_sandbox.wait_ready("probed")
    pod = local_sandbox.wait_pod("probed", lambda p: container_status(p, "c").get("restartCount", 0) >= 1, timeout=20)
    assert container_status(pod, "c")["lastState"]["terminated"]["exitCode"] in (137, 143)
    reasons = [r for r, _ in local_sandbox.events("probed")]
    assert "Unhealthy" in reasons and "Killing" in reasons


def test_two_pods_serve_the_same_port(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    for name in ("port-a", "port-b"):
        local_sandbox.create_pod({"metadata": {"name": name}, "spec": {"containers": [
            {"name": "c", "image": "python:3.12", "command": ["python3", "-m", "http.server", "8080"],
             "readinessProbe": {"httpGet": {"port": 8080, "path": "/"}, "periodSeconds": 1}}]}})
    for name in ("port-a", "port-b"):
        local_sandbox.wait_ready(name)
        assert phase(local_sandbox.pod(name) or {}) == "Running"


def test_graceful_deletion_sigterm_then_sigkill(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    marker = f"nhdev-kubelet-test-{uuid.uuid4().hex}"
    local_sandbox.create_pod({"metadata": {"name": "stubborn"}, "spec": {
        "terminationGracePeriodSeconds": 1, "containers": [
            {"name": "c", "image": "busybox", "env": [{"name": "MARKER", "value": marker}],
             "command": ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"]}]}})
    local_sandbox.wait_pod("stubborn", lambda p: phase(p) == "Running")
    assert processes_with_env(marker)
    started = time.monotonic()
    local_sandbox.call(lambda: local_sandbox.store.delete("pods", "default", "stubborn"))
    deadline = time.monotonic() + 10
    while local_sandbox.pod("stubborn") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    assert local_sandbox.pod("stubborn") is None
    assert 0.8 < elapsed < 4
    assert not processes_with_env(marker)
    assert ("Killing", "Stopping container c") in local_sandbox.events("stubborn")
