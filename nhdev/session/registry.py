"""Where sessions live on this machine, and whether one is running.

``~/.nhdev/sessions/<key>/`` (0700) holds ``control.sock`` (0600), ``session.pid`` and
``spec.json``; logs go to ``~/.nhdev/logs/<key>.log``. The key names (context, namespace,
workload). Everything is relative to ``$HOME``, so tests isolate with ``HOME=tmp``.

A session is *running* when its control socket answers. A pid file whose process is gone, or a
socket nobody accepts on, is stale (the process crashed or was killed) and is removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from nhdev.devmode.names import dns_name, short_hash

PROCESS_MARK = b"nhdev"  # in the command line of the session process and of `nhdev dev start --foreground`


def nhdev_home() -> Path:
    return Path.home() / ".nhdev"


def session_key(context: str, namespace: str, workload: str) -> str:
    readable = dns_name(context, namespace, workload.replace("/", "-"), limit=48)
    return f"{readable}-{short_hash(chr(0).join((context, namespace, workload)), 8)}"


@dataclass(frozen=True)
class SessionPaths:
    key: str
    dir: Path
    log: Path

    @property
    def control(self) -> Path:
        return self.dir / "control.sock"

    @property
    def pid_file(self) -> Path:
        return self.dir / "session.pid"

    @property
    def spec_file(self) -> Path:
        return self.dir / "spec.json"

    def ensure(self) -> SessionPaths:
        for directory in (self.dir, self.log.parent):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            directory.chmod(0o700)
        return self

    def read_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def write_pid(self, pid: int) -> None:
        self.pid_file.write_text(f"{pid}\n")


def paths_for(key: str) -> SessionPaths:
    home = nhdev_home()
    return SessionPaths(key, home / "sessions" / key, home / "logs" / f"{key}.log")


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is an nhdev process (a recycled pid is not ours)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc (macOS): trust kill(0)
    return PROCESS_MARK in cmdline and ") Z" not in stat  # a zombie has exited


def clean_stale(paths: SessionPaths) -> bool:
    """Remove the pid file and socket of a session whose process is gone; True if anything was."""
    pid = paths.read_pid()
    if pid is not None and pid_alive(pid):
        return False
    cleaned = False
    for leftover in (paths.control, paths.pid_file):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            cleaned = True
    return cleaned


def wait_for_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def terminate(pid: int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace``: only to this pid, and only if it is an nhdev process."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        if not pid_alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if wait_for_exit(pid, wait):
            return
