"""``SyncEngine``: the local tree kept in step with a sync root in the pod, over the session's link.

Hosting (the session does this): build ``IgnoreRules.from_config(dev.sync, local_root)``, create
the engine with the session's ``Tunnel`` as ``link``, call ``initial_sync(progress=...)`` once (it
raises ``LinkLost`` if the link is down; ``run`` would retry), then ``run(stop_event)`` on a thread
of its own until the session stops; ``close()`` afterwards saves the state. ``status()`` may be
called from any thread; ``on_batch(callback)`` registers hot reload, called on the engine's thread
with the relative paths each batch changed in the pod.

One worker thread does all the syncing (``run``), so the index, the base and the channels are never
touched concurrently: local batches come from the watcher, pod changes from ``sync-watch``, both
through one inbox. A lost link pauses the worker until ``link.transport()`` answers again; then,
and whenever ``link.generation`` moved (a new connection, perhaps to a new pod), everything is
compared again from the index and a fresh manifest, which is how nothing is missed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import queue
import stat
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Protocol

import paramiko

from nhdev.sync.index import Entry, LocalIndex, Signature, link_stays_inside
from nhdev.sync.local_writes import (
    LocalRefused,
    commit,
    discard,
    local_path,
    make_dir,
    make_symlink,
    receive_file,
)
from nhdev.sync.plan import Direction, Plan, reconcile
from nhdev.sync.protocol import ApplyChannel, BatchResult, LinkLost, Op, RemoteWatch, fetch, read_manifest
from nhdev.sync.rules import IgnoreRules
from nhdev.sync.status import SyncProgress, SyncStatus
from nhdev.sync.watcher import Watcher
from sidecar.sync_wire import DELTA_MIN_BYTES, FrameReader, conflict_name

log = logging.getLogger(__name__)

STATE_FILE = "sync-state.json"
STATE_VERSION = 1
RECONNECT_POLL = 0.2
SAVE_INTERVAL = 2.0
ERROR_PAUSE = 1.0

BatchCallback = Callable[[list[str]], None]
ProgressCallback = Callable[[SyncProgress], None]
Work = tuple[Literal["local", "remote", "rescan", "remote-ended"], Any]


class SyncLink(Protocol):
    """What sync needs from the session's connection (a ``Tunnel`` is one)."""

    def transport(self) -> paramiko.Transport: ...  # raises (e.g. TunnelDown) while the link is down

    @property
    def generation(self) -> int: ...  # bumped on each new connection


