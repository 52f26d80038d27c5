"""The local index: path -> (kind, size, mtime, mode, content hash), so unchanged files are not reread.

A file's cached hash is reused while its size, mtime and inode are unchanged and its mtime is older
than the moment it was hashed by more than a timestamp tick (a "racy" entry, as git calls it, could
be rewritten within the same tick and keep its mtime; ``settle`` rehashes those once it is safe).
The counters (``hashed_files``, ``hashed_bytes``, ``reused``) are what tests and status report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nhdev.sync.rules import IgnoreRules

RACY_MARGIN_NS = 50_000_000
HASH_BLOCK = 1024 * 1024
HASH_THREADS = 4  # hashlib and reads release the GIL: a few files at once use every core

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
    def hashed(self) -> bool:
        """False for a file the scan has not hashed yet (``LocalIndex.unhashed``)."""
        return self.kind != "file" or bool(self.digest)

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
        self.unhashed: set[str] = set()  # files a scan found changed and left for ``hash`` (digest "")
        self.hashed_files = 0
        self.hashed_bytes = 0
        self.reused = 0

    # ---------------------------------------------------------------- full scan

    def scan(self, progress: Callable[[int], None] | None = None, *, defer_hashing: bool = False) -> None:
        """Walk the whole tree; hash only what the index cannot vouch for.

        With ``defer_hashing`` those files are not read now: their entries have an empty digest and
        their paths are in ``unhashed``, for the caller to ``hash`` the ones a comparison needs (a
        file the pod does not have is hashed while it is sent, not twice).
        """
        seen: dict[str, Entry] = {}
        self.refused = {}
        self.unhashed = set()
        for relative, st in self._walk(""):
            entry = self._entry_for(relative, st, defer_hashing=defer_hashing)
            if entry is not None:
                seen[relative] = entry
                if not entry.hashed:
                    self.unhashed.add(relative)
                if progress is not None and len(seen) % 500 == 0:
                    progress(len(seen))
        self.entries = seen

    def hash(self, paths: Iterable[str]) -> None:
        """Hash the given ``unhashed`` files now, several at a time."""
        wanted = sorted(p for p in paths if p in self.unhashed)
        self.unhashed.difference_update(wanted)
        if len(wanted) < 8:
            hashed = [self._hash(p) for p in wanted]
        else:
            with ThreadPoolExecutor(HASH_THREADS, thread_name_prefix="nhdev-hash") as pool:
                hashed = list(pool.map(self._hashed_entry, wanted))
            for entry in hashed:
                if entry is not None:
                    self.hashed_files += 1
                    self.hashed_bytes += entry.size
        for relative, entry in zip(wanted, hashed, strict=True):
            if entry is None:
                self.entries.pop(relative, None)  # gone (or no longer a file) since the scan
            else:
                self.entries[relative] = entry

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

    def _entry_for(self, relative: str, st: os.stat_result, *, defer_hashing: bool = False) -> Entry | None:
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
            mode = stat.S_IMODE(st.st_mode)  # a chmod changes neither size nor mtime
            return known if known.mode == mode else dataclasses.replace(known, mode=mode)
        if defer_hashing:
            return Entry("file", st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), "", st.st_ino, 0)
        return self._hash(relative)

    def _hash(self, relative: str) -> Entry | None:
        entry = self._hashed_entry(relative)
        if entry is not None:
            self.hashed_files += 1
            self.hashed_bytes += entry.size
        return entry

    def _hashed_entry(self, relative: str) -> Entry | None:
        hashed = hash_file(self.root / relative)
        if hashed is None:
            return None
        digest, st, started = hashed
        return Entry("file", st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), digest, st.st_ino, started)

    # ---------------------------------------------------------------- incremental

    def refresh(self, paths: Iterable[str], *, subtrees: bool = True) -> list[str]:
        """Look at ``paths`` again (a directory with everything under it, unless not ``subtrees``);
        the paths whose entry changed.

        A path is first spelled as its directory lists it (``listed_spelling``), so an event in
        another Unicode normalization never indexes the same file twice.
        """
        changed: list[str] = []
        for relative in sorted(set(paths)):
            spelled = self.listed_spelling(relative)
            if spelled != relative:
                if relative in self.entries:
                    changed.extend(self._forget(relative))
                relative = spelled
            changed.extend(self._refresh_one(relative, subtrees))
        return list(dict.fromkeys(changed))

    def listed_spelling(self, relative: str) -> str:
        """``relative`` with each name as its directory lists it.

        Names are bytes here and in the pod (Linux keeps NFC ``é`` and NFD ``e\u0301`` apart, and so
        does sync when both exist), but macOS file systems match names regardless of normalization
        and its events may spell a name differently from the listing: such a name is mapped to the
        one listed entry with the same NFC form. ASCII paths need no listing.
        """
        if relative.isascii():
            return relative
        parts = relative.split("/")
        for i, part in enumerate(parts):
            if part.isascii():
                continue
            try:
                names = os.listdir(self.root.joinpath(*parts[:i]))
            except OSError:
                break
            if part in names:
                continue
            wanted = unicodedata.normalize("NFC", part)
            matches = [n for n in names if not n.isascii() and unicodedata.normalize("NFC", n) == wanted]
            if len(matches) != 1:
                break
            parts[i] = matches[0]
        return "/".join(parts)

    def _refresh_one(self, relative: str, subtree: bool = True) -> list[str]:
        try:
            st = os.lstat(self.root / relative)
        except (FileNotFoundError, NotADirectoryError):
            return self._forget(relative)
        is_dir = stat.S_ISDIR(st.st_mode)
        if self.rules.ignored(relative, is_dir=is_dir) or not self._parents_indexed(relative):
            return []
        self.refused.pop(relative, None)
        changed = self._update(relative, self._entry_for(relative, st))
        if is_dir and subtree:
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
        """An entry sync itself just wrote (fetched from the pod), or read and hashed while sending it."""
        self.entries[relative] = entry
        self.unhashed.discard(relative)

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
