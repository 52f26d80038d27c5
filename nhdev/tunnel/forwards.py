"""Forwards over a tunnel: local listeners (127.0.0.1 -> a port in the pod) and reverse forwards
(a port in the pod -> a port on this machine).

Local listeners belong to the forward, not to a connection: they stay bound while the tunnel
reconnects, and a connection arriving meanwhile waits (bounded) for the tunnel to come back.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paramiko

from nhdev.accepting import start_accepting
from nhdev.errors import UserError
from nhdev.tunnel.pump import PumpSet

if TYPE_CHECKING:
    from nhdev.tunnel.client import Tunnel

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
BACKLOG = 128
LOCAL_CONNECT_TIMEOUT = 5.0


class ForwardBindError(UserError):
    """A local port for a forward could not be bound (in use, or not allowed)."""


@dataclass
class ForwardStatus:
    kind: str  # "local" | "reverse"
    local: str  # "127.0.0.1:18080"
    remote: str  # "127.0.0.1:8080" inside the pod
    active: bool  # listening (local) / requested on the live connection (reverse)
    connections: int  # live now
    total: int  # since the forward started
    error: str | None = None  # the last failure, kept until the next success

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def bind_loopback(port: int) -> socket.socket:
    """A listener on 127.0.0.1 only, never on all interfaces."""
    try:
        return socket.create_server((LOOPBACK, port), backlog=BACKLOG)
    except OSError as err:
        raise ForwardBindError(f"cannot listen on {LOOPBACK}:{port}: {err.strerror or err}",
                               hint="pick another local port, or \":REMOTE\" for any free one") from None


class LocalForward:
    """127.0.0.1:local_port -> remote_host:remote_port inside the pod, one SSH channel per connection."""

    def __init__(self, tunnel: Tunnel, remote_port: int, local_port: int = 0, *,
                 remote_host: str = LOOPBACK) -> None:
        self.tunnel = tunnel
        self.remote_host = remote_host
        self.remote_port = remote_port
        self._listener = bind_loopback(local_port)
        self.local_host, self.local_port = self._listener.getsockname()[:2]
        self.pumps = PumpSet()
        self.error: str | None = None
        self._stopping = threading.Event()

    def start(self) -> LocalForward:
        start_accepting(self._listener, self._serve, self._stopping, name=f"forward {self.local_port}")
        return self

    def _serve(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            channel = self.tunnel.open_channel(self.remote_host, self.remote_port, origin=peer)
        except (UserError, paramiko.SSHException, EOFError, OSError) as err:
            self.error = _describe(err)
            log.info("forward %s -> %s: %s", self.local_port, self.remote_port, self.error)
            conn.close()
            return
        self.error = None
        self.pumps.add(channel, conn).run()

    def status(self) -> ForwardStatus:
        return ForwardStatus("local", f"{self.local_host}:{self.local_port}", f"{self.remote_host}:{self.remote_port}",
                             active=not self._stopping.is_set(), connections=len(self.pumps),
                             total=self.pumps.total, error=self.error)

    def stop(self) -> None:
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self.pumps.close_all()


class ReverseForward:
    """127.0.0.1:remote_port inside the pod -> local_host:local_port here (``tcpip-forward``).

    The tunnel asks for it on every new connection; ``bound_port`` is what the server granted
    (useful when ``remote_port`` is 0), and is asked for again after a reconnect.
    """

    def __init__(self, remote_port: int, local_port: int, *, local_host: str = LOOPBACK) -> None:
        self.remote_port = remote_port
        self.bound_port = remote_port
        self.local_host = local_host
        self.local_port = local_port
        self.pumps = PumpSet()
        self.active = False
        self.error: str | None = None

    def accept(self, channel: paramiko.Channel) -> None:
        """A connection made in the pod; called on paramiko's thread, so the work goes elsewhere."""
        threading.Thread(target=self._serve, args=(channel,), name=f"reverse {self.bound_port}",
                         daemon=True).start()

    def _serve(self, channel: paramiko.Channel) -> None:
        try:
            sock = socket.create_connection((self.local_host, self.local_port), timeout=LOCAL_CONNECT_TIMEOUT)
        except OSError as err:
            self.error = f"cannot reach {self.local_host}:{self.local_port}: {err.strerror or err}"
            channel.close()
            return
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.error = None
        self.pumps.add(channel, sock).run()

    def status(self) -> ForwardStatus:
        return ForwardStatus("reverse", f"{self.local_host}:{self.local_port}", f"{LOOPBACK}:{self.bound_port}",
                             active=self.active, connections=len(self.pumps), total=self.pumps.total,
                             error=self.error)

    def stop(self) -> None:
        self.active = False
        self.pumps.close_all()


def _describe(err: BaseException) -> str:
    if isinstance(err, UserError):
        return err.message
    if isinstance(err, paramiko.ChannelException):
        return f"refused in the pod: {err.text}"
    return str(err) or type(err).__name__
