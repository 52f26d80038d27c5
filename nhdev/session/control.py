"""The session's control socket: a unix socket (0600) speaking JSON lines.

Each request is one line ``{"op": ...}``; each reply one line ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``. ``{"op": "subscribe"}`` replies with the current status and
then pushes one line per state change (``{"event": "tunnel", ...}``) until the client hangs up.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from nhdev.accepting import start_accepting
from nhdev.errors import UserError

Message = dict[str, Any]
OpHandler = Callable[[Message], Message]
MAX_LINE = 1024 * 1024
UNIX_PATH_MAX = 100  # below sun_path's 108 bytes, with room for the terminating NUL
SUBSCRIBER_BACKLOG = 1000  # events kept for a slow subscriber before it is dropped


class ControlError(UserError):
    """The session's control socket did not answer, or answered with an error."""


class EventHub:
    """Fan-out of state changes to subscribers, each with its own bounded queue."""

    def __init__(self) -> None:
        self._queues: set[queue.Queue[Message | None]] = set()
        self._lock = threading.Lock()

    def subscribe(self) -> queue.Queue[Message | None]:
        q: queue.Queue[Message | None] = queue.Queue(SUBSCRIBER_BACKLOG)
        with self._lock:
            self._queues.add(q)
        return q

    def unsubscribe(self, q: queue.Queue[Message | None]) -> None:
        with self._lock:
            self._queues.discard(q)

    def publish(self, event: Message) -> None:
        with self._lock:
            queues = list(self._queues)
        for q in queues:
            try:
                q.put_nowait(event)
            except queue.Full:  # a subscriber that does not read loses its subscription
                self.unsubscribe(q)

    def close(self) -> None:
        with self._lock:
            queues, self._queues = list(self._queues), set()
        for q in queues:
            with contextlib.suppress(queue.Full):
                q.put_nowait(None)


class ControlServer:
    """Serves ops (``handler_for(op)`` -> handler or None) and ``subscribe`` on a unix socket at ``path``."""

    def __init__(self, path: Path, handler_for: Callable[[str], OpHandler | None], hub: EventHub,
                 status: Callable[[], Message]) -> None:
        self.path = path
        self.handler_for = handler_for
        self.hub = hub
        self.status = status
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()

    def start(self) -> ControlServer:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # the caller checked that no live session owns it
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # created 0600: no window in which others could connect
        try:
            with unix_address(self.path) as address:
                listener.bind(address)
        finally:
            os.umask(old_umask)
        self.path.chmod(0o600)
        listener.listen(16)
        self._listener = listener
        start_accepting(listener, self._serve, self._stopping, name="control")
        return self

    def _serve(self, conn: socket.socket, _peer: object) -> None:
        with conn, contextlib.suppress(OSError), conn.makefile("rwb") as stream:
            for line in stream:
                request = _parse(line)
                if request.get("op") == "subscribe":
                    self._stream_events(stream)
                    return
                _write(stream, self._answer(request))

    def _answer(self, request: Message) -> Message:
        op = request.get("op")
        if "error" in request:
            return {"ok": False, "error": request["error"]}
        handler = self.handler_for(str(op))
        if handler is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        try:
            return {"ok": True, **handler(request)}
        except UserError as err:
            return {"ok": False, "error": err.message}
        except Exception as err:  # a failing handler answers with its error; the session goes on
            return {"ok": False, "error": f"{type(err).__name__}: {err}"}

    def _stream_events(self, stream: Any) -> None:
        events = self.hub.subscribe()
        try:
            _write(stream, {"ok": True, "status": self.status()})
            while (event := events.get()) is not None:
                _write(stream, event)
        finally:
            self.hub.unsubscribe(events)

    def stop(self) -> None:
        self._stopping.set()
        self.hub.close()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@contextlib.contextmanager
def unix_address(path: Path) -> Iterator[str]:
    """``path`` as a unix socket address: sun_path holds ~107 bytes, and homes can be deeper than
    that; Linux resolves a long path through an open descriptor of its directory instead."""
    if len(os.fsencode(str(path))) < UNIX_PATH_MAX or not Path("/proc/self/fd").is_dir():
        yield str(path)
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)


def _parse(line: bytes) -> Message:
    try:
        message = json.loads(line)
    except ValueError:
        return {"error": "not a JSON line"}
    return message if isinstance(message, dict) else {"error": "expected a JSON object"}


def _write(stream: Any, message: Message) -> None:
    stream.write(json.dumps(message, default=str).encode() + b"\n")
    stream.flush()


# ---------------------------------------------------------------------- client


def _connect(path: Path, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with unix_address(path) as address:
            sock.connect(address)
    except OSError as err:
        sock.close()
        raise ControlError(f"no session answers at {path}: {err.strerror or err}") from None
    return sock


def request(path: Path, message: Message, *, timeout: float = 5.0) -> Message:
    """Send one request and return the reply; ``ControlError`` if none came or it says not ok."""
    with _connect(path, timeout) as sock, sock.makefile("rwb") as stream:
        try:
            _write(stream, message)
            line = stream.readline(MAX_LINE)
        except OSError as err:
            raise ControlError(f"the session at {path} did not answer: {err}") from None
    if not line:
        raise ControlError(f"the session at {path} hung up")
    reply = _parse(line)
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "the session refused the request")))
    return reply


def subscribe(path: Path, *, timeout: float | None = None) -> Iterator[Message]:
    """The current status (``{"ok": true, "status": ...}``) and then every pushed event."""
    with _connect(path, timeout) as sock, sock.makefile("rwb") as stream:
        _write(stream, {"op": "subscribe"})
        while line := stream.readline(MAX_LINE):
            yield _parse(line)
