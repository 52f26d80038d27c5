"""What an IDE needs to attach: where the debugger is, how paths map, a VS Code launch configuration.

The launch configurations are the ones each language's VS Code debugger expects for a remote
attach (reference/nocalhost.md §8.2), with the path mapping done the modern way: debugpy
``pathMappings``, Go ``substitutePath`` over DAP to dlv itself (``debugAdapter: dlv-dap``; the
legacy adapter and ``remotePath`` are what VS Code's Go extension would otherwise use for remote
mode), node ``localRoot``/``remoteRoot``. Java needs none: the debugger maps classes to the
workspace's sources itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nhdev.errors import UsageError

LANGUAGES = ("python", "go", "node", "java")


@dataclass(frozen=True)
class PathMapping:
    """A local workspace directory and where the same files are in the container."""

    local_root: str
    remote_root: str

    def to_json(self) -> dict[str, str]:
        return {"localRoot": self.local_root, "remoteRoot": self.remote_root}


@dataclass(frozen=True)
class AttachInfo:
    """JSON-able: printed by ``nhdev dev debug --output json`` and published by the session."""

    language: str
    host: str
    port: int
    path_mappings: tuple[PathMapping, ...]
    launch_config: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"language": self.language, "host": self.host, "port": self.port,
                "pathMappings": [m.to_json() for m in self.path_mappings],
                "launchConfig": self.launch_config}

    def render(self) -> str:
        mappings = ", ".join(f"{m.local_root} -> {m.remote_root}" for m in self.path_mappings) or "none"
        return (f"{self.language} debugger listening on {self.host}:{self.port}\n"
                f"  path mappings: {mappings}\n"
                f"  attach from VS Code with the launch configuration printed by --output json")


def attach_info(language: str, host: str, port: int, local_root: str, remote_root: str, *,
                name: str | None = None) -> AttachInfo:
    """The attach information for a debugger of ``language`` reachable at ``host:port``."""
    mapping = PathMapping(local_root, remote_root)
    builders = {"python": _python, "go": _go, "node": _node, "java": _java}
    builder = builders.get(language)
    if builder is None:
        raise UsageError(f"no attach configuration for language {language!r} (expected one of: "
                         f"{', '.join(LANGUAGES)})")
    config = {"name": name or f"nhdev: attach ({language})", **builder(host, port, mapping)}
    return AttachInfo(language, host, port, () if language == "java" else (mapping,), config)


def _python(host: str, port: int, mapping: PathMapping) -> dict[str, Any]:
    return {"type": "debugpy", "request": "attach", "connect": {"host": host, "port": port},
            "pathMappings": [mapping.to_json()], "justMyCode": False}


def _go(host: str, port: int, mapping: PathMapping) -> dict[str, Any]:
    # The preset's headless `dlv debug --accept-multiclient` answers DAP on its JSON-RPC port: a DAP
    # client attaches with mode "remote". VS Code's Go extension still picks its legacy adapter
    # for remote mode unless debugAdapter says dlv-dap.
    return {"type": "go", "request": "attach", "mode": "remote", "debugAdapter": "dlv-dap",
            "host": host, "port": port,
            "substitutePath": [{"from": mapping.local_root, "to": mapping.remote_root}]}


def _node(host: str, port: int, mapping: PathMapping) -> dict[str, Any]:
    return {"type": "node", "request": "attach", "address": host, "port": port,
            "localRoot": mapping.local_root, "remoteRoot": mapping.remote_root,
            "skipFiles": ["<node_internals>/**"]}


def _java(host: str, port: int, mapping: PathMapping) -> dict[str, Any]:
    return {"type": "java", "request": "attach", "hostName": host, "port": port}
