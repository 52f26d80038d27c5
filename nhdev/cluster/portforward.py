"""One kube port-forward WebSocket as a connected socket, and a kubectl-style local listener.

The official client's ``portforward()`` swaps ``call_api`` on its ApiClient and runs a select
loop that reads 1 MiB at a time; nhdev speaks the v4 channel protocol itself
(``reference/kube-wire.md`` §1) with ``websocket-client``, borrowing only the client's request
signing (``param_serialize``: URL, bearer token) and its TLS settings. Nothing is swapped on the
ApiClient, so one client per target is shared for signing; every stream still gets its own
WebSocket.

Frames: the server first sends ``[ch, port lo, port hi]`` on channel 0 (data) and 1 (error);
then data travels as ``[0] + bytes`` both ways, and any payload on channel 1 is an error string.
The protocol has no half-close: when the local side reaches EOF the WebSocket is closed, and when
the WebSocket ends the local side sees EOF.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import certifi
import websocket
from kubernetes.client import ApiClient, Configuration
from kubernetes.stream.ws_client import get_websocket_url, websocket_proxycare

from nhdev.accepting import start_accepting
from nhdev.cluster.kubeconfig import ClusterTarget, api_client

log = logging.getLogger(__name__)

PROTOCOL = "v4.channel.k8s.io"
DATA_CHANNEL, ERROR_CHANNEL = 0, 1
CHUNK = 256 * 1024
LOCAL_BUFFER = 1024 * 1024  # socketpair buffers: the default ~200 KiB halves bulk throughput
CONNECT_BACKLOG = 128


class PortForwardError(OSError):
    """The stream could not be opened or was refused; ``status`` is the HTTP status if there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PortForwardRefused(PortForwardError, ConnectionRefusedError):
    """The kubelet reported an error for the port (nothing listens there, or the pod is gone)."""


@functools.lru_cache(maxsize=32)
def _signer(target: ClusterTarget) -> ApiClient:
    """An ApiClient used only to build signed URLs and headers (no ``call_api``, nothing swapped)."""
    return api_client(target)


def _signed_request(target: ClusterTarget, namespace: str, pod: str, port: int
                    ) -> tuple[str, dict[str, str], Configuration]:
    api = _signer(target)
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(pod, safe='')}/portforward"
    _, url, headers, _, _ = api.param_serialize("GET", path, query_params=[("ports", str(port))],
                                                header_params={}, auth_settings=["BearerToken"])
    lowered = {k.lower(): str(v) for k, v in (headers or {}).items()}
    return get_websocket_url(url), lowered, api.configuration


def _ssl_options(configuration: Configuration, url: str) -> dict[str, Any]:
    """The TLS settings the official client's ``create_websocket`` derives from a Configuration."""
    if url.startswith("wss://") and configuration.verify_ssl:
        options: dict[str, Any] = {"cert_reqs": ssl.CERT_REQUIRED,
                                   "ca_certs": configuration.ssl_ca_cert or certifi.where()}
        if configuration.assert_hostname is not None:
            options["check_hostname"] = configuration.assert_hostname
    else:
        options = {"cert_reqs": ssl.CERT_NONE}
    if configuration.cert_file:
        options["certfile"] = configuration.cert_file
    if configuration.key_file:
        options["keyfile"] = configuration.key_file
    if getattr(configuration, "tls_server_name", None):
        options["server_hostname"] = configuration.tls_server_name
    return options


