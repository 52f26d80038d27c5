"""Dev mode end to end in real containers: the examples' Python app on the sandbox's podman
runtime, replaced by the dev image (``ghcr.io/nhdev/dev-python:3.12``) with nhdev's sidecar
image (``ghcr.io/nhdev/sidecar:0.1``), both as built by ``make images``.

Covered: the dev pod becomes Ready (the sidecar's readiness probe: its SSH server answers), the
containers are real podman containers of the built images, exec in the dev container runs as uid
1000 with debugpy importable, SSH to the sidecar through a port-forward with the session's keys
(host key pinned), nhdev's tunnel (``nhdev.tunnel.client.Tunnel``) to the sidecar: a file written
over its SFTP appears in the dev container owned by uid 1000, and the app run there as uid 1000
answers through the tunnel's local forward; ``end`` restores the original, which serves again.
"""

from __future__ import annotations

import copy
import time
import uuid
from pathlib import Path

import paramiko
import pytest
from kubernetes import client
from kubernetes.stream import portforward

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.portforward import open_pod_port
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.cluster.waiting import wait_for_ready_pod
from nhdev.devmode import names
from nhdev.devmode.engine import DevModeEngine, parse_workload_ref
from nhdev.devmode.plan import DevSpec
from nhdev.sandbox import lifecycle
from nhdev.tunnel.client import Tunnel
from tests.containers.devmode_support import (
    EXAMPLE,
    example_objects,
    exec_output,
    http_get,
    http_get_through_port_forward,
)
from tests.containers.podman_support import (
    BASE_IMAGE,
    CONTEXT,
    DEV_PYTHON_IMAGE,
    SIDECAR_IMAGE,
    podman,
)


def ssh_through_port_forward(core: client.CoreV1Api, namespace: str, pod: str, session_dir: Path
                             ) -> paramiko.Transport:
    forward = portforward(core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(names.SIDECAR_PORT))
    sock = forward.socket(names.SIDECAR_PORT)
    sock.settimeout(15)
    transport = paramiko.Transport(sock)
    transport.start_client(timeout=15)
    key_type, key_data = (session_dir / "host_key.pub").read_text().split()[:2]
    served = transport.get_remote_server_key()
    assert (served.get_name(), served.get_base64()) == (key_type, key_data)  # pinned host key
    transport.auth_publickey("nhdev", paramiko.PKey.from_path(session_dir / "client_key"))
    return transport


# The client library's port-forward thread reports a reset when the SSH transport closes its end.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_example_app_in_replace_mode_with_the_built_images(podman_sandbox: lifecycle.ServerRecord,
                                                            tmp_path: Path) -> None:
    api = api_client(resolve_target(podman_sandbox.kubeconfig, CONTEXT))
    kube = KubeRest(api)
    core = client.CoreV1Api(api_client(resolve_target(podman_sandbox.kubeconfig, CONTEXT)))
    namespace = f"containers-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for obj in example_objects():
        kube.create({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})
    original_pod = wait_for_ready_pod(kube, namespace, "app=greeter", timeout=120)
    assert b"Hello from nhdev's Python example" in http_get_through_port_forward(
        core, namespace, original_pod["metadata"]["name"], 8080)
    original_template = copy.deepcopy(kube.get(kind_named("deployment"), namespace, "greeter")["spec"]["template"])

    engine = DevModeEngine(kube, namespace, "ci@containers", state_dir=tmp_path / "dev")
    ref = parse_workload_ref("deployment/greeter")
    session = "c" + uuid.uuid4().hex[:11]
    began = time.monotonic()
    result = engine.start(ref, DevSpec(image=DEV_PYTHON_IMAGE, container="greeter", sidecar_image=SIDECAR_IMAGE),
                          mode="replace", session_id=session, timeout=180)
    ready_after = time.monotonic() - began
    pod = kube.get(kind_named("pod"), namespace, result.pod)
    statuses = {s["name"]: s for s in pod["status"]["containerStatuses"]}
    assert statuses[names.SIDECAR_CONTAINER]["ready"] and statuses["greeter"]["ready"], statuses
    assert {c["name"]: c["image"] for c in pod["spec"]["containers"]} == {
        "greeter": DEV_PYTHON_IMAGE, names.SIDECAR_CONTAINER: SIDECAR_IMAGE}
    running = podman("ps", "--format", "{{if not .IsInfra}}{{.Image}}{{end}}",
                     "--filter", f"label=org.nhdev.sandbox.pod-uid={pod['metadata']['uid']}")
    assert sorted(running.stdout.split()) == sorted([DEV_PYTHON_IMAGE, SIDECAR_IMAGE])  # real containers

    identity = exec_output(core, namespace, result.pod, "greeter", "id -u; pwd; python3 -c 'import debugpy; print(1)'")
    assert identity.split() == ["1000", "/home/nhdev-dev", "1"]

    session_dir = tmp_path / "dev" / result.session
    transport = ssh_through_port_forward(core, namespace, result.pod, session_dir)
    transport.close()  # the sidecar answers SSH with the session's pinned host key and client key

    target = resolve_target(podman_sandbox.kubeconfig, CONTEXT)
    tunnel = Tunnel(lambda: open_pod_port(target, namespace, result.pod, names.SIDECAR_PORT),
                    session_dir / "client_key", (session_dir / "host_key.pub").read_text().strip()).start()
    try:
        assert tunnel.wait_connected(30), tunnel.state
        sftp = tunnel.sftp()
        with sftp.open("app.py", "w") as remote:
            remote.write((EXAMPLE / "app.py").read_text().replace("Hello from", "Hi from the dev container of"))
        sftp.close()
        listing = exec_output(core, namespace, result.pod, "greeter", "stat -c '%u %n' app.py")
        assert listing.split() == ["1000", "app.py"]

        exec_output(core, namespace, result.pod, "greeter",
                    "PORT=8080 nohup python3 app.py > /tmp/app.log 2>&1 & sleep 0.1")
        local_port = tunnel.forward_local(8080)
        reply = b""
        for _ in range(50):
            reply = http_get(local_port)
            if b"200 OK" in reply:
                break
            time.sleep(0.2)
        assert b"Hi from the dev container of nhdev's Python example" in reply
    finally:
        tunnel.stop()

    ended = engine.end(ref)
    assert ended.restored
    restored = wait_for_ready_pod(kube, namespace, "app=greeter", timeout=120)
    assert restored["spec"]["containers"][0]["image"] == BASE_IMAGE
    assert [c["name"] for c in restored["spec"]["containers"]] == ["greeter"]
    template = kube.get(kind_named("deployment"), namespace, "greeter")["spec"]["template"]
    assert template == original_template
    assert b"Hello from nhdev's Python example" in http_get_through_port_forward(
        core, namespace, restored["metadata"]["name"], 8080)
    print(f"dev pod ready {ready_after:.1f} s after start")
