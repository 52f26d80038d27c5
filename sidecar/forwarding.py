"""Port forwarding: local forwards (direct-tcpip) to loopback only, and reverse forwards
(tcpip-forward) listening on 127.0.0.1 only; bytes pumped both ways with half-close kept."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import select
import socket
import threading
from collections.abc import Callable

import paramiko
from paramiko.common import OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED, OPEN_FAILED_CONNECT_FAILED

from sidecar.events import event

CONNECT_TIMEOUT = 2.0  # loopback answers at once; only a full accept backlog makes us wait
OPEN_CHANNEL_TIMEOUT = 10.0
CHUNK = 256 * 1024
# How often a socket reader with nothing to read checks whether the client closed the channel.
CLOSED_CHECK_INTERVAL = 1.0
REVERSE_BIND_ADDRESS = "127.0.0.1"


class ForwardRefused(Exception):
    """A forward that will not be made; ``code`` is the SSH channel-open failure reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def loopback_addresses(host: str) -> list[str]:
    """Where ``host`` may be reached inside the pod: [] unless it is a loopback address.

    Names other than ``localhost`` are never looked up: a resolver could map them anywhere.
    """
    if host.lower() in ("localhost", "localhost."):
        return ["127.0.0.1", "::1"]
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return []
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return [str(address)] if address.is_loopback else []


def connect_loopback(host: str, port: int) -> socket.socket:
    """A connected socket to ``host:port`` inside the pod, or ForwardRefused; nothing else is
    contacted, the refusal comes before any connect."""
    candidates = loopback_addresses(host)
    if not candidates or not 0 < port < 65536:
        raise ForwardRefused(OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
                             "destination is not loopback inside the pod")
    last_error: OSError | None = None
    for address in candidates:
        try:
            sock = socket.create_connection((address, port), timeout=CONNECT_TIMEOUT)
        except OSError as exc:  # refused, or no IPv6 in this pod at all
            last_error = exc
            continue
        sock.settimeout(None)
        tune(sock)
        return sock
    reason = last_error.strerror if last_error and last_error.strerror else str(last_error)
    raise ForwardRefused(OPEN_FAILED_CONNECT_FAILED, f"connect failed: {reason}")