def _open_websocket(target: ClusterTarget, namespace: str, pod: str, port: int, timeout: float
                    ) -> websocket.WebSocket:
    url, headers, configuration = _signed_request(target, namespace, pod, port)
    header = [f"sec-websocket-protocol: {PROTOCOL}"]
    if "authorization" in headers:
        header.append(f"authorization: {headers['authorization']}")
    options: dict[str, Any] = {"header": header, "timeout": timeout}
    if configuration.proxy or configuration.proxy_headers:
        options = websocket_proxycare(options, configuration, url, headers)
    ws = websocket.WebSocket(sslopt=_ssl_options(configuration, url), skip_utf8_validation=True,
                             enable_multithread=True)
    try:
        ws.connect(url, **options)
    except websocket.WebSocketBadStatusException as err:
        raise PortForwardError(f"port-forward to pod {namespace}/{pod}:{port} refused: HTTP {err.status_code} "
                               f"{_status_message(err)}", status=err.status_code) from None
    except (websocket.WebSocketException, OSError) as err:
        raise PortForwardError(f"cannot open port-forward to pod {namespace}/{pod}:{port}: {err}") from None
    return ws


def _status_message(err: websocket.WebSocketBadStatusException) -> str:
    """The ``message`` of the Status body the API server sends with a refused upgrade."""
    try:
        return str(json.loads(err.resp_body or b"{}").get("message", ""))
    except (ValueError, AttributeError):
        return ""


