"""A local ``nhdev-sidecar`` behind a proxy that can cut or freeze the stream, plus small servers.

Stands in for the dev pod: the sidecar's loopback forwards reach servers on this machine's
loopback, and the proxy plays the port-forward stream (``cut()`` = the stream dies loudly,
``freeze()`` = it goes silent without closing).
"""

from __future__ import annotations

import contextlib
import http.server
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from nhdev.devmode.keys import SessionKeys, generate_session_keys
from nhdev.tunnel import Tunnel

SIDECAR = Path(sys.executable).parent / "nhdev-sidecar"


@dataclass
class KeyFiles:
    keydir: Path  # what the sidecar reads (the Secret)
    client_key: Path
    host_key_line: str
    keys: SessionKeys


def write_keys(where: Path) -> KeyFiles:
    keys = generate_session_keys()
    keydir = where / "keys"
    keydir.mkdir(parents=True)
    (keydir / "authorized_keys").write_text(keys.client_public + "\n")
    host = keydir / "ssh_host_ed25519_key"
    host.write_text(keys.host_private)
    host.chmod(0o600)
    client_key = where / "client_key"
    client_key.write_text(keys.client_private)
    client_key.chmod(0o600)
    return KeyFiles(keydir, client_key, keys.host_public, keys)


class LocalSidecar:
    """The real console script on a kernel-chosen port; restartable on the same port."""

    def __init__(self, where: Path, keys: KeyFiles) -> None:
        self.where = where
        self.keys = keys
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalSidecar:
        log = self.where / "sidecar.log"
        log.write_bytes(b"")
        with log.open("wb") as out:
            self.process = subprocess.Popen([str(SIDECAR), "--root", str(self.where / "root"), "--keys",
                                             str(self.keys.keydir), "--listen", f"127.0.0.1:{self.port}"],
                                            stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = re.search(r"listening address=127\.0\.0\.1:(\d+)", log.read_text())
            if found:
                self.port = int(found.group(1))
                return self
            time.sleep(0.02)
        raise AssertionError(f"sidecar did not start: {log.read_text()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


class StreamProxy:
    """Plays the kube stream: each ``connect()`` is a socketpair pumped to the sidecar's TCP port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connects = 0
        self._live: list[tuple[socket.socket, socket.socket]] = []
        self._frozen = threading.Event()

    def connect(self) -> socket.socket:
        self.connects += 1
        upstream = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        upstream.settimeout(None)
        mine, theirs = socket.socketpair()
        self._live.append((theirs, upstream))
        for src, dst in ((theirs, upstream), (upstream, theirs)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()
        return mine

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                while self._frozen.is_set():
                    time.sleep(0.05)
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Every stream ends at once, as when the port-forward WebSocket is closed."""
        for pair in self._live:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._live.clear()

    def freeze(self) -> None:
        """Bytes stop flowing but nothing closes: a silently dead stream."""
        self._frozen.set()
        frozen_pairs, self._live = self._live, []

        def close_later() -> None:  # once the tunnel gave up, let the frozen pumps go
            time.sleep(30)
            for pair in frozen_pairs:
                for sock in pair:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=close_later, daemon=True).start()

    def thaw(self) -> None:
        self._frozen.clear()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        body = f"hello from {self.server.server_address[1]} {self.path}".encode()  # type: ignore[index]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 refuses bursts of concurrent connections
    daemon_threads = True


def http_server() -> http.server.ThreadingHTTPServer:
    server = _Server(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def http_get(port: int, path: str = "/", timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def tunnel_for(proxy: StreamProxy, keys: KeyFiles, **options: float) -> Tunnel:
    settings = {"keepalive": 0.5, "max_backoff": 0.5, "open_timeout": 5.0, **options}
    return Tunnel(proxy.connect, keys.client_key, keys.host_key_line, **settings)


def echo_server() -> socket.socket:
    """Echoes until the client's EOF, then closes: the client closes first (no TIME_WAIT on the server port)."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                threading.Thread(target=serve, args=(listener.accept()[0],), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener


def echo_once(port: int, payload: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data