def tune(sock: socket.socket) -> None:
    """Small writes (HTTP requests, debugger messages) go out at once instead of waiting."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Pump:
    """Copies bytes between a channel and a socket, one thread per direction.

    An EOF on one side becomes a half-close on the other (channel EOF -> shutdown(SHUT_WR), socket
    EOF -> channel EOF), so request/response protocols that close their write side still get
    their answer. Both are closed once both directions are done, or at once when the client
    closes the channel or either side fails.
    """

    def __init__(self, channel: paramiko.Channel, sock: socket.socket, label: str) -> None:
        self.channel = channel
        self.sock = sock
        self.label = label
        self.to_client = 0
        self.to_pod = 0
        self._lock = threading.Lock()
        self._running = 2
        self._ending: str | None = None  # why both sides are being closed early, if they are

    def start(self) -> None:
        event("forward opened", forward=self.label)
        for target, name in ((self._socket_to_channel, "up"), (self._channel_to_socket, "down")):
            threading.Thread(target=self._guarded, args=(target,), name=f"pump-{name}-{self.label}",
                             daemon=True).start()

    def _guarded(self, direction: Callable[[], None]) -> None:
        try:
            direction()
        except (OSError, EOFError, ValueError, paramiko.SSHException) as exc:
            self._end_early(f"error: {exc}")
        finally:
            self._direction_done()

    def _socket_to_channel(self) -> None:
        poller = select.poll()  # not select(): descriptors above 1024 are normal with many forwards
        poller.register(self.sock, select.POLLIN)
        while True:
            ready = poller.poll(CLOSED_CHECK_INTERVAL * 1000)
            if self._ending is not None:
                return
            if self.channel.closed:
                self._end_early("client closed")
                return
            if not ready:
                continue
            data = self.sock.recv(CHUNK)
            if not data:
                self.channel.shutdown_write()
                return
            self.channel.sendall(data)
            self.to_client += len(data)

    def _channel_to_socket(self) -> None:
        while True:
            data = self.channel.recv(CHUNK)
            if not data:
                if self.channel.closed:
                    self._end_early("client closed")
                else:
                    self.sock.shutdown(socket.SHUT_WR)
                return
            self.sock.sendall(data)
            self.to_pod += len(data)

    def _end_early(self, why: str) -> None:
        """Wake and end both directions: shutdown wakes a blocked recv, close wakes the channel."""
        with self._lock:
            self._ending = self._ending or why
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.channel.close()

    def _direction_done(self) -> None:
        with self._lock:
            self._running -= 1
            last = self._running == 0
        if not last:
            return
        self.channel.close()
        self.sock.close()
        event("forward closed", forward=self.label, to_pod=self.to_pod, to_client=self.to_client,
              ended=self._ending or "eof")


class ReverseForwards:
    """The tcpip-forward listeners of one SSH connection.

    Whatever address the client asks for, the listener binds 127.0.0.1: processes in the pod share
    its network namespace and reach it there, and nothing outside the pod can reach the
    developer's machine through it. The port asked for is honoured; 0 picks a free one.
    """

    def __init__(self, transport: paramiko.Transport, connection: str) -> None:
        self.transport = transport
        self.connection = connection
        self._listeners: dict[tuple[str, int], socket.socket] = {}
        self._lock = threading.Lock()

    def open(self, address: str, port: int) -> int | None:
        """Listen for ``address:port``; the port bound, or None if it cannot be bound."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # After a tunnel reconnect the same port is asked for again while old connections sit in
        # TIME_WAIT; without this the bind fails for up to a minute.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((REVERSE_BIND_ADDRESS, port))
            listener.listen(128)
        except OSError as exc:
            listener.close()
            event("reverse forward refused", logging.WARNING, conn=self.connection, address=address, port=port,
                  reason=exc.strerror)
            return None
        bound = int(listener.getsockname()[1])
        with self._lock:
            self._listeners[(address, bound)] = listener
        threading.Thread(target=self._accept_loop, args=(listener, address, bound),
                         name=f"reverse-{bound}", daemon=True).start()
        event("reverse forward listening", conn=self.connection, address=address, requested=port,
              listen=f"{REVERSE_BIND_ADDRESS}:{bound}")
        return bound

    def cancel(self, address: str, port: int) -> None:
        with self._lock:
            listener = self._listeners.pop((address, port), None)
        if listener is not None:
            _close_listener(listener)
            event("reverse forward cancelled", conn=self.connection, address=address, port=port)

    def close_all(self) -> None:
        with self._lock:
            listeners, self._listeners = list(self._listeners.values()), {}
        for listener in listeners:
            _close_listener(listener)

    def _accept_loop(self, listener: socket.socket, address: str, port: int) -> None:
        while True:
            try:
                conn, peer = listener.accept()
            except OSError:
                return  # closed by cancel or the end of the connection
            threading.Thread(target=self._forward, args=(conn, peer, address, port),
                             name=f"reverse-open-{port}", daemon=True).start()

    def _forward(self, conn: socket.socket, peer: tuple[str, int], address: str, port: int) -> None:
        label = f"{self.connection}:reverse:{port}<-{peer[0]}:{peer[1]}"
        try:
            channel = self.transport.open_channel("forwarded-tcpip", (address, port), peer,
                                                  timeout=OPEN_CHANNEL_TIMEOUT)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            conn.close()
            event("forward refused", logging.WARNING, forward=label, reason=str(exc) or type(exc).__name__)
            return
        tune(conn)
        Pump(channel, conn, label).start()


def _close_listener(listener: socket.socket) -> None:
    # close() alone does not wake a thread blocked in accept() on Linux; shutdown() does.
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
