"""The sandbox's kubeconfig: written beside its state, optionally merged into the user's own."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import yaml

CONTEXT_NAME = "nhdev-sandbox"


def sandbox_kubeconfig(server_url: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context, all named ``nhdev-sandbox``.

    The sandbox listens on loopback only and has no authentication, so the user entry is empty.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": server_url}}],
        "users": [{"name": CONTEXT_NAME, "user": {}}],
        "contexts": [
            {
                "name": CONTEXT_NAME,
                "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": namespace},
            }
        ],
        "current-context": CONTEXT_NAME,
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> None:
    """Write atomically, readable by the owner only (kubeconfigs hold credentials on real clusters)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)


def merge_into(target: Path, sandbox: dict[str, Any]) -> Path | None:
    """Add (or refresh) the sandbox's cluster, user and context in ``target``.

    Other entries are left exactly as they are, and so is ``current-context`` unless the file had
    none: switching a user's context silently could point their next command at the wrong cluster.
    The previous file is kept as ``<target>.nhdev-backup-<time>``; that path is returned.
    """
    existing: dict[str, Any] = {}
    backup: Path | None = None
    if target.exists():
        loaded = yaml.safe_load(target.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{target}: not a kubeconfig (top level is not a mapping)")
        existing = loaded
        backup = target.with_name(f"{target.name}.nhdev-backup-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.copy2(target, backup)
    merged = dict(existing)
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section in ("clusters", "users", "contexts"):
        kept = [e for e in merged.get(section) or [] if e.get("name") != CONTEXT_NAME]
        merged[section] = kept + sandbox[section]
    if not merged.get("current-context"):
        merged["current-context"] = CONTEXT_NAME
    write_kubeconfig(target, merged)
    return backup
