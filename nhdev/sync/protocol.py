"""The client end of the sidecar's ``sync-*`` commands, over one SSH transport.

The framing itself is ``sidecar.sync_wire`` (one codec for both ends). Every failure of the
connection surfaces as ``LinkLost``, which makes the engine pause and re-compare after reconnect.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from nhdev.sync.index import Entry
from sidecar.sync_wire import (
    BLOCK_NUMBER,
    BLOCK_SIZE,
    CHUNK_SIZE,
    ChannelSource,
    FrameReader,
    WireError,
    data_prefix,
    encode_end,
    encode_header,
)

SEND_BUFFER = 512 * 1024


def _read_block(fd: int, size: int) -> bytes:
    """``size`` bytes from ``fd`` (fewer only at the end of the file)."""
    parts: list[bytes] = []
    missing = size
    while missing and (chunk := os.read(fd, missing)):
        parts.append(chunk)
        missing -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class LinkLost(Exception):
    """The SSH connection (or the sidecar command on it) went away."""


@contextlib.contextmanager
def link_errors() -> Iterator[None]:
    try:
        yield
    except (paramiko.SSHException, EOFError, OSError, WireError) as exc:
        raise LinkLost(str(exc) or type(exc).__name__) from exc


class RemoteCommand:
    """``nhdev-sidecar NAME ROOT`` on its own channel, with framed stdout."""

    def __init__(self, transport: paramiko.Transport, name: str, remote_root: str) -> None:
        with link_errors():
            self.channel = transport.open_session()
            self.channel.exec_command(f"nhdev-sidecar {name} {shlex.quote(remote_root)}")
            self.reader = FrameReader(ChannelSource(self.channel))
        self.name = name
        self._out = bytearray()

    def write(self, data: bytes) -> None:
        self._out += data
        if len(self._out) >= SEND_BUFFER:
            self.flush()

    def flush(self) -> None:
        with link_errors():
            self.channel.sendall(bytes(self._out))
        self._out.clear()

    def header(self) -> dict[str, Any]:
        with link_errors():
            header = self.reader.header()
        if header is None:
            raise LinkLost(f"{self.name} ended: {self._stderr()}")
        return header

    def _stderr(self) -> str:
        with contextlib.suppress(Exception):
            if self.channel.recv_stderr_ready():
                return self.channel.recv_stderr(4096).decode(errors="replace").strip() or "no output"
        return "no output"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.close()


# ---------------------------------------------------------------- manifest


@dataclass
class Manifest:
    entries: dict[str, Entry]
    tree_id: str
    hashed_files: int
    hashed_bytes: int


def read_manifest(transport: paramiko.Transport, remote_root: str) -> Manifest:
    command = RemoteCommand(transport, "sync-manifest", remote_root)
    try:
        entries: dict[str, Entry] = {}
        while True:
            header = command.header()
            if header.get("end"):
                return Manifest(entries, str(header["tree_id"]), int(header["hashed_files"]),
                                int(header["hashed_bytes"]))
            entries[str(header["path"])] = Entry.from_wire(header)
    finally:
        command.close()


# ---------------------------------------------------------------- block digests (for deltas)


@dataclass(frozen=True)
class RemoteBlocks:
    size: int
    digest: str
    blocks: list[str]  # SHA-256 of each BLOCK_SIZE block


def read_blocks(transport: paramiko.Transport, remote_root: str, paths: list[str]) -> dict[str, RemoteBlocks]:
    """The pod's block digests of ``paths`` (files it no longer has are left out)."""
    command = RemoteCommand(transport, "sync-blocks", remote_root)
    try:
        for relative in paths:
            command.write(encode_header({"path": relative}))
        command.write(encode_header({"end": True}))
        command.flush()
        found: dict[str, RemoteBlocks] = {}
        while not (header := command.header()).get("end"):
            if not header.get("missing"):
                found[str(header["path"])] = RemoteBlocks(int(header["size"]), str(header["digest"]),
                                                          [str(b) for b in header["blocks"]])
        return found
    finally:
        command.close()


# ---------------------------------------------------------------- apply


@dataclass(frozen=True)
class Op:
    """One entry of a batch: ``kind`` is file, dir, symlink or delete. ``expect`` (two-way only) is the
    digest both sides last agreed on ("" for none); None leaves it out (one-way: the pod mirrors)."""

    # Also "attr": a file whose content the pod has (``entry.digest``), of which only mode and mtime
    # go; and "patch": a file the pod has another version of, sent as a block delta against it.
    kind: str
    path: str
    entry: Entry | None = None
    expect: str | None = None


