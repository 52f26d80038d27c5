"""Exec streams: a command in a pod's container over the official client's WebSocket.

The official client (``kubernetes.stream.stream``) gives a ``WSClient`` that mixes bytes and
text, swaps ``call_api`` on its ApiClient and hides the exit status behind a property that
raises on anything unexpected. :class:`ExecSession` wraps it into what a terminal and a
process runner need (kube-wire.md §1): bytes in and out (``binary=True``), stdin close (v5
``[255, 0]``), TTY resize (channel 4 JSON), and the exit code read from the channel-3 Status.

Each session opens its own ApiClient. A failed handshake is diagnosed with one REST read of
the pod so the user sees "pod x not found" or "container y is not running", not a WebSocket
status line.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream
from kubernetes.stream.ws_client import V5_CHANNEL_PROTOCOL, WSClient

from nhdev.cluster.kubeconfig import ClusterTarget, api_client
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.errors import ClusterError, NotFound, Timeout

STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
_OUTPUT_CHANNELS = (STDOUT, STDERR)
_WRITE_CHUNK = 256 * 1024  # websocket frames well under any server's message limit


class StreamLost(ClusterError):
    """The exec stream ended without the command's exit status (connection or pod gone)."""


@dataclass(frozen=True)
class ExecResult:
    """What a finished command left: exit code and its two output streams."""

    code: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode(errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode(errors="replace")


class ExecSession:
    """One running command: write/close stdin, resize, read output by channel, wait for the code.

    One thread may read (``read``/``wait``) while another writes (``write``/``resize``): the
    WebSocket serialises sends and receives with separate locks.
    """

    def __init__(self, ws: WSClient, what: str, *, tty: bool) -> None:
        self._ws = ws
        self.what = what  # "pod/x container y", for messages
        self.tty = tty
        self._code: int | None = None
        self._read_lock = threading.Lock()

    @property
    def supports_stdin_close(self) -> bool:
        """Whether the server speaks v5: only then can stdin be closed (kube-wire.md §1)."""
        return self._ws.subprotocol == V5_CHANNEL_PROTOCOL

    @property
    def ended(self) -> bool:
        """True once the server closed the stream (the command finished or the pod went away)."""
        return not self._ws.is_open()

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), _WRITE_CHUNK):
            self._ws.write_channel(STDIN, bytes(view[start:start + _WRITE_CHUNK]))

    def close_stdin(self) -> None:
        """End of input for the command. v4 has no such signal: a TTY gets its EOF key instead, a
        pipe stays open (the command sees its input end only when the stream closes)."""
        if self.supports_stdin_close:
            self._ws.close_channel(STDIN)
        elif self.tty:
            self.write(b"\x04")

    def resize(self, cols: int, rows: int) -> None:
        self._ws.write_channel(RESIZE, json.dumps({"Width": cols, "Height": rows}).encode())

    def read(self, timeout: float | None = None) -> tuple[int, bytes] | None:
        """The next output chunk as ``(channel, bytes)`` (1 stdout, 2 stderr).

        None when nothing arrived within ``timeout`` (None: wait as long as the stream is open)
        or the stream has ended (see :attr:`ended`).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._read_lock:
            while True:
                chunk = self._buffered()
                if chunk is not None:
                    return chunk
                if self.ended:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._update(left)

    def wait(self, timeout: float | None = None) -> int:
        """The command's exit code, once the stream ends; output not yet read is discarded."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.ended:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise Timeout(f"{self.what}: the command did not finish within {timeout:g}s")
            self.read(left)
        return self.exit_code()

    def exit_code(self) -> int:
        """The exit code from the channel-3 Status; :class:`StreamLost` if there is none."""
        if self._code is None:
            self._code = _code_from_status(self._ws.read_channel(STATUS), self.what)
        return self._code

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._ws.close()

    def __enter__(self) -> ExecSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _buffered(self) -> tuple[int, bytes] | None:
        # The client's per-channel buffers: its public readers would lose which channel came first.
        channels: dict[int, Any] = self._ws._channels
        for channel in _OUTPUT_CHANNELS:
            data = channels.pop(channel, None)
            if data:
                return channel, bytes(data)
        return None

    def _update(self, timeout: float | None) -> None:
        try:
            # poll() without a timeout would block past a stream that never sends again
            self._ws.update(timeout=1.0 if timeout is None else min(timeout, 1.0))
        except Exception as err:  # websocket-client raises several kinds on a dropped connection
            self._ws._connected = False
            raise StreamLost(f"{self.what}: the exec stream broke ({err})") from err


