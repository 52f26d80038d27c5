"""Accepting connections on a listening socket, each served on a thread of its own.

A cog shared by the kube port-forward listener (``cluster``), the tunnel's local forwards
(``tunnel``) and the session's control socket (``session``); it knows nothing of them.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

ACCEPT_ERROR_PAUSE = 0.1  # after EMFILE and the like, so a full descriptor table does not spin a core

Serve = Callable[[socket.socket, Any], None]  # (connection, peer address)


def start_accepting(listener: socket.socket, serve: Serve, stopping: threading.Event, *, name: str) -> None:
    """Accept on ``listener`` on a new thread until ``stopping`` is set, ``serve`` each connection
    on a thread of its own.

    To stop: set ``stopping``, then shut the listener down (``close()`` alone does not wake a
    thread blocked in ``accept()`` on Linux).
    """
    threading.Thread(target=_accept_loop, args=(listener, serve, stopping, name), name=name, daemon=True).start()


def _accept_loop(listener: socket.socket, serve: Serve, stopping: threading.Event, name: str) -> None:
    while not stopping.is_set():
        try:
            conn, peer = listener.accept()
        except OSError as err:
            if stopping.is_set():
                return
            log.warning("%s: accept failed: %s", name, err.strerror or err)
            stopping.wait(ACCEPT_ERROR_PAUSE)
            continue
        threading.Thread(target=serve, args=(conn, peer), name=f"{name} conn", daemon=True).start()