@dataclass
class BatchResult:
    sent: dict[str, Entry] = field(default_factory=dict)  # what the pod now holds, as read while sending
    deleted: list[str] = field(default_factory=list)
    conflicts: dict[str, str] = field(default_factory=dict)  # path -> where the pod's copy was set aside
    kept: dict[str, Entry] = field(default_factory=dict)  # deletes refused: the pod changed the file
    stale: dict[str, Entry | None] = field(default_factory=dict)  # attr refused: the pod's content differs
    attributes: list[str] = field(default_factory=list)  # files of which only mode and mtime were sent
    patched: list[str] = field(default_factory=list)  # files sent as block deltas
    errors: dict[str, str] = field(default_factory=dict)
    vanished: list[str] = field(default_factory=list)  # local files gone before they could be read
    bytes_sent: int = 0


class ApplyChannel:
    """A long-lived ``sync-apply``: each batch is one stream of entries closed by a commit."""

    def __init__(self, transport: paramiko.Transport, remote_root: str, local_root: Path) -> None:
        self.command = RemoteCommand(transport, "sync-apply", remote_root)
        self.transport, self.remote_root, self.local_root = transport, remote_root, local_root
        self._batches = 0
        self.on_file_progress: Callable[[int], None] | None = None

    def send(self, ops: list[Op]) -> BatchResult:
        result = BatchResult()
        patches = [op.path for op in ops if op.kind == "patch"]
        remote_blocks = read_blocks(self.transport, self.remote_root, patches) if patches else {}
        for op in ops:
            self._send_op(op, result, remote_blocks.get(op.path))
        self._batches += 1
        self.command.write(encode_header({"op": "commit", "batch": self._batches}))
        self.command.flush()
        while True:
            response = self.command.header()
            if "commit" in response:
                break
            self._note_response(response, result)
        return result

    def _send_op(self, op: Op, result: BatchResult, remote_blocks: RemoteBlocks | None) -> None:
        header: dict[str, Any] = {"op": op.kind, "path": op.path}
        if op.expect is not None:
            header["expect"] = op.expect or None
        if op.kind in ("file", "patch"):
            header["op"] = "file" if remote_blocks is None else "patch"
            sent = self._send_file(header, op.path, result, remote_blocks)
            if sent is not None:
                result.sent[op.path] = sent
            return
        if op.kind == "dir" and op.entry is not None:
            header.update(mode=op.entry.mode, mtime_ns=op.entry.mtime_ns)
            result.sent[op.path] = op.entry
        elif op.kind == "attr" and op.entry is not None:
            header.update(mode=op.entry.mode, mtime_ns=op.entry.mtime_ns, digest=op.entry.digest)
            result.sent[op.path] = op.entry
            result.attributes.append(op.path)
        elif op.kind == "symlink" and op.entry is not None:
            header["target"] = op.entry.digest
            result.sent[op.path] = op.entry
        elif op.kind == "delete":
            result.deleted.append(op.path)
        self.command.write(encode_header(header))

    def _send_file(self, header: dict[str, Any], relative: str, result: BatchResult,
                   remote_blocks: RemoteBlocks | None) -> Entry | None:
        try:
            fd = os.open(self.local_root / relative, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            result.vanished.append(relative)
            return None
        try:
            started = time.time_ns()
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                result.vanished.append(relative)
                return None
            header.update(mode=stat.S_IMODE(st.st_mode), mtime_ns=st.st_mtime_ns)
            if remote_blocks is not None:
                header["size"] = st.st_size
                self.command.write(encode_header(header))
                return self._send_blocks(fd, st, started, relative, result, remote_blocks)
            self.command.write(encode_header(header))
            digest = hashlib.sha256()
            size = 0
            try:
                # Up to the size fstat saw (no extra read for the end of file): a file that grows
                # meanwhile changes its mtime, and the watcher sends it again.
                while size < st.st_size and (chunk := os.read(fd, min(CHUNK_SIZE, st.st_size - size))):
                    digest.update(chunk)
                    size += len(chunk)
                    self.command.write(data_prefix(len(chunk)))
                    self.command.write(chunk)
                    if self.on_file_progress is not None:
                        self.on_file_progress(len(chunk))
            except OSError as exc:
                self.command.write(encode_end({"abort": exc.strerror or str(exc)}))
                result.vanished.append(relative)
                return None
            self.command.write(encode_end({"sha256": digest.hexdigest()}))
            result.bytes_sent += size
            return Entry("file", size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), digest.hexdigest(), st.st_ino, started)
        finally:
            os.close(fd)

    def _send_blocks(self, fd: int, st: os.stat_result, started: int, relative: str, result: BatchResult,
                     remote: RemoteBlocks) -> Entry | None:
        """The content of a ``patch``: the blocks whose digest differs from the pod's, numbered."""
        digest = hashlib.sha256()
        size = number = 0
        try:
            while size < st.st_size:
                block = _read_block(fd, min(BLOCK_SIZE, st.st_size - size))
                if not block:
                    break
                digest.update(block)
                size += len(block)
                if number >= len(remote.blocks) or hashlib.sha256(block).hexdigest() != remote.blocks[number]:
                    self.command.write(data_prefix(BLOCK_NUMBER.size + len(block)))
                    self.command.write(BLOCK_NUMBER.pack(number))
                    self.command.write(block)
                    result.bytes_sent += len(block)
                number += 1
                if self.on_file_progress is not None:
                    self.on_file_progress(len(block))
        except OSError as exc:
            self.command.write(encode_end({"abort": exc.strerror or str(exc)}))
            result.vanished.append(relative)
            return None
        if size != st.st_size:  # cut short while being read: the pod's check fails, the watcher resends
            self.command.write(encode_end({"abort": "the file got shorter while it was read"}))
            result.vanished.append(relative)
            return None
        self.command.write(encode_end({"sha256": digest.hexdigest()}))
        result.patched.append(relative)
        return Entry("file", size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), digest.hexdigest(), st.st_ino, started)

    @staticmethod
    def _note_response(response: dict[str, Any], result: BatchResult) -> None:
        path = str(response.get("path"))
        if "error" in response:
            result.errors[path] = str(response["error"])
            result.sent.pop(path, None)
            with contextlib.suppress(ValueError):
                result.deleted.remove(path)
        elif "conflict" in response:
            result.conflicts[path] = str(response["conflict"])
        elif "kept" in response:
            result.kept[path] = Entry.from_wire(response["kept"])
            with contextlib.suppress(ValueError):
                result.deleted.remove(path)
        elif "stale" in response:
            stale = response["stale"]
            result.stale[path] = Entry.from_wire(stale) if stale.get("kind") != "gone" else None
            result.sent.pop(path, None)
            for listed in (result.attributes, result.patched):
                with contextlib.suppress(ValueError):
                    listed.remove(path)

    def close(self) -> None:
        self.command.close()


