"""The pre-tunnel path to the debugger: a 127.0.0.1 listener, one kube port-forward per connection.

Until ``nhdev dev debug`` runs under the session and reaches the debugger through the SSH tunnel
(``Tunnel.forward_local``), it reaches it the way kubectl does: every accepted local connection
opens its own port-forward WebSocket (``kubernetes.stream.portforward`` on a dedicated
ApiClient) and bytes are pumped both ways until either side closes. Kept small on purpose; the
general listener is ``cluster/portforward.py``'s.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Any

from kubernetes import client
from kubernetes.stream import portforward

from nhdev.cluster.kubeconfig import ClusterTarget, api_client

_CHUNK = 65536


class DebugPortForward:
    """Listens on 127.0.0.1 (port 0: any free one) and forwards to ``remote_port`` in ``pod``."""

    def __init__(self, target: ClusterTarget, namespace: str, pod: str, remote_port: int,
                 local_port: int = 0) -> None:
        self.target, self.namespace, self.pod, self.remote_port = target, namespace, pod, remote_port
        self._listener = socket.create_server(("127.0.0.1", local_port))
        self.local_port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"debug forward :{self.local_port}")

    def start(self) -> DebugPortForward:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()

    def __enter__(self) -> DebugPortForward:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                local, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(local,), daemon=True,
                             name=f"debug forward :{self.local_port} connection").start()

    def _serve(self, local: socket.socket) -> None:
        forward: Any = None
        try:
            core = client.CoreV1Api(api_client(self.target))  # portforward swaps call_api on it
            forward = portforward(core.connect_get_namespaced_pod_portforward, self.pod, self.namespace,
                                  ports=str(self.remote_port))
            _pump(local, forward.socket(self.remote_port))
        except Exception:  # the pod refused or went away: this connection ends, the listener stays
            pass
        finally:
            local.close()
            if forward is not None:
                with contextlib.suppress(Exception):
                    forward.close()


def _pump(local: socket.socket, remote: Any) -> None:
    """Copies bytes both ways until one side closes (then both are closed by the caller)."""
    peers = {local: remote, remote: local}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                source = key.fileobj
                data = source.recv(_CHUNK)  # type: ignore[union-attr]
                if not data:
                    return
                peers[source].sendall(data)
