"""The commented starter config written by ``nhdev config init``."""

from __future__ import annotations

import json

from nhdev.config.model import DEFAULT_WORK_DIR
from nhdev.debug.presets import DebugPreset


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text)


def render_starter_config(kind: str, name: str, preset: DebugPreset) -> str:
    """A ``.nhdev/config.yaml`` for workload ``kind/name`` using ``preset``; it validates as written."""
    caches = "".join(
        f"        - path: {_q(cache.path)}\n          capacity: {_q(cache.capacity)}\n" for cache in preset.cache_dirs
    )
    ignore = "".join(f"          - {_q(pattern)}\n" for pattern in preset.hot_reload_ignore) or "          []\n"
    return f"""\
# nhdev dev config for {kind}/{name}. Reference: docs/config.md.
# Also read as-is by Nocalhost-style tooling; ${{VAR}} and ${{VAR:-default}} are expanded
# from your environment when nhdev loads this file.
name: {_q(name)}
serviceType: {_q(kind)}
containers:
  # The container to develop. Without "name", the workload's first container is used.
  - dev:
      # Image of the dev container: your toolchain plus the {preset.debugger} debugger.
      image: {_q(preset.dev_image)}
      # Where your files are synced to, and the working directory of commands.
      workDir: {_q(DEFAULT_WORK_DIR)}
      # Package caches kept on persistent volumes, so they survive dev sessions.
      persistentVolumeDirs:
{caches}      # Commands: list elements are joined by spaces and run with `sh -c` in workDir.
      command:
        run:
          - {_q(preset.run)}
        debug:
          - {_q(preset.debug)}
      # The port the debugger listens on inside the pod (the IDE attaches through the tunnel).
      debug:
        language: {_q(preset.language)}
        remoteDebugPort: {preset.debug_port}
      # Restart the run/debug command when synced files change (ignored files never trigger it).
      hotReload:
        enabled: {"true" if preset.hot_reload else "false"}
        ignore:
{ignore}        delayMs: 300
      # send: local -> pod only (sendReceive: both ways). gitIgnore: skip what .gitignore skips.
      sync:
        type: send
        mode: gitIgnore
        deleteProtection: true
      # "LOCAL:REMOTE" forwards localhost:LOCAL to the pod; "R:REMOTE:LOCAL" the other way.
      portForward:
        - "{preset.app_port}:{preset.app_port}"
"""