class PodPortStream:
    """Pumps bytes between one local socket and one port-forward WebSocket, a thread per direction.

    Owns both: when either side ends, both are closed (the protocol cannot half-close).
    """

    def __init__(self, ws: websocket.WebSocket, local: socket.socket, port: int, label: str) -> None:
        self.ws = ws
        self.local = local
        self.port = port
        self.label = label
        self.error: str | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def handshake(self, timeout: float) -> None:
        """Read the two init frames; an error arriving with them raises ``PortForwardRefused``."""
        seen: set[int] = set()
        self.ws.settimeout(timeout)
        try:
            while seen != {DATA_CHANNEL, ERROR_CHANNEL}:
                opcode, data = self._next_frame()
                if opcode is None:
                    raise PortForwardError(f"{self.label}: stream closed before it was set up")
                if len(data) != 3 or data[0] not in (DATA_CHANNEL, ERROR_CHANNEL):
                    raise PortForwardError(f"{self.label}: unexpected setup frame {data[:8]!r}")
                if data[1] | (data[2] << 8) != self.port:
                    raise PortForwardError(f"{self.label}: setup frame names port {data[1] | (data[2] << 8)}")
                seen.add(data[0])
        except (websocket.WebSocketException, OSError) as err:
            self.close()
            if isinstance(err, PortForwardError):
                raise
            raise PortForwardError(f"{self.label}: stream setup failed: {err}") from None
        self.ws.settimeout(None)

    def start(self) -> None:
        threading.Thread(target=self._pod_to_local, name=f"pf-in {self.label}", daemon=True).start()
        threading.Thread(target=self._local_to_pod, name=f"pf-out {self.label}", daemon=True).start()

    def _next_frame(self) -> tuple[int | None, bytes]:
        """The next data frame as (opcode, payload); (None, b"") once the WebSocket closed."""
        while True:
            try:
                opcode, frame = self.ws.recv_data_frame(True)
            except websocket.WebSocketConnectionClosedException:
                return None, b""
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return None, b""
            if opcode in (websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_TEXT) and frame.data:
                payload = frame.data
                return opcode, payload if isinstance(payload, bytes) else bytes(payload, "utf-8")

    def _pod_to_local(self) -> None:
        try:
            while True:
                opcode, data = self._next_frame()
                if opcode is None:
                    return
                if data[0] == DATA_CHANNEL:
                    self.local.sendall(memoryview(data)[1:])
                elif data[0] == ERROR_CHANNEL:
                    self.error = data[1:].decode("utf-8", "replace")
                    log.info("%s: %s", self.label, self.error)
                    return
        except (websocket.WebSocketException, OSError):
            return
        finally:
            self.close()

    def _local_to_pod(self) -> None:
        try:
            while chunk := self.local.recv(CHUNK):
                self.ws.send(b"\x00" + chunk, websocket.ABNF.OPCODE_BINARY)
        except (websocket.WebSocketException, OSError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        """End both sides; safe from any thread, any number of times."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        # Shutting the raw sockets down first wakes the thread blocked reading on each of them.
        for sock in (self.ws.sock, self.local):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self.ws.shutdown()
        with contextlib.suppress(OSError):
            self.local.close()


class PodPortSocket(socket.socket):
    """The caller's end of a socketpair whose other end is pumped into a port-forward stream.

    A real socket (paramiko, http.client and select all accept it); ``stream_error`` is the
    kubelet's error string once one arrived. TCP options are ignored, as the official client does,
    because clients such as ``http.client`` set TCP_NODELAY on every socket.
    """

    stream: PodPortStream | None = None

    @property
    def stream_error(self) -> str | None:
        return self.stream.error if self.stream else None

    def setsockopt(self, level: int, optname: int, value: Any, optlen: int | None = None) -> None:
        if level == socket.IPPROTO_TCP:
            return
        if optlen is None:
            super().setsockopt(level, optname, value)
        else:
            super().setsockopt(level, optname, value, optlen)

    def close(self) -> None:
        super().close()
        if self.stream is not None:
            self.stream.close()


def _socketpair() -> tuple[PodPortSocket, socket.socket]:
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for sock in (mine, theirs):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LOCAL_BUFFER)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LOCAL_BUFFER)
    wrapped = PodPortSocket(mine.family, mine.type, mine.proto, fileno=mine.detach())
    return wrapped, theirs


def pump_pod_port(target: ClusterTarget, namespace: str, pod: str, port: int, local: socket.socket, *,
                  timeout: float = 10.0) -> PodPortStream:
    """Open a stream to ``pod:port`` and pump it to ``local`` (closed with the stream)."""
    label = f"{namespace}/{pod}:{port}"
    ws = _open_websocket(target, namespace, pod, port, timeout)
    stream = PodPortStream(ws, local, port, label)
    stream.handshake(timeout)
    stream.start()
    return stream


def open_pod_port(target: ClusterTarget, namespace: str, pod: str, port: int, *,
                  timeout: float = 10.0) -> PodPortSocket:
    """A connected socket to ``port`` inside ``pod``, carried by its own port-forward WebSocket."""
    caller, pumped = _socketpair()
    try:
        caller.stream = pump_pod_port(target, namespace, pod, port, pumped, timeout=timeout)
    except BaseException:
        caller.close()
        pumped.close()
        raise
    return caller


PodName = Callable[[], str]


class PortForwardListener:
    """A 127.0.0.1 listener that opens one port-forward stream per accepted connection (as kubectl).

    ``pod`` is called for each connection, so a caller can follow a replaced pod.
    """

    def __init__(self, target: ClusterTarget, namespace: str, pod: PodName, remote_port: int,
                 local_port: int = 0, *, timeout: float = 10.0,
                 on_error: Callable[[str], None] = lambda _message: None) -> None:
        self.target = target
        self.namespace = namespace
        self.pod = pod
        self.remote_port = remote_port
        self.timeout = timeout
        self.on_error = on_error
        self._listener = socket.create_server(("127.0.0.1", local_port), backlog=CONNECT_BACKLOG)
        self.local_port: int = self._listener.getsockname()[1]
        self._streams: set[PodPortStream] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        return self._listener.getsockname()[:2]

    def live_connections(self) -> int:
        with self._lock:
            self._streams = {s for s in self._streams if not s.closed}
            return len(self._streams)

    def start(self) -> PortForwardListener:
        start_accepting(self._listener, self._serve, self._stopping, name=f"pf-listen {self.local_port}")
        return self

    def _serve(self, conn: socket.socket, _peer: object) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            stream = pump_pod_port(self.target, self.namespace, self.pod(), self.remote_port, conn,
                                   timeout=self.timeout)
        except Exception as err:  # any failure to open means: drop this one connection, keep listening
            conn.close()
            self.on_error(f"127.0.0.1:{self.local_port} -> {self.remote_port}: {err}")
            return
        with self._lock:
            self._streams.add(stream)

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            streams, self._streams = list(self._streams), set()
        for stream in streams:
            stream.close()
