"""The SFTP subsystem, confined to the root (see confinement.py for what a path means)."""

from __future__ import annotations

import errno
import functools
import logging
import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

import paramiko
from paramiko.sftp import SFTP_FAILURE, SFTP_OK
from paramiko.sftp_attr import SFTPAttributes

from sidecar.confinement import Confinement, PathEscape, lexical_parts
from sidecar.events import event

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class _OnConnection(Protocol):
    connection: str  # the connection's name in the log


P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S", bound=_OnConnection)

# The most one read returns; SFTP allows short reads, and a client asking for gigabytes at once
# must not make the sidecar allocate them.
MAX_READ = 256 * 1024
# os.link fails with these on directories and on file systems that have no hard links.
_NO_HARD_LINK = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK})


def _sftp_status(method: Callable[Concatenate[S, P], R]) -> Callable[Concatenate[S, P], R | int]:
    """Turn the OSError a request raises into its SFTP status code (escapes: permission denied)."""

    @functools.wraps(method)
    def wrapper(self: S, *args: P.args, **kwargs: P.kwargs) -> R | int:
        try:
            return method(self, *args, **kwargs)
        except PathEscape as exc:
            event("sftp refused", conn=self.connection, op=method.__name__, reason=exc.strerror)
            return paramiko.SFTPServer.convert_errno(exc.errno or errno.EACCES)
        except OSError as exc:
            return paramiko.SFTPServer.convert_errno(exc.errno or 0)

    return wrapper


def _apply_attributes(attr: SFTPAttributes, fd_or_path: int | str) -> None:
    """setstat/fsetstat; a field the client did not send is None. Size goes first, since
    truncating would otherwise move the mtime just set."""
    if attr.st_size is not None:
        os.truncate(fd_or_path, attr.st_size)
    if attr.st_mode is not None:
        os.chmod(fd_or_path, stat.S_IMODE(attr.st_mode))
    if attr.st_uid is not None and attr.st_gid is not None:
        os.chown(fd_or_path, attr.st_uid, attr.st_gid)
    if attr.st_atime is not None and attr.st_mtime is not None:
        os.utime(fd_or_path, (attr.st_atime, attr.st_mtime))


def _creation_mode(attr: SFTPAttributes, default: int) -> int:
    return default if attr.st_mode is None else stat.S_IMODE(attr.st_mode)


