"""Tunnel benchmark: bulk throughput and new-connection latency through three paths, in one run.

Run: ``.venv/bin/python bench/tunnel_bench.py [--mb 200] [--requests 300]``. Starts its own sandbox
in a temp state dir (runtime bwrap), puts a Deployment into dev mode, starts an HTTP server in the
dev container, and measures through:

(a) a direct loopback socket to the same server program running on this machine (the floor);
(b) a plain kube port-forward stream per connection (what kubectl and Nocalhost do);
(c) nhdev's tunnel (one SSH connection over one stream; a channel per connection).

Prints bulk MB/s on one connection and p50/p99 of small HTTP requests each on a new connection,
and the ratios the issue sets as goals: tunnel latency below (b) at p50 and p99; tunnel
throughput at least 70% of (b).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from kubernetes import client
from kubernetes.stream import stream

from nhdev.cluster.kubeconfig import ClusterTarget, api_client, resolve_target
from nhdev.cluster.portforward import PortForwardListener, open_pod_port
from nhdev.cluster.rest import KubeRest
from nhdev.devmode import names
from nhdev.devmode.engine import DevModeEngine, parse_workload_ref
from nhdev.devmode.plan import DevSpec
from nhdev.sandbox import lifecycle
from nhdev.tunnel import Tunnel

DEV_IMAGE = "ghcr.io/nhdev/dev-python:3.12"
WORKDIR = "/home/nhdev-dev"
PORT = 8080
SERVER = """
import http.server, os, sys
os.chdir(sys.argv[2])
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 512
    daemon_threads = True
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def log_message(self, *a): pass
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def fetch(port: int, path: str) -> int:
    """GET ``path`` on a new connection; the body size."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        size = 0
        while chunk := sock.recv(1 << 20):
            size += len(chunk)
    return size


def throughput(port: int, megabytes: int) -> float:
    began = time.perf_counter()
    size = fetch(port, "/blob")
    seconds = time.perf_counter() - began
    assert size > megabytes * 1024 * 1024, f"short read: {size}"
    return size / seconds / 1e6


def latencies(port: int, requests: int) -> list[float]:
    for _ in range(5):
        fetch(port, "/small")  # warm up
    out = []
    for _ in range(requests):
        began = time.perf_counter()
        fetch(port, "/small")
        out.append(time.perf_counter() - began)
    return out


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def sh(target: ClusterTarget, namespace: str, pod: str, container: str, script: str) -> str:
    core = client.CoreV1Api(api_client(target))
    return str(stream(core.connect_get_namespaced_pod_exec, pod, namespace, container=container,
                      command=["sh", "-c", script], stdout=True, stderr=True, stdin=False, tty=False))


def start_pod_server(target: ClusterTarget, ns: str, pod: str, container: str, megabytes: int) -> None:
    sh(target, ns, pod, container,
       f"head -c {megabytes * 1024 * 1024} /dev/urandom > {WORKDIR}/blob; echo ok > {WORKDIR}/small; "
       f"cat > /tmp/serve.py <<'EOF'\n{SERVER}\nEOF\n"
       f"setsid nohup python3 /tmp/serve.py {PORT} {WORKDIR} >/tmp/serve.log 2>&1 </dev/null &")
    deadline = time.monotonic() + 20
    probe = f"python3 -c \"import socket; socket.create_connection(('127.0.0.1', {PORT}))\" 2>/dev/null && echo up"
    while "up" not in sh(target, ns, pod, container, probe + " || true"):
        if time.monotonic() > deadline:
            raise SystemExit("the server in the pod did not start")
        time.sleep(0.2)


def start_local_server(root: Path, megabytes: int) -> tuple[subprocess.Popen[bytes], int]:
    (root / "blob").write_bytes(os.urandom(megabytes * 1024 * 1024))
    (root / "small").write_text("ok\n")
    (root / "serve.py").write_text(SERVER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen([sys.executable, str(root / "serve.py"), str(port), str(root)])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def report(rows: dict[str, tuple[float, list[float]]]) -> None:
    print(f"\n{'path':<34}{'bulk MB/s':>11}{'p50 ms':>10}{'p99 ms':>10}")
    for name, (mbps, lat) in rows.items():
        print(f"{name:<34}{mbps:>11.0f}{pct(lat, 0.5):>10.2f}{pct(lat, 0.99):>10.2f}")
    (_, direct_lat), (kube_mbps, kube_lat), (tun_mbps, tun_lat) = rows.values()
    print("\nratios")
    print(f"  tunnel / kube stream, bulk throughput: {tun_mbps / kube_mbps:5.2f}  (goal >= 0.70)")
    print(f"  tunnel / kube stream, p50 latency:     {pct(tun_lat, .5) / pct(kube_lat, .5):5.2f}  (goal < 1)")
    print(f"  tunnel / kube stream, p99 latency:     {pct(tun_lat, .99) / pct(kube_lat, .99):5.2f}  (goal < 1)")
    print(f"  tunnel / direct loopback, p50 latency: {pct(tun_lat, .5) / pct(direct_lat, .5):5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200, help="bulk transfer size")
    parser.add_argument("--requests", type=int, default=300, help="small requests per path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nhdev-tunnel-bench-") as tmp:
        state = Path(tmp) / "sandbox"
        rec, _ = lifecycle.start(state, runtime="bwrap")
        local_server: subprocess.Popen[bytes] | None = None
        try:
            target = resolve_target(rec.kubeconfig, "nhdev-sandbox", "default")
            kube = KubeRest(api_client(target))
            ns = f"bench-{uuid.uuid4().hex[:6]}"
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
            target = resolve_target(rec.kubeconfig, "nhdev-sandbox", ns)
            kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
                         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                                      {"name": "app", "image": "python:3.12", "command": ["sleep", "infinity"]}]}}}})
            keys = Path(tmp) / "keys"
            session = "b" + uuid.uuid4().hex[:11]
            result = DevModeEngine(kube, ns, "bench@local", state_dir=keys).start(
                parse_workload_ref("deployment/web"), DevSpec(image=DEV_IMAGE, container="app"), mode="replace",
                session_id=session, timeout=120)
            pod, container = result.pod, result.dev_container
            start_pod_server(target, ns, pod, container, args.mb)
            local_root = Path(tmp) / "local"
            local_root.mkdir()
            local_server, direct_port = start_local_server(local_root, args.mb)

            listener = PortForwardListener(target, ns, lambda: pod, PORT).start()
            tunnel = Tunnel(lambda: open_pod_port(target, ns, pod, names.SIDECAR_PORT),
                            keys / session / "client_key", (keys / session / "host_key.pub").read_text().strip())
            tunnel.start()
            if not tunnel.wait_connected(30):
                raise SystemExit(f"tunnel did not connect: {tunnel.state}")
            tunnel_port = tunnel.forward_local(PORT)
            print(f"sandbox {rec.url}, pod {pod}; {args.mb} MB bulk, {args.requests} requests per path")
            rows = {}
            for name, port in (("(a) direct loopback", direct_port),
                               ("(b) kube stream per connection", listener.local_port),
                               ("(c) nhdev tunnel", tunnel_port)):
                rows[name] = (statistics.median(throughput(port, args.mb) for _ in range(3)),
                              latencies(port, args.requests))
            report(rows)
            tunnel.stop()
            listener.stop()
        finally:
            if local_server is not None:
                local_server.terminate()
                local_server.wait()
            lifecycle.stop(state)


if __name__ == "__main__":
    main()
