"""Paths a client names, resolved inside the root and never outside it.

Clients see the root as ``/``, like a chroot: ``/a``, ``a`` and ``../../a`` all mean ROOT/a, because
``.`` and ``..`` are applied to the text first and ``..`` stops at the root. Symlinks are then
resolved on the real filesystem (the dev container sees the same files at the same paths, so link
targets mean what they mean there), and the result must still lie inside the root: a link inside
pointing inside is fine, one pointing anywhere else is refused with EACCES.
"""

from __future__ import annotations

import errno
import os


class PathEscape(PermissionError):
    """A path that would leave the root, or that no file system call should see."""

    def __init__(self, client_path: str, reason: str) -> None:
        super().__init__(errno.EACCES, f"{reason}: {client_path!r}")


def lexical_parts(client_path: str) -> list[str]:
    """The components of ``client_path`` relative to the root, with ``.`` and ``..`` applied."""
    if "\x00" in client_path:
        raise PathEscape(client_path, "NUL byte in path")
    parts: list[str] = []
    for part in client_path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return parts


class Confinement:
    """Resolution of client paths against one root directory."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        # Resolved once, so a root reached through a symlink (/work -> /mnt/work) still matches
        # the realpath of the files under it.
        self.root = os.path.realpath(root)

    def resolve(self, client_path: str, *, follow_symlinks: bool = True) -> str:
        """The host path for ``client_path``.

        With ``follow_symlinks`` every link is resolved, the final one included (open, stat,
        list). Without it the final component is left as named (lstat, readlink, remove, rename,
        mkdir, symlink), so those act on a link itself; its parent directory is still resolved and
        checked.
        """
        parts = lexical_parts(client_path)
        if follow_symlinks or not parts:
            return self._inside(os.path.realpath(os.path.join(self.root, *parts)), client_path)
        parent = self._inside(os.path.realpath(os.path.join(self.root, *parts[:-1])), client_path)
        return os.path.join(parent, parts[-1])

    def client_view(self, host_path: str) -> str:
        """How a client names ``host_path`` (which must be inside): ``/`` is the root."""
        relative = os.path.relpath(host_path, self.root)
        return "/" if relative == "." else "/" + relative

    def contains(self, host_path: str) -> bool:
        return os.path.commonpath([self.root, host_path]) == self.root

    def check_link_target(self, link_host_path: str, target: str) -> None:
        """Refuse a symlink at ``link_host_path`` whose ``target`` text would resolve outside."""
        if "\x00" in target:
            raise PathEscape(target, "NUL byte in link target")
        # os.path.join drops the directory when target is absolute, as the kernel would.
        resolved = os.path.realpath(os.path.join(os.path.dirname(link_host_path), target))
        self._inside(resolved, target)

    def check_descriptor(self, fd: int, client_path: str) -> None:
        """Refuse an open file that turns out to be outside the root.

        resolve() checks before the file is opened; a symlink swapped in between (the dev
        container can write the same tree) would slip through, so what was actually opened is
        checked again through /proc. Where /proc is not mounted there is nothing better to ask.
        """
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return
        if opened.startswith("/"):
            self._inside(opened, client_path)

    def _inside(self, host_path: str, client_path: str) -> str:
        if not self.contains(host_path):
            raise PathEscape(client_path, "path resolves outside the root")
        return host_path
