"""Trees for the sync tests: generated fast, and compared as (kind, permission bits, content) per path.

``tree_of`` reads a tree here; ``TREE_OF_SCRIPT`` is the same walk as a Python program that prints
JSON, for trees inside a pod (run with ``python3 -c``; the sync root is its one argument).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

BIG = 200 * 1024 * 1024
Tree = dict[str, tuple[str, int, str]]


def make_tree(root: Path, files: int) -> None:
    """Nested dirs, unicode and space names, empty dirs, exec bits, symlinks in and out of the root."""
    for i in range(files):
        directory = root / f"pkg {i % 25}" / f"ünïcødé-{i % 7}"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / (f"file {i}.py" if i % 3 else f"naïve-ñame-{i}.txt")
        path.write_bytes(f"print({i})\n".encode() * (1 + i % 13))
        if i % 10 == 0:
            path.chmod(0o755)
    for i in range(5):
        (root / "empty" / f"e{i}").mkdir(parents=True)
    os.symlink("pkg 1/ünïcødé-1", root / "inside-dir-link")
    os.symlink("../pkg 2/ünïcødé-2/file 2.py", root / "pkg 1" / "inside-file-link")
    os.symlink("/etc/passwd", root / "escaping-absolute")
    os.symlink("../../../../etc", root / "pkg 3" / "escaping-relative")


def make_big_file(path: Path, size: int = BIG) -> str:
    """A sparse file with random blocks scattered through it (quick to write); returns its SHA-256."""
    with path.open("wb") as f:
        f.truncate(size)
        for offset in range(0, size, 16 * 1024 * 1024):
            f.seek(offset)
            f.write(os.urandom(64 * 1024))
        f.seek(size - 4096)
        f.write(os.urandom(4096))  # a random tail
    return sha256_of(path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def synced(tree: Tree) -> Tree:
    """What of a ``make_tree`` tree must reach the pod: everything but the escaping symlinks."""
    return {p: v for p, v in tree.items() if "escaping" not in p}


def tree_of(root: Path, *, skip: Callable[[str], bool] = lambda path: False) -> Tree:
    """rel path -> (kind, permission bits, sha256 or link target) for everything under ``root``."""
    found: Tree = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if relative == ".nhdev-sync-index" or name.startswith(".nhdev-tmp-") or skip(relative):
                continue
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[relative] = ("symlink", 0, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[relative] = ("dir", stat.S_IMODE(st.st_mode), "")
            else:
                found[relative] = ("file", stat.S_IMODE(st.st_mode), sha256_of(path))
    return found


TREE_OF_SCRIPT = """
import hashlib, json, os, stat, sys
root = sys.argv[1]
found = {}
for directory, dirs, files in os.walk(root):
    for name in dirs + files:
        path = os.path.join(directory, name)
        relative = os.path.relpath(path, root)
        if relative == ".nhdev-sync-index" or name.startswith(".nhdev-tmp-"):
            continue
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            found[relative] = ["symlink", 0, os.readlink(path)]
        elif stat.S_ISDIR(st.st_mode):
            found[relative] = ["dir", stat.S_IMODE(st.st_mode), ""]
        else:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while block := f.read(1 << 22):
                    digest.update(block)
            found[relative] = ["file", stat.S_IMODE(st.st_mode), digest.hexdigest()]
json.dump(found, sys.stdout, ensure_ascii=False)
"""


def parse_tree(output: str) -> Tree:
    return {path: (kind, mode, digest) for path, (kind, mode, digest) in json.loads(output).items()}
