"""The tunnel end to end on the sandbox: a dev pod's real sidecar, reached over a kube port-forward
stream; forwards, concurrency, a 200 MB transfer, a reverse forward, and recovery from a killed
stream, a killed sidecar and a deleted pod without user action."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.stream import stream

from nhdev.cluster.kubeconfig import ClusterTarget, api_client, resolve_target
from nhdev.cluster.portforward import open_pod_port
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.devmode import names
from nhdev.devmode.engine import DevModeEngine, parse_workload_ref
from nhdev.devmode.plan import DevSpec
from nhdev.tunnel import Tunnel
from tests.unit.tunnel_harness import http_server

pytestmark = pytest.mark.timeout(180)

DEV_IMAGE = "ghcr.io/nhdev/dev-python:3.12"
WORKDIR = "/home/nhdev-dev"
BLOB_BYTES = 200 * 1024 * 1024
# A threaded HTTP server with a deep accept queue (http.server's default of 5 drops bursts).
SERVER = """
import http.server, os, sys
os.chdir(sys.argv[2])
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 512
    daemon_threads = True
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""

KILL_SIDECAR = ('for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = nhdev-sidecar ] '
                '&& kill -9 "${p#/proc/}"; done; true')


@dataclass
class DevPod:
    target: ClusterTarget
    kube: KubeRest
    namespace: str
    session: str
    container: str
    keys: Path

    def pod(self) -> str:
        pods = self.kube.list(kind_named("pod"), self.namespace, label_selector=f"{names.SESSION}={self.session}")
        running = [p for p in pods if p["status"].get("phase") == "Running"
                   and not p["metadata"].get("deletionTimestamp")
                   and all(s.get("ready") for s in p["status"].get("containerStatuses", []))]
        if not running:
            raise OSError("no ready dev pod")
        return str(running[0]["metadata"]["name"])

    def sh(self, script: str, container: str | None = None) -> str:
        core = client.CoreV1Api(api_client(self.target))
        return str(stream(core.connect_get_namespaced_pod_exec, self.pod(), self.namespace,
                          container=container or self.container, command=["sh", "-c", script],
                          stdout=True, stderr=True, stdin=False, tty=False))

    def start_server(self, port: int = 8080) -> None:
        self.sh(f"cat > /tmp/serve.py <<'EOF'\n{SERVER}\nEOF\n"
                f"setsid nohup python3 /tmp/serve.py {port} {WORKDIR} >/tmp/serve.log 2>&1 </dev/null &")
        deadline = time.monotonic() + 15
        while "up" not in self.sh(f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}))\" "
                                  "2>/dev/null && echo up || true"):
            assert time.monotonic() < deadline, self.sh("cat /tmp/serve.log")
            time.sleep(0.2)

    def tunnel(self, **options: float) -> Tunnel:
        def connect() -> socket.socket:
            return open_pod_port(self.target, self.namespace, self.pod(), names.SIDECAR_PORT, timeout=5)

        settings = {"keepalive": 1.0, "max_backoff": 1.0, **options}
        return Tunnel(connect, self.keys / "client_key", (self.keys / "host_key.pub").read_text().strip(),
                      **settings)


@pytest.fixture(scope="module")
def dev(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPod]:
    target = resolve_target(kubeconfig, "nhdev-sandbox")
    kube = KubeRest(api_client(target))
    ns = f"tun-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    labels = {"app": "web"}
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                 "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                          "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                              {"name": "app", "image": "python:3.12",
                               "command": ["python3", "-m", "http.server", "8080"]}]}}}})
    state = tmp_path_factory.mktemp("tunnel-keys")
    engine = DevModeEngine(kube, ns, "tunnel@test", state_dir=state)
    session = "t" + uuid.uuid4().hex[:11]
    result = engine.start(parse_workload_ref("deployment/web"), DevSpec(image=DEV_IMAGE, container="app"),
                          mode="replace", session_id=session, timeout=90)
    handle = DevPod(resolve_target(kubeconfig, "nhdev-sandbox", ns), kube, ns, session, result.dev_container,
                    state / session)
    handle.start_server()
    yield handle
    engine.end(parse_workload_ref("deployment/web"))
    kube.delete(kind_named("namespace"), None, ns)


@pytest.fixture()
def tunnel(dev: DevPod) -> Iterator[Tunnel]:
    handle = dev.tunnel().start()
    assert handle.wait_connected(20), handle.state
    yield handle
    handle.stop()


