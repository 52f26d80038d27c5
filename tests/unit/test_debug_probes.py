"""Debugger readiness probes against tiny fake servers on 127.0.0.1, and python's against real debugpy."""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from nhdev.debug.probes import (
    JDWP_HANDSHAKE,
    dap_frame,
    protocol_for,
    read_dap_message,
    wait_until_debugger_listens,
)
from nhdev.errors import Timeout, UsageError
from tests.dapclient import DapClient

Handler = Callable[[socket.socket], None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def tcp_server() -> Iterator[Callable[[Handler], int]]:
    servers: list[socketserver.ThreadingTCPServer] = []

    def serve(handle: Handler) -> int:
        class _Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                handle(self.request)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def fake_dap(sock: socket.socket) -> None:
    request = read_dap_message(sock.makefile("rb"))
    sock.sendall(dap_frame({"seq": 1, "type": "event", "event": "output", "body": {"output": "hi"}}))
    sock.sendall(dap_frame({"seq": 2, "type": "response", "request_seq": request["seq"], "success": True,
                            "command": request["command"], "body": {}}))


def fake_dlv_rpc(sock: socket.socket) -> None:
    call = json.loads(sock.recv(4096))
    assert call["method"] == "RPCServer.GetVersion"
    answer = json.dumps({"id": call["id"], "result": {"DelveVersion": "1.22"}, "error": None}).encode()
    sock.sendall(answer[:10])  # JSON-RPC has no framing: the probe must wait for a complete value
    time.sleep(0.05)
    sock.sendall(answer[10:])


def fake_jdwp(sock: socket.socket) -> None:
    assert sock.recv(len(JDWP_HANDSHAKE)) == JDWP_HANDSHAKE
    sock.sendall(JDWP_HANDSHAKE)


def silent(sock: socket.socket) -> None:
    sock.recv(100)  # accepts, reads, answers nothing: a port that is open but not a debugger


def test_dap_probe_waits_for_the_initialize_response(tcp_server: Callable[[Handler], int]) -> None:
    wait_until_debugger_listens("python", "127.0.0.1", tcp_server(fake_dap), timeout=5)


def test_go_probes_json_rpc_and_dlv_dap_speaks_dap(tcp_server: Callable[[Handler], int]) -> None:
    wait_until_debugger_listens("go", "127.0.0.1", tcp_server(fake_dlv_rpc), timeout=5)
    wait_until_debugger_listens("go", "127.0.0.1", tcp_server(fake_dap), timeout=5,
                                command="dlv dap --listen=:2345")
    assert protocol_for("go", "dlv debug --headless --listen=:2345") == "dlv-rpc"


def test_jdwp_probe_wants_the_handshake_echoed(tcp_server: Callable[[Handler], int]) -> None:
    wait_until_debugger_listens("java", "127.0.0.1", tcp_server(fake_jdwp), timeout=5)


def test_node_probe_wants_a_json_list_from_slash_json() -> None:
    class Inspector(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps([{"id": "x", "type": "node"}] if self.path == "/json" else {}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Inspector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_until_debugger_listens("node", "127.0.0.1", int(server.server_address[1]), timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_a_silent_port_times_out_naming_what_was_tried(tcp_server: Callable[[Handler], int]) -> None:
    port = tcp_server(silent)
    started = time.monotonic()
    with pytest.raises(Timeout, match=rf"python debugger did not answer a DAP initialize request on 127.0.0.1:{port}"):
        wait_until_debugger_listens("python", "127.0.0.1", port, timeout=1, attempt_timeout=0.3)
    assert time.monotonic() - started < 3


def test_a_closed_port_times_out_with_the_connection_error() -> None:
    with pytest.raises(Timeout, match=r"JDWP handshake .* refused"):
        wait_until_debugger_listens("java", "127.0.0.1", free_port(), timeout=0.5)


def test_a_server_coming_up_later_is_found(tcp_server: Callable[[Handler], int]) -> None:
    port = free_port()

    def late() -> None:
        time.sleep(0.5)
        server = socketserver.TCPServer(("127.0.0.1", port), type("H", (socketserver.BaseRequestHandler,), {
            "handle": lambda self: fake_jdwp(self.request)}))
        server.handle_request()
        server.server_close()

    threading.Thread(target=late, daemon=True).start()
    wait_until_debugger_listens("java", "127.0.0.1", port, timeout=5)


def test_unknown_language_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no debugger probe for language 'php'"):
        protocol_for("php")


def test_stops_early_when_not_worth_waiting() -> None:
    with pytest.raises(Timeout):
        wait_until_debugger_listens("python", "127.0.0.1", free_port(), timeout=30, still_worth_waiting=lambda: False)


def test_real_debugpy_answers_and_still_accepts_the_ide_after_the_probe(tmp_path: Path) -> None:
    port = free_port()
    output = tmp_path / "out"
    with output.open("w") as sink:  # a file, not a pipe: debugpy's adapter process holds it open a while
        debuggee = subprocess.Popen([sys.executable, "-m", "debugpy", "--listen", f"127.0.0.1:{port}",
                                     "--wait-for-client", "-c", "print('ran')"], stdout=sink, stderr=sink)
    try:
        wait_until_debugger_listens("python", "127.0.0.1", port, timeout=20)
        # The probe left no mark: an IDE attaches right afterwards and the program runs to its end.
        ide = DapClient("127.0.0.1", port)
        ide.request("initialize", adapterID="test", pathFormat="path")
        attached = ide.send("attach", justMyCode=False)
        ide.event("initialized")
        ide.request("configurationDone")
        ide.response(attached)
        ide.event("terminated")
        ide.close()
        assert debuggee.wait(timeout=20) == 0
        assert "ran" in output.read_text()
    finally:
        if debuggee.poll() is None:
            debuggee.kill()
            debuggee.wait()
