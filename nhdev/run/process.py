"""A command run in the dev container as a process group nhdev can stop completely.

Nocalhost ran ``sh -c "<command>"`` over exec and stopped it by typing Ctrl-C into it, which left
debuggers and servers behind (reference/nocalhost.md §7). Here the command runs in its own
session and process group (``setsid``), every process of it carries ``NHDEV_PROCESS=<id>`` in its
environment, and :meth:`RemoteProcess.stop` runs a *separate* exec that sends SIGTERM to the
group and to every process still carrying the id (a child that left the group included), waits
up to the grace period, then sends SIGKILL. Closing the exec stream alone would not do it: on a
real kubelet a non-TTY exec's process outlives its stream.

With a ``role`` (``run``, ``debug``), processes of an earlier run with that role (a crashed
session's debugger still holding its port) are killed before the command starts.
"""

from __future__ import annotations

import codecs
import contextlib
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from nhdev.cluster.exec import STDERR, STDOUT, ExecSession, StreamLost, open_exec, run_in_pod
from nhdev.cluster.kubeconfig import ClusterTarget
from nhdev.errors import ClusterError, NotFound

OutputCallback = Callable[[str, str], None]  # (line without newline, "stdout" | "stderr")
PGID_MARKER = "@@nhdev-pgid "

# $1 id, $2 role, $3 workdir, $4 command. The asynchronous list is never a process-group leader
# (no job control in `sh -c`), so `setsid` makes it one without forking and `$$` inside is its
# pgid. Its stdin is /dev/null, as POSIX gives background jobs.
_START = r"""
id=$1 role=$2 dir=$3 cmd=$4
_matching() {
  for e in /proc/[0-9]*/environ; do
    p=${e#/proc/}; p=${p%/environ}
    tr '\0' '\n' < "$e" 2>/dev/null | grep -qx "$1" && echo "$p"
  done
}
if [ -n "$role" ]; then
  for p in $(_matching "NHDEV_ROLE=$role"); do kill -KILL "$p" 2>/dev/null; done
fi
[ -n "$dir" ] && { cd "$dir" || exit 126; }
export NHDEV_PROCESS="$id" NHDEV_ROLE="$role"
if command -v setsid >/dev/null 2>&1; then
  setsid sh -c 'echo "@@nhdev-pgid $$"; exec sh -c "$1"' nhdev-run "$cmd" </dev/null &
else
  sh -c 'echo "@@nhdev-pgid 0"; exec sh -c "$1"' nhdev-run "$cmd" </dev/null &
fi
wait $!
"""

# $1 pgid (0: none), $2 id, $3 grace in tenths of a second. Exit 0: nothing of it is left.
_STOP = r"""
pgid=$1 id=$2 tenths=$3
_left() {
  for e in /proc/[0-9]*/environ; do
    p=${e#/proc/}; p=${p%/environ}
    tr '\0' '\n' < "$e" 2>/dev/null | grep -qx "NHDEV_PROCESS=$id" && echo "$p"
  done
}
_signal() {
  [ "$pgid" -gt 1 ] && kill -"$1" -- -"$pgid" 2>/dev/null
  for p in $(_left); do kill -"$1" "$p" 2>/dev/null; done
}
_signal TERM
i=0
while [ "$i" -lt "$tenths" ]; do
  [ -z "$(_left)" ] && exit 0
  sleep 0.1; i=$((i + 1))
done
_signal KILL
sleep 0.1
[ -z "$(_left)" ]
"""

# Lists every process carrying the id: "pid cmdline" per line (for tests and `status`).
_LIST = r"""
for e in /proc/[0-9]*/environ; do
  p=${e#/proc/}; p=${p%/environ}
  if tr '\0' '\n' < "$e" 2>/dev/null | grep -qx "$1"; then
    echo "$p $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)"
  fi
done
"""


