"""Writing what the pod sent into the local tree: confined to the root, atomic (temp name + rename)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sidecar.sync_wire import TEMP_PREFIX, FrameReader, is_private_name


class LocalRefused(Exception):
    """A path or entry from the pod that must not be written here."""


def local_path(root: Path, relative: str) -> Path:
    """``root/relative`` for a plain relative path whose parent resolves inside ``root``."""
    parts = relative.split("/")
    if relative.startswith("/") or "\x00" in relative or any(p in ("", ".", "..") for p in parts):
        raise LocalRefused(f"not a plain relative path: {relative!r}")
    if is_private_name(relative):
        raise LocalRefused(f"reserved name: {relative!r}")
    path = root.joinpath(*parts)
    real_root = os.path.realpath(root)
    parent = os.path.realpath(path.parent)
    if parent != real_root and not parent.startswith(real_root + os.sep):
        raise LocalRefused(f"path resolves outside the sync root: {relative!r}")
    return path


def _temp_for(path: Path) -> Path:
    return path.with_name(f"{TEMP_PREFIX}{path.name[:60]}-{secrets.token_hex(4)}")


@dataclass(frozen=True)
class Received:
    temp: Path  # the content, under a private name beside its destination
    digest: str
    stat: os.stat_result
    written_at_ns: int


def receive_file(path: Path, reader: FrameReader, mode: int, mtime_ns: int) -> Received:
    """Stream file content from ``reader`` into a temp file beside ``path``.

    The caller renames it into place with ``commit`` (or elsewhere) once it decided it may.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_for(path)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        digest = hashlib.sha256()
        written_at = time.time_ns()
        for chunk in reader.content():
            digest.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
        if "abort" in reader.trailer or reader.trailer.get("sha256") != digest.hexdigest():
            raise LocalRefused(f"incomplete content from the pod: {reader.trailer.get('abort', 'digest mismatch')}")
        os.fchmod(fd, mode & 0o7777)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        st = os.fstat(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    os.close(fd)
    return Received(temp, digest.hexdigest(), st, written_at)


def commit(temp: Path, path: Path) -> None:
    """Rename ``temp`` over ``path``; a directory in the way stays (IsADirectoryError)."""
    os.replace(temp, path)


def discard(temp: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(temp)


def make_symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_for(path)
    os.symlink(target, temp)
    try:
        commit(temp, path)
    except BaseException:
        discard(temp)
        raise


def make_dir(path: Path, mode: int) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode & 0o7777)
