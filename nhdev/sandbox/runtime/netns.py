"""Connecting to a port inside a pod's network namespace.

``setns(CLONE_NEWNET)`` changes the namespace of the calling *thread* only, and a socket stays in
the namespace it was created in. So a short-lived thread of its own enters the pod's namespace,
connects, and hands the socket back; no pooled thread ever changes namespace.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def netns_path(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def _enter_netns(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def connect_in_netns(path: str | None, port: int, timeout: float) -> socket.socket:
    """Blocking: a non-blocking socket connected to 127.0.0.1:port in the namespace at ``path``
    (``None``: this process's namespace)."""
    outcome: dict[str, object] = {}

    def connect() -> None:
        try:
            if path is not None:
                _enter_netns(path)
            sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            sock.setblocking(False)
            outcome["socket"] = sock
        except OSError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=connect, name=f"netns-connect-{port}", daemon=True)
    thread.start()
    thread.join()
    error = outcome.get("error")
    if isinstance(error, OSError):
        raise error
    sock = outcome["socket"]
    assert isinstance(sock, socket.socket)
    return sock


async def open_in_netns(path: str | None, port: int, timeout: float = 5.0) -> socket.socket:
    return await asyncio.to_thread(connect_in_netns, path, port, timeout)
