"""Interactive shells and one-off commands in a container, wired to the local terminal.

With a TTY on stdin the local terminal goes raw (restored on exit, whatever happens), window
size changes are sent as resizes, and when the pod goes away (replaced by a rollout, deleted)
the shell reconnects to the workload's new pod until the user leaves it, as Nocalhost's
terminal loop did. Without a TTY, stdin is piped through and its end closes the command's stdin.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType

from nhdev.cluster.exec import STDOUT, ExecSession, StreamLost, open_exec, run_in_pod
from nhdev.cluster.kubeconfig import ClusterTarget, api_client
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.errors import ClusterError
from nhdev.run.pods import PodTarget

SHELLS = ("zsh", "bash", "sh")
POD_CHECK_SECONDS = 1.0
# One exec answers both questions: which shell, and whether `env` can set TERM for it.
_PROBE = "for s in zsh bash sh; do command -v $s && break; done; command -v env || true"


@dataclass(frozen=True)
class ShellChoice:
    path: str
    has_env: bool


def detect_shell(target: ClusterTarget, pod: PodTarget) -> ShellChoice:
    """The first of zsh, bash, sh present in the container (one exec)."""
    result = run_in_pod(target, pod.namespace, pod.pod, pod.container, ["sh", "-c", _PROBE], timeout=30)
    lines = [line.strip() for line in result.out.splitlines() if line.strip()]
    shells = [line for line in lines if os.path.basename(line) in SHELLS]
    has_env = any(os.path.basename(line) == "env" for line in lines)
    return ShellChoice(shells[0] if shells else "sh", has_env)


def shell_argv(shell: str, has_env: bool) -> list[str]:
    """The shell, with the local TERM when the container can take it (kube exec passes no env)."""
    term = os.environ.get("TERM")
    return ["env", f"TERM={term}", shell] if term and has_env else [shell]


def run_interactive(target: ClusterTarget, argv: list[str], find_pod: Callable[[bool], PodTarget], *,
                    reconnect: bool, notice: Callable[[str], None]) -> int:
    """Runs ``argv`` on a TTY in the pod ``find_pod(waiting)`` gives; exit code passed through.

    ``reconnect``: when the pod goes away, ``find_pod(True)`` (which waits for the new pod) is
    asked again and the command starts anew there, until it ends in a pod that is still running.
    """
    fd = sys.stdin.fileno()
    with _raw_terminal(fd), _resize_signal() as resized:
        waiting = False
        while True:
            pod = find_pod(waiting)
            session = open_exec(target, pod.namespace, pod.pod, pod.container, argv, stdin=True, tty=True)
            with _closed_when_pod_goes(target, pod, session, enabled=reconnect):
                code = _pump_tty(session, fd, resized)
            if code is not None and not (reconnect and _pod_gone(target, pod)):
                return code
            if not reconnect:
                raise StreamLost(f"{pod}: the connection was lost")
            notice(f"\r\nnhdev: {pod} went away; reconnecting to the new pod...\r\n")
            waiting = True


def run_piped(target: ClusterTarget, pod: PodTarget, argv: list[str], *, stdin: bool) -> int:
    """Runs ``argv`` without a TTY: local stdin piped in (when asked), stdout and stderr apart."""
    session = open_exec(target, pod.namespace, pod.pod, pod.container, argv, stdin=stdin, tty=False)
    with session:
        if stdin:
            threading.Thread(target=_copy_stdin, args=(session,), daemon=True, name="exec stdin").start()
        while (chunk := session.read()) is not None:
            channel, data = chunk
            _write_all(sys.stdout.fileno() if channel == STDOUT else sys.stderr.fileno(), data)
        return session.exit_code()


def _pump_tty(session: ExecSession, fd: int, resized: threading.Event) -> int | None:
    """Pumps until the command ends; its exit code, or None when the stream was lost."""
    resized.set()  # send the current size first
    output = threading.Thread(target=_copy_output, args=(session,), daemon=True, name="terminal output")
    output.start()
    with session:
        while output.is_alive():
            if resized.is_set():
                resized.clear()
                size = shutil.get_terminal_size()
                with contextlib.suppress(Exception):
                    session.resize(size.columns, size.lines)
            readable, _, _ = _select([fd], 0.1)
            if readable:
                data = os.read(fd, 65536)
                if not data:
                    with contextlib.suppress(Exception):
                        session.close_stdin()
                    break
                with contextlib.suppress(Exception):  # the stream ended meanwhile
                    session.write(data)
        output.join()
        try:
            return session.exit_code()
        except StreamLost:
            return None


def _select(fds: list[int], timeout: float) -> tuple[list[int], list[int], list[int]]:
    try:
        return select.select(fds, [], [], timeout)
    except InterruptedError:  # SIGWINCH
        return [], [], []


def _copy_output(session: ExecSession) -> None:
    with contextlib.suppress(ClusterError):
        while (chunk := session.read()) is not None:
            _write_all(sys.stdout.fileno(), chunk[1])


def _copy_stdin(session: ExecSession) -> None:
    with contextlib.suppress(Exception):  # the command may end before it read everything
        while data := os.read(sys.stdin.fileno(), 65536):
            session.write(data)
        session.close_stdin()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _pod_gone(target: ClusterTarget, pod: PodTarget) -> bool:
    """Whether ``pod`` is deleted or terminating (then the shell ended because of it)."""
    try:
        live = KubeRest(api_client(target)).try_get(kind_named("pod"), pod.namespace, pod.pod)
    except ClusterError:
        return True
    return live is None or bool(live["metadata"].get("deletionTimestamp")) or \
        (live.get("status") or {}).get("phase") != "Running"


@contextlib.contextmanager
def _closed_when_pod_goes(target: ClusterTarget, pod: PodTarget, session: ExecSession, *, enabled: bool,
                          every: float = POD_CHECK_SECONDS) -> Iterator[None]:
    """Ends the session as soon as its pod is terminating.

    A deleted pod's container lives on for its grace period (30 s by default, and a dev container
    sleeping as PID 1 ignores SIGTERM), so waiting for the stream to break would keep the user
    in a dying pod; the new one is usually running long before.
    """
    done = threading.Event()

    def watch() -> None:
        while not done.wait(every):
            if _pod_gone(target, pod):
                session.close()
                return

    watcher = threading.Thread(target=watch, daemon=True, name=f"watch {pod.pod}")
    if enabled:
        watcher.start()
    try:
        yield
    finally:
        done.set()


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _resize_signal() -> Iterator[threading.Event]:
    resized = threading.Event()

    def on_winch(_signum: int, _frame: FrameType | None) -> None:
        resized.set()

    previous = signal.signal(signal.SIGWINCH, on_winch)
    try:
        yield resized
    finally:
        signal.signal(signal.SIGWINCH, previous)
