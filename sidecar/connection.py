"""One SSH connection: the paramiko transport, what it allows (ServerInterface), and its channels."""

from __future__ import annotations

import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_UNKNOWN_CHANNEL_TYPE,
    OPEN_SUCCEEDED,
)

from sidecar.commands import CommandRegistry
from sidecar.confinement import Confinement
from sidecar.events import event
from sidecar.exec_requests import ExecEnvironment, start_exec
from sidecar.forwarding import ForwardRefused, Pump, ReverseForwards, connect_loopback, tune
from sidecar.keys import AuthorizedKeys, KeyFileError
from sidecar.sftp import ConfinedSFTPServer

# Sync and forwards run over this connection, so the receive window must cover the bandwidth-delay
# product of a kube port-forward stream (a few MB at most). It is also the most a channel buffers
# when its local reader is slow, and the sidecar's memory limit is 512 Mi with many channels open.
WINDOW_SIZE = 16 * 1024 * 1024
MAX_PACKET_SIZE = 32768  # the SSH channel packet size every implementation accepts
KEEPALIVE_REQUESTS = frozenset({"keepalive@openssh.com", "keepalive@lag.net"})
ACCEPT_CHECK_INTERVAL = 2.0
AUTH_TIMEOUT = 30.0  # a client that has not logged in by then never will; free its thread
_connection_ids = itertools.count(1)


@dataclass(frozen=True)
class Settings:
    """What every connection shares: the root, the keys and the allowed commands."""

    confinement: Confinement
    authorized_keys: AuthorizedKeys
    host_keys: tuple[paramiko.PKey, ...]
    commands: CommandRegistry


class SidecarServer(paramiko.ServerInterface):
    """What one connection's client may do. paramiko calls these on its reader thread."""

    def __init__(self, settings: Settings, transport: paramiko.Transport, name: str) -> None:
        self.settings = settings
        self.transport = transport
        self.name = name
        self.reverse_forwards = ReverseForwards(transport, name)
        self._direct_sockets: dict[int, tuple[socket.socket, str]] = {}
        self._accepted_keys: set[str] = set()
        self._round_trip_lock = threading.Lock()
        self.exec_environment = ExecEnvironment(settings.commands, settings.confinement, name, self.round_trip)

    # ---------------------------------------------------------------- authentication

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_none(self, username: str) -> int:
        # Every OpenSSH client tries "none" first to learn the methods: routine, not a warning.
        event("auth refused", conn=self.name, user=username, method="none", reason="only publickey is allowed")
        return AUTH_FAILED

    def check_auth_password(self, username: str, password: str) -> int:
        return self._refuse_auth(username, "password")

    def check_auth_interactive(self, username: str, submethods: str) -> int:
        return self._refuse_auth(username, "keyboard-interactive")

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        """Any user name; the key must be in authorized_keys as the Secret holds it right now.

        paramiko verifies the signature after this returns (and refuses the login if it is bad).
        A client may ask about a key before signing with it, so this runs twice for one login.
        """
        fingerprint = key.fingerprint
        try:
            allowed = self.settings.authorized_keys.allows(key)
            reason = "key not in authorized_keys"
        except KeyFileError as exc:  # a Secret being rotated, or broken: nobody gets in meanwhile
            allowed, reason = False, str(exc)
        if not allowed:
            event("auth refused", logging.WARNING, conn=self.name, user=username, method="publickey",
                  key=fingerprint, reason=reason)
            return AUTH_FAILED
        if fingerprint not in self._accepted_keys:
            self._accepted_keys.add(fingerprint)
            event("auth ok", conn=self.name, user=username, key=fingerprint, type=key.get_name())
        return AUTH_SUCCESSFUL

    def _refuse_auth(self, username: str, method: str) -> int:
        event("auth refused", logging.WARNING, conn=self.name, user=username, method=method,
              reason="only publickey is allowed")
        return AUTH_FAILED

    # ---------------------------------------------------------------- channels

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            event("channel opened", conn=self.name, kind=kind, channel=chanid)
            return OPEN_SUCCEEDED
        event("channel refused", logging.WARNING, conn=self.name, kind=kind, reason="unsupported channel type")
        return OPEN_FAILED_UNKNOWN_CHANNEL_TYPE

    def check_channel_direct_tcpip_request(self, chanid: int, origin: tuple[str, int],
                                           destination: tuple[str, int]) -> int:
        """Connect now, so a refused connection is a refused channel; _serve_channels starts the pump."""
        host, port = destination
        label = f"{self.name}:local:{host}:{port}"
        try:
            sock = connect_loopback(host, port)
        except ForwardRefused as refused:
            event("channel refused", logging.WARNING, conn=self.name, kind="direct-tcpip",
                  destination=f"{host}:{port}", reason=str(refused))
            return refused.code
        self._direct_sockets[chanid] = (sock, label)
        return OPEN_SUCCEEDED

    def take_direct_socket(self, chanid: int) -> tuple[socket.socket, str] | None:
        return self._direct_sockets.pop(chanid, None)

    def close_unclaimed_sockets(self) -> None:
        for sock, _ in self._direct_sockets.values():
            sock.close()
        self._direct_sockets.clear()

    def check_channel_pty_request(self, channel: paramiko.Channel, term: bytes, width: int, height: int,
                                  pixelwidth: int, pixelheight: int, modes: bytes) -> bool:
        event("request refused", logging.WARNING, conn=self.name, channel=channel.get_id(), request="pty",
              reason="no terminals here: use kube exec into the dev container")
        return False

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        event("request refused", logging.WARNING, conn=self.name, channel=channel.get_id(), request="shell",
              reason="no interactive shell: use kube exec into the dev container")
        return False

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        """Accepted either way: a refused command gets status 127 and a message on stderr."""
        start_exec(channel, command, self.exec_environment)
        return True

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        if name != "sftp":
            event("request refused", logging.WARNING, conn=self.name, channel=channel.get_id(),
                  request=f"subsystem {name}", reason="only sftp is served")
            return False
        return super().check_channel_subsystem_request(channel, name)

    # ---------------------------------------------------------------- global requests

    def check_port_forward_request(self, address: str, port: int) -> int | bool:
        bound = self.reverse_forwards.open(address, port)
        return False if bound is None else bound

    def cancel_port_forward_request(self, address: str, port: int) -> None:
        self.reverse_forwards.cancel(address, port)

    def check_global_request(self, kind: str, msg: paramiko.Message) -> bool:
        """Keepalives succeed, so a client waiting on one learns the connection is alive; anything
        else gets a failure reply, which leaves the connection as it was."""
        if kind in KEEPALIVE_REQUESTS:
            return True
        event("request refused", logging.DEBUG, conn=self.name, request=kind, reason="unknown global request")
        return False

    def round_trip(self) -> None:
        """Return once the client has answered a request sent now, i.e. has read all we sent."""
        # paramiko keeps one pending global request per transport, so they must not overlap.
        with self._round_trip_lock:
            self.transport.global_request("keepalive@openssh.com", wait=True)


