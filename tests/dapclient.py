"""A minimal DAP client, as an IDE speaks to debugpy: requests, responses and events over one socket."""

from __future__ import annotations

import queue
import socket
import threading
from typing import Any

from nhdev.debug.probes import ProbeFailed, dap_frame, read_dap_message

Message = dict[str, Any]


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
