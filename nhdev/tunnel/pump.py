"""Bytes between an SSH channel and a local socket, a thread per direction, half-close kept.

A channel EOF becomes ``shutdown(SHUT_WR)`` on the socket and a socket EOF becomes a channel EOF,
so request/response protocols that half-close still work. A channel that is *closed* (the far
end hung up, or the whole connection died) ends both sides at once: nothing may wait forever on
a connection that cannot deliver anymore.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

import paramiko

CHUNK = 256 * 1024
CLOSED_CHECK_INTERVAL = 0.5  # how often a half-closed pump looks whether the channel is gone


class ChannelPump:
    """One forwarded connection. Holds the channel: paramiko keeps channels by weak reference only."""

    def __init__(self, channel: paramiko.Channel, sock: socket.socket, *,
                 on_done: Callable[[ChannelPump], None] = lambda _pump: None) -> None:
        self.channel = channel
        self.sock = sock
        self.on_done = on_done
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._outbound: threading.Thread | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def start(self) -> None:
        """Pump on two new threads and return at once."""
        threading.Thread(target=self.run, name="pump-in", daemon=True).start()

    def run(self) -> None:
        """Pump on this thread (channel -> socket) and one more (socket -> channel) until both end."""
        self._outbound = threading.Thread(target=self._socket_to_channel, name="pump-out", daemon=True)
        self._outbound.start()
        self._channel_to_socket()

    def _channel_to_socket(self) -> None:
        try:
            while data := self.channel.recv(CHUNK):
                self.sock.sendall(data)
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
            self._wait_for_outbound()
        except OSError:
            pass
        finally:
            self.close()

    def _wait_for_outbound(self) -> None:
        """After the far end's EOF the local side may still send, until it ends or the channel closes."""
        outbound = self._outbound
        while outbound is not None and outbound.is_alive() and not self.channel.closed:
            outbound.join(CLOSED_CHECK_INTERVAL)

    def _socket_to_channel(self) -> None:
        try:
            while data := self.sock.recv(CHUNK):
                self.channel.sendall(data)
            self.channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._done.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv
        self.sock.close()
        with contextlib.suppress(Exception):
            self.channel.close()
        self.on_done(self)


class PumpSet:
    """The live pumps of one forward: kept referenced, counted, and closed together."""

    def __init__(self) -> None:
        self._pumps: set[ChannelPump] = set()
        self._lock = threading.Lock()
        self.total = 0

    def add(self, channel: paramiko.Channel, sock: socket.socket) -> ChannelPump:
        pump = ChannelPump(channel, sock, on_done=self._discard)
        with self._lock:
            self._pumps.add(pump)
            self.total += 1
        return pump

    def _discard(self, pump: ChannelPump) -> None:
        with self._lock:
            self._pumps.discard(pump)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pumps)

    def close_all(self) -> None:
        with self._lock:
            pumps = list(self._pumps)
        for pump in pumps:
            pump.close()