class RemoteProcess:
    """``sh -c command`` in a container, in its own process group; see the module docstring."""

    def __init__(self, target: ClusterTarget, namespace: str, pod: str, container: str, command: str,
                 session: ExecSession, process_id: str, on_output: OutputCallback | None) -> None:
        self.target, self.namespace, self.pod, self.container = target, namespace, pod, container
        self.command = command
        self.process_id = process_id  # the NHDEV_PROCESS value its processes carry
        self.pgid: int | None = None
        self.exit_code: int | None = None
        self.recent_output: deque[tuple[str, str]] = deque(maxlen=200)
        self._session = session
        self._on_output = on_output
        self._pgid_known = threading.Event()
        self._error: ClusterError | None = None
        self._reader = threading.Thread(target=self._pump, daemon=True, name=f"remote process {pod}")
        self._reader.start()

    @classmethod
    def start(cls, target: ClusterTarget, namespace: str, pod: str, container: str, command: str, *,
              workdir: str | None = None, env: Mapping[str, str] | None = None, role: str | None = None,
              on_output: OutputCallback | None = None, started_timeout: float = 15.0) -> RemoteProcess:
        """Starts ``command`` and returns once its process group exists (its pgid is known)."""
        process_id = secrets.token_hex(8)
        env_words = [f"{k}={v}" for k, v in (env or {}).items()]
        argv = ["env", *env_words, "sh", "-c", _START, "nhdev-start", process_id, role or "", workdir or "", command]
        session = open_exec(target, namespace, pod, container, argv, stdin=False, tty=False)
        process = cls(target, namespace, pod, container, command, session, process_id, on_output)
        if not process._pgid_known.wait(started_timeout):
            process.stop(grace=0)
            raise ClusterError(f"{process.where}: the command did not start within {started_timeout:g}s")
        return process

    @property
    def where(self) -> str:
        return f"pod/{self.pod} container {self.container}"

    @property
    def running(self) -> bool:
        return self._reader.is_alive()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the command's main process ended; None on timeout.

        Raises :class:`StreamLost` when the stream broke (the pod went away) before an exit status.
        """
        self._reader.join(timeout)
        if self._reader.is_alive():
            return None
        if self._error is not None:
            raise self._error
        return self.exit_code

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM to the whole group (and any process carrying its id), SIGKILL after ``grace``.

        Returns the exit code, or None when the pod went away with it.
        """
        if self.running or self.pgid is not None:
            self._kill_group(grace)
        with contextlib.suppress(StreamLost):
            code = self.wait(timeout=grace + 5)
            if code is None:  # the stream outlived its processes: nothing left to wait for
                self._session.close()
            return code
        return None

    def processes(self) -> list[str]:
        """``pid cmdline`` of every process in the container that belongs to this command."""
        return list_processes(self.target, self.namespace, self.pod, self.container,
                              f"NHDEV_PROCESS={self.process_id}")

    def _kill_group(self, grace: float) -> None:
        argv = ["sh", "-c", _STOP, "nhdev-stop", str(self.pgid or 0), self.process_id, str(int(grace * 10))]
        try:
            result = run_in_pod(self.target, self.namespace, self.pod, self.container, argv, timeout=grace + 20)
        except (NotFound, StreamLost):
            return  # the pod is gone, and its processes with it
        if result.code != 0:
            raise ClusterError(f"{self.where}: could not stop `{self.command}` (processes left: "
                               f"{', '.join(self.processes()) or 'unknown'})")

    def _pump(self) -> None:
        decoders = {ch: codecs.getincrementaldecoder("utf-8")("replace") for ch in (STDOUT, STDERR)}
        partial = {STDOUT: "", STDERR: ""}
        try:
            while (chunk := self._session.read()) is not None:
                channel, data = chunk
                text = partial[channel] + decoders[channel].decode(data)
                *lines, partial[channel] = text.split("\n")
                for line in lines:
                    self._line(line, channel)
            for channel, rest in partial.items():
                if rest:
                    self._line(rest, channel)
            self.exit_code = self._session.exit_code()
        except ClusterError as err:
            self._error = err
        finally:
            self._pgid_known.set()
            self._session.close()

    def _line(self, line: str, channel: int) -> None:
        if self.pgid is None and channel == STDOUT and line.startswith(PGID_MARKER):
            self.pgid = int(line[len(PGID_MARKER):].strip() or 0)
            self._pgid_known.set()
            return
        stream = "stdout" if channel == STDOUT else "stderr"
        self.recent_output.append((line, stream))
        if self._on_output is not None:
            self._on_output(line, stream)


def list_processes(target: ClusterTarget, namespace: str, pod: str, container: str, env_entry: str) -> list[str]:
    """``pid cmdline`` of every process in the container whose environment holds ``env_entry``."""
    result = run_in_pod(target, namespace, pod, container, ["sh", "-c", _LIST, "nhdev-list", env_entry], timeout=30)
    return [line for line in result.out.splitlines() if line.strip()]


def wait_for_exit(process: RemoteProcess, timeout: float) -> int | None:
    """Polls :meth:`RemoteProcess.wait` so a KeyboardInterrupt lands promptly in the caller."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.wait(timeout=0.2)
        if not process.running:
            return code
    return None
