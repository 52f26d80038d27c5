"""The tunnel's security edges: only the pinned host key is accepted, listeners bind 127.0.0.1 only."""

from __future__ import annotations

import socket

import pytest

from nhdev.devmode.keys import generate_session_keys
from nhdev.tunnel import Tunnel, TunnelDown
from nhdev.tunnel.client import parse_host_key
from tests.unit.tunnel_harness import KeyFiles, LocalSidecar, StreamProxy, tunnel_for

pytestmark = pytest.mark.timeout(60)


def test_an_unexpected_host_key_is_refused(sidecar: LocalSidecar, keys: KeyFiles) -> None:
    impostor_pin = generate_session_keys().host_public  # valid key, not the sidecar's
    tunnel = Tunnel(StreamProxy(sidecar.port).connect, keys.client_key, impostor_pin, keepalive=0.5,
                    max_backoff=0.2).start()
    try:
        assert not tunnel.wait_connected(2)
        assert "not the pinned" in tunnel.state.reason and "refused" in tunnel.state.reason
        with pytest.raises(TunnelDown):
            tunnel.transport()
        log = (sidecar.where / "sidecar.log").read_text()
        assert "auth ok" not in log, "the client key is never offered to an unverified server"
    finally:
        tunnel.stop()


def test_listeners_bind_loopback_only(sidecar: LocalSidecar, keys: KeyFiles) -> None:
    tunnel = tunnel_for(StreamProxy(sidecar.port), keys).start()
    try:
        assert tunnel.wait_connected(10)
        port = tunnel.forward_local(22, 0)
        bound = [s.local for s in tunnel.forwards()]
        assert bound == [f"127.0.0.1:{port}"]
        # 127.0.0.0/8 all route to lo, so "not reachable on 127.0.0.2" proves nothing by itself:
        # what matters is that the socket is bound to 127.0.0.1 and not 0.0.0.0.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.2", port), timeout=2).close()
        for address in _non_loopback_addresses():
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=2).close()
    finally:
        tunnel.stop()


def test_the_pinned_key_line_must_be_a_public_key() -> None:
    with pytest.raises(Exception, match="not an OpenSSH public key"):
        parse_host_key("garbage")
    key = parse_host_key(generate_session_keys().host_public)
    assert key.get_name() == "ssh-ed25519"


def _non_loopback_addresses() -> list[str]:
    """This machine's own non-loopback IPv4 addresses (none in a bare network namespace)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        address = probe.getsockname()[0]
    except OSError:
        return []
    finally:
        probe.close()
    return [] if address.startswith("127.") else [address]
