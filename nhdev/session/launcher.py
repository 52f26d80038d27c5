"""The CLI's side of sessions: spawn one detached, ask one for its status, stop one.

Nothing here kills by name: a session is stopped through its control socket, and only if that
fails is its pid (checked to be an nhdev process) sent SIGTERM and then SIGKILL.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nhdev.errors import UserError
from nhdev.session import control
from nhdev.session.registry import (
    SessionPaths,
    clean_stale,
    paths_for,
    pid_alive,
    session_key,
    terminate,
    wait_for_exit,
)
from nhdev.session.state import SessionSpec

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 5


class SessionStartError(UserError):
    """The session process exited or did not answer after it was spawned."""


@dataclass
class RunningSession:
    paths: SessionPaths
    pid: int | None
    status: dict[str, Any]


def paths_of(spec: SessionSpec) -> SessionPaths:
    return paths_for(session_key(spec.context, spec.namespace, spec.workload))


def find_session(context: str, namespace: str, workload: str) -> RunningSession | None:
    """The running session for (context, namespace, workload), cleaning a stale one away."""
    paths = paths_for(session_key(context, namespace, workload))
    if not paths.dir.exists():
        return None
    try:
        reply = control.request(paths.control, {"op": "status"}, timeout=3.0)
    except control.ControlError:
        clean_stale(paths)
        return None
    return RunningSession(paths, paths.read_pid(), reply["status"])


def spawn_session(spec: SessionSpec) -> RunningSession:
    """Start the session process detached (own session, no terminal) and wait until it answers.

    A session already running for the same dev session, forwards and project (the tree it syncs,
    the config it reads) is kept; any other one for the same workload is stopped first.
    """
    paths = paths_of(spec).ensure()
    existing = find_session(spec.context, spec.namespace, spec.workload)
    if existing is not None:
        if existing.status.get("session") == spec.session_id and _same_spec(paths, spec):
            return existing
        stop_session(existing)
    spec.write(paths.spec_file)
    with paths.log.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "nhdev.session.process", "--spec", str(paths.spec_file)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SessionStartError(f"the session process exited ({process.returncode}): {_log_tail(paths.log)}",
                                    hint=f"log: {paths.log}")
        try:
            reply = control.request(paths.control, {"op": "status"}, timeout=1.0)
        except control.ControlError:
            time.sleep(0.05)
            continue
        return RunningSession(paths, process.pid, reply["status"])
    terminate(process.pid)
    raise SessionStartError(f"the session process did not answer within {START_TIMEOUT:.0f}s",
                            hint=f"log: {paths.log}")


def _same_spec(paths: SessionPaths, spec: SessionSpec) -> bool:
    """Whether the running session holds what ``spec`` asks for: a session started from another
    directory would keep syncing that one (and hot reload its files)."""
    from nhdev.session.sync_service import project_root

    try:
        running = SessionSpec.read(paths.spec_file)
    except (OSError, ValueError):
        return False
    fields = ("forwards", "config_path", "service", "container", "dev_container", "mode")
    return (all(getattr(running, name) == getattr(spec, name) for name in fields)
            and project_root(running) == project_root(spec))


def wait_until_connected(session: RunningSession, timeout: float) -> dict[str, Any]:
    """The session's status once its tunnel is connected, or the last one seen when time ran out."""
    deadline = time.monotonic() + timeout
    status = session.status
    while time.monotonic() < deadline and status["tunnel"]["state"] != "connected":
        if status["tunnel"]["state"] in ("failed", "stopped"):
            break
        time.sleep(0.1)
        try:
            status = control.request(session.paths.control, {"op": "status"}, timeout=2.0)["status"]
        except control.ControlError:
            break
    return status


def stop_session(session: RunningSession, timeout: float = STOP_TIMEOUT) -> None:
    """Ask the session to stop, wait for its process to exit, and only then force it."""
    pid = session.pid or session.status.get("pid")
    with contextlib.suppress(control.ControlError):
        control.request(session.paths.control, {"op": "stop"}, timeout=3.0)
    if pid is not None and not wait_for_exit(int(pid), timeout):
        terminate(int(pid))
    clean_stale(session.paths)


def session_alive(session: RunningSession) -> bool:
    pid = session.pid or session.status.get("pid")
    return pid is not None and pid_alive(int(pid))


def _log_tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "no log"
    return " | ".join(lines[-LOG_TAIL_LINES:]) or "no output"