def _sendable_name(name: str) -> bool:
    """paramiko sends names as UTF-8; one it cannot encode would fail the whole listing."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ConfinedFile(paramiko.SFTPHandle):
    """An open file, read and written at explicit offsets (pread/pwrite: no seek state to track)."""

    def __init__(self, fd: int, flags: int, connection: str) -> None:
        super().__init__(flags)
        self.fd = fd
        self.connection = connection

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @_sftp_status
    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, min(length, MAX_READ), offset)

    @_sftp_status
    def write(self, offset: int, data: ReadableBuffer) -> int:
        # In O_APPEND mode Linux pwrite appends whatever the offset, which is what append means.
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written
        return SFTP_OK

    @_sftp_status
    def stat(self) -> SFTPAttributes:
        return SFTPAttributes.from_stat(os.fstat(self.fd))

    @_sftp_status
    def chattr(self, attr: SFTPAttributes) -> int:
        _apply_attributes(attr, self.fd)
        return SFTP_OK


class ConfinedSFTPServer(paramiko.SFTPServerInterface):
    """``paramiko.SFTPServer`` calls these; every path goes through the confinement first."""

    def __init__(self, server: paramiko.ServerInterface, confinement: Confinement, connection: str) -> None:
        super().__init__(server)
        self.confinement = confinement
        self.connection = connection

    def session_started(self) -> None:
        event("sftp started", conn=self.connection)

    def session_ended(self) -> None:
        event("sftp ended", conn=self.connection)

    @_sftp_status
    def open(self, path: str, flags: int, attr: SFTPAttributes) -> paramiko.SFTPHandle:
        exclusive = bool(flags & os.O_CREAT and flags & os.O_EXCL)
        # O_EXCL must fail on an existing symlink, as open(2) does, so the link is not followed;
        # otherwise every link has been resolved and O_NOFOLLOW catches one swapped in since.
        host_path = self.confinement.resolve(path, follow_symlinks=not exclusive)
        # O_NONBLOCK so that opening a FIFO someone made in the tree cannot hang this session.
        fd = os.open(host_path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, _creation_mode(attr, 0o666))
        try:
            self.confinement.check_descriptor(fd, path)
            mode = os.fstat(fd).st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise OSError(errno.EACCES, f"not a regular file: {path!r}")
            os.set_blocking(fd, True)
        except OSError:
            os.close(fd)
            raise
        return ConfinedFile(fd, flags, self.connection)

    @_sftp_status
    def list_folder(self, path: str) -> list[SFTPAttributes]:
        entries = []
        with os.scandir(self.confinement.resolve(path)) as listing:
            for entry in listing:
                if not _sendable_name(entry.name):
                    event("sftp skipped", logging.WARNING, conn=self.connection, op="list_folder",
                          name=entry.name.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace"),
                          reason="name is not UTF-8")
                    continue
                try:
                    entries.append(SFTPAttributes.from_stat(entry.stat(follow_symlinks=False), entry.name))
                except FileNotFoundError:
                    continue  # removed while listing
        return entries

    @_sftp_status
    def stat(self, path: str) -> SFTPAttributes:
        return SFTPAttributes.from_stat(os.stat(self.confinement.resolve(path)))

    @_sftp_status
    def lstat(self, path: str) -> SFTPAttributes:
        return SFTPAttributes.from_stat(os.lstat(self.confinement.resolve(path, follow_symlinks=False)))

    @_sftp_status
    def remove(self, path: str) -> int:
        os.unlink(self._own_entry(path))
        return SFTP_OK

    @_sftp_status
    def rename(self, oldpath: str, newpath: str) -> int:
        """SFTP v3 rename: never replaces an existing target (OpenSSH does the same)."""
        source, target = self._own_entry(oldpath), self._own_entry(newpath)
        try:
            # link + unlink refuses an existing target atomically; exists-then-rename cannot.
            os.link(source, target, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINK:
                raise
            # Directories, and file systems without hard links: check then rename, as OpenSSH does.
            if os.path.lexists(target):
                return SFTP_FAILURE
            os.rename(source, target)
            return SFTP_OK
        os.unlink(source)
        return SFTP_OK

    @_sftp_status
    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """posix-rename@openssh.com: atomic replace, how sync makes files appear whole."""
        os.replace(self._own_entry(oldpath), self._own_entry(newpath))
        return SFTP_OK

    @_sftp_status
    def mkdir(self, path: str, attr: SFTPAttributes) -> int:
        os.mkdir(self._own_entry(path), _creation_mode(attr, 0o777))
        return SFTP_OK

    @_sftp_status
    def rmdir(self, path: str) -> int:
        os.rmdir(self._own_entry(path))
        return SFTP_OK

    @_sftp_status
    def chattr(self, path: str, attr: SFTPAttributes) -> int:
        _apply_attributes(attr, self.confinement.resolve(path))
        return SFTP_OK

    def canonicalize(self, path: str) -> str:
        """The in-root path with links resolved, e.g. ``/src/a.py``.

        paramiko sends whatever this returns as a name, so a refusal cannot be a status code:
        PathEscape propagates and paramiko answers the request with SFTP_FAILURE.
        """
        try:
            return self.confinement.client_view(self.confinement.resolve(path))
        except PathEscape as exc:
            event("sftp refused", conn=self.connection, op="canonicalize", reason=exc.strerror)
            raise

    @_sftp_status
    def readlink(self, path: str) -> str:
        return os.readlink(self.confinement.resolve(path, follow_symlinks=False))

    @_sftp_status
    def symlink(self, target_path: str, path: str) -> int:
        """Create ``path`` -> ``target_path``; the text is kept as given, if it resolves inside."""
        link = self._own_entry(path)
        self.confinement.check_link_target(link, target_path)
        os.symlink(target_path, link)
        return SFTP_OK

    def _own_entry(self, path: str) -> str:
        """The directory entry ``path`` names, not what a link there points to; never the root."""
        if not lexical_parts(path):
            raise PathEscape(path, "the root itself cannot be changed")
        return self.confinement.resolve(path, follow_symlinks=False)
