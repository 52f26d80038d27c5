"""``nhdev-sidecar --root WORKDIR --keys KEYDIR --listen 127.0.0.1:2222 [--log-level info]``
(and ``nhdev-sidecar probe 127.0.0.1:2222``, the readiness probe: see ``probe.py``)

Runs in the dev pod beside the dev container (see nhdev/devmode/plan.py, ``_sidecar_container``).
Exit status: 0 after SIGTERM or SIGINT, 2 when the command line, the root, the key directory or the
listen address is unusable (one line on stderr says which). Port 0 listens on a free port; the
``listening address=HOST:PORT`` log line says which.
"""

from __future__ import annotations

import argparse
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

import paramiko

from sidecar import __version__
from sidecar.address import ConfigError, parse_listen
from sidecar.commands import PROGRAM, default_registry
from sidecar.confinement import Confinement
from sidecar.connection import Connection, Settings
from sidecar.events import LEVELS, configure, event
from sidecar.keys import AUTHORIZED_KEYS, AuthorizedKeys, KeyFileError, load_host_keys

CONFIG_ERROR = 2
ACCEPT_ERROR_PAUSE = 0.1  # after EMFILE and the like, so a full fd table does not spin a core


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["probe"]:
        from sidecar.probe import probe_main

        return probe_main(given[1:])
    args = _parser().parse_args(given)
    try:
        address = parse_listen(args.listen)
        settings = load_settings(Path(args.root), Path(args.keys))
        listener = _listen(address)
    except (ConfigError, KeyFileError) as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr, flush=True)
        return CONFIG_ERROR
    configure(args.log_level)
    return serve(listener, settings)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="nhdev's SSH endpoint inside the dev pod.")
    parser.add_argument("--root", required=True, help="the sync root SFTP is confined to (created if missing)")
    parser.add_argument("--keys", required=True,
                        help=f"directory with {AUTHORIZED_KEYS} and ssh_host_ed25519_key (or _ecdsa/_rsa)")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to listen on")
    parser.add_argument("--log-level", default="info", choices=LEVELS)
    parser.add_argument("--version", action="version", version=f"{PROGRAM} {__version__}")
    return parser


def load_settings(root: Path, keydir: Path) -> Settings:
    if not keydir.is_dir():
        raise ConfigError(f"key directory {keydir} does not exist or is not a directory")
    host_keys = load_host_keys(keydir)
    authorized_keys = AuthorizedKeys(keydir / AUTHORIZED_KEYS)
    authorized_keys.load()  # fail now rather than refuse every login later
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create root {root}: {exc.strerror}") from exc
    if not os.access(root, os.R_OK | os.X_OK):
        raise ConfigError(f"root {root} is not a readable directory")
    return Settings(confinement=Confinement(root), authorized_keys=authorized_keys, host_keys=tuple(host_keys),
                    commands=default_registry())


def _listen(address: tuple[str, int]) -> socket.socket:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    try:
        return socket.create_server(address, family=family, backlog=128)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}") from exc


def serve(listener: socket.socket, settings: Settings) -> int:
    """Accept connections, one thread each, until SIGTERM or SIGINT; then close them all."""
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    live = LiveConnections()
    host, port = listener.getsockname()[:2]
    with StopSignals(stop) as wakeup, selectors.DefaultSelector() as selector:
        # A signal may land on any thread (paramiko's, a forward's); its Python handler runs only
        # when the main thread next runs bytecode. A blocking accept() would not return for it,
        # so the main thread waits on the listener and on the wake-up socket the signal writes to.
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ)
        selector.register(wakeup, selectors.EVENT_READ)
        event("listening", address=f"{host}:{port}", root=settings.confinement.root, version=__version__,
              host_keys=",".join(f"{k.get_name()}:{k.fingerprint}" for k in settings.host_keys),
              commands=",".join(settings.commands.names()))
        while not stopping.is_set():
            ready = [key.fileobj for key, _ in selector.select()]
            if wakeup in ready:
                _drain(wakeup)
            if listener in ready and not stopping.is_set():
                _accept(listener, live, settings)
    listener.close()
    closed = live.close_all()
    event("stopped", connections_closed=closed)
    return 0


class StopSignals:
    """SIGTERM and SIGINT call ``handler`` and write to a socket the main thread can wait on."""

    def __init__(self, handler: Callable[[int, FrameType | None], None]) -> None:
        self.handler = handler
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self._read.setblocking(False)

    def __enter__(self) -> socket.socket:
        signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self.handler)
        signal.signal(signal.SIGINT, self.handler)
        return self._read

    def __exit__(self, *exc: object) -> None:
        signal.set_wakeup_fd(-1)
        self._read.close()
        self._write.close()


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except BlockingIOError:
        pass


def _accept(listener: socket.socket, live: LiveConnections, settings: Settings) -> None:
    try:
        sock, peer = listener.accept()
    except BlockingIOError:  # the client gave up between select() and accept()
        return
    except OSError as exc:
        event("accept failed", logging.ERROR, reason=exc.strerror or str(exc))
        time.sleep(ACCEPT_ERROR_PAUSE)
        return
    sock.setblocking(True)
    threading.Thread(target=live.serve, args=(sock, f"{peer[0]}:{peer[1]}", settings), daemon=True).start()


class LiveConnections:
    """The connections being served, so a stop can close them all."""

    def __init__(self) -> None:
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()

    def serve(self, sock: socket.socket, peer: str, settings: Settings) -> None:
        """Serve one accepted socket on the calling thread until it ends."""
        try:
            connection = Connection(sock, peer, settings)
        except (OSError, paramiko.SSHException) as exc:
            sock.close()
            event("connection failed", logging.WARNING, peer=peer, reason=str(exc))
            return
        with self._lock:
            self._connections.add(connection)
        try:
            connection.run()
        finally:
            with self._lock:
                self._connections.discard(connection)

    def close_all(self) -> int:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        return len(connections)
