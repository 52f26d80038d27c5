"""Server stop and start with one state dir: nothing left running, running pods come back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from tests.sandbox.contract import processes_with_env
from tests.sandbox.kubelet_fixtures import LocalSandbox, container_status, needs_bwrap

pytestmark = needs_bwrap


def test_stop_leaves_no_process_and_start_resumes_running_pods(tmp_path: Path) -> None:
    marker = f"nhdev-restart-test-{uuid.uuid4().hex}"
    env = [{"name": "MARKER", "value": marker}]
    sandbox = LocalSandbox(tmp_path)
    try:
        sandbox.create_pod({"metadata": {"name": "keeper"}, "spec": {"containers": [
            {"name": "c", "image": "busybox", "env": env,
             "command": ["sh", "-c", "echo run >> /v/runs; exec sleep 3600"],
             "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
            "volumes": [{"name": "v", "emptyDir": {}}]}})
        sandbox.create_pod({"metadata": {"name": "finished"}, "spec": {"restartPolicy": "Never", "containers": [
            {"name": "c", "image": "busybox", "env": env, "command": ["true"]}]}})
        first = sandbox.wait_pod("keeper", lambda p: p["status"].get("phase") == "Running")
        sandbox.wait_pod("finished", lambda p: p["status"].get("phase") == "Succeeded")
        assert processes_with_env(marker)
    finally:
        sandbox.stop()
    assert not processes_with_env(marker), "the kubelet's stop must take every pod process down"

    again = LocalSandbox(tmp_path)
    try:
        pod = again.wait_pod("keeper", lambda p: container_status(p, "c").get("restartCount") == 1
                             and "running" in container_status(p, "c")["state"])
        assert pod["metadata"]["uid"] == first["metadata"]["uid"]
        assert container_status(pod, "c")["lastState"]["terminated"]["reason"] == "Unknown"
        runs = tmp_path / "pods" / pod["metadata"]["uid"] / "volumes" / "v" / "runs"
        deadline = time.monotonic() + 5
        while runs.read_text() != "run\nrun\n" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runs.read_text() == "run\nrun\n", "emptyDir content survives, the container ran again"
        assert again.pod("finished")["status"]["phase"] == "Succeeded"  # type: ignore[index]
    finally:
        again.stop()
    assert not processes_with_env(marker)
