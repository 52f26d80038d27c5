"""The pod side of file sync: ``nhdev-sidecar sync-manifest|apply|blocks|read|watch ROOT``.

``ROOT`` is a client path (confined like every other path) naming the synced directory; all paths
on the wire are relative to it. The framing is ``sidecar.sync_wire``.

- ``sync-manifest``: streams one header per file, directory and symlink under ROOT (``kind``,
  ``size``, ``mtime_ns``, ``mode``, ``digest``: SHA-256 for files, the target for symlinks), then
  ``{"end": true, "tree_id", "hashed_files", "hashed_bytes"}``. Hashes come from an index persisted
  in ``ROOT/.nhdev-sync-index``, so an unchanged tree is not read again; ``tree_id`` is created with
  that index and tells a client whether this is still the tree it synced with (a replaced pod with
  an empty volume has a new one).
- ``sync-apply``: reads entries from stdin (``file`` + content, ``patch`` + content, ``attr``,
  ``dir``, ``symlink``, ``delete``, ``commit``) and applies them. A file is written to a temporary
  name in its directory (``sidecar.sync_files``) and renamed over the real name only after its
  whole content arrived and matched the sender's SHA-256, so the real name never shows a partial
  file; a ``patch`` (a block delta, see ``sync_wire``) is checked the same way on the whole result.
  ``attr`` sets the mode and mtime of a file whose content (``digest``) the pod already has. A
  ``dir`` gets its mode and mtime at ``commit``, after the files written into it. An entry carrying
  ``expect`` (the digest both sides last agreed on) is two-way: if the pod's copy changed since,
  it is renamed to ``NAME.nhdev-conflict-<UTC time>`` before being replaced (file), or kept
  (delete). Only entries that did not simply succeed get a response (``error``, ``conflict``,
  ``kept``, or ``stale``: an ``attr`` or ``patch`` the pod's file no longer fits, so the client
  sends the whole file); ``commit`` answers with the batch's counts.
- ``sync-blocks``: reads ``{"path"}`` requests until ``{"end": true}``, then answers each with
  ``{"path", "size", "digest", "blocks": [SHA-256 of each BLOCK_SIZE block]}`` (or ``"missing"``):
  what a client needs to send a ``patch`` (a block delta, see ``sync_wire``) instead of a file.
- ``sync-read``: reads ``{"path"}`` requests until ``{"end": true}``, then streams each entry back in
  the ``sync-apply`` format (``missing`` for paths that are gone).
- ``sync-watch``: streams ``{"changes": [entry | {"path", "kind": "gone"}]}`` for changes made in
  the pod. Latency: with inotify (through ctypes; the sidecar has no watchdog) events are coalesced
  until 10 ms pass without one, at most 100 ms, then the changed files are hashed; without inotify
  (no libc symbol, or the watch limit reached) the tree is polled every second, so up to ~1 s plus
  a stat walk. The first header says which: ``{"watching": "inotify"|"polling", "reason"?}``.
  ``{"rescan": true}`` means events were lost (queue overflow): the client should compare again.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import itertools
import json
import os
import secrets
import select
import shutil
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sidecar import sync_files
from sidecar.sync_wire import (
    BLOCK_NUMBER,
    BLOCK_SIZE,
    CHUNK_SIZE,
    INDEX_NAME,
    TEMP_PREFIX,
    ChannelSource,
    FrameReader,
    WireError,
    conflict_name,
    encode_data,
    encode_end,
    encode_header,
    is_private_name,
)

if TYPE_CHECKING:
    from sidecar.commands import ByteSink, CommandIO

# An index entry is trusted only if the file's mtime is older than when it was hashed by more than
# a kernel timestamp tick: otherwise a rewrite within the same tick could keep size and mtime.
RACY_MARGIN_NS = 50_000_000
STALE_TEMP_SECONDS = 120  # a temp file this old belongs to a transfer that died
WATCH_QUIET_SECONDS = 0.010
WATCH_MAX_DELAY_SECONDS = 0.100
POLL_INTERVAL_SECONDS = 1.0
SAVE_INTERVAL_SECONDS = 2.0
WRITERS = 4  # threads writing received files (creating files is mostly waiting on the file system)
BUFFERED_FILE_BYTES = 1024 * 1024  # files up to this size are read whole and written by the pool
GROUP_FILES, GROUP_BYTES = 32, 2 * 1024 * 1024  # small files go to the pool in groups (one task each)
MAX_PENDING_GROUPS = 2 * WRITERS  # so at most ~16 MB of content waits for the pool


# ---------------------------------------------------------------- the tree and its index


@dataclass
class Hashed:
    size: int
    mtime_ns: int
    ino: int
    digest: str
    hashed_at_ns: int

    def matches(self, st: os.stat_result) -> bool:
        return (self.size, self.mtime_ns, self.ino) == (st.st_size, st.st_mtime_ns, st.st_ino)

    def trusted(self) -> bool:
        return self.mtime_ns < self.hashed_at_ns - RACY_MARGIN_NS


def hash_open_file(fd: int) -> str:
    digest = hashlib.sha256()
    while chunk := os.read(fd, 1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()


class RemoteTree:
    """One synced directory: its persisted hash index, shared by every exec thread."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.lock = threading.RLock()
        self.hashes: dict[str, Hashed] = {}
        self.tree_id = ""
        self.hashed_files = 0
        self.hashed_bytes = 0
        self._dirty = False
        self._saved_at = 0.0
        self._load()

    @property
    def index_path(self) -> str:
        return os.path.join(self.root, INDEX_NAME)

    def _load(self) -> None:
        try:
            with open(self.index_path, encoding="utf-8", errors="surrogateescape") as f:
                saved = json.load(f)
            self.tree_id = str(saved["tree_id"])
            self.hashes = {path: Hashed(*fields) for path, fields in saved["entries"].items()}
        except (OSError, ValueError, KeyError, TypeError):
            self.tree_id, self.hashes, self._dirty = secrets.token_hex(8), {}, True

    def save(self) -> None:
        with self.lock:
            if not self._dirty:
                return
            entries = {path: [h.size, h.mtime_ns, h.ino, h.digest, h.hashed_at_ns] for path, h in self.hashes.items()}
            text = json.dumps({"tree_id": self.tree_id, "entries": entries}, ensure_ascii=False)
            self._dirty = False
            self._saved_at = time.monotonic()
        temp = os.path.join(self.root, f"{TEMP_PREFIX}index-{secrets.token_hex(4)}")
        with open(temp, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
        os.replace(temp, self.index_path)

    def save_if_due(self) -> None:
        if self._dirty and time.monotonic() - self._saved_at > SAVE_INTERVAL_SECONDS:
            self.save()

    def host_path(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    def describe(self, relative: str) -> dict[str, Any] | None:
        """The wire entry for ``relative`` as it is now (hashing it if the index cannot vouch), or None."""
        path = self.host_path(relative)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.forget(relative, subtree=True)
            return None
        return self._entry(relative, path, st)

    def _entry(self, relative: str, path: str, st: os.stat_result) -> dict[str, Any] | None:
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            return {"path": relative, "kind": "dir", "size": 0, "mtime_ns": st.st_mtime_ns, "mode": mode, "digest": ""}
        if stat.S_ISLNK(st.st_mode):
            return {"path": relative, "kind": "symlink", "size": st.st_size, "mtime_ns": st.st_mtime_ns, "mode": mode,
                    "digest": os.readlink(path)}
        if not stat.S_ISREG(st.st_mode):
            return None  # fifos, sockets, devices: not synced (rsync -a without -D)
        digest = self._digest(relative, path, st)
        if digest is None:
            return None
        return {"path": relative, "kind": "file", "size": st.st_size, "mtime_ns": st.st_mtime_ns, "mode": mode,
                "digest": digest}

    def _digest(self, relative: str, path: str, st: os.stat_result) -> str | None:
        with self.lock:
            known = self.hashes.get(relative)
        if known is not None and known.matches(st) and known.trusted():
            return known.digest
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None  # gone or replaced by a link since the lstat
        try:
            hashed_at = time.time_ns()
            opened = os.fstat(fd)
            digest = hash_open_file(fd)
        finally:
            os.close(fd)
        self.record(relative, opened, digest, hashed_at)
        with self.lock:
            self.hashed_files += 1
            self.hashed_bytes += opened.st_size
        return digest

    def record(self, relative: str, st: os.stat_result, digest: str, hashed_at_ns: int) -> None:
        with self.lock:
            self.hashes[relative] = Hashed(st.st_size, st.st_mtime_ns, st.st_ino, digest, hashed_at_ns)
            self._dirty = True

    def forget(self, relative: str, *, subtree: bool = False) -> None:
        """Drop ``relative`` (and, for a directory that went away, everything under it)."""
        with self.lock:
            doomed = [relative]
            if subtree:  # a walk over the whole index: only when a directory went away
                prefix = relative + "/"
                doomed += [p for p in self.hashes if p.startswith(prefix)]
            for path in doomed:
                if self.hashes.pop(path, None) is not None:
                    self._dirty = True

    def walk(self) -> Iterator[tuple[str, str, os.stat_result]]:
        """(relative, host path, lstat) for everything under the root, parents before children."""
        stack = [""]
        while stack:
            relative_dir = stack.pop()
            try:
                with os.scandir(self.host_path(relative_dir) if relative_dir else self.root) as listing:
                    found = list(listing)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            for item in sorted(found, key=lambda e: e.name):
                relative = f"{relative_dir}/{item.name}" if relative_dir else item.name
                if is_private_name(relative):
                    self._remove_if_stale(item)
                    continue
                try:
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                yield relative, item.path, st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(relative)

    @staticmethod
    def _remove_if_stale(item: os.DirEntry[str]) -> None:
        if not item.name.startswith(TEMP_PREFIX):
            return
        with contextlib.suppress(OSError):
            if time.time() - item.stat(follow_symlinks=False).st_mtime > STALE_TEMP_SECONDS:
                os.unlink(item.path)

    def settle(self, seen: set[str]) -> None:
        """Drop entries for files that are gone; rehash racy ones once they can be trusted."""
        with self.lock:
            for path in [p for p in self.hashes if p not in seen]:
                del self.hashes[path]
                self._dirty = True
            racy = [(p, h) for p, h in self.hashes.items() if not h.trusted()]
        if not racy:
            return
        newest = max(h.mtime_ns for _, h in racy)
        wait_ns = newest + RACY_MARGIN_NS + 1_000_000 - time.time_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)
        for relative, _ in racy:
            with contextlib.suppress(OSError):
                path = self.host_path(relative)
                self._digest(relative, path, os.lstat(path))


_trees: dict[str, RemoteTree] = {}
_trees_lock = threading.Lock()


def tree_for(io: CommandIO) -> RemoteTree:
    """The tree named by the command's one argument (the sync root, a client path)."""
    if len(io.args) != 1:
        raise UsageError("expected exactly one argument: the sync root")
    root = io.confinement.resolve(io.args[0])
    os.makedirs(root, exist_ok=True)
    with _trees_lock:
        tree = _trees.get(root)
        if tree is None:
            tree = _trees[root] = RemoteTree(root)
        return tree


class UsageError(Exception):
    pass


def _command(name: str, body: Callable[[CommandIO, RemoteTree], int]) -> Callable[[CommandIO], int]:
    def handler(io: CommandIO) -> int:
        try:
            tree = tree_for(io)
        except (UsageError, OSError) as exc:
            io.stderr.write(f"nhdev-sidecar {name}: {exc}\n".encode())
            return 2
        try:
            return body(io, tree)
        except (WireError, EOFError, OSError) as exc:  # the client went away or spoke nonsense
            with contextlib.suppress(OSError):
                io.stderr.write(f"nhdev-sidecar {name}: {exc}\n".encode())
            return 1

    return handler


# ---------------------------------------------------------------- sync-manifest


def _manifest(io: CommandIO, tree: RemoteTree) -> int:
    hashed_before = (tree.hashed_files, tree.hashed_bytes)
    seen: set[str] = set()
    buffer = bytearray()
    for relative, path, st in tree.walk():
        entry = tree._entry(relative, path, st)
        if entry is None:
            continue
        seen.add(relative)
        buffer += encode_header(entry)
        if len(buffer) > CHUNK_SIZE:
            io.stdout.write(bytes(buffer))
            buffer.clear()
    tree.settle(seen)
    tree.save()
    buffer += encode_header({"end": True, "tree_id": tree.tree_id, "hashed_files": tree.hashed_files - hashed_before[0],
                             "hashed_bytes": tree.hashed_bytes - hashed_before[1]})
    io.stdout.write(bytes(buffer))
    io.stdout.flush()
    return 0


# ---------------------------------------------------------------- sync-apply


class EntryRefused(Exception):
    """This entry cannot be applied; the batch goes on."""


def _source(stdin: Any) -> Any:
    channel = getattr(stdin, "channel", None)
    return ChannelSource(channel) if channel is not None and hasattr(channel, "recv") else stdin


def _apply(io: CommandIO, tree: RemoteTree) -> int:
    reader = FrameReader(_source(io.stdin))
    with ThreadPoolExecutor(WRITERS, thread_name_prefix="sync-write") as pool:
        batch = _Batch(io, tree, pool)
        try:
            while (header := reader.header()) is not None:
                if header.get("op") == "commit":
                    batch.commit(header.get("batch"))
                    tree.save_if_due()
                else:
                    batch.entry(header, reader)
        finally:
            batch.drain()  # files already received whole are still written: each one is complete
    tree.save()
    return 0


@dataclass
class _Job:
    """A small file, received whole, waiting to be written by the pool."""

    header: dict[str, Any]
    relative: str
    path: str
    mode: int
    mtime: int
    content: list[bytes]
    trailer: dict[str, Any]


class _Batch:
    """The entries of one batch, applied as they arrive.

    Files of up to ``BUFFERED_FILE_BYTES`` are read whole from the stream and written by a small
    thread pool, in groups of up to ``GROUP_FILES`` (creating a file is mostly waiting on the file
    system: several at once overlap that), so reading the stream seldom waits on the disk; bigger
    files are streamed to disk by the reading thread. Symlinks and deletes wait for the pending
    writes first (they may replace or remove what those write). Directory permissions and mtimes are
    set at ``commit``, deepest first, after the files in them were written (which changes a
    directory's mtime, and a read-only mode would refuse them). Only entries that did not simply
    succeed get a response, all of them just before the commit's own.
    """

    def __init__(self, io: CommandIO, tree: RemoteTree, pool: ThreadPoolExecutor) -> None:
        self.io, self.tree, self.pool = io, tree, pool
        self.pending: list[Future[list[tuple[str, dict[str, Any] | BaseException | None]]]] = []
        self.group: list[_Job] = []
        self.group_bytes = 0
        self.slots = threading.BoundedSemaphore(MAX_PENDING_GROUPS)
        self.dirs: dict[str, tuple[str, int, int | None]] = {}  # host path -> (relative, mode, mtime)
        self.responses: list[dict[str, Any]] = []
        self.applied = self.failed = 0
        # Resolved parent directories (relative -> host path), so the files of one directory do not
        # each resolve every component again. Kept for one batch, and forgotten whenever an entry
        # may change what a path resolves to (a directory, a symlink or a delete).
        self.parents: dict[str, str] = {}

    def resolve(self, relative: str) -> str:
        parent_relative, _, name = relative.rpartition("/")
        parent = self.parents.get(parent_relative)
        if parent is None or not name or name in (".", "..") or is_private_name(relative):
            path = _resolve(self.io, self.tree, relative)
            self.parents[parent_relative] = os.path.dirname(path)
            return path
        _check_plain(relative)
        return os.path.join(parent, name)

    def entry(self, header: dict[str, Any], reader: FrameReader) -> None:
        relative = header.get("path")
        try:
            op = header.get("op")
            if op == "file":
                self._file(header, reader)
                return
            if not isinstance(relative, str):
                raise EntryRefused("entry without a path")
            if op in ("symlink", "delete"):
                self.parents.clear()
            path = self.resolve(relative)
            if op == "dir":
                response, replaced = _apply_dir(self.tree, relative, path)
                if replaced:  # a symlink (or file) became a directory: paths under it resolve anew
                    self.parents.clear()
                self.parents[relative] = path
                mtime = header.get("mtime_ns")
                self.dirs[path] = (relative, int(header["mode"]), int(mtime) if mtime is not None else None)
            elif op == "attr":
                response = _apply_attr(self.tree, header, relative, path)
            elif op == "patch":
                response = self._patch(header, relative, path, reader)
            elif op == "symlink":
                self.drain()
                response = _apply_symlink(self.io, self.tree, header, relative, path)
            elif op == "delete":
                self.drain()
                response = _apply_delete(self.tree, header, relative, path)
            else:
                raise EntryRefused(f"unknown op {op!r}")
        except (EntryRefused, OSError, ValueError, KeyError, TypeError) as exc:
            response = {"path": relative, "error": _reason(exc)}
        self._note(response)

    def _file(self, header: dict[str, Any], reader: FrameReader) -> None:
        relative = header.get("path")
        try:
            if not isinstance(relative, str):
                raise EntryRefused("entry without a path")
            path = self.resolve(relative)
            mode, mtime = int(header["mode"]), int(header["mtime_ns"])
        except (EntryRefused, OSError, ValueError, KeyError, TypeError):
            reader.skip_content()
            raise
        content = reader.content()
        head, whole = _read_up_to(content, BUFFERED_FILE_BYTES)
        if whole:
            self.group.append(_Job(header, relative, path, mode, mtime, head, reader.trailer))
            self.group_bytes += sum(len(chunk) for chunk in head)
            if len(self.group) >= GROUP_FILES or self.group_bytes >= GROUP_BYTES:
                self._submit_group()
            return
        stream = itertools.chain(head, content)
        try:
            self._note(self._write(header, relative, path, mode, mtime, stream, lambda: reader.trailer))
        except (EntryRefused, OSError) as exc:
            for _ in content:  # the rest of this file's frames, so the stream stays in step
                pass
            self._note({"path": relative, "error": _reason(exc)})

    def _patch(self, header: dict[str, Any], relative: str, path: str, reader: FrameReader) -> dict[str, Any] | None:
        """A block delta against the file at ``path`` (written by the reading thread: it streams).
        If that cannot be done (the file here is not the one the client compared against, or is
        gone), the answer is ``stale`` and the client sends the whole file instead."""
        content = reader.content()
        try:
            size, mode, mtime = int(header["size"]), int(header["mode"]), int(header["mtime_ns"])
            base = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                blocks = (_numbered_block(chunk) for chunk in content)
                written = sync_files.patch_temp(path, base, size, BLOCK_SIZE, blocks, mode, mtime,
                                                lambda digest: _check_trailer(reader.trailer, digest))
            finally:
                os.close(base)
        except (EntryRefused, OSError, ValueError, KeyError, TypeError):
            for _ in content:  # whatever is left of this entry's frames, so the stream stays in step
                pass
            return {"path": relative, "stale": self.tree.describe(relative) or {"path": relative, "kind": "gone"}}
        return self._install(header, relative, path, written)

    def _submit_group(self) -> None:
        if not self.group:
            return
        group, self.group, self.group_bytes = self.group, [], 0
        self.slots.acquire()
        future = self.pool.submit(self._write_group, group)
        future.add_done_callback(lambda _: self.slots.release())
        self.pending.append(future)

    def _write_group(self, group: list[_Job]) -> list[tuple[str, dict[str, Any] | BaseException | None]]:
        done: list[tuple[str, dict[str, Any] | BaseException | None]] = []
        for job in group:
            try:
                done.append((job.relative, self._write(job.header, job.relative, job.path, job.mode, job.mtime,
                                                       job.content, job.trailer.copy)))
            except (EntryRefused, OSError, ValueError, KeyError, TypeError) as exc:
                done.append((job.relative, exc))
        return done

    def _write(self, header: dict[str, Any], relative: str, path: str, mode: int, mtime: int,
               content: Iterable[bytes], trailer: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        sync_files.make_parent(path)
        written = sync_files.write_temp(path, content, mode, mtime, lambda digest: _check_trailer(trailer(), digest))
        return self._install(header, relative, path, written)

    def _install(self, header: dict[str, Any], relative: str, path: str,
                 written: sync_files.Written) -> dict[str, Any] | None:
        """Rename a written temp file into place (a directory there gives way), keeping a conflicting
        pod version beside it; the temp file is removed if that fails."""
        try:
            response = _set_aside_conflict(self.tree, header, relative, path, written.digest)
            try:
                sync_files.commit(written.temp, path)
            except IsADirectoryError:
                shutil.rmtree(path)
                self.tree.forget(relative, subtree=True)
                sync_files.commit(written.temp, path)
        except BaseException:
            sync_files.discard(written.temp)
            raise
        self.tree.record(relative, written.stat, written.digest, written.written_at_ns)
        return response

    def _note(self, response: dict[str, Any] | None) -> None:
        if response is None:
            self.applied += 1
            return
        self.failed += "error" in response
        self.applied += "error" not in response
        self.responses.append(response)

    def drain(self) -> None:
        """Write what is waiting, wait for every pending write and note how it went."""
        self._submit_group()
        pending, self.pending = self.pending, []
        for future in pending:
            for relative, outcome in future.result():
                if isinstance(outcome, BaseException):
                    outcome = {"path": relative, "error": _reason(outcome)}
                self._note(outcome)

    def commit(self, batch: Any) -> None:
        self.drain()
        self.parents.clear()
        for path, (relative, mode, mtime) in sorted(self.dirs.items(), key=lambda item: -item[0].count(os.sep)):
            try:
                sync_files.set_directory_attributes(path, mode, mtime)
            except OSError as exc:
                self._note({"path": relative, "error": _reason(exc)})
        self.dirs.clear()
        out = bytearray()
        for response in self.responses:
            out += encode_header(response)
        out += encode_header({"commit": batch, "applied": self.applied, "failed": self.failed})
        self.io.stdout.write(bytes(out))
        self.io.stdout.flush()
        self.responses.clear()
        self.applied = self.failed = 0


def _read_up_to(content: Iterator[bytes], limit: int) -> tuple[list[bytes], bool]:
    """Chunks of ``content`` until more than ``limit`` bytes were read; and whether that was all."""
    head: list[bytes] = []
    size = 0
    for chunk in content:
        head.append(chunk)
        size += len(chunk)
        if size > limit:
            return head, False
    return head, True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror if not exc.filename else f"{exc.strerror}: {os.path.basename(str(exc.filename))}"
    return str(exc) or type(exc).__name__


def _check_plain(relative: str) -> None:
    if relative.startswith("/") or "\x00" in relative or any(part in ("", ".", "..") for part in relative.split("/")):
        raise EntryRefused(f"not a plain relative path: {relative!r}")
    if is_private_name(relative):
        raise EntryRefused(f"reserved name: {relative!r}")


def _resolve(io: CommandIO, tree: RemoteTree, relative: str) -> str:
    """The host path of ``relative`` under the tree; refuses escapes, the root itself, private names."""
    _check_plain(relative)
    path = io.confinement.resolve(os.path.join(io.confinement.client_view(tree.root), relative),
                                  follow_symlinks=False)
    if not (path.startswith(tree.root + os.sep)):
        raise EntryRefused(f"path resolves outside the sync root: {relative!r}")
    return path


def _check_trailer(trailer: dict[str, Any], digest: str) -> None:
    if "abort" in trailer:
        raise EntryRefused(f"sender could not read the file: {trailer['abort']}")
    if trailer.get("sha256") != digest:
        raise EntryRefused("content does not match the sender's SHA-256")


def _apply_attr(tree: RemoteTree, header: dict[str, Any], relative: str, path: str) -> dict[str, Any] | None:
    """A file whose content is already here and only its mode (and mtime) changed: no content sent.
    If the content here is not the one named (the pod changed it), the client must send it: ``stale``."""
    checked_at = time.time_ns()
    current = tree.describe(relative)
    if current is None or current["kind"] != "file" or current["digest"] != header.get("digest"):
        return {"path": relative, "stale": current or {"path": relative, "kind": "gone"}}
    mtime = header.get("mtime_ns")
    try:
        sync_files.set_attributes(path, int(header["mode"]), int(mtime) if mtime is not None else None)
    except PermissionError:  # a file the sidecar does not own (made in the pod): a new copy will do
        return {"path": relative, "stale": current}
    tree.record(relative, os.lstat(path), str(current["digest"]), checked_at)
    return None


def _set_aside_conflict(tree: RemoteTree, header: dict[str, Any], relative: str, path: str,
                        incoming: str) -> dict[str, Any] | None:
    """Two-way entries: keep the pod's copy beside the real name if it changed since ``expect``."""
    if "expect" not in header:
        return None
    current = tree.describe(relative)
    if current is None or current["digest"] in (header["expect"], incoming):
        return None
    if current["kind"] == "dir" and header.get("op") != "file":
        return None
    aside = conflict_name(path)
    os.rename(path, aside)
    tree.forget(relative, subtree=current["kind"] == "dir")
    return {"path": relative, "conflict": os.path.relpath(aside, tree.root).replace(os.sep, "/")}


def _apply_dir(tree: RemoteTree, relative: str, path: str) -> tuple[dict[str, Any] | None, bool]:
    """Make sure a directory is at ``path`` (its mode and mtime are set at commit); and whether
    something else (a file, a symlink) was there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    replaced = st is not None and not stat.S_ISDIR(st.st_mode)
    if replaced:
        os.unlink(path)
        tree.forget(relative)
        st = None
    if st is None:
        os.makedirs(path, exist_ok=True)
    return None, replaced


def _apply_symlink(io: CommandIO, tree: RemoteTree, header: dict[str, Any], relative: str,
                   path: str) -> dict[str, Any] | None:
    target = str(header["target"])
    if target.startswith("/"):
        raise EntryRefused(f"absolute symlink target refused: {target!r}")
    io.confinement.check_link_target(path, target)
    if not os.path.realpath(os.path.join(os.path.dirname(path), target)).startswith(tree.root + os.sep):
        raise EntryRefused(f"symlink target leaves the sync root: {target!r}")
    sync_files.make_parent(path)
    response = _set_aside_conflict(tree, header, relative, path, target)
    temp = sync_files.temp_name(path)
    os.symlink(target, temp)
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
            tree.forget(relative, subtree=True)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    tree.forget(relative)
    return response


def _apply_delete(tree: RemoteTree, header: dict[str, Any], relative: str, path: str) -> dict[str, Any] | None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if "expect" in header:  # two-way: never delete what the pod changed since both sides agreed
        current = tree.describe(relative)
        if current is not None and current["kind"] == "dir":
            try:
                os.rmdir(path)
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    return {"path": relative, "kept": current}
                raise
            return None
        if current is not None and current["digest"] != header["expect"]:
            return {"path": relative, "kept": current}
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)
    tree.forget(relative, subtree=stat.S_ISDIR(st.st_mode))
    return None


def _numbered_block(chunk: bytes) -> tuple[int, bytes]:
    if len(chunk) < BLOCK_NUMBER.size:
        raise ValueError("a patch frame without its block number")
    return BLOCK_NUMBER.unpack_from(chunk)[0], chunk[BLOCK_NUMBER.size:]


# ---------------------------------------------------------------- sync-blocks


def _blocks(io: CommandIO, tree: RemoteTree) -> int:
    reader = FrameReader(_source(io.stdin))
    wanted: list[str] = []
    while (header := reader.header()) is not None and not header.get("end"):
        wanted.append(str(header.get("path", "")))
    for relative in wanted:
        io.stdout.write(encode_header(_block_digests(io, tree, relative)))
    io.stdout.write(encode_header({"end": True}))
    io.stdout.flush()
    return 0


def _block_digests(io: CommandIO, tree: RemoteTree, relative: str) -> dict[str, Any]:
    try:
        path = _resolve(io, tree, relative)
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (EntryRefused, OSError):
        return {"path": relative, "missing": True}
    try:
        hashed_at = time.time_ns()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return {"path": relative, "missing": True}
        whole, blocks = hashlib.sha256(), []
        while block := os.read(fd, BLOCK_SIZE):
            whole.update(block)
            blocks.append(hashlib.sha256(block).hexdigest())
    except OSError:
        return {"path": relative, "missing": True}
    finally:
        os.close(fd)
    tree.record(relative, st, whole.hexdigest(), hashed_at)
    return {"path": relative, "size": st.st_size, "digest": whole.hexdigest(), "blocks": blocks}


# ---------------------------------------------------------------- sync-read


def _read(io: CommandIO, tree: RemoteTree) -> int:
    reader = FrameReader(_source(io.stdin))
    wanted: list[str] = []
    while (header := reader.header()) is not None and not header.get("end"):
        wanted.append(str(header.get("path", "")))
    for relative in wanted:
        _send_entry(io.stdout, tree, relative)
    io.stdout.write(encode_header({"end": True}))
    io.stdout.flush()
    return 0


def _send_entry(out: ByteSink, tree: RemoteTree, relative: str) -> None:
    if is_private_name(relative) or relative.startswith("/") or ".." in relative.split("/"):
        out.write(encode_header({"op": "missing", "path": relative}))
        return
    entry = tree.describe(relative)
    if entry is None:
        out.write(encode_header({"op": "missing", "path": relative}))
    elif entry["kind"] == "dir":
        out.write(encode_header({"op": "dir", "path": relative, "mode": entry["mode"]}))
    elif entry["kind"] == "symlink":
        out.write(encode_header({"op": "symlink", "path": relative, "target": entry["digest"]}))
    else:
        _send_file(out, tree, relative)


def _send_file(out: ByteSink, tree: RemoteTree, relative: str) -> None:
    try:
        fd = os.open(tree.host_path(relative), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        out.write(encode_header({"op": "missing", "path": relative}))
        return
    try:
        hashed_at = time.time_ns()
        st = os.fstat(fd)
        out.write(encode_header({"op": "file", "path": relative, "mode": stat.S_IMODE(st.st_mode),
                                 "mtime_ns": st.st_mtime_ns}))
        digest = hashlib.sha256()
        try:
            while chunk := os.read(fd, CHUNK_SIZE):
                digest.update(chunk)
                out.write(encode_data(chunk))
        except OSError as exc:
            out.write(encode_end({"abort": _reason(exc)}))
            return
        out.write(encode_end({"sha256": digest.hexdigest()}))
        tree.record(relative, st, digest.hexdigest(), hashed_at)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- sync-watch


IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x4000, 0x8000, 0x40000000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x01000000, 0x02000000, 0x04000000
WATCH_MASK = (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
              | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
_EVENT = struct.Struct("iIII")


class Inotify:
    """A recursive inotify watch on a tree, through libc (ctypes)."""

    def __init__(self, tree: RemoteTree) -> None:
        self.tree = tree
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self._dirs: dict[int, str] = {}

    def close(self) -> None:
        os.close(self.fd)

    def add_tree(self, relative_dir: str) -> list[str]:
        """Watch ``relative_dir`` and every directory under it; returns what is in them now."""
        found: list[str] = []
        pending = [relative_dir]
        while pending:
            current = pending.pop()
            host = self.tree.host_path(current) if current else self.tree.root
            wd = self._libc.inotify_add_watch(self.fd, os.fsencode(host), WATCH_MASK)
            if wd < 0:
                code = ctypes.get_errno()
                if code in (errno.ENOENT, errno.ENOTDIR):
                    continue
                raise OSError(code, f"inotify_add_watch: {os.strerror(code)}"
                              + (" (fs.inotify.max_user_watches reached)" if code == errno.ENOSPC else ""))
            self._dirs[wd] = current
            with contextlib.suppress(OSError), os.scandir(host) as listing:
                for item in listing:
                    relative = f"{current}/{item.name}" if current else item.name
                    if is_private_name(relative):
                        continue
                    found.append(relative)
                    if item.is_dir(follow_symlinks=False):
                        pending.append(relative)
        return found

    def read(self, timeout: float) -> tuple[list[str], bool]:
        """Changed relative paths (new directories included with their contents), and overflow."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return [], False
        try:
            buffer = os.read(self.fd, 256 * 1024)
        except BlockingIOError:
            return [], False
        changed: list[str] = []
        overflow = False
        offset = 0
        while offset + _EVENT.size <= len(buffer):
            wd, mask, _, length = _EVENT.unpack_from(buffer, offset)
            raw_name = buffer[offset + _EVENT.size: offset + _EVENT.size + length].rstrip(b"\0")
            offset += _EVENT.size + length
            if mask & IN_Q_OVERFLOW:
                overflow = True
                continue
            if mask & IN_IGNORED:
                self._dirs.pop(wd, None)
                continue
            directory = self._dirs.get(wd)
            if directory is None or not raw_name:
                continue
            name = os.fsdecode(raw_name)
            relative = f"{directory}/{name}" if directory else name
            if is_private_name(relative):
                continue
            changed.append(relative)
            if mask & IN_ISDIR and mask & (IN_CREATE | IN_MOVED_TO):
                changed.extend(self.add_tree(relative))
        return changed, overflow


def _watch(io: CommandIO, tree: RemoteTree) -> int:
    stop = threading.Event()
    threading.Thread(target=_wait_for_eof, args=(io, stop), daemon=True, name="sync-watch-stdin").start()
    try:
        inotify = _start_inotify(tree)
    except (OSError, AttributeError) as exc:  # AttributeError: a libc without inotify symbols
        _emit(io.stdout, {"watching": "polling", "reason": _reason(exc)})
        _poll_changes(io, tree, stop)
        return 0
    try:
        _emit(io.stdout, {"watching": "inotify"})
        _watch_changes(io, tree, stop, inotify)
    finally:
        inotify.close()
    return 0


def _start_inotify(tree: RemoteTree) -> Inotify:
    inotify = Inotify(tree)
    try:
        inotify.add_tree("")
    except OSError:
        inotify.close()
        raise
    return inotify


def _wait_for_eof(io: CommandIO, stop: threading.Event) -> None:
    with contextlib.suppress(OSError, EOFError):
        while io.stdin.read(4096):
            pass
    stop.set()


def _emit(out: ByteSink, header: dict[str, Any]) -> None:
    out.write(encode_header(header))
    out.flush()


def _watch_changes(io: CommandIO, tree: RemoteTree, stop: threading.Event, inotify: Inotify) -> None:
    pending: dict[str, None] = {}
    first = last = 0.0
    while not stop.is_set():
        changed, overflow = inotify.read(0.2 if not pending else WATCH_QUIET_SECONDS)
        now = time.monotonic()
        if overflow:
            pending.clear()
            _emit(io.stdout, {"rescan": True})
        if changed:
            first = first if pending else now
            last = now
            pending.update(dict.fromkeys(changed))
        if pending and (now - last >= WATCH_QUIET_SECONDS or now - first >= WATCH_MAX_DELAY_SECONDS):
            _emit_changes(io.stdout, tree, list(pending))
            pending.clear()


def _emit_changes(out: ByteSink, tree: RemoteTree, relatives: list[str]) -> None:
    changes = [tree.describe(relative) or {"path": relative, "kind": "gone"} for relative in relatives]
    _emit(out, {"changes": changes})


def _snapshot(tree: RemoteTree) -> dict[str, tuple[int, int, int, int]]:
    return {relative: (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ino) for relative, _, st in tree.walk()}


def _poll_changes(io: CommandIO, tree: RemoteTree, stop: threading.Event) -> None:
    before = _snapshot(tree)
    while not stop.wait(POLL_INTERVAL_SECONDS):
        after = _snapshot(tree)
        changed = [p for p in after if before.get(p) != after[p]] + [p for p in before if p not in after]
        if changed:
            _emit_changes(io.stdout, tree, changed)
        before = after


sync_manifest = _command("sync-manifest", _manifest)
sync_apply = _command("sync-apply", _apply)
sync_read = _command("sync-read", _read)
sync_blocks = _command("sync-blocks", _blocks)
sync_watch = _command("sync-watch", _watch)
