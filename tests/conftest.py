"""One sandbox cluster per test session, started the way users start it (a background server),
shared by tests/sandbox and tests/e2e."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.sandbox import lifecycle

# A shell without job control starts background commands with SIGINT ignored, and an ignored signal
# stays ignored across exec: the CLIs the tests stop with Ctrl-C (SIGINT) would never see it.
# Handled here, children start with the default.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lifecycle.ServerRecord]:
    if not (shutil.which("bwrap") and shutil.which("nsenter")):
        pytest.skip("bubblewrap/nsenter not installed (run `make test` as root to install them)")
    state_dir = tmp_path_factory.mktemp("sandbox-state")
    rec, _ = lifecycle.start(
        state_dir, runtime="bwrap", extra_env={"NHDEV_SANDBOX_BACKOFF_BASE": "0.5"}
    )
    yield rec
    lifecycle.stop(state_dir)


@pytest.fixture(scope="session")
def kubeconfig(sandbox: lifecycle.ServerRecord) -> Path:
    return sandbox.kubeconfig


@pytest.fixture(scope="session")
def api(sandbox: lifecycle.ServerRecord) -> client.ApiClient:
    return api_client(resolve_target(sandbox.kubeconfig, "nhdev-sandbox"))


@pytest.fixture
def stream_api(sandbox: lifecycle.ServerRecord) -> client.CoreV1Api:
    """A CoreV1Api on its own ApiClient, for exec/port-forward (they swap call_api on it)."""
    return client.CoreV1Api(api_client(resolve_target(sandbox.kubeconfig, "nhdev-sandbox")))