def _code_from_status(raw: Any, what: str) -> int:
    if not raw:
        raise StreamLost(f"{what}: the exec stream ended without an exit status (connection lost or pod gone)")
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    try:
        status = yaml.safe_load(text)
    except yaml.YAMLError:
        status = None
    if not isinstance(status, dict):
        raise ClusterError(f"{what}: {text.strip()[:200]}")
    if status.get("status") == "Success":
        return 0
    causes = (status.get("details") or {}).get("causes") or []
    for cause in causes:
        if cause.get("reason") == "ExitCode":
            with contextlib.suppress(TypeError, ValueError):
                return int(cause.get("message"))
    raise ClusterError(f"{what}: {status.get('message') or status.get('reason') or text.strip()[:200]}")


def open_exec(target: ClusterTarget, namespace: str, pod: str, container: str, argv: list[str], *,
              stdin: bool, tty: bool) -> ExecSession:
    """Starts ``argv`` in ``container`` of ``pod``; errors name the pod and container in one line."""
    what = f"pod/{pod} container {container}"
    core = client.CoreV1Api(api_client(target))  # streams swap call_api on their ApiClient
    try:
        ws = stream(core.connect_get_namespaced_pod_exec, pod, namespace, container=container, command=argv,
                    stdin=stdin, stdout=True, stderr=not tty, tty=tty, _preload_content=False, binary=True)
    except ApiException as err:
        raise _diagnose(target, namespace, pod, container, err) from None
    return ExecSession(ws, what, tty=tty)


def run_in_pod(target: ClusterTarget, namespace: str, pod: str, container: str, argv: list[str], *,
               stdin_data: bytes | None = None, timeout: float = 60) -> ExecResult:
    """Runs ``argv`` to completion and returns its exit code and output.

    Input is written from a thread while output is read, so a command that echoes a large input
    (``cat``) cannot deadlock against full buffers.
    """
    session = open_exec(target, namespace, pod, container, argv, stdin=stdin_data is not None, tty=False)
    with session:
        if stdin_data is not None:
            feeder = threading.Thread(target=_feed, args=(session, stdin_data), daemon=True,
                                      name=f"exec stdin {pod}/{container}")
            feeder.start()
        out = {STDOUT: bytearray(), STDERR: bytearray()}
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            chunk = session.read(left)
            if chunk is None and session.ended:
                return ExecResult(session.exit_code(), bytes(out[STDOUT]), bytes(out[STDERR]))
            if chunk is not None:
                out[chunk[0]] += chunk[1]
        raise Timeout(f"{session.what}: {' '.join(argv)[:80]} did not finish within {timeout:g}s")


def _feed(session: ExecSession, data: bytes) -> None:
    with contextlib.suppress(Exception):  # the command may exit before reading all of it
        session.write(data)
        session.close_stdin()


def _diagnose(target: ClusterTarget, namespace: str, pod: str, container: str, err: ApiException) -> ClusterError:
    """Turns a failed exec handshake into the reason a user can act on."""
    reason = str(err.reason or err).split(" -+-+- ")[0]
    kube = KubeRest(api_client(target))
    try:
        obj = kube.get(kind_named("pod"), namespace, pod)
    except NotFound:
        return NotFound(f"pod {pod} not found in namespace {namespace}")
    except ClusterError as rest_err:
        return ClusterError(f"cannot exec in pod/{pod} container {container}: {reason} ({rest_err.message})")
    names = [c["name"] for c in (obj.get("spec") or {}).get("containers") or []]
    if container not in names:
        return NotFound(f"container {container} not found in pod {pod} (containers: {', '.join(names)})")
    state = next((s.get("state") or {} for s in (obj.get("status") or {}).get("containerStatuses") or []
                  if s.get("name") == container), {})
    if "running" not in state:
        detail = next((f"{k}: {v.get('reason') or ''}".rstrip(": ") for k, v in state.items()), "no status yet")
        return ClusterError(f"container {container} in pod {pod} is not running ({detail})")
    return ClusterError(f"cannot exec in pod/{pod} container {container}: {reason}")
