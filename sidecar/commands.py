"""The exec allow-list: the only commands a client may run through the sidecar.

A client runs ``nhdev-sidecar NAME [ARGS...]`` (the command line is split with shlex); NAME must be
registered here, anything else is refused with exit status 127. There is no shell and no way to
run a program by path. The sync issue adds its commands in ``default_registry``, for example::

    registry.register("sync-manifest", sync_manifest, "print the manifest of the sync root")

A handler gets a ``CommandIO`` and returns the exit status. It runs on its own thread for as long
as it likes (stdin stays open until the client closes it); every path it takes from ``args`` or
``stdin`` must go through ``io.confinement.resolve`` like SFTP paths do.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sidecar import __version__, sync_remote
from sidecar.confinement import Confinement

PROGRAM = "nhdev-sidecar"


class ByteSource(Protocol):
    def read(self, size: int | None = None) -> bytes: ...
    def readline(self, size: int | None = None) -> bytes: ...


class ByteSink(Protocol):
    def write(self, data: bytes) -> object: ...
    def flush(self) -> object: ...


@dataclass(frozen=True)
class CommandIO:
    args: list[str]  # what follows NAME on the command line
    stdin: ByteSource
    stdout: ByteSink
    stderr: ByteSink
    confinement: Confinement


Handler = Callable[[CommandIO], int]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    summary: str


class CommandRefused(Exception):
    """The command line is not an allowed command; the message goes to the client's stderr."""


class CommandRegistry:
    def __init__(self) -> None:
        self._commands: dict[str, Command] = {}

    def register(self, name: str, handler: Handler, summary: str) -> None:
        if name in self._commands:
            raise ValueError(f"command {name!r} is already registered")
        self._commands[name] = Command(name, handler, summary)

    def names(self) -> list[str]:
        return sorted(self._commands)

    def lookup(self, command_line: bytes) -> tuple[Command, list[str]]:
        """The registered command ``command_line`` names, and its arguments."""
        shown = _one_line(command_line)
        try:
            argv = shlex.split(command_line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CommandRefused(f"command not allowed: {shown} (cannot parse it)") from exc
        if len(argv) < 2 or argv[0] != PROGRAM or argv[1] not in self._commands:
            raise CommandRefused(f"command not allowed: {shown}")
        return self._commands[argv[1]], argv[2:]


def _one_line(command_line: bytes, limit: int = 200) -> str:
    """The command line as printable text on one line, for the refusal message and the log."""
    text = command_line.decode("utf-8", "backslashreplace")
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return text if len(text) <= limit else text[:limit] + "..."


def default_registry() -> CommandRegistry:
    registry = CommandRegistry()
    registry.register("version", _version, "print the sidecar version")
    registry.register("sync-manifest", sync_remote.sync_manifest, "stream the manifest of a sync root")
    registry.register("sync-apply", sync_remote.sync_apply, "apply a stream of sync entries to a sync root")
    registry.register("sync-read", sync_remote.sync_read, "stream the named entries of a sync root")
    registry.register("sync-blocks", sync_remote.sync_blocks, "block digests of files in a sync root (deltas)")
    registry.register("sync-watch", sync_remote.sync_watch, "stream changes made under a sync root")
    return registry


def _version(io: CommandIO) -> int:
    if io.args:
        io.stderr.write(b"usage: nhdev-sidecar version\n")
        return 2
    io.stdout.write(f"{PROGRAM} {__version__}\n".encode())
    return 0
