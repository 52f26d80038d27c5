"""The sandbox's image list: matching rules and persistence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nhdev.sandbox.images import DEFAULT_IMAGES, ImageList, ImageReference


@pytest.mark.parametrize("image", [
    "python", "python:3.12", "docker.io/library/python:3.12-slim", "mirror.gcr.io/library/python",
    "index.docker.io/library/busybox:1.36", "nginx@sha256:" + "a" * 64, "eclipse-temurin:21-jre",
    "ghcr.io/nhdev/sidecar:0.1.0", "ghcr.io/nhdev/dev/python", "nhdev/demo:latest",
    "registry.example.com:5000/alpine:3",
])
def test_default_images_are_known(tmp_path: Path, image: str) -> None:
    assert ImageList(tmp_path).known(image)


@pytest.mark.parametrize("image", [
    "registry.invalid/nope:1", "pythonista", "myorg/python", "ghcr.io/other/sidecar", "quay.io/other/x", "",
    "nginxinc/nginx-unprivileged",
])
def test_other_images_are_unknown(tmp_path: Path, image: str) -> None:
    assert not ImageList(tmp_path).known(image)


def test_reference_parsing() -> None:
    assert ImageReference.parse("localhost:5000/a/b:1") == ImageReference("localhost:5000", "a/b", "1")
    assert ImageReference.parse("docker.io/library/debian") == ImageReference("docker.io", "debian", None)
    assert ImageReference.parse("a/b@sha256:00") == ImageReference(None, "a/b", None)


def test_add_remove_persist_and_tags(tmp_path: Path) -> None:
    images = ImageList(tmp_path)
    assert images.list() == list(DEFAULT_IMAGES)
    assert images.add("myorg/app:1.0")
    assert not images.add("myorg/app:1.0")
    assert images.known("docker.io/myorg/app:1.0") and not images.known("myorg/app:2.0")
    assert images.remove("python") and not images.remove("python")
    reloaded = ImageList(tmp_path)
    assert not reloaded.known("python:3.12")
    assert "myorg/app:1.0" in reloaded.list()


def test_edits_by_another_process_are_seen(tmp_path: Path) -> None:
    server_side = ImageList(tmp_path)
    assert not server_side.known("custom/thing")
    ImageList(tmp_path).add("custom/*")
    os.utime(tmp_path / "images.json", ns=(1, 1))  # a different mtime even on coarse clocks
    assert server_side.known("custom/thing:7")


def test_empty_pattern_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ImageList(tmp_path).add("  ")


def test_nhdev_images_put_nhdev_programs_on_path(tmp_path: Path) -> None:
    import sys

    images = ImageList(tmp_path)
    path = images.environment("ghcr.io/nhdev/sidecar:0.1")["PATH"].split(":")
    assert path[0] == str(Path(sys.executable).parent) and "/usr/bin" in path
    assert images.environment("python:3.12") == {}


def test_nhdev_images_contain_the_python_environment_and_sources(tmp_path: Path) -> None:
    import sys

    import nhdev

    mounts = dict(ImageList(tmp_path).mounts("ghcr.io/nhdev/sidecar:0.1"))
    assert Path(sys.prefix) in mounts and Path(nhdev.__file__).resolve().parent.parent in mounts
    assert all(str(source) == target for source, target in mounts.items())
    assert ImageList(tmp_path).mounts("busybox") == ()
