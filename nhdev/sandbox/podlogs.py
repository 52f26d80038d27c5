"""Container logs, kept the way CRI runtimes keep them: one file per container instance,
one line per output line, ``<RFC3339Nano time> <stdout|stderr> <F|P> <text>``.

``F`` ends a line, ``P`` is a fragment of a longer one (a line over 16 KiB, or output that
ended without a newline). Keeping the time and the stream per line is what lets ``pods/log``
serve ``timestamps``, ``sinceSeconds``/``sinceTime`` and ``tailLines``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

MAX_LINE = 16 * 1024


def rfc3339nano(epoch_ns: int) -> str:
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def parse_rfc3339(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 time (nanoseconds are cut to microseconds)."""
    value = value.strip().replace("Z", "+00:00")
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        value = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(value).astimezone(UTC).timestamp()


@dataclass(frozen=True)
class LogEntry:
    timestamp: str
    stream: str  # "stdout" | "stderr"
    complete: bool  # False for a "P" fragment
    text: bytes  # without the trailing newline

    @property
    def seconds(self) -> float:
        return parse_rfc3339(self.timestamp)

    @classmethod
    def parse(cls, line: bytes) -> LogEntry | None:
        parts = line.rstrip(b"\n").split(b" ", 3)
        if len(parts) < 3:
            return None
        text = parts[3] if len(parts) == 4 else b""
        return cls(parts[0].decode(), parts[1].decode(), parts[2] == b"F", text)


class ContainerLogWriter:
    """Writes one container instance's stdout and stderr into its log file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def _write_entry(self, stream: str, text: bytes, complete: bool) -> None:
        tag = b"F" if complete else b"P"
        self._file.write(b"%s %s %s %s\n" % (rfc3339nano(time.time_ns()).encode(), stream.encode(), tag, text))

    def write(self, stream: str, data: bytes) -> None:
        buffered = self._pending[stream] + data
        *lines, rest = buffered.split(b"\n")
        for line in lines:
            self._write_entry(stream, line, True)
        while len(rest) > MAX_LINE:
            self._write_entry(stream, rest[:MAX_LINE], False)
            rest = rest[MAX_LINE:]
        self._pending[stream] = rest
        self._file.flush()

    def close(self) -> None:
        if self._file.closed:
            return
        for stream, rest in self._pending.items():
            if rest:
                self._write_entry(stream, rest, False)
        self._file.close()

    async def pump(self, stream: str, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(65536):
            self.write(stream, chunk)


def read_entries(path: Path) -> list[LogEntry]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    entries = (LogEntry.parse(line) for line in raw.splitlines(keepends=True) if line.endswith(b"\n"))
    return [entry for entry in entries if entry is not None]


@dataclass(frozen=True)
class LogOptions:
    """The ``pods/log`` query, as the kubelet applies it."""

    tail_lines: int | None = None
    since_seconds: float | None = None  # an absolute epoch time: entries at or after it
    timestamps: bool = False
    limit_bytes: int | None = None


def _whole_lines(entries: Iterable[LogEntry]) -> Iterator[list[LogEntry]]:
    """Groups fragments with the entry completing them (per stream)."""
    pending: dict[str, list[LogEntry]] = {}
    for entry in entries:
        group = pending.setdefault(entry.stream, [])
        group.append(entry)
        if entry.complete:
            yield pending.pop(entry.stream)
    yield from (group for group in pending.values() if group)


def render_line(group: list[LogEntry], timestamps: bool) -> bytes:
    text = b"".join(entry.text for entry in group) + (b"\n" if group[-1].complete else b"")
    return (group[0].timestamp.encode() + b" " + text) if timestamps else text


def render(entries: list[LogEntry], options: LogOptions) -> bytes:
    lines = list(_whole_lines(entries))
    if options.since_seconds is not None:
        lines = [group for group in lines if group[0].seconds >= options.since_seconds]
    if options.tail_lines is not None:
        lines = lines[-options.tail_lines:] if options.tail_lines > 0 else []
    data = b"".join(render_line(group, options.timestamps) for group in lines)
    return data[: options.limit_bytes] if options.limit_bytes is not None else data


class LogFollower:
    """Reads complete entries appended to a log file after a given offset."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path = path
        self.offset = offset

    def read_new(self) -> list[LogEntry]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self.offset += len(complete)
        entries = (LogEntry.parse(line) for line in complete.splitlines(keepends=True))
        return [entry for entry in entries if entry is not None]
