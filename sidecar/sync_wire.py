"""The sync wire format, shared by the sidecar's ``sync-*`` commands and nhdev's sync engine.

A stream is a sequence of frames: one type byte, a 4-byte big-endian length, then the payload.

- ``H`` header: a JSON object (an entry, a request, a response).
- ``D`` data: raw file content, at most ``CHUNK_SIZE`` bytes; the content of one file is any number
  of ``D`` frames after its header, so a file of any size streams without being held in memory.
- ``E`` end of content: a JSON trailer, ``{"sha256": HEX}`` when the sender read the whole file, or
  ``{"abort": REASON}`` when it could not (the receiver then discards what it wrote).

Paths on the wire are relative POSIX paths under the sync root. This module is stdlib only: the
sidecar imports it, and nhdev imports it from the sidecar package so both ends share one codec.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Iterator
from typing import Any, Protocol

HEADER = b"H"
DATA = b"D"
END = b"E"
CHUNK_SIZE = 256 * 1024
CHANNEL_READ = 16 * 1024 * 1024  # take all a channel holds: paramiko moves the rest of its buffer per read
MAX_FRAME = 8 * 1024 * 1024  # a header or trailer larger than this is a broken stream, not data
_PREFIX = struct.Struct(">cI")

# Block deltas: a file both sides have (at least DELTA_MIN_BYTES on each) is compared in blocks of
# BLOCK_SIZE, and only the blocks that differ are sent, each as one ``D`` frame that starts with its
# block number (8 bytes, big-endian); the receiver copies its old file, writes those blocks in and
# checks the result against the trailer's SHA-256 of the whole new file.
BLOCK_SIZE = 256 * 1024
DELTA_MIN_BYTES = 2 * 1024 * 1024
BLOCK_NUMBER = struct.Struct(">Q")

INDEX_NAME = ".nhdev-sync-index"  # the sidecar's persisted index, in the root: never synced
TEMP_PREFIX = ".nhdev-tmp-"  # files being received, on either side: never synced
CONFLICT_MARK = ".nhdev-conflict-"


class WireError(Exception):
    """The stream is not in this format, or ended in the middle of a frame."""


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def is_private_name(relative_path: str) -> bool:
    """Names sync itself keeps in the tree, which neither side reports nor transfers."""
    name = relative_path.rsplit("/", 1)[-1]
    return relative_path == INDEX_NAME or name.startswith(TEMP_PREFIX)


def conflict_name(path: str) -> str:
    """A free name beside ``path`` for the copy that lost a conflict: ``NAME.nhdev-conflict-<UTC time>``."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    candidate = f"{path}{CONFLICT_MARK}{stamp}"
    number = 1
    while os.path.lexists(candidate):
        number += 1
        candidate = f"{path}{CONFLICT_MARK}{stamp}-{number}"
    return candidate


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # json.dumps(**options) makes one per call


def encode_header(value: dict[str, Any]) -> bytes:
    payload = _JSON.encode(value).encode("utf-8", "surrogateescape")
    return _PREFIX.pack(HEADER, len(payload)) + payload


def encode_data(chunk: bytes) -> bytes:
    return _PREFIX.pack(DATA, len(chunk)) + chunk


def data_prefix(length: int) -> bytes:
    """The start of a ``D`` frame of ``length`` bytes (to write before the chunk, without joining them)."""
    return _PREFIX.pack(DATA, length)


def encode_end(trailer: dict[str, Any]) -> bytes:
    payload = _JSON.encode(trailer).encode("utf-8", "surrogateescape")
    return _PREFIX.pack(END, len(payload)) + payload


class FrameReader:
    """Reads frames from a blocking byte source (a socket file, a channel file, a pipe)."""

    def __init__(self, source: Readable) -> None:
        self._source = source

    def next(self) -> tuple[bytes, bytes] | None:
        """The next (type, payload), or None at a clean end of stream (between frames)."""
        prefix = self._read_exact(_PREFIX.size, allow_eof=True)
        if prefix is None:
            return None
        kind, length = _PREFIX.unpack(prefix)
        if kind not in (HEADER, DATA, END) or length > MAX_FRAME:
            raise WireError(f"not a sync frame (type {kind!r}, length {length})")
        payload = self._read_exact(length, allow_eof=False)
        assert payload is not None
        return kind, payload

    def header(self) -> dict[str, Any] | None:
        """The next frame, which must be a header; None at the end of the stream."""
        frame = self.next()
        if frame is None:
            return None
        kind, payload = frame
        if kind != HEADER:
            raise WireError(f"expected a header frame, got {kind!r}")
        return decode_json(payload)

    def content(self) -> Iterator[bytes]:
        """The data chunks of one file; afterwards ``trailer`` holds its ``E`` frame."""
        self.trailer: dict[str, Any] = {}
        while True:
            frame = self.next()
            if frame is None:
                raise WireError("stream ended inside file content")
            kind, payload = frame
            if kind == DATA:
                yield payload
            elif kind == END:
                self.trailer = decode_json(payload)
                return
            else:
                raise WireError("header frame inside file content")

    def skip_content(self) -> None:
        for _ in self.content():
            pass

    def _read_exact(self, size: int, *, allow_eof: bool) -> bytes | None:
        parts: list[bytes] = []
        missing = size
        while missing:
            chunk = self._source.read(missing)
            if not chunk:
                if allow_eof and missing == size:
                    return None
                raise WireError("stream ended inside a frame")
            parts.append(chunk)
            missing -= len(chunk)
        return b"".join(parts)


class ChannelSource:
    """Reads a paramiko channel through one growing buffer: paramiko's file wrapper copies its
    buffer on every read, which made small reads of a fast stream cost more than the data; and
    each ``recv`` takes everything the channel holds (``CHANNEL_READ``), because a smaller one
    makes paramiko move the whole remainder of its buffer (up to the window, megabytes) to the front.
    """

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self._buffer = bytearray()
        self._start = 0

    def read(self, size: int = -1, /) -> bytes:
        while len(self._buffer) - self._start < size:
            chunk = self._channel.recv(max(CHANNEL_READ, size))
            if not chunk:
                break
            if self._start:
                del self._buffer[:self._start]
                self._start = 0
            self._buffer += chunk
        end = min(len(self._buffer), self._start + size)
        with memoryview(self._buffer) as view:
            data = bytes(view[self._start:end])  # one copy (slicing the bytearray would make two)
        self._start = end
        return data


def decode_json(payload: bytes) -> dict[str, Any]:
    try:
        value = json.loads(payload.decode("utf-8", "surrogateescape"))
    except ValueError as exc:
        raise WireError(f"frame is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise WireError("frame is not a JSON object")
    return value
