"""The session's control socket and registry, without a cluster: permissions, ops, subscribe, stale files."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nhdev.session import control
from nhdev.session.registry import clean_stale, paths_for, session_key

pytestmark = pytest.mark.timeout(30)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


def test_control_socket_is_owner_only_and_answers(home: Path) -> None:
    paths = paths_for(session_key("ctx", "ns", "deployment/web")).ensure()
    hub = control.EventHub()
    handlers = {"status": lambda _r: {"status": {"tunnel": "connected"}}}
    server = control.ControlServer(paths.control, handlers.get, hub, lambda: {"tunnel": "connected"}).start()
    try:
        assert stat.S_IMODE(paths.dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(paths.control.stat().st_mode) == 0o600
        assert control.request(paths.control, {"op": "status"}) == {"ok": True, "status": {"tunnel": "connected"}}
        with pytest.raises(control.ControlError, match="unknown op 'dance'"):
            control.request(paths.control, {"op": "dance"})
        events = control.subscribe(paths.control, timeout=5)
        assert next(events) == {"ok": True, "status": {"tunnel": "connected"}}
        hub.publish({"event": "tunnel", "state": "reconnecting"})
        assert next(events) == {"event": "tunnel", "state": "reconnecting"}
    finally:
        server.stop()
    assert not paths.control.exists()


def test_deep_homes_still_get_a_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(deep))
    paths = paths_for(session_key("ctx", "ns", "deployment/web")).ensure()
    assert len(str(paths.control)) > 108
    server = control.ControlServer(paths.control, {"status": lambda _r: {}}.get, control.EventHub(), dict).start()
    try:
        assert control.request(paths.control, {"op": "status"}) == {"ok": True}
    finally:
        server.stop()


def test_a_stale_pid_and_socket_are_removed(home: Path) -> None:
    paths = paths_for(session_key("ctx", "ns", "deployment/web")).ensure()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths.write_pid(dead.pid)
    leftover = socket.socket(socket.AF_UNIX)
    with control.unix_address(paths.control) as address:
        leftover.bind(address)
    leftover.close()
    with pytest.raises(control.ControlError):
        control.request(paths.control, {"op": "status"}, timeout=1)
    assert clean_stale(paths)
    assert not paths.control.exists() and not paths.pid_file.exists()


def test_a_live_session_is_not_cleaned(home: Path) -> None:
    paths = paths_for(session_key("ctx", "ns", "deployment/web")).ensure()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)  # nhdev"])
    try:
        while b"nhdev" not in Path(f"/proc/{live.pid}/cmdline").read_bytes():
            time.sleep(0.01)  # until the exec replaced the forked copy of pytest
        paths.write_pid(live.pid)
        assert not clean_stale(paths)
        assert paths.pid_file.exists()
    finally:
        live.kill()
        live.wait()
