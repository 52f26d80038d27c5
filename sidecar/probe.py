"""``nhdev-sidecar probe HOST:PORT``: exit 0 when an SSH server answers there with its banner.

The dev pod's readiness probe. The sidecar listens on loopback only, where a kubelet's tcpSocket
probe (sent to the pod IP) cannot reach, so the probe runs inside the container instead.
"""

from __future__ import annotations

import socket
import sys

BANNER = b"SSH-2.0-"


def probe(address: tuple[str, int], timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection(address, timeout=timeout) as conn:
            received = b""
            while b"\n" not in received and len(received) < 256:
                chunk = conn.recv(256)
                if not chunk:
                    break
                received += chunk
    except OSError:
        return False
    return received.startswith(BANNER)


def probe_main(argv: list[str]) -> int:
    from sidecar.address import ConfigError, parse_listen

    if len(argv) != 1:
        print("usage: nhdev-sidecar probe HOST:PORT", file=sys.stderr)
        return 2
    try:
        address = parse_listen(argv[0])
    except ConfigError as exc:
        print(f"nhdev-sidecar probe: {exc}", file=sys.stderr)
        return 2
    ok = probe((address[0], address[1]))
    if not ok:
        print(f"nhdev-sidecar probe: no SSH server answering on {argv[0]}", file=sys.stderr)
    return 0 if ok else 1
