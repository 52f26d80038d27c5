"""A real ``nhdev-sidecar`` on 127.0.0.1 and a direct SSH link to it: a perfectly real ``SyncLink``."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from nhdev.config.model import Sync
from nhdev.sync.engine import SyncEngine
from nhdev.sync.rules import IgnoreRules
from tests.sidecar.test_sidecar_ssh import Keys, Sidecar, authorized_line, start_sidecar, stop, write_private_key

WINDOW = 16 * 1024 * 1024
SYNC_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # watchdog, when a directory and one inside it appear at once, may add the inner one's watch
    # twice (once from the walk of the new directory, once from its own event) and warns; harmless.
    for item in items:
        if SYNC_TESTS in item.path.parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:Callback with id .* already exists:RuntimeWarning"))


class DirectLink:
    """One paramiko transport to the sidecar; reconnects on demand unless held down (a dropped tunnel)."""

    def __init__(self, port: int, keys: Keys) -> None:
        self.port, self.keys = port, keys
        self.generation = 0
        self.held_down = False
        self._transport: paramiko.Transport | None = None
        self._lock = threading.Lock()

    def transport(self) -> paramiko.Transport:
        with self._lock:
            if self.held_down:
                raise ConnectionError("link held down by the test")
            if self._transport is None or not self._transport.is_active():
                self._transport = self._connect()
                self.generation += 1
            return self._transport

    def _connect(self) -> paramiko.Transport:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock, default_window_size=WINDOW, default_max_packet_size=32768)
        transport.start_client(timeout=10)
        if transport.get_remote_server_key() != self.keys.host:
            transport.close()
            raise paramiko.BadHostKeyException("127.0.0.1", transport.get_remote_server_key(), self.keys.host)
        transport.auth_publickey("dev", self.keys.client)
        return transport

    def drop(self, *, hold: bool = True) -> None:
        """Kill the connection (as a dead tunnel would); ``hold`` keeps it down until ``restore``."""
        with self._lock:
            self.held_down = hold
            if self._transport is not None:
                self._transport.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
                self._transport.close()

    def restore(self) -> None:
        with self._lock:
            self.held_down = False

    def close(self) -> None:
        with self._lock:
            if self._transport is not None:
                self._transport.close()


@dataclass
class SyncRig:
    tmp: Path
    sidecar: Sidecar
    link: DirectLink
    local: Path
    engines: list[SyncEngine]

    @property
    def pod(self) -> Path:
        return self.sidecar.root / "app"

    def engine(self, *, direction: str = "send", mode: str = "pattern", ignore: list[str] | None = None,
               delete_protection: bool = True, prune: bool = False, state: str = "state",
               local: Path | None = None, remote_root: str = "/app") -> SyncEngine:
        sync = Sync.model_validate({"type": direction, "mode": mode, "ignoreFilePattern": ignore or [],
                                    "deleteProtection": delete_protection})
        rules = IgnoreRules.from_config(sync, local or self.local)
        engine = SyncEngine(self.link, local or self.local, remote_root, rules, direction=sync.type,
                            delete_protection=delete_protection, state_dir=self.tmp / state, prune=prune)
        self.engines.append(engine)
        return engine


@pytest.fixture()
def rig(tmp_path: Path) -> Iterator[SyncRig]:
    keydir = tmp_path / "keys"
    keydir.mkdir()
    host = write_private_key(keydir / "ssh_host_ed25519_key", ed25519.Ed25519PrivateKey.generate())
    client = write_private_key(tmp_path / "client_key", ed25519.Ed25519PrivateKey.generate())
    stranger = write_private_key(tmp_path / "stranger_key", ed25519.Ed25519PrivateKey.generate())
    (keydir / "authorized_keys").write_text(authorized_line(client))
    keys = Keys(keydir, host, client, stranger)
    sidecar = start_sidecar(tmp_path, keys)
    local = tmp_path / "local"
    local.mkdir()
    handle = SyncRig(tmp_path, sidecar, DirectLink(sidecar.port, keys), local, [])
    yield handle
    for engine in handle.engines:
        engine.close()
    handle.link.close()
    stop(sidecar.process)


class Running:
    """An engine's ``run`` on a thread, stopped at the end of the block."""

    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self.stop = threading.Event()
        self.thread = threading.Thread(target=engine.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> SyncEngine:
        self.thread.start()
        return self.engine

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:  # a tree looked at while sync changes it (a file gone between listing and reading)
            pass
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")
