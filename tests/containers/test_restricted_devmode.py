"""Restricted pods on the sandbox's podman runtime: the kubelet's securityContext rules, and dev
mode of a workload that runs under them.

The restricted workload is the examples' Python app with the securityContext a "restricted" Pod
Security Standard asks for: non-root (uid 1000, fsGroup 1000), a read-only root file system, every
capability dropped, no privilege escalation, the runtime's seccomp profile. Put into dev mode
through the CLI, its dev container (the dev image) and the sidecar run under the same rules, with
an emptyDir at /tmp for the dev container; sync, the app and ``end`` work as usual.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.cluster.waiting import wait_for_ready_pod
from nhdev.devmode import names
from nhdev.sandbox import lifecycle
from tests.containers.devmode_support import (
    Cli,
    deploy_example,
    example_objects,
    exec_output,
    forwarded_port,
    http_get_through_port_forward,
    http_text,
    namespace_named,
    pod_containers,
    project_from_example,
)
from tests.containers.podman_support import BASE_IMAGE, CONTEXT, DEV_PYTHON_IMAGE, podman
from tests.sandbox.contract import wait_for

POD_SECURITY = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                      "capabilities": {"drop": ["ALL"]}}
IDLE = ["/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"]
ORIGINAL = "Hello from nhdev's Python example"
SYNCED = "Hello from the restricted dev container"
# What a process sees of its own restrictions, and whether it can write to / and /tmp.
RESTRICTIONS = ("awk '/^(Uid|Groups|CapEff|NoNewPrivs):/ { print $1, $2 }' /proc/self/status; "
                "touch /nhdev-probe 2>/dev/null && echo root-writable || echo root-read-only; "
                "touch /tmp/nhdev-probe 2>/dev/null && echo tmp-writable || echo tmp-read-only")


def restricted_objects() -> list[Obj]:
    objects = example_objects()
    for obj in objects:
        if obj["kind"] == "Deployment":
            pod = obj["spec"]["template"]["spec"]
            pod["securityContext"] = copy.deepcopy(POD_SECURITY)
            pod["containers"][0]["securityContext"] = copy.deepcopy(CONTAINER_SECURITY)
    return objects


def restrictions(text: str) -> dict[str, str]:
    lines = text.strip().splitlines()
    seen = dict(line.split(None, 1) for line in lines[:-2])
    return {**seen, "root": lines[-2], "tmp": lines[-1]}


def read_only_rootfs(uid: str, container: str) -> bool:
    inspected = podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", f"nhdev-{uid}-{container}")
    return inspected.stdout.strip() == "true"


@pytest.fixture
def namespace(podman_sandbox: lifecycle.ServerRecord) -> Iterator[str]:
    with namespace_named(podman_sandbox.kubeconfig, "restricted") as name:
        yield name


def test_run_as_non_root_is_checked_against_the_images_user(podman_sandbox: lifecycle.ServerRecord,
                                                            namespace: str) -> None:
    kube = KubeRest(api_client(resolve_target(podman_sandbox.kubeconfig, CONTEXT)))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    pod = kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "mixed", "namespace": namespace},
                       "spec": {"securityContext": {"runAsNonRoot": True}, "terminationGracePeriodSeconds": 1,
                                "containers": [{"name": "rooted", "image": BASE_IMAGE, "command": IDLE},
                                               {"name": "dev", "image": DEV_PYTHON_IMAGE, "command": IDLE}]}})
    meta = pod["metadata"]

    def statuses() -> dict[str, Any] | None:
        found = kube.get(kind_named("pod"), namespace, "mixed").get("status", {}).get("containerStatuses") or []
        by_name = {s["name"]: s["state"] for s in found}
        ready = "running" in by_name.get("dev", {}) and "waiting" in by_name.get("rooted", {})
        waiting = by_name.get("rooted", {}).get("waiting", {})
        return by_name if ready and waiting.get("reason") == "CreateContainerConfigError" else None

    states = wait_for("the rooted container refused, the dev image's uid 1000 running", statuses, timeout=60)
    message = (f'container has runAsNonRoot and image will run as root (pod: "mixed_{namespace}({meta["uid"]})", '
               "container: rooted)")
    assert states["rooted"]["waiting"]["message"] == message
    events = kube.list(kind_named("event"), namespace)
    assert any(e["message"] == f"Error: {message}" and e["type"] == "Warning" for e in events)
    assert sorted(pod_containers(meta["uid"])) == ["dev"]  # the refused one was never created


def test_a_restricted_workload_in_dev_mode(podman_sandbox: lifecycle.ServerRecord, namespace: str,
                                          tmp_path: Path) -> None:
    kubeconfig = podman_sandbox.kubeconfig
    kube = KubeRest(api_client(resolve_target(kubeconfig, CONTEXT)))
    core = client.CoreV1Api(api_client(resolve_target(kubeconfig, CONTEXT)))
    original = deploy_example(kube, namespace, restricted_objects())
    name, uid = original["metadata"]["name"], original["metadata"]["uid"]
    seen = restrictions(exec_output(core, namespace, name, "greeter", RESTRICTIONS))
    assert seen == {"Uid:": "1000", "Groups:": "1000", "CapEff:": "0000000000000000", "NoNewPrivs:": "1",
                    "root": "root-read-only", "tmp": "tmp-read-only"}  # the kubelet adds no /tmp
    assert read_only_rootfs(uid, "greeter")
    assert ORIGINAL.encode() in http_get_through_port_forward(core, namespace, name, 8080)
    template = copy.deepcopy(kube.get(kind_named("deployment"), namespace, "greeter")["spec"]["template"])

    project = project_from_example(tmp_path)
    (project / "app.py").write_text((project / "app.py").read_text().replace(ORIGINAL, SYNCED))
    cli = Cli(project, tmp_path / "home", kubeconfig, namespace)
    started = cli.run("dev", "start", "-o", "json")
    assert started.returncode == 0, started.stderr
    result = json.loads(started.stdout)
    try:
        dev_pod = kube.get(kind_named("pod"), namespace, result["pod"])
        dev_uid = dev_pod["metadata"]["uid"]
        assert dev_pod["spec"]["securityContext"] == POD_SECURITY
        # The dev container: the original's restrictions, plus a writable /tmp (an emptyDir).
        dev = restrictions(cli.exec_out(RESTRICTIONS))
        assert dev == {**seen, "tmp": "tmp-writable"}
        # The sidecar: the same restrictions, writing only the workDir.
        sidecar = restrictions(exec_output(core, namespace, dev_pod["metadata"]["name"], names.SIDECAR_CONTAINER,
                                           RESTRICTIONS))
        assert sidecar == seen
        assert read_only_rootfs(dev_uid, "greeter") and read_only_rootfs(dev_uid, names.SIDECAR_CONTAINER)

        cli.wait_for_initial_sync()
        cli.session("run")
        port = forwarded_port(result, 8080)
        assert wait_for("the synced app served", lambda: SYNCED in (http_text(port) or ""), timeout=60)
    finally:
        ended = cli.run("dev", "end")
    assert ended.returncode == 0, ended.stderr

    restored = wait_for_ready_pod(kube, namespace, "app=greeter", timeout=120)
    assert kube.get(kind_named("deployment"), namespace, "greeter")["spec"]["template"] == template
    assert restored["spec"]["securityContext"] == POD_SECURITY
    assert restored["spec"]["containers"][0]["securityContext"] == CONTAINER_SECURITY
    assert ORIGINAL.encode() in http_get_through_port_forward(core, namespace, restored["metadata"]["name"], 8080)
