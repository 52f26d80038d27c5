"""Writing a starter config (``nhdev config init``) without ever losing an existing file."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nhdev.config.discovery import CONFIG_LOCATIONS
from nhdev.config.kinds import WorkloadKind, kind_choices, normalise_kind
from nhdev.config.render import render_starter_config
from nhdev.debug.presets import preset_for
from nhdev.errors import UsageError

_WORKLOAD_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")


@dataclass(frozen=True)
class WrittenConfig:
    path: Path
    backup: Path | None


def parse_workload(text: str) -> tuple[WorkloadKind, str]:
    """``deployment/app`` (or ``deploy/app``, ``Deployment/app``) -> ``("deployment", "app")``."""
    kind_text, slash, name = text.partition("/")
    kind = normalise_kind(kind_text) if slash else None
    if kind is None or not _WORKLOAD_NAME.fullmatch(name) or len(name) > 253:
        raise UsageError(
            f"--workload {text!r} is not KIND/NAME",
            hint=f"e.g. deployment/my-app; kinds: {kind_choices()}",
        )
    return kind, name


def write_starter_config(directory: Path, workload: str, language: str, *, force: bool) -> WrittenConfig:
    """Write ``DIRECTORY/.nhdev/config.yaml``; an existing file is kept as a backup (``force``) or refused."""
    kind, name = parse_workload(workload)
    text = render_starter_config(kind, name, preset_for(language))
    path = directory / CONFIG_LOCATIONS[0]
    backup = None
    if path.exists():
        if not force:
            raise UsageError(f"{path} already exists", hint="pass --force to replace it (a backup is kept)")
        backup = _backup(path)
    _write_atomically(path, text)
    return WrittenConfig(path, backup)


def _backup(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = path.with_name(f"{path.name}.bak-{stamp}")
    counter = 1
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.bak-{stamp}-{counter}")
        counter += 1
    shutil.copy2(path, candidate)
    return candidate


def _write_atomically(path: Path, text: str) -> None:
    """Readers see the old file or the new one, never half of one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None
