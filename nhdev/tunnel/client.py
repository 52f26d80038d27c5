"""The tunnel: one paramiko client connection to the sidecar, kept alive and reconnected.

``connect()`` returns a connected socket (in a session: a port-forward stream to the sidecar of the
*current* dev pod, so a replaced pod is simply the next target). On it: host key pinned (anything
else is refused), client-key auth, keepalives. A supervisor thread owns the connection: it watches
liveness (bytes received within ``dead_after``; pings make sure some arrive) and on loss reconnects
with a backoff capped at ``max_backoff``. Forwards live beside the connection, so they outlast it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from nhdev.tunnel.errors import HostKeyMismatch, TunnelDown, TunnelError, TunnelGone
from nhdev.tunnel.forwards import LOOPBACK, ForwardStatus, LocalForward, ReverseForward

log = logging.getLogger(__name__)

USERNAME = "nhdev"
PREFERRED_CIPHER = "aes128-gcm@openssh.com"  # ~40% faster than the CTR+HMAC default in paramiko
WINDOW = 8 * 1024 * 1024  # per channel: a bulk transfer must not stall on window updates
MAX_PACKET = 32 * 1024
FIRST_RETRY_DELAY = 0.1
REVERSE_RETRY_INTERVAL = 0.5
DEATH_GRACE = 2.0  # how long a transport whose write failed may still look alive

CONNECTING, CONNECTED, RECONNECTING, STOPPED, FAILED = "connecting", "connected", "reconnecting", "stopped", "failed"


@dataclass(frozen=True)
class TunnelEvent:
    state: str
    generation: int
    reason: str = ""
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "generation": self.generation, "reason": self.reason, "at": self.at}


StateCallback = Callable[[TunnelEvent], None]


class _ActivitySocket:
    """The connection's socket, noting when bytes last arrived (liveness without private paramiko APIs)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.last_read = time.monotonic()

    def recv(self, size: int) -> bytes:
        data = self.sock.recv(size)
        if data:
            self.last_read = time.monotonic()
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def parse_host_key(line: str) -> paramiko.PKey:
    """``ssh-ed25519 AAAA... comment`` (an OpenSSH public key line) as a paramiko key."""
    parts = line.split()
    if len(parts) < 2:
        raise TunnelError(f"not an OpenSSH public key: {line[:40]!r}")
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1]))
    except (ValueError, paramiko.SSHException) as err:
        raise TunnelError(f"unusable host key {parts[0]}: {err}") from None


def backoff(attempt: int, cap: float) -> float:
    """0 for the first retry (a dropped stream usually reconnects at once), then doubling to ``cap``."""
    return 0.0 if attempt <= 1 else min(cap, FIRST_RETRY_DELAY * 2 ** (attempt - 2))


