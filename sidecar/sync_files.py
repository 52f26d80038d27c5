"""Writing one received file, the same way on both ends of sync (stdlib only, like ``sync_wire``).

The content goes to a private temporary name beside the destination (``.nhdev-tmp-NAME-XXXXXXXX``,
created exclusively, never following a link), its SHA-256 is checked against the sender's, its
mode and mtime are set, and only then may the caller rename it over the real name (``commit``):
so the real name shows the old file or the whole new one, never a part. There is no fsync: the
guarantee is against a dropped transfer, not a power cut (as rsync without ``--fsync``).

The sidecar's ``sync-apply`` and nhdev's fetch (pod -> local) both call ``write_temp``; each side
decides what happens after (conflict copies, indexes).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import secrets
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sidecar.sync_wire import TEMP_PREFIX

CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Written:
    temp: str  # the content, under a private name beside its destination
    digest: str  # SHA-256 hex of what was written
    stat: os.stat_result  # of the temp file, after mode and mtime were set
    written_at_ns: int  # when writing began (an index may trust the digest for older mtimes)


_SALT = secrets.token_hex(4)  # per process; with a counter, unique without a random draw per file
_COUNTER = itertools.count()


def temp_name(path: str) -> str:
    directory, name = os.path.split(path)
    return os.path.join(directory, f"{TEMP_PREFIX}{name[:60]}-{_SALT}{next(_COUNTER):x}")


def make_parent(path: str) -> None:
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent, exist_ok=True)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_temp(path: str, content: Iterable[bytes], mode: int, mtime_ns: int,
               check: Callable[[str], None]) -> Written:
    """Write ``content`` to a temp file beside ``path``; ``check(digest)`` raises if the content is not
    what the sender meant (its trailer), which removes the temp file and propagates."""

    def fill(fd: int) -> str:
        digest = hashlib.sha256()
        for chunk in content:
            digest.update(chunk)
            write_all(fd, chunk)
        return digest.hexdigest()

    return _temp_file(path, CREATE_FLAGS, fill, mode, mtime_ns, check)


def patch_temp(path: str, base_fd: int, size: int, block_size: int, blocks: Iterable[tuple[int, bytes]], mode: int,
               mtime_ns: int, check: Callable[[str], None]) -> Written:
    """Like ``write_temp``, for a block delta: the temp file starts as a copy of the open file
    ``base_fd``, cut to ``size``; each (block number, content) of ``blocks`` is written at its place;
    then the whole result is read back for its SHA-256, which ``check`` must accept (a base that
    was not what the sender compared against gives another digest, and nothing is renamed)."""

    def fill(fd: int) -> str:
        _copy(base_fd, fd, min(size, os.fstat(base_fd).st_size))
        os.ftruncate(fd, size)
        for number, content in blocks:
            offset = number * block_size
            if offset + len(content) > size or len(content) > block_size:
                raise ValueError(f"block {number} does not fit a file of {size} bytes")
            view = memoryview(content)
            while view:
                count = os.pwrite(fd, view, offset)
                view, offset = view[count:], offset + count
        digest = hashlib.sha256()
        offset = 0
        while chunk := os.pread(fd, 1024 * 1024, offset):
            digest.update(chunk)
            offset += len(chunk)
        return digest.hexdigest()

    return _temp_file(path, (CREATE_FLAGS & ~os.O_WRONLY) | os.O_RDWR, fill, mode, mtime_ns, check)  # read back


def _temp_file(path: str, flags: int, fill: Callable[[int], str], mode: int, mtime_ns: int,
               check: Callable[[str], None]) -> Written:
    """A temp file beside ``path`` filled by ``fill(fd) -> sha256``, accepted by ``check``, with its
    mode and mtime set; removed again if anything of that fails."""
    temp = temp_name(path)
    fd = os.open(temp, flags, 0o600)
    try:
        written_at = time.time_ns()
        digest = fill(fd)
        check(digest)
        os.fchmod(fd, mode & 0o7777)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        discard(temp)
        raise
    os.close(fd)
    return Written(temp, digest, st, written_at)


def _copy(source: int, target: int, size: int) -> None:
    """``size`` bytes from the start of ``source`` to ``target`` (in the kernel where it can)."""
    done = 0
    try:
        while done < size:
            copied = os.copy_file_range(source, target, size - done, done, done)
            if copied == 0:
                break
            done += copied
        return
    except (AttributeError, OSError):  # no copy_file_range here (or not between these file systems)
        pass
    while done < size and (chunk := os.pread(source, min(1024 * 1024, size - done), done)):
        os.pwrite(target, chunk, done)
        done += len(chunk)


def commit(temp: str, path: str) -> None:
    """Rename ``temp`` over ``path`` (atomic); a directory in the way raises IsADirectoryError."""
    os.replace(temp, path)


def discard(temp: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(temp)


def set_directory_attributes(path: str, mode: int, mtime_ns: int | None) -> None:
    """A directory's permission bits (only if they differ: changing them needs ownership) and mtime
    (best effort: a directory the sidecar does not own keeps its own, as rsync -a run as a user)."""
    if stat.S_IMODE(os.lstat(path).st_mode) != mode & 0o7777:
        os.chmod(path, mode & 0o7777)
    if mtime_ns is not None:
        with contextlib.suppress(PermissionError):
            os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def set_attributes(path: str, mode: int, mtime_ns: int | None) -> None:
    """Permission bits (and the mtime, if given) of an existing file or directory, not following links."""
    os.chmod(path, mode & 0o7777)
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
