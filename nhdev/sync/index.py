"""The local index: path -> (kind, size, mtime, mode, content hash), so unchanged files are not reread.

A file's cached hash is reused while its size, mtime and inode are unchanged and its mtime is older
than the moment it was hashed by more than a timestamp tick (a "racy" entry, as git calls it, could
be rewritten within the same tick and keep its mtime; ``settle`` rehashes those once it is safe).
The counters (``hashed_files``, ``hashed_bytes``, ``reused``) are what tests and status report.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nhdev.sync.rules import IgnoreRules

RACY_MARGIN_NS = 50_000_000
HASH_BLOCK = 1024 * 1024

Signature = tuple[str, str, int]  # kind, digest (symlink: target), permission bits


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str  # "file", "dir" or "symlink"
    size: int
    mtime_ns: int
    mode: int  # permission bits (and setuid/setgid/sticky)
    digest: str  # SHA-256 hex for files, the target for symlinks, "" for directories
    ino: int = 0
    hashed_at_ns: int = 0

    @property
    def signature(self) -> Signature:
        """What must be equal on both sides: content and permissions (rsync -a), not times."""
        return self.kind, self.digest, 0 if self.kind == "symlink" else self.mode & 0o7777

    def trusted_for(self, st: os.stat_result) -> bool:
        return ((self.size, self.mtime_ns, self.ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
                and self.mtime_ns < self.hashed_at_ns - RACY_MARGIN_NS)

    def to_list(self) -> list[Any]:
        return [self.kind, self.size, self.mtime_ns, self.mode, self.digest, self.ino, self.hashed_at_ns]

    @classmethod
    def from_list(cls, fields: list[Any]) -> Entry:
        return cls(str(fields[0]), int(fields[1]), int(fields[2]), int(fields[3]), str(fields[4]), int(fields[5]),
                   int(fields[6]))

    @classmethod
    def from_wire(cls, entry: dict[str, Any]) -> Entry:
        return cls(str(entry["kind"]), int(entry["size"]), int(entry["mtime_ns"]), int(entry["mode"]),
                   str(entry["digest"]))


def hash_file(path: Path) -> tuple[str, os.stat_result, int] | None:
    """(SHA-256, fstat before reading, time hashing started), or None if it is not a regular file now."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        started = time.time_ns()
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        digest = hashlib.sha256()
        while block := os.read(fd, HASH_BLOCK):
            digest.update(block)
        return digest.hexdigest(), st, started
    finally:
        os.close(fd)


def link_stays_inside(root: Path, relative: str, target: str) -> bool:
    """Whether a symlink at ``relative`` with ``target`` is relative and resolves inside ``root``."""
    if target.startswith("/") or "\x00" in target:
        return False
    parts: list[str] = relative.split("/")[:-1]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return False
            parts.pop()
        else:
            parts.append(part)
    resolved = os.path.realpath(root.joinpath(*parts))
    real_root = os.path.realpath(root)
    return resolved == real_root or resolved.startswith(real_root + os.sep)