def get(port: int, path: str = "/", timeout: float = 15.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(262144):
            data += chunk
    return data


def test_http_through_a_local_forward_and_100_concurrent_connections(tunnel: Tunnel, dev: DevPod) -> None:
    dev.sh(f"echo hello-tunnel > {WORKDIR}/hello.txt")
    local = tunnel.forward_local(8080, 0)
    assert get(local, "/hello.txt").endswith(b"hello-tunnel\n")

    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(get(local, "/hello.txt"))) for _ in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 100 and all(r.endswith(b"hello-tunnel\n") for r in results)
    assert tunnel.forwards()[0].total == 101


def test_200_mb_arrive_intact(tunnel: Tunnel, dev: DevPod) -> None:
    digest = dev.sh(f"head -c {BLOB_BYTES} /dev/urandom > {WORKDIR}/blob && sha256sum {WORKDIR}/blob").split()[0]
    local = tunnel.forward_local(8080, 0)
    hasher, size = hashlib.sha256(), 0
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", local), timeout=30) as sock:
        sock.sendall(b"GET /blob HTTP/1.0\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        head, body = head.split(b"\r\n\r\n", 1)
        hasher.update(body)
        size += len(body)
        while chunk := sock.recv(1 << 20):
            hasher.update(chunk)
            size += len(chunk)
    seconds = time.monotonic() - began
    dev.sh(f"rm -f {WORKDIR}/blob")
    assert (size, hasher.hexdigest()) == (BLOB_BYTES, digest)
    print(f"200 MB through the tunnel in {seconds:.1f}s ({BLOB_BYTES / seconds / 1e6:.0f} MB/s)")


def test_a_process_in_the_pod_reaches_a_local_server(tunnel: Tunnel, dev: DevPod) -> None:
    server = http_server()
    remote = tunnel.forward_reverse(19090, server.server_address[1])
    assert remote == 19090
    out = dev.sh("python3 -c \"import urllib.request; "
                 "print(urllib.request.urlopen('http://127.0.0.1:19090/from-pod', timeout=10).read().decode())\"")
    assert out.strip() == f"hello from {server.server_address[1]} /from-pod"


def test_forwards_recover_from_a_killed_stream_sidecar_and_pod(dev: DevPod) -> None:
    tunnel = dev.tunnel().start()
    try:
        assert tunnel.wait_connected(20)
        local = tunnel.forward_local(8080, 0)
        dev.sh(f"echo alive > {WORKDIR}/alive.txt")
        assert get(local, "/alive.txt").endswith(b"alive\n")

        # 1. the port-forward stream dies: close the socket under the SSH connection
        generation = tunnel.generation
        tunnel.transport().sock.sock.close()  # type: ignore[attr-defined]
        assert_recovers(tunnel, local, generation, within=5)

        # 2. the sidecar process dies (SIGKILL; under bwrap it is not PID 1 of its PID namespace,
        # so it is found by name); its container exits and the kubelet restarts it
        generation = tunnel.generation
        dev.sh(KILL_SIDECAR, container=names.SIDECAR_CONTAINER)
        assert_recovers(tunnel, local, generation, within=20)

        # 3. the pod is deleted: the Deployment makes a new one, the tunnel finds it by its label
        generation = tunnel.generation
        old = dev.pod()
        dev.kube.delete(kind_named("pod"), dev.namespace, old)
        wait_until(lambda: _new_ready_pod(dev, old), 60)
        dev.start_server()
        dev.sh(f"echo alive > {WORKDIR}/alive.txt")
        assert_recovers(tunnel, local, generation, within=20)
    finally:
        tunnel.stop()


def _new_ready_pod(dev: DevPod, old: str) -> bool:
    try:
        return dev.pod() != old
    except OSError:
        return False


def assert_recovers(tunnel: Tunnel, local: int, generation: int, *, within: float) -> None:
    """The same local port answers again within ``within`` seconds; no request hangs meanwhile."""
    began = time.monotonic()
    while True:
        try:
            if get(local, "/alive.txt", timeout=10).endswith(b"alive\n") and tunnel.generation > generation:
                break
        except OSError:
            pass
        assert time.monotonic() - began < within, f"not recovered within {within}s: {tunnel.state}"
        time.sleep(0.1)
    print(f"recovered in {time.monotonic() - began:.1f}s")


def wait_until(condition: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