class Tunnel:
    """One SSH connection to a sidecar over whatever ``connect()`` returns, reconnecting by itself."""

    def __init__(self, connect: Callable[[], socket.socket], client_key: Path, host_key_line: str, *,
                 keepalive: float = 3.0, dead_after: float | None = None, max_backoff: float = 3.0,
                 open_timeout: float = 10.0, connect_wait: float = 15.0) -> None:
        self._connect = connect
        self._client_key = paramiko.PKey.from_path(client_key)
        self._host_key = parse_host_key(host_key_line)
        self.keepalive = keepalive
        self.dead_after = dead_after if dead_after is not None else 2 * keepalive
        self.max_backoff = max_backoff
        self.open_timeout = open_timeout
        self.connect_wait = connect_wait  # how long a new forwarded connection waits for the tunnel
        self._transport: paramiko.Transport | None = None
        self._generation = 0
        self._state = TunnelEvent(CONNECTING, 0)
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._global_requests = threading.Lock()  # paramiko tracks one pending global request only
        self._callbacks: list[StateCallback] = []
        self._local: list[LocalForward] = []
        self._reverse: list[ReverseForward] = []
        self._supervisor: threading.Thread | None = None

    # ------------------------------------------------------------------ state

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def connected(self) -> bool:
        return self._state.state == CONNECTED

    @property
    def state(self) -> TunnelEvent:
        return self._state

    def on_state(self, callback: StateCallback) -> None:
        self._callbacks.append(callback)

    def _set_state(self, state: str, reason: str = "") -> None:
        with self._changed:
            self._state = TunnelEvent(state, self._generation, reason)
            self._changed.notify_all()
        log.info("tunnel %s (generation %d)%s", state, self._generation, f": {reason}" if reason else "")
        for callback in list(self._callbacks):
            try:
                callback(self._state)
            except Exception:  # a broken observer must not take the tunnel down
                log.exception("tunnel state callback failed")

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._state.state != CONNECTED:
                left = deadline - time.monotonic()
                if left <= 0 or self._state.state in (STOPPED, FAILED):
                    return False
                self._changed.wait(left)
            return True

    def transport(self) -> paramiko.Transport:
        """The live connection; ``TunnelDown`` while (re)connecting or stopped."""
        transport = self._transport
        if transport is None or not transport.is_active():
            raise TunnelDown(f"the tunnel is {self._state.state}"
                             + (f" ({self._state.reason})" if self._state.reason else ""))
        return transport

    def _wait_transport(self, deadline: float) -> paramiko.Transport:
        while True:
            with contextlib.suppress(TunnelDown):
                return self.transport()
            left = deadline - time.monotonic()
            if left <= 0 or not self.wait_connected(left):
                return self.transport()  # raises TunnelDown with the current state

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Tunnel:
        self._supervisor = threading.Thread(target=self._supervise, name="tunnel", daemon=True)
        self._supervisor.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for forward in self._local:
            forward.stop()
        for reverse in self._reverse:
            reverse.stop()
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(self.open_timeout + 1)
        self._set_state(STOPPED)

    def _supervise(self) -> None:
        attempt, reason = 0, ""
        while not self._stopping.is_set():
            self._set_state(RECONNECTING if self._generation else CONNECTING, reason)
            try:
                transport = self._open()
            except TunnelGone as err:
                self._set_state(FAILED, err.message)
                return
            except Exception as err:  # every failure to connect means: wait and try again
                attempt += 1
                reason = _describe(err)
                log.info("tunnel connect failed (attempt %d): %s", attempt, reason)
                self._stopping.wait(backoff(attempt + 1, self.max_backoff))
                continue
            attempt = 0
            reason = self._hold(transport)

    def _hold(self, transport: paramiko.Transport) -> str:
        """Serve one connection until it dies; returns why it ended."""
        self._transport = transport
        self._generation += 1
        self._set_state(CONNECTED)
        threading.Thread(target=self._ping, args=(transport,), name="tunnel ping", daemon=True).start()
        threading.Thread(target=self._keep_reverse_forwards, args=(transport,), name="tunnel reverse",
                         daemon=True).start()
        reason = self._watch(transport)
        self._transport = None
        for reverse in self._reverse:
            reverse.active = False
        transport.close()
        return reason

    def _open(self) -> paramiko.Transport:
        sock = _ActivitySocket(self._connect())
        transport = paramiko.Transport(sock, default_window_size=WINDOW,  # type: ignore[arg-type]
                                       default_max_packet_size=MAX_PACKET)
        try:
            self._handshake(transport)
        except BaseException:
            transport.close()
            raise
        return transport

    def _handshake(self, transport: paramiko.Transport) -> None:
        options = transport.get_security_options()
        ciphers = list(options.ciphers)
        if PREFERRED_CIPHER in ciphers:
            options.ciphers = [PREFERRED_CIPHER, *(c for c in ciphers if c != PREFERRED_CIPHER)]
        options.key_types = [self._host_key.get_name()]  # ask for the pinned key's type only
        transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = self.open_timeout
        try:
            transport.start_client(timeout=self.open_timeout)
        except (paramiko.SSHException, EOFError) as err:
            error = getattr(transport.sock.sock, "stream_error", None)  # type: ignore[union-attr]
            raise TunnelError(error or f"SSH handshake failed: {err}") from None
        offered = transport.get_remote_server_key()
        if offered.asbytes() != self._host_key.asbytes():
            raise HostKeyMismatch(f"the sidecar presented host key {offered.get_name()} "
                                  f"{offered.fingerprint}, not the pinned {self._host_key.fingerprint}: refused")
        transport.auth_publickey(USERNAME, self._client_key)
        transport.set_keepalive(max(1, int(self.keepalive)))

    def _ping(self, transport: paramiko.Transport) -> None:
        """Ask for a reply every ``keepalive`` seconds, so an idle but live connection shows traffic."""
        while transport.is_active() and not self._stopping.is_set():
            with self._global_requests:
                try:
                    transport.global_request("keepalive@openssh.com", wait=True)
                except (paramiko.SSHException, EOFError, OSError):
                    return  # the connection is dying: _watch sees it and the supervisor reconnects
            self._stopping.wait(self.keepalive)

    def _watch(self, transport: paramiko.Transport) -> str:
        sock: _ActivitySocket = transport.sock  # type: ignore[assignment]
        step = min(0.25, self.keepalive / 4)
        while not self._stopping.wait(step):
            if not transport.is_active():
                error = getattr(sock.sock, "stream_error", None)
                return f"connection lost{f': {error}' if error else ''}"
            silent = time.monotonic() - sock.last_read
            if silent > self.dead_after:
                return f"no answer for {silent:.1f}s"
        return "stopped"

    # ------------------------------------------------------------------ channels

    def open_channel(self, host: str, port: int, *, origin: tuple[str, int] = (LOOPBACK, 0),
                     wait: float | None = None) -> paramiko.Channel:
        """A direct-tcpip channel to ``host:port`` in the pod, waiting up to ``wait`` for the tunnel.

        ``paramiko.ChannelException`` when the pod refuses (nothing listens there); ``TunnelDown``
        when no connection came within the wait.
        """
        deadline = time.monotonic() + (self.connect_wait if wait is None else wait)
        while True:
            transport = self._wait_transport(deadline)
            try:
                return transport.open_channel("direct-tcpip", (host, port), origin, window_size=WINDOW,
                                              max_packet_size=MAX_PACKET, timeout=self.open_timeout)
            except paramiko.ChannelException:
                raise
            except (paramiko.SSHException, EOFError, OSError) as err:
                if not _ends_before(transport, deadline):
                    raise TunnelDown(f"cannot open a channel to {host}:{port}: {_describe(err)}") from None
                # the connection died under us: the supervisor brings the next one

    def exec(self, command: str) -> paramiko.Channel:
        """Run ``command`` through the sidecar's exec allow-list; the caller reads and closes the channel."""
        channel = self.transport().open_session(window_size=WINDOW, max_packet_size=MAX_PACKET,
                                                timeout=self.open_timeout)
        channel.settimeout(None)
        channel.exec_command(command)
        return channel

    def sftp(self) -> paramiko.SFTPClient:
        client = paramiko.SFTPClient.from_transport(self.transport(), window_size=WINDOW,
                                                    max_packet_size=MAX_PACKET)
        if client is None:
            raise TunnelDown("the sidecar refused the sftp subsystem")
        return client

    # ------------------------------------------------------------------ forwards

    def forward_local(self, remote_port: int, local_port: int = 0) -> int:
        """Listen on 127.0.0.1:``local_port`` (0: any free port) for 127.0.0.1:``remote_port`` in the pod.

        Returns the bound local port; the listener survives reconnects until ``stop()``.
        """
        forward = LocalForward(self, remote_port, local_port).start()
        self._local.append(forward)
        return forward.local_port

    def forward_reverse(self, remote_port: int, local_port: int, *, local_host: str = LOOPBACK) -> int:
        """Listen on 127.0.0.1:``remote_port`` inside the pod for ``local_host:local_port`` here.

        Asked for now if connected (returning the port the sidecar bound), and again after every
        reconnect; while disconnected returns ``remote_port``.
        """
        reverse = ReverseForward(remote_port, local_port, local_host=local_host)
        self._reverse.append(reverse)
        transport = self._transport
        if transport is not None and transport.is_active():
            self._request_reverse(transport, reverse)
            if reverse.error and not reverse.active:
                raise TunnelError(f"reverse forward {remote_port} -> {local_port}: {reverse.error}")
        return reverse.bound_port

    def _keep_reverse_forwards(self, transport: paramiko.Transport) -> None:
        """Ask for every reverse forward on a new connection, and again until granted: right after a
        reconnect the sidecar may still hold the port for the connection it has not yet seen die."""
        while transport.is_active() and not self._stopping.is_set():
            for reverse in [r for r in self._reverse if not r.active]:
                self._request_reverse(transport, reverse)
            self._stopping.wait(REVERSE_RETRY_INTERVAL)

    def _request_reverse(self, transport: paramiko.Transport, reverse: ReverseForward) -> None:
        try:
            with self._global_requests:
                bound = transport.request_port_forward(LOOPBACK, reverse.bound_port, handler=self._dispatch_reverse)
        except paramiko.SSHException as err:
            reverse.error = f"the sidecar refused port {reverse.bound_port}: {err}"
            log.warning("reverse forward %s", reverse.error)
            return
        reverse.bound_port, reverse.active, reverse.error = bound, True, None

    def _dispatch_reverse(self, channel: paramiko.Channel, origin: tuple[str, int], server: tuple[str, int]) -> None:
        """paramiko keeps one handler per connection: route by the pod port the connection came to."""
        for reverse in self._reverse:
            if reverse.active and reverse.bound_port == server[1]:
                reverse.accept(channel)
                return
        channel.close()

    def forwards(self) -> list[ForwardStatus]:
        return [f.status() for f in self._local] + [r.status() for r in self._reverse]


def _ends_before(transport: paramiko.Transport, deadline: float) -> bool:
    """Whether a transport that just failed a write is seen dead before ``deadline`` (or a grace).

    A write to a cut stream fails (EPIPE) before paramiko's reader thread notices the EOF, so the
    transport still looks active for a moment; giving up then would reset a local connection that
    the next connection could have served.
    """
    until = min(deadline, time.monotonic() + DEATH_GRACE)
    while transport.is_active():
        if time.monotonic() >= until:
            return False
        time.sleep(0.02)
    return time.monotonic() < deadline


def _describe(err: BaseException) -> str:
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    return str(message)