class LocalIndex:
    """The synced tree under ``root`` as last seen, filtered by ``rules``."""

    def __init__(self, root: Path, rules: IgnoreRules, entries: dict[str, Entry] | None = None) -> None:
        self.root = root
        self.rules = rules
        self.entries: dict[str, Entry] = entries or {}
        self.refused: dict[str, str] = {}  # path -> why it is not synced (escaping symlinks, special files)
        self.hashed_files = 0
        self.hashed_bytes = 0
        self.reused = 0

    # ---------------------------------------------------------------- full scan

    def scan(self, progress: Callable[[int], None] | None = None) -> None:
        """Walk the whole tree; hash only what the index cannot vouch for."""
        seen: dict[str, Entry] = {}
        self.refused = {}
        for relative, st in self._walk(""):
            entry = self._entry_for(relative, st)
            if entry is not None:
                seen[relative] = entry
                if progress is not None and len(seen) % 500 == 0:
                    progress(len(seen))
        self.entries = seen

    def _walk(self, relative_dir: str) -> Iterator[tuple[str, os.stat_result]]:
        """(relative path, lstat) of everything not ignored under ``relative_dir``, parents first."""
        pending = [relative_dir]
        while pending:
            current = pending.pop()
            host = self.root / current if current else self.root
            try:
                with os.scandir(host) as listing:
                    found = sorted(listing, key=lambda e: e.name)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            for item in found:
                relative = f"{current}/{item.name}" if current else item.name
                try:
                    st = item.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)
                if self.rules.ignored(relative, is_dir=is_dir):
                    continue
                yield relative, st
                if is_dir:
                    pending.append(relative)

    def _entry_for(self, relative: str, st: os.stat_result) -> Entry | None:
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            return Entry("dir", 0, st.st_mtime_ns, mode, "", st.st_ino)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(self.root / relative)
            if not link_stays_inside(self.root, relative, target):
                self.refused[relative] = f"symlink target leaves the sync root: {target}"
                return None
            return Entry("symlink", st.st_size, st.st_mtime_ns, mode, target, st.st_ino)
        if not stat.S_ISREG(st.st_mode):
            self.refused[relative] = "not a regular file, directory or symlink"
            return None
        known = self.entries.get(relative)
        if known is not None and known.kind == "file" and known.trusted_for(st):
            self.reused += 1
            return known
        return self._hash(relative)

    def _hash(self, relative: str) -> Entry | None:
        hashed = hash_file(self.root / relative)
        if hashed is None:
            return None
        digest, st, started = hashed
        self.hashed_files += 1
        self.hashed_bytes += st.st_size
        return Entry("file", st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), digest, st.st_ino, started)

    # ---------------------------------------------------------------- incremental

    def refresh(self, paths: Iterable[str]) -> list[str]:
        """Look at ``paths`` again (a directory with everything under it); the paths whose entry changed."""
        changed: list[str] = []
        for relative in sorted(set(paths)):
            changed.extend(self._refresh_one(relative))
        return list(dict.fromkeys(changed))

    def _refresh_one(self, relative: str) -> list[str]:
        try:
            st = os.lstat(self.root / relative)
        except (FileNotFoundError, NotADirectoryError):
            return self._forget(relative)
        is_dir = stat.S_ISDIR(st.st_mode)
        if self.rules.ignored(relative, is_dir=is_dir) or not self._parents_indexed(relative):
            return []
        self.refused.pop(relative, None)
        changed = self._update(relative, self._entry_for(relative, st))
        if is_dir:
            seen = {relative}
            for below, below_st in self._walk(relative):
                seen.add(below)
                changed.extend(self._update(below, self._entry_for(below, below_st)))
            prefix = relative + "/"
            for gone in [p for p in self.entries if p.startswith(prefix) and p not in seen]:
                changed.extend(self._forget(gone))
        return changed

    def _parents_indexed(self, relative: str) -> bool:
        parent = relative.rpartition("/")[0]
        return not parent or self.entries.get(parent, Entry("", 0, 0, 0, "")).kind == "dir"

    def _update(self, relative: str, entry: Entry | None) -> list[str]:
        old = self.entries.get(relative)
        if entry is None:
            return self._forget(relative)
        self.entries[relative] = entry
        if old is not None and old.kind == "dir" and entry.kind != "dir":
            self._forget_below(relative)
        return [] if old is not None and old.signature == entry.signature else [relative]

    def _forget(self, relative: str) -> list[str]:
        old = self.entries.pop(relative, None)
        if old is not None and old.kind != "dir":
            return [relative]
        # A directory (or a path never indexed, whose children might be): a walk over the index.
        return ([relative] if old is not None else []) + self._forget_below(relative)

    def _forget_below(self, relative: str) -> list[str]:
        prefix = relative + "/"
        below = [p for p in self.entries if p.startswith(prefix)]
        for path in below:
            del self.entries[path]
        return below

    def record(self, relative: str, entry: Entry) -> None:
        """An entry sync itself just wrote (fetched from the pod), so its own write is no change."""
        self.entries[relative] = entry

    def settle(self) -> None:
        """Rehash racy entries once their mtime is safely in the past, so the next start trusts them."""
        racy = [p for p, e in self.entries.items()
                if e.kind == "file" and e.mtime_ns >= e.hashed_at_ns - RACY_MARGIN_NS]
        if not racy:
            return
        newest = max(self.entries[p].mtime_ns for p in racy)
        wait_ns = newest + RACY_MARGIN_NS + 1_000_000 - time.time_ns()
        if wait_ns > 0:
            time.sleep(wait_ns / 1e9)
        for relative in racy:
            entry = self._hash(relative)
            if entry is not None and entry.signature == self.entries[relative].signature:
                self.entries[relative] = entry

    # ---------------------------------------------------------------- persistence

    def to_json(self) -> dict[str, list[Any]]:
        return {path: entry.to_list() for path, entry in self.entries.items()}

    @staticmethod
    def entries_from_json(saved: dict[str, list[Any]]) -> dict[str, Entry]:
        return {path: Entry.from_list(fields) for path, fields in saved.items()}
