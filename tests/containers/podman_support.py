"""What the container tests need: podman working on this machine and nhdev's images built.

The integration tests run under ``make test-containers`` (which installs podman, builds the
images with ``make images`` and sets ``NHDEV_CONTAINER_TESTS=1``); anywhere else they are skipped
with the reason, so a plain ``pytest`` never starts containers by surprise.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from nhdev.sandbox.runtime.podman import image_exists, podman_available, podman_environment

ENABLED_BY = "NHDEV_CONTAINER_TESTS"
CONTEXT = "nhdev-sandbox"
BASE_IMAGE = "localhost/nhdev-base:bookworm"
DEV_PYTHON_IMAGE = "ghcr.io/nhdev/dev-python:3.12"
SIDECAR_IMAGE = "ghcr.io/nhdev/sidecar:0.1"
IMAGES = (BASE_IMAGE, DEV_PYTHON_IMAGE, SIDECAR_IMAGE)


def container_tests_problem() -> str | None:
    """Why the container tests cannot run here, or None when they can."""
    if os.environ.get(ENABLED_BY) != "1":
        return f"container tests run through `make test-containers` ({ENABLED_BY}=1)"
    if os.geteuid() != 0:
        return "container tests need root (rootful podman)"
    if not podman_available():
        return "podman and runc are not installed (apt-get install podman runc)"
    missing = [image for image in IMAGES if not image_exists(image)]
    if missing:
        return f"images missing from podman's store: {', '.join(missing)} (run `make images`)"
    return None


def require_containers() -> None:
    problem = container_tests_problem()
    if problem is not None:
        pytest.skip(problem)


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs podman with nhdev's project-local settings."""
    command = [shutil.which("podman") or "podman", *args]
    return subprocess.run(command, env=podman_environment(), capture_output=True, text=True, check=check,
                          timeout=timeout)
