"""The Tunnel against a real local ``nhdev-sidecar``: forwards, exec, sftp, and recovery from a cut
stream, a silently dead stream and a killed sidecar, with the local listener bound throughout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from nhdev.tunnel import CONNECTED, RECONNECTING, Tunnel, TunnelDown, TunnelEvent
from tests.unit.tunnel_harness import (
    KeyFiles,
    LocalSidecar,
    StreamProxy,
    echo_once,
    echo_server,
    http_get,
    http_server,
    tunnel_for,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture()
def proxy(sidecar: LocalSidecar) -> StreamProxy:
    return StreamProxy(sidecar.port)


@pytest.fixture()
def tunnel(proxy: StreamProxy, keys: KeyFiles) -> Iterator[Tunnel]:
    handle = tunnel_for(proxy, keys).start()
    assert handle.wait_connected(10), handle.state
    yield handle
    handle.stop()


def test_local_forward_carries_http_and_counts_connections(tunnel: Tunnel) -> None:
    server = http_server()
    local = tunnel.forward_local(server.server_address[1])
    assert http_get(local, "/a").endswith(f"hello from {server.server_address[1]} /a".encode())
    status = tunnel.forwards()[0]
    assert status.local == f"127.0.0.1:{local}" and status.total == 1 and status.active


def test_many_concurrent_connections(tunnel: Tunnel) -> None:
    server = http_server()
    local = tunnel.forward_local(server.server_address[1])
    results: list[bytes] = []

    def fetch(i: int) -> None:
        results.append(http_get(local, f"/{i}"))

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(r.rsplit(b"/", 1)[1] for r in results) == sorted(str(i).encode() for i in range(50))


def test_half_close_keeps_the_reply(tunnel: Tunnel) -> None:
    """The client sends, shuts its write side, and still gets the whole answer."""
    server = http_server()
    local = tunnel.forward_local(server.server_address[1])
    with socket.create_connection(("127.0.0.1", local), timeout=10) as sock:
        sock.sendall(b"GET /half HTTP/1.0\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.endswith(b"/half")


def test_a_closed_remote_port_closes_the_local_connection(tunnel: Tunnel) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    local = tunnel.forward_local(closed_port)
    with socket.create_connection(("127.0.0.1", local), timeout=10) as sock:
        assert sock.recv(10) == b""
    assert "refused" in (tunnel.forwards()[0].error or "")


def test_exec_and_sftp(tunnel: Tunnel, sidecar: LocalSidecar) -> None:
    channel = tunnel.exec("nhdev-sidecar version")
    assert channel.makefile("rb").read().startswith(b"nhdev-sidecar ")
    assert channel.recv_exit_status() == 0
    sftp = tunnel.sftp()
    with sftp.open("hello.txt", "wb") as f:
        f.write(b"hi")
    assert (sidecar.where / "root" / "hello.txt").read_bytes() == b"hi"
    sftp.close()


def test_reverse_forward_reaches_a_local_server_and_survives_reconnect(tunnel: Tunnel, proxy: StreamProxy) -> None:
    # The pod-side client closes first: a sidecar port left in TIME_WAIT could not be bound again
    # for a minute (the sidecar's reverse listener does not set SO_REUSEADDR).
    server = echo_server()
    remote = tunnel.forward_reverse(0, server.getsockname()[1])
    assert remote > 0
    assert echo_once(remote, b"rev") == b"rev"  # the "pod" is this machine's loopback
    generation = tunnel.generation
    proxy.cut()
    wait_for(lambda: tunnel.generation > generation and tunnel.forwards()[0].active, 10)
    assert echo_once(remote, b"again") == b"again"


def test_a_cut_stream_reconnects_and_the_listener_stays(tunnel: Tunnel, proxy: StreamProxy) -> None:
    server = http_server()
    local = tunnel.forward_local(server.server_address[1])
    events: list[TunnelEvent] = []
    tunnel.on_state(events.append)
    generation = tunnel.generation
    proxy.cut()
    began = time.monotonic()
    assert http_get(local, "/after").endswith(b"/after"), "a connection made during the reconnect waits"
    assert time.monotonic() - began < 5
    assert tunnel.generation == generation + 1
    assert [e.state for e in events][:1] == [RECONNECTING] and events[-1].state == CONNECTED


def test_a_silent_stream_is_detected_within_seconds(proxy: StreamProxy, keys: KeyFiles) -> None:
    tunnel = tunnel_for(proxy, keys, keepalive=0.5, dead_after=1.5).start()
    try:
        assert tunnel.wait_connected(10)
        server = http_server()
        local = tunnel.forward_local(server.server_address[1])
        hanging = socket.create_connection(("127.0.0.1", local), timeout=10)
        time.sleep(0.3)
        proxy.freeze()
        began = time.monotonic()
        wait_for(lambda: not tunnel.connected, 5)
        assert time.monotonic() - began < 3
        assert hanging.recv(10) == b"", "connections on the dead stream end instead of hanging"
        proxy.thaw()
        wait_for(lambda: tunnel.connected, 5)
        assert http_get(local, "/thawed").endswith(b"/thawed")
    finally:
        tunnel.stop()


def test_a_killed_sidecar_comes_back(tunnel: Tunnel, sidecar: LocalSidecar) -> None:
    server = http_server()
    local = tunnel.forward_local(server.server_address[1])
    sidecar.kill()
    wait_for(lambda: not tunnel.connected, 5)
    with pytest.raises(TunnelDown):
        tunnel.transport()
    sidecar.start()  # same port: a restarted container
    began = time.monotonic()
    assert http_get(local, "/back").endswith(b"/back")
    assert time.monotonic() - began < 5


def test_connections_wait_only_so_long(proxy: StreamProxy, keys: KeyFiles, sidecar: LocalSidecar) -> None:
    tunnel = tunnel_for(proxy, keys, connect_wait=1.0).start()
    try:
        assert tunnel.wait_connected(10)
        server = http_server()
        local = tunnel.forward_local(server.server_address[1])
        sidecar.kill()
        wait_for(lambda: not tunnel.connected, 5)
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", local), timeout=10) as sock:
            assert sock.recv(10) == b""
        assert 0.5 < time.monotonic() - began < 4
        assert "tunnel is" in (tunnel.forwards()[0].error or "")
    finally:
        tunnel.stop()


def wait_for(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not true within {timeout}s")