# ---------------------------------------------------------------- read (pod -> local)


Receiver = Callable[[dict[str, Any], FrameReader], None]


def fetch(transport: paramiko.Transport, remote_root: str, paths: list[str], receive: Receiver) -> None:
    """Ask for ``paths`` and hand each streamed entry to ``receive`` (which consumes file content)."""
    command = RemoteCommand(transport, "sync-read", remote_root)
    try:
        for relative in paths:
            command.write(encode_header({"path": relative}))
        command.write(encode_header({"end": True}))
        command.flush()
        while True:
            header = command.header()
            if header.get("end"):
                return
            with link_errors():
                receive(header, command.reader)
    finally:
        command.close()


# ---------------------------------------------------------------- watch (pod changes)


class RemoteWatch:
    """``sync-watch`` on its own thread; hands each batch of pod changes to ``on_changes``."""

    def __init__(self, transport: paramiko.Transport, remote_root: str,
                 on_changes: Callable[[list[dict[str, Any]]], None], on_rescan: Callable[[], None],
                 on_ended: Callable[[LinkLost], None]) -> None:
        self.command = RemoteCommand(transport, "sync-watch", remote_root)
        first = self.command.header()  # the watch is in place once this arrives
        self.mode = str(first.get("watching", "unknown"))
        self.reason = str(first.get("reason", ""))
        self._on_changes, self._on_rescan, self._on_ended = on_changes, on_rescan, on_ended
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="nhdev-sync-remote-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                header = self.command.header()
                if header.get("rescan"):
                    self._on_rescan()
                elif "changes" in header:
                    self._on_changes(list(header["changes"]))
        except LinkLost as exc:
            if not self._closed:
                self._on_ended(exc)

    def close(self) -> None:
        self._closed = True
        self.command.close()