class SyncEngine:
    def __init__(self, link: SyncLink, local_root: Path, remote_root: str, rules: IgnoreRules, *,
                 direction: Direction = "send", delete_protection: bool = True, state_dir: Path,
                 prune: bool = False, force_polling: bool = False) -> None:
        self.link = link
        self.local_root = Path(os.path.realpath(local_root))
        self.remote_root = remote_root
        self.rules = rules
        self.direction: Direction = direction
        self.delete_protection = delete_protection
        self.prune = prune
        self.force_polling = force_polling
        self.state_path = state_dir / STATE_FILE
        state_dir.mkdir(parents=True, exist_ok=True)
        self._status = SyncStatus(direction=direction, local_root=str(self.local_root), remote_root=remote_root)
        self._status_lock = threading.Lock()
        self._work_lock = threading.RLock()
        self._callbacks: list[BatchCallback] = []
        self._inbox: queue.Queue[Work] = queue.Queue()
        self._watcher: Watcher | None = None
        self._apply: ApplyChannel | None = None
        self._apply_transport: paramiko.Transport | None = None
        self._remote_watch: RemoteWatch | None = None
        self._watch_transport: paramiko.Transport | None = None
        self._synced_generation: int | None = None
        self._compare_requested = True
        self._state_dirty = False
        self._saved_at = 0.0
        self.remote: dict[str, Entry] = {}
        entries, self.base, self.tree_id = self._load_state()
        self.index = LocalIndex(self.local_root, rules, entries)

    # ---------------------------------------------------------------- public API

    def on_batch(self, callback: BatchCallback) -> None:
        self._callbacks.append(callback)

    def status(self) -> SyncStatus:
        with self._status_lock:
            self._status.pending = self._inbox.qsize()
            self._status.files_in_sync = len(self.base)
            snapshot = SyncStatus(**{**self._status.__dict__})
            snapshot.warnings = list(self._status.warnings)
            snapshot.counters = type(self._status.counters)(**self._status.counters.__dict__)
            return snapshot

    def request_full_compare(self) -> None:
        """Compare the whole tree with the pod again soon, on the worker thread (a user's "resync")."""
        self._inbox.put(("rescan", None))

    def initial_sync(self, progress: ProgressCallback | None = None) -> SyncStatus:
        """Compare the whole tree with the pod and make them equal; raises LinkLost if the link is down."""
        with self._work_lock:
            self._ensure_watcher()
            self._full_compare(progress)
        return self.status()

    def run(self, stop_event: threading.Event) -> None:
        """Watch and sync until ``stop_event`` is set; pauses while the link is down."""
        self._ensure_watcher()
        while not stop_event.is_set():
            try:
                with self._work_lock:
                    if self._compare_requested or self._synced_generation != self.link.generation:
                        self._full_compare(None)
                self._work_once(stop_event)
            except LinkLost as exc:
                self._pause(str(exc), stop_event)
            except Exception as exc:  # a bug or a local disk error must not end sync for good
                log.exception("sync failed")
                self._set(state="error", last_error=f"{type(exc).__name__}: {exc}")
                self._compare_requested = True
                stop_event.wait(ERROR_PAUSE)
        self._set(state="stopped")

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        self._close_channels()
        with self._work_lock:
            self.index.settle()
            self._save_state()

    # ---------------------------------------------------------------- the worker

    def _work_once(self, stop_event: threading.Event) -> None:
        try:
            kind, payload = self._inbox.get(timeout=0.1)
        except queue.Empty:
            self._save_state_if_due()
            return
        with self._work_lock:
            if kind == "local":
                paths = set(payload)
                while True:  # everything already waiting goes into the same batch
                    try:
                        more_kind, more = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                    if more_kind == "local":
                        paths |= more
                    else:
                        self._inbox.put((more_kind, more))
                        break
                self._local_changes(paths)
            elif kind == "remote":
                self._remote_changes(payload)
            elif kind == "rescan":
                self._compare_requested = True
            elif kind == "remote-ended":
                raise LinkLost(f"pod watch ended: {payload}")

    def _pause(self, reason: str, stop_event: threading.Event) -> None:
        self._set(state="paused", last_error=f"link down: {reason}")
        self._close_channels()
        while not stop_event.is_set():
            try:
                if self.link.transport().is_active():
                    break
            except Exception:  # whatever the link raises while it is down (TunnelDown, ...)
                pass
            stop_event.wait(RECONNECT_POLL)
        self._compare_requested = True
        with self._status_lock:
            self._status.counters.resumes += 1

    def _transport(self) -> paramiko.Transport:
        try:
            transport = self.link.transport()
        except Exception as exc:
            raise LinkLost(str(exc) or type(exc).__name__) from exc
        if not transport.is_active():
            raise LinkLost("the SSH transport is closed")
        return transport

    def _ensure_watcher(self) -> None:
        if self._watcher is not None:
            return
        self._watcher = Watcher(self.local_root, self.rules, lambda paths: self._inbox.put(("local", paths)),
                                force_polling=self.force_polling)
        self._watcher.start()
        self._set(watcher=self._watcher.mode)
        if self._watcher.hint:
            self._warn(self._watcher.hint)

    def _close_channels(self) -> None:
        for channel in (self._apply, self._remote_watch):
            if channel is not None:
                channel.close()
        self._apply = self._remote_watch = None
        self._apply_transport = self._watch_transport = None

    # ---------------------------------------------------------------- full compare

    def _full_compare(self, progress: ProgressCallback | None) -> None:
        transport = self._transport()
        generation = self.link.generation  # after transport(), which may have just connected
        self._set(state="scanning", progress=SyncProgress("scanning"))
        if self.direction == "sendReceive":
            self._ensure_remote_watch(transport)  # before the manifest: no pod change falls between

        def scanned(count: int) -> None:
            if progress is not None:
                progress(SyncProgress("scanning", count))

        self.index.scan(scanned, defer_hashing=True)
        manifest = read_manifest(transport, self.remote_root)
        if manifest.tree_id != self.tree_id:  # a new pod (or a wiped volume): nothing is common any more
            self.base, self.tree_id = {}, manifest.tree_id
        self.remote = {p: e for p, e in manifest.entries.items() if not self.rules.ignored(p, is_dir=e.kind == "dir")}
        self.index.hash(self._hash_needed())
        self._count_hashing(manifest.hashed_files)
        paths = set(self.index.entries) | set(self.remote)
        plan = reconcile(paths, self.index.entries, self.remote, self.base, direction=self.direction,
                         delete_protection=self.delete_protection, prune=self.prune)
        self._replace_spelling_twins(plan)
        self._set(state="syncing")
        self._execute(plan, transport, progress)
        self.index.settle()
        self._count_hashing(0)
        self._save_state()
        self._compare_requested = False
        self._synced_generation = generation
        with self._status_lock:
            self._status.counters.full_compares += 1
        self._set(state="idle", progress=None, last_synced_at=time.time(), last_error="")
        for path, reason in self.index.refused.items():
            self._warn(f"not synced: {path}: {reason}")

    def _hash_needed(self) -> list[str]:
        """The files the scan left unhashed whose digest the comparison needs. One-way: where the pod
        has a file of the same size (any other difference is a send, and sending hashes). Two-way:
        wherever the pod or the last agreed state has the path (whether it moved is the question)."""
        needed: list[str] = []
        for path in self.index.unhashed:
            theirs = self.remote.get(path)
            if self.direction == "sendReceive":
                if theirs is not None or path in self.base:
                    needed.append(path)
            elif theirs is not None and theirs.kind == "file" and theirs.size == self.index.entries[path].size:
                needed.append(path)
        return needed

    def _spelling_twins(self, paths: Iterable[str]) -> list[str]:
        """Pod-only paths that are another Unicode normalization of a local path the pod lacks (a
        name from a macOS tree, say NFD, where the pod holds NFC): the local spelling replaces them,
        in one-way always, in two-way when the content is the same (so no second, identical-looking
        name appears in the pod). Paths here are compared as bytes otherwise."""
        wanted: dict[str, str] = {}
        for path in paths:
            if not path.isascii() and path not in self.remote:
                wanted[unicodedata.normalize("NFC", path)] = path
        if not wanted:
            return []
        twins: list[str] = []
        for theirs_path, theirs in self.remote.items():
            if theirs_path.isascii() or theirs_path in self.index.entries:
                continue
            ours_path = wanted.get(unicodedata.normalize("NFC", theirs_path))
            ours = self.index.entries.get(ours_path or "")
            if ours is None or ours_path == theirs_path:
                continue
            if self.direction == "send" or (ours.hashed and ours.signature == theirs.signature):
                twins.append(theirs_path)
        return twins

    def _replace_spelling_twins(self, plan: Plan) -> None:
        for twin in self._spelling_twins(self.index.entries):
            if twin in plan.fetch:
                plan.fetch.remove(twin)
            if twin not in plan.delete_remote:
                plan.delete_remote.append(twin)
            plan.agreed.pop(twin, None)

    def _count_hashing(self, remote_hashed: int) -> None:
        with self._status_lock:
            counters = self._status.counters
            counters.remote_hashed_files += remote_hashed
            counters.hashed_files = self.index.hashed_files
            counters.hashed_bytes = self.index.hashed_bytes
            counters.reused_hashes = self.index.reused

    # ---------------------------------------------------------------- incremental

    def _local_changes(self, paths: set[str]) -> None:
        if any(self.rules.is_rules_file(p) for p in paths):
            self.rules.reload_gitignores()  # the new rules take effect now; the compare applies them
            self._compare_requested = True
        changed = self.index.refresh(paths)
        if not changed:
            return
        started = time.monotonic()
        transport = self._transport()
        present = [p for p in changed if p in self.index.entries]
        gone = [p for p in changed if p not in self.index.entries] + self._spelling_twins(present)
        self._set(state="syncing")
        self._send(transport, present, gone, conflicted={}, touch_parents=True)
        self._set(state="idle", last_batch_ms=round((time.monotonic() - started) * 1000, 2),
                  last_synced_at=time.time())

    def _remote_changes(self, changes: list[dict[str, Any]]) -> None:
        paths: list[str] = []
        for change in changes:
            relative = str(change["path"])
            if change.get("kind") == "gone":
                was = self.remote.pop(relative, None) or self.index.entries.get(relative)
                prefix = relative + "/"
                below = [p for p in self.index.entries if p.startswith(prefix)] if was and was.kind == "dir" else []
                for path in below:
                    self.remote.pop(path, None)
                paths += [relative, *below]
            elif not self.rules.ignored(relative, is_dir=change.get("kind") == "dir"):
                self.remote[relative] = Entry.from_wire(change)
                paths.append(relative)
        if not paths:
            return
        # Only these paths here: a directory's change in the pod (its mode, its mtime) is no reason
        # to walk everything under it; what changed below it comes as changes of its own.
        self.index.refresh(paths, subtrees=False)
        view = {p: self.remote.get(p) for p in paths}
        plan = reconcile(paths, self.index.entries, view, self.base, direction=self.direction,
                         delete_protection=self.delete_protection)
        if not plan.is_empty():
            self._set(state="syncing")
            self._execute(plan, self._transport(), None)
            self._set(state="idle", last_synced_at=time.time())
        else:
            self._apply_agreement(plan)

    # ---------------------------------------------------------------- carrying out a plan

    def _apply_agreement(self, plan: Plan) -> None:
        for path, signature in plan.agreed.items():
            self.base[path] = signature
        for path in plan.forget:
            self.base.pop(path, None)
        self._state_dirty = self._state_dirty or bool(plan.agreed or plan.forget)

    def _execute(self, plan: Plan, transport: paramiko.Transport, progress: ProgressCallback | None) -> None:
        self._apply_agreement(plan)
        conflicted: dict[str, str] = {}
        extra_sends: list[str] = []
        if plan.conflicts:
            copies = self._fetch(transport, plan.conflicts, set_aside=True)
            extra_sends += copies
            conflicted = {p: self.remote[p].digest for p in plan.conflicts if p in self.remote}
        fetch = self._apply_pod_modes(plan.fetch)
        if fetch:
            extra_sends += self._fetch(transport, fetch, set_aside=False)
        self._delete_local(plan.delete_local)
        sends = [*plan.send, *plan.conflicts, *extra_sends]
        self._send(transport, sends, plan.delete_remote, conflicted=conflicted, progress=progress)

    def _expect(self, path: str) -> str | None:
        """The ``expect`` of a two-way op: the agreed digest ("" if none); one-way ops carry none."""
        if self.direction == "send":
            return None
        agreed = self.base.get(path)
        return agreed[1] if agreed is not None else ""

    def _ops(self, sends: Iterable[str], deletes: Iterable[str], conflicted: dict[str, str], *,
             touch_parents: bool = False, whole: bool = False) -> list[Op]:
        ops: list[Op] = []
        sends, deletes = set(sends), set(deletes)
        for path in sorted(deletes, key=lambda p: (-p.count("/"), p)):  # children before parents
            ops.append(Op("delete", path, None, self._expect(path)))
        touched = self._touched_parents(sends | deletes, sends) if touch_parents else {}
        for path in sorted(sends | set(touched)):  # parents before children
            entry = touched.get(path) or self.index.entries.get(path)
            if entry is None:
                continue
            expect = conflicted.get(path, self._expect(path)) if self.direction == "sendReceive" else None
            kind = entry.kind
            theirs = self.remote.get(path)
            if kind == "file" and not whole and path not in conflicted and theirs is not None and theirs.kind == "file":
                if entry.hashed and theirs.digest == entry.digest:
                    kind = "attr"  # the pod has this content: only the mode (and mtime) goes
                elif min(entry.size, theirs.size) >= DELTA_MIN_BYTES:
                    kind = "patch"  # the pod has another version: only the blocks that differ go
            ops.append(Op(kind, path, entry, expect))
        return ops

    def _touched_parents(self, paths: set[str], sends: set[str]) -> dict[str, Entry]:
        """The directories holding ``paths`` as they are here now, so the pod's get the same mtime
        (adding or removing a name changes a directory's mtime; rsync -a keeps them equal)."""
        parents: dict[str, Entry] = {}
        for path in paths:
            parent = path.rpartition("/")[0]
            known = self.index.entries.get(parent)
            if not parent or parent in sends or parent in parents or known is None or known.kind != "dir":
                continue
            try:
                st = os.lstat(self.local_root / parent)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                parents[parent] = Entry("dir", 0, st.st_mtime_ns, stat.S_IMODE(st.st_mode), "", st.st_ino)
        return parents

    def _send(self, transport: paramiko.Transport, sends: Iterable[str], deletes: Iterable[str], *,
              conflicted: dict[str, str], progress: ProgressCallback | None = None,
              touch_parents: bool = False, whole: bool = False) -> None:
        sends, deletes = list(sends), list(deletes)
        ops = self._ops(sends, deletes, conflicted, touch_parents=touch_parents, whole=whole)
        if not ops:
            return
        touched = {op.path for op in ops if op.kind == "dir"}.difference(sends)
        channel = self._apply_channel(transport)
        channel.on_file_progress = self._progress_counter(ops, progress)
        try:
            result = channel.send(ops)
        finally:
            channel.on_file_progress = None
        self._record_sent(result)
        if result.stale:  # the pod's file changed under a mode-only update or a delta: send it whole
            self._send(transport, list(result.stale), [], conflicted={}, whole=True)
        follow_up = list(result.conflicts.values()) + list(result.kept)
        if follow_up and self.direction == "sendReceive":
            extra = self._fetch(transport, follow_up, set_aside=False)
            if extra:
                self._send(transport, extra, [], conflicted={})
        changed = sorted((set(result.sent) | set(result.deleted)) - touched)  # a touched parent is no change
        if changed:
            self._notify(changed)

    def _progress_counter(self, ops: list[Op], progress: ProgressCallback | None) -> Callable[[int], None] | None:
        if progress is None:
            return None
        files = [op for op in ops if op.kind in ("file", "patch") and op.entry is not None]
        total = SyncProgress("sending", 0, len(files), 0, sum(op.entry.size for op in files if op.entry))
        last = [0.0]

        def advanced(size: int) -> None:
            total.bytes_done += size
            now = time.monotonic()
            if now - last[0] > 0.1:
                last[0] = now
                progress(total)

        return advanced

    def _record_sent(self, result: BatchResult) -> None:
        for path, entry in result.sent.items():
            self.base[path] = entry.signature
            self.remote[path] = entry
            if entry.kind == "file":
                self.index.record(path, entry)
        for path in result.deleted:
            self.base.pop(path, None)
            self.remote.pop(path, None)
        for path, entry in result.kept.items():
            self.remote[path] = entry
            self.base.pop(path, None)
        for path, stale in result.stale.items():
            if stale is None:
                self.remote.pop(path, None)
            else:
                self.remote[path] = stale
        for path, aside in result.conflicts.items():
            self._warn(f"conflict: {path} changed in the pod and here; the pod's version is kept as {aside}")
        for path, reason in result.errors.items():
            self._warn(f"not synced: {path}: {reason}")
        with self._status_lock:
            counters = self._status.counters
            counters.batches += 1
            counters.files_sent += sum(1 for e in result.sent.values() if e.kind == "file") - len(result.attributes)
            counters.attributes_sent += len(result.attributes)
            counters.files_patched += len(result.patched)
            counters.bytes_sent += result.bytes_sent
            counters.deleted_remote += len(result.deleted)
            counters.conflicts += len(result.conflicts)
            if result.errors:
                self._status.last_error = next(iter(result.errors.values()))
        self._state_dirty = True

    def _apply_channel(self, transport: paramiko.Transport) -> ApplyChannel:
        if self._apply is None or self._apply_transport is not transport:
            if self._apply is not None:
                self._apply.close()
            self._apply = ApplyChannel(transport, self.remote_root, self.local_root)
            self._apply_transport = transport
        return self._apply

    def _ensure_remote_watch(self, transport: paramiko.Transport) -> None:
        if self._remote_watch is not None and self._watch_transport is transport:
            return
        if self._remote_watch is not None:
            self._remote_watch.close()
        self._remote_watch = RemoteWatch(
            transport, self.remote_root,
            on_changes=lambda changes: self._inbox.put(("remote", changes)),
            on_rescan=lambda: self._inbox.put(("rescan", None)),
            on_ended=lambda exc: self._inbox.put(("remote-ended", str(exc))))
        self._watch_transport = transport
        self._set(remote_watcher=self._remote_watch.mode)
        if self._remote_watch.reason:
            self._warn(f"pod changes are polled: {self._remote_watch.reason}")

    # ---------------------------------------------------------------- writing here

    def _apply_pod_modes(self, paths: list[str]) -> list[str]:
        """Fetches that are only a mode change (the content here is the pod's) are done here, without
        reading the file from the pod; returns the paths still to fetch."""
        to_fetch: list[str] = []
        for relative in paths:
            ours, theirs = self.index.entries.get(relative), self.remote.get(relative)
            if (ours is None or theirs is None or ours.kind != "file" or theirs.kind != "file" or not ours.hashed
                    or ours.digest != theirs.digest):
                to_fetch.append(relative)
                continue
            try:
                path = local_path(self.local_root, relative)
                if not self._unchanged_here(relative, path):
                    to_fetch.append(relative)
                    continue
                os.chmod(path, theirs.mode & 0o7777)
            except (LocalRefused, OSError):
                to_fetch.append(relative)
                continue
            entry = dataclasses.replace(ours, mode=theirs.mode & 0o7777)
            self.index.record(relative, entry)
            self.base[relative] = entry.signature
            self._state_dirty = True
            with self._status_lock:
                self._status.counters.attributes_fetched += 1
        return to_fetch

    def _fetch(self, transport: paramiko.Transport, paths: list[str], *, set_aside: bool) -> list[str]:
        """Bring the pod's entries here; returns local paths that now need sending (conflict copies,
        and files found changed here at the last moment, which then win)."""
        to_send: list[str] = []

        def receive(header: dict[str, Any], reader: FrameReader) -> None:
            to_send.extend(self._receive(header, reader, set_aside=set_aside))

        fetch(transport, self.remote_root, sorted(paths), receive)
        self._state_dirty = True
        return to_send

    def _receive(self, header: dict[str, Any], reader: FrameReader, *, set_aside: bool) -> list[str]:
        op, relative = str(header.get("op")), str(header.get("path"))
        try:
            path = local_path(self.local_root, relative)
        except LocalRefused as exc:
            if op == "file":
                reader.skip_content()
            self._warn(f"not fetched: {exc}")
            return []
        if op == "missing":
            self.remote.pop(relative, None)
            return []
        if op == "file":
            return self._receive_file(header, reader, relative, path, set_aside)
        if set_aside:
            return []  # directories and symlinks do not conflict: the local one stays
        if not self._unchanged_here(relative, path):
            return [relative]
        try:
            if op == "dir":
                make_dir(path, int(header["mode"]))
            elif op == "symlink":
                target = str(header["target"])
                if not link_stays_inside(self.local_root, relative, target):
                    self._warn(f"not fetched: {relative}: symlink target leaves the sync root: {target}")
                    return []
                make_symlink(path, target)
        except OSError as exc:
            self._warn(f"not fetched: {relative}: {exc.strerror or exc}")
            return []
        self.index.refresh([relative])
        entry = self.index.entries.get(relative)
        if entry is not None:
            self.base[relative] = entry.signature
            self.remote[relative] = entry
        return []

    def _receive_file(self, header: dict[str, Any], reader: FrameReader, relative: str, path: Path,
                      set_aside: bool) -> list[str]:
        try:
            received = receive_file(path, reader, int(header["mode"]), int(header["mtime_ns"]))
        except (LocalRefused, OSError) as exc:
            self._warn(f"not fetched: {relative}: {exc}")
            return []
        entry = Entry("file", received.stat.st_size, received.stat.st_mtime_ns, int(header["mode"]) & 0o7777,
                      received.digest, 0, received.written_at_ns)
        with self._status_lock:
            self._status.counters.files_fetched += 1
            self._status.counters.bytes_fetched += entry.size
        if set_aside or not self._unchanged_here(relative, path) or (path.is_dir() and not path.is_symlink()):
            aside = Path(conflict_name(str(path)))
            commit(received.temp, aside)
            aside_relative = aside.relative_to(self.local_root).as_posix()
            self.index.refresh([aside_relative])
            with self._status_lock:
                self._status.counters.conflicts += 1
            self._warn(f"conflict: {relative} changed here and in the pod; the pod's version is kept as "
                       f"{aside_relative}")
            return [aside_relative] + ([] if set_aside else [relative])
        try:
            commit(received.temp, path)
        except OSError as exc:
            discard(received.temp)
            self._warn(f"not fetched: {relative}: {exc.strerror or exc}")
            return []
        st = os.lstat(path)
        entry = Entry("file", st.st_size, st.st_mtime_ns, entry.mode, entry.digest, st.st_ino, received.written_at_ns)
        self.index.record(relative, entry)
        self.base[relative] = entry.signature
        self.remote[relative] = entry
        return []

    def _unchanged_here(self, relative: str, path: Path) -> bool:
        """Whether the local path is still what the index says, so replacing it loses nothing."""
        known = self.index.entries.get(relative)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return True
        if known is None:
            return False  # something the index has not seen yet (its watcher event is on its way)
        if known.kind == "file":
            return stat.S_ISREG(st.st_mode) and (known.size, known.mtime_ns, known.ino) == (
                st.st_size, st.st_mtime_ns, st.st_ino)
        if known.kind == "dir":
            return stat.S_ISDIR(st.st_mode)
        return stat.S_ISLNK(st.st_mode) and os.readlink(path) == known.digest

    def _delete_local(self, paths: list[str]) -> None:
        for relative in sorted(paths, key=lambda p: (-p.count("/"), p)):
            try:
                path = local_path(self.local_root, relative)
            except LocalRefused:
                continue
            if not self._unchanged_here(relative, path):
                continue
            try:
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()
            except FileNotFoundError:
                pass
            except OSError:
                continue  # a directory that still has files here: it stays
            self.index.refresh([relative])
            self.base.pop(relative, None)
            with self._status_lock:
                self._status.counters.deleted_local += 1
        self._state_dirty = self._state_dirty or bool(paths)

    # ---------------------------------------------------------------- state, status, callbacks

    def _notify(self, paths: list[str]) -> None:
        for callback in list(self._callbacks):
            try:
                callback(paths)
            except Exception:
                log.exception("sync batch callback failed")

    def _set(self, **fields: Any) -> None:
        with self._status_lock:
            for name, value in fields.items():
                setattr(self._status, name, value)

    def _warn(self, message: str) -> None:
        log.warning("%s", message)
        with self._status_lock:
            self._status.warn(message)

    def _load_state(self) -> tuple[dict[str, Entry], dict[str, Signature], str]:
        try:
            saved = json.loads(self.state_path.read_text(encoding="utf-8", errors="surrogateescape"))
            if saved.get("version") != STATE_VERSION or saved.get("remote_root") != self.remote_root:
                return {}, {}, ""
            entries = LocalIndex.entries_from_json(saved["local"])
            base = {path: (str(k), str(d), int(m)) for path, (k, d, m) in saved["base"].items()}
            return entries, base, str(saved["tree_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return {}, {}, ""

    def _save_state(self) -> None:
        state = {"version": STATE_VERSION, "remote_root": self.remote_root, "tree_id": self.tree_id,
                 "local": self.index.to_json(), "base": {p: list(s) for p, s in self.base.items()}}
        temp = self.state_path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(state, ensure_ascii=False, separators=(",", ":")), encoding="utf-8",
                        errors="surrogateescape")
        os.replace(temp, self.state_path)
        self._state_dirty = False
        self._saved_at = time.monotonic()

    def _save_state_if_due(self) -> None:
        if self._state_dirty and time.monotonic() - self._saved_at > SAVE_INTERVAL:
            with self._work_lock, contextlib.suppress(OSError):
                self._save_state()
