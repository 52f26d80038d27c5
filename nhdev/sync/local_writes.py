"""Writing what the pod sent into the local tree: confined to the root, atomic (temp name + rename)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sidecar import sync_files
from sidecar.sync_wire import FrameReader, is_private_name


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


@dataclass(frozen=True)
class Received:
    temp: Path  # the content, under a private name beside its destination
    digest: str
    stat: os.stat_result
    written_at_ns: int


def receive_file(path: Path, reader: FrameReader, mode: int, mtime_ns: int) -> Received:
    """Stream file content from ``reader`` into a temp file beside ``path`` (``sidecar.sync_files``,
    the same code the sidecar writes with). The caller renames it into place with ``commit`` (or
    elsewhere) once it decided it may."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def check(digest: str) -> None:
        if "abort" in reader.trailer or reader.trailer.get("sha256") != digest:
            raise LocalRefused(f"incomplete content from the pod: {reader.trailer.get('abort', 'digest mismatch')}")

    written = sync_files.write_temp(str(path), reader.content(), mode, mtime_ns, check)
    return Received(Path(written.temp), written.digest, written.stat, written.written_at_ns)


def commit(temp: Path, path: Path) -> None:
    """Rename ``temp`` over ``path``; a directory in the way stays (IsADirectoryError)."""
    sync_files.commit(str(temp), str(path))


def discard(temp: Path) -> None:
    sync_files.discard(str(temp))


def make_symlink(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(sync_files.temp_name(str(path)))
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
