"""The dev config: schema, discovery, loading with located errors, starter files.

Use :func:`discover_config` to find the file, :func:`load_config` to read it, then
``DevConfig.service(name, kind).container(name)`` to get one container's dev settings;
``dev.command.run.argv()`` is the argv that runs the command in the dev container.
"""

from __future__ import annotations

from nhdev.config.dev_config import DevConfig
from nhdev.config.discovery import CONFIG_LOCATIONS, discover_config
from nhdev.config.kinds import WORKLOAD_KINDS, WorkloadKind, normalise_kind
from nhdev.config.loader import load_config, parse_config
from nhdev.config.model import (
    Commands,
    ContainerConfig,
    DebugSettings,
    DevSettings,
    HotReload,
    PersistentVolumeDir,
    ServiceConfig,
    ShellCommand,
    Sync,
)
from nhdev.config.ports import PortForward
from nhdev.config.quantity import parse_quantity

__all__ = [
    "CONFIG_LOCATIONS",
    "WORKLOAD_KINDS",
    "Commands",
    "ContainerConfig",
    "DebugSettings",
    "DevConfig",
    "DevSettings",
    "HotReload",
    "PersistentVolumeDir",
    "PortForward",
    "ServiceConfig",
    "ShellCommand",
    "Sync",
    "WorkloadKind",
    "discover_config",
    "load_config",
    "normalise_kind",
    "parse_config",
    "parse_quantity",
]
