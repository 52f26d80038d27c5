"""A minimal DAP client, as an IDE speaks to debugpy: requests, responses and events over one socket."""

from __future__ import annotations

import queue
import socket
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from nhdev.debug.probes import ProbeFailed, dap_frame, read_dap_message

Message = dict[str, Any]
T = TypeVar("T")


class DapClient:
    """Sends requests; a reader thread sorts what comes back into responses (by request seq) and events."""

    def __init__(self, host: str, port: int, timeout: float = 20) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(None)
        self.timeout = timeout
        self._seq = 0
        self._responses: dict[int, queue.Queue[Message]] = {}
        self._lock = threading.Lock()
        self.events: queue.Queue[Message] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name="dap client").start()

    def send(self, command: str, **arguments: Any) -> int:
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._responses[seq] = queue.Queue()
        self.sock.sendall(dap_frame({"seq": seq, "type": "request", "command": command, "arguments": arguments}))
        return seq

    def response(self, seq: int) -> Message:
        message = self._responses[seq].get(timeout=self.timeout)
        assert message.get("success"), message
        return message

    def request(self, command: str, **arguments: Any) -> Message:
        return self.response(self.send(command, **arguments))

    def event(self, name: str, timeout: float | None = None) -> Message:
        """The next event called ``name`` (others are skipped)."""
        while True:
            message = self.events.get(timeout=timeout or self.timeout)
            if message.get("event") == name:
                return message

    def attach(self, client_id: str, adapter_id: str, source: str, line: int, **arguments: Any) -> None:
        """What an IDE does to attach: initialize, attach with ``arguments``, one breakpoint at
        ``source``:``line`` (by its local path), configurationDone; then the attach response."""
        self.request("initialize", clientID=client_id, adapterID=adapter_id, pathFormat="path",
                     linesStartAt1=True, columnsStartAt1=True)
        attached = self.send("attach", **arguments)
        self.event("initialized")
        set_bp = self.request("setBreakpoints", source={"path": source}, breakpoints=[{"line": line}])
        assert set_bp["body"]["breakpoints"][0]["verified"], set_bp
        self.request("configurationDone")
        self.response(attached)

    def breakpoint_hit(self, timeout: float = 60) -> tuple[int, Message]:
        """The thread that stopped at a breakpoint (within ``timeout``) and its top stack frame."""
        stopped = self.event("stopped", timeout=timeout)
        assert stopped["body"]["reason"] == "breakpoint", stopped
        thread_id = int(stopped["body"]["threadId"])
        frame = self.request("stackTrace", threadId=thread_id, levels=1)["body"]["stackFrames"][0]
        return thread_id, frame

    def local_variable(self, frame: Message, name: str) -> Message:
        """Variable ``name`` of the frame's locals scope."""
        scopes = self.request("scopes", frameId=frame["id"])["body"]["scopes"]
        local_scope = next(s for s in scopes if s["name"].lower().startswith("locals"))
        variables = self.request("variables", variablesReference=local_scope["variablesReference"])["body"]
        return next(v for v in variables["variables"] if v["name"] == name)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.sock.close()

    def _read(self) -> None:
        reader = self.sock.makefile("rb")
        while True:
            try:
                message = read_dap_message(reader)
            except (ProbeFailed, OSError, ValueError):
                return
            if message.get("type") == "response":
                self._responses[int(message["request_seq"])].put(message)
            elif message.get("type") == "event":
                self.events.put(message)


class InBackground(Generic[T]):
    """``call()`` on a daemon thread: what a breakpoint holds up while the test drives the debugger."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._results: list[T] = []
        self._thread = threading.Thread(target=lambda: self._results.append(call()), daemon=True)
        self._thread.start()

    def result(self, timeout: float) -> T | None:
        """What ``call`` returned, or None if it has not returned within ``timeout``."""
        self._thread.join(timeout)
        return self._results[0] if self._results else None