class Connection:
    """Serves one accepted socket until the client goes away or close() is called."""

    def __init__(self, sock: socket.socket, peer: str, settings: Settings) -> None:
        self.name = f"c{next(_connection_ids)}"
        self.peer = peer
        tune(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.transport = paramiko.Transport(sock, default_window_size=WINDOW_SIZE,
                                            default_max_packet_size=MAX_PACKET_SIZE)
        for key in settings.host_keys:
            self.transport.add_server_key(key)
        self.transport.set_subsystem_handler("sftp", paramiko.SFTPServer, ConfinedSFTPServer, settings.confinement,
                                             self.name)
        self.server = SidecarServer(settings, self.transport, self.name)

    def run(self) -> None:
        event("connection accepted", conn=self.name, peer=self.peer)
        try:
            self.transport.start_server(server=self.server)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            event("connection failed", logging.WARNING, conn=self.name, reason=str(exc) or type(exc).__name__)
            self.close()
            return
        try:
            self._serve_channels()
        finally:
            self.close()
            event("connection closed", conn=self.name)

    def _serve_channels(self) -> None:
        """Start the pump of each direct-tcpip channel; other channels run on paramiko's threads."""
        # paramiko holds channels weakly and closes one when it is garbage collected, so a session
        # channel must be held here until its exec or sftp request arrives and takes it over.
        sessions: set[paramiko.Channel] = set()
        auth_deadline = time.monotonic() + AUTH_TIMEOUT
        while self.transport.is_active():
            if not self.transport.is_authenticated() and time.monotonic() > auth_deadline:
                event("auth refused", logging.WARNING, conn=self.name, reason=f"no login within {AUTH_TIMEOUT:.0f}s")
                return
            # A timeout, because a transport that dies between is_active() and the wait would
            # otherwise leave this thread waiting for a wake-up that already happened.
            channel = self.transport.accept(timeout=ACCEPT_CHECK_INTERVAL)
            sessions = {session for session in sessions if not session.closed}
            if channel is None:
                continue
            claimed = self.server.take_direct_socket(channel.get_id())
            if claimed is None:
                sessions.add(channel)
                continue
            sock, label = claimed
            Pump(channel, sock, label).start()

    def close(self) -> None:
        self.server.reverse_forwards.close_all()
        self.server.close_unclaimed_sockets()
        self.transport.close()
