"""From the dev config (and CLI overrides) to the planner's DevSpec."""

from __future__ import annotations

import os
from typing import Any

import yaml

from nhdev.config import ContainerConfig
from nhdev.devmode.plan import CacheDir, DevSpec, WorkloadPatch

DEFAULT_DEV_IMAGE = "ghcr.io/nhdev/dev-python:3.12"
DEFAULT_SIDECAR_IMAGE = "ghcr.io/nhdev/sidecar:0.1"


def dev_spec(container: ContainerConfig, *, container_name: str | None = None, image: str | None = None) -> DevSpec:
    dev = container.dev
    resources = dev.resources.model_dump(exclude_none=True) if dev.resources else None
    return DevSpec(
        image=image or dev.image or DEFAULT_DEV_IMAGE,
        work_dir=dev.work_dir,
        container=container_name or container.name,
        dev_container_name=dev.dev_container_name,
        env=tuple(dev.env_dict().items()),
        resources=resources or None,
        image_pull_policy=dev.image_pull_policy if dev.image else None,
        cache_dirs=tuple(CacheDir(p.path, str(p.capacity)) for p in dev.persistent_volume_dirs),
        storage_class=dev.storage_class,
        sidecar_image=dev.sidecar_image or os.environ.get("NHDEV_SIDECAR_IMAGE", DEFAULT_SIDECAR_IMAGE),
        patches=tuple(WorkloadPatch(p.type, _patch_body(p.patch)) for p in dev.patches),
    )


def _patch_body(patch: Any) -> Any:
    """Patches may be written as JSON/YAML text (as Nocalhost passes them to kubectl) or as YAML."""
    return yaml.safe_load(patch) if isinstance(patch, str) else patch
