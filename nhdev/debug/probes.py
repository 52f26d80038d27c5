"""Is the debugger really listening? One protocol-level question per debugger.

A TCP connect is not enough: a port-forward accepts locally before the pod's port is open, and
debugpy's port accepts before its adapter answers. So each probe asks the debugger something it
must answer:

- ``dap`` (debugpy, ``dlv dap``): a DAP ``initialize`` request, Content-Length framed; a response.
- ``dlv-rpc`` (classic headless dlv): JSON-RPC ``RPCServer.GetVersion``; a result.
- ``inspector`` (node ``--inspect``): HTTP ``GET /json``; a JSON list of targets.
- ``jdwp`` (java): the JDWP handshake: ``JDWP-Handshake`` sent, the same 14 bytes back.

Probes disconnect right after the answer, which debugpy, multi-client dlv, node and a JDWP
agent all survive (a single-client ``dlv dap`` does not: see :func:`protocol_for`).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
from collections.abc import Callable
from typing import BinaryIO

from nhdev.errors import Timeout, UsageError

JDWP_HANDSHAKE = b"JDWP-Handshake"
DAP_SETTLE_SECONDS = 1.0
PROTOCOLS = ("dap", "dlv-rpc", "inspector", "jdwp")
_DEFAULT_PROTOCOL = {"python": "dap", "go": "dlv-rpc", "node": "inspector", "java": "jdwp"}
_WHAT = {"dap": "a DAP initialize request", "dlv-rpc": "a JSON-RPC RPCServer.GetVersion call",
         "inspector": "an HTTP GET /json", "jdwp": "the JDWP handshake"}


class ProbeFailed(Exception):
    """This attempt got no valid answer (the debugger may not be up yet)."""


def protocol_for(language: str, command: str | None = None) -> str:
    """The probe protocol for a language, refined by the debug command (``dlv dap`` speaks DAP)."""
    words = (command or "").split()
    if language == "go" and "dlv" in words and "dap" in words:
        return "dap"
    protocol = _DEFAULT_PROTOCOL.get(language)
    if protocol is None:
        raise UsageError(f"no debugger probe for language {language!r} "
                         f"(expected one of: {', '.join(_DEFAULT_PROTOCOL)})")
    return protocol


def wait_until_debugger_listens(language: str, host: str, port: int, timeout: float, *,
                                command: str | None = None, interval: float = 0.2,
                                attempt_timeout: float = 3.0,
                                still_worth_waiting: Callable[[], bool] = lambda: True) -> None:
    """Retries the probe for ``language`` until it is answered; :class:`Timeout` naming what was tried.

    ``still_worth_waiting`` lets the caller stop early (the debug command already exited).
    """
    protocol = protocol_for(language, command)
    probe = PROBES[protocol]
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline and still_worth_waiting():
        try:
            probe(host, port, min(attempt_timeout, max(deadline - time.monotonic(), 0.1)))
            return
        except (OSError, ProbeFailed, ValueError, http.client.HTTPException) as err:
            last = str(err) or type(err).__name__
        time.sleep(interval)
    raise Timeout(f"the {language} debugger did not answer {_WHAT[protocol]} on {host}:{port} "
                  f"within {timeout:g}s (last attempt: {last})")


def probe_dap(host: str, port: int, timeout: float) -> None:
    request = {"seq": 1, "type": "request", "command": "initialize",
               "arguments": {"clientID": "nhdev-probe", "clientName": "nhdev", "adapterID": "nhdev",
                             "pathFormat": "path", "linesStartAt1": True, "columnsStartAt1": True}}
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(dap_frame(request))
        reader = sock.makefile("rb")
        _await_response(reader, "initialize")
        # debugpy's adapter opens this port a few milliseconds before the debuggee has registered
        # with it; a client session ending inside that window makes the adapter exit (it thinks
        # its last debuggee is gone). Staying a moment lets the registration finish first.
        time.sleep(DAP_SETTLE_SECONDS)
        # Leaving without a word makes debugpy reset the IDE's connection if it comes within the
        # next second or so; a disconnect request ends the probe's session before we return.
        sock.sendall(dap_frame({"seq": 2, "type": "request", "command": "disconnect",
                                "arguments": {"restart": False, "terminateDebuggee": False}}))
        with contextlib.suppress(ProbeFailed, OSError):
            _await_response(reader, "disconnect")


def _await_response(reader: BinaryIO, command: str) -> dict[str, object]:
    while True:  # adapters may send events (output, telemetry) before the response
        message = read_dap_message(reader)
        if message.get("type") == "response" and message.get("command") == command:
            return message


def probe_dlv_rpc(host: str, port: int, timeout: float) -> None:
    call = {"method": "RPCServer.GetVersion", "params": [{}], "id": 1}
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(json.dumps(call).encode() + b"\n")
        answer = _read_json_value(sock)
    if not isinstance(answer, dict) or answer.get("id") != 1 or answer.get("result") is None:
        raise ProbeFailed(f"unexpected JSON-RPC answer {str(answer)[:120]}")


def probe_inspector(host: str, port: int, timeout: float) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/json", headers={"Host": f"127.0.0.1:{port}"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200 or not isinstance(json.loads(body or b"null"), list):
        raise ProbeFailed(f"GET /json answered {response.status} {body[:80]!r}")


def probe_jdwp(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(JDWP_HANDSHAKE)
        got = b""
        while len(got) < len(JDWP_HANDSHAKE):
            chunk = sock.recv(len(JDWP_HANDSHAKE) - len(got))
            if not chunk:
                break
            got += chunk
    if got != JDWP_HANDSHAKE:
        raise ProbeFailed(f"JDWP handshake answered {got!r}")


PROBES: dict[str, Callable[[str, int, float], None]] = {
    "dap": probe_dap, "dlv-rpc": probe_dlv_rpc, "inspector": probe_inspector, "jdwp": probe_jdwp,
}


def dap_frame(message: dict[str, object]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_dap_message(reader: BinaryIO) -> dict[str, object]:
    """One Content-Length framed DAP message from a binary file object; :class:`ProbeFailed` at EOF."""
    length = None
    while True:
        line = reader.readline()
        if not line:
            raise ProbeFailed("the connection closed before a DAP message")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise ProbeFailed("a DAP message without Content-Length")
    body = reader.read(length)
    if len(body) < length:
        raise ProbeFailed("the connection closed inside a DAP message")
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ProbeFailed(f"a DAP message that is not an object: {body[:80]!r}")
    return message


def _read_json_value(sock: socket.socket) -> object:
    """Reads until the bytes received so far parse as one JSON value (JSON-RPC has no framing)."""
    buffer = b""
    decoder = json.JSONDecoder()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise ProbeFailed("the connection closed before a JSON-RPC answer" if not buffer
                              else f"an incomplete JSON-RPC answer {buffer[:80]!r}")
        buffer += chunk
        try:
            value, _ = decoder.raw_decode(buffer.decode(errors="replace").lstrip())
            return value
        except ValueError:
            continue
