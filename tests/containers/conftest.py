"""One sandbox server on the podman runtime for every container test that needs a cluster: the
first of them starts it (in seconds), the end of the test session stops it and checks that it
left no podman pod behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.sandbox import lifecycle
from nhdev.sandbox.runtime.podman import pod_name
from tests.containers.podman_support import CONTEXT, podman, require_containers


@pytest.fixture(scope="session")
def podman_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lifecycle.ServerRecord]:
    require_containers()
    state_dir = tmp_path_factory.mktemp("podman-sandbox")
    record, _ = lifecycle.start(state_dir, runtime="podman", extra_env={"NHDEV_SANDBOX_BACKOFF_BASE": "0.5"})
    yield record
    # The server's shutdown stops every pod it runs (with its shutdown grace) and removes them.
    kube = KubeRest(api_client(resolve_target(record.kubeconfig, CONTEXT)))
    uids = {pod["metadata"]["uid"] for pod in kube.list(kind_named("pod"), None)}
    lifecycle.stop(state_dir)
    left = [uid for uid in uids if podman("pod", "exists", pod_name(uid), check=False).returncode == 0]
    for uid in left:
        podman("pod", "rm", "--force", "--time", "0", pod_name(uid), check=False)
    assert not left, f"pods left behind by the sandbox: {left}"
