"""`nhdev port-forward` on the sandbox: any pod, no dev mode, one stream per connection, 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from tests.e2e.workspace import HTTP_SERVER, web_namespace

pytestmark = pytest.mark.timeout(120)

NHDEV = str(Path(sys.executable).parent / "nhdev")


@pytest.fixture()
def namespace(kubeconfig: Path) -> Iterator[str]:
    with web_namespace(kubeconfig, "pf", command=HTTP_SERVER, probe_port=8080, wait_ready=True) as ns:
        yield ns


def get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("workload", ["deployment/web", "web", "pod"])
def test_port_forward_to_a_workload_or_pod(workload: str, namespace: str, kubeconfig: Path) -> None:
    if workload == "pod":
        kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
        workload = "pod/" + kube.list(kind_named("pod"), namespace, label_selector="app=web")[0]["metadata"]["name"]
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    process = subprocess.Popen([NHDEV, "port-forward", workload, ":8080", "-n", namespace, "-o", "json"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        shown = json.loads(process.stdout.readline())
        host, port = shown["forwards"][0]["local"].rsplit(":", 1)
        assert host == "127.0.0.1"
        assert get(int(port)).startswith(b"HTTP/1.0 200")
        results: list[bytes] = []
        threads = [threading.Thread(target=lambda: results.append(get(int(port)))) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 20 and all(r.startswith(b"HTTP/1.0 200") for r in results)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0


def test_bad_arguments_are_usage_errors(namespace: str, kubeconfig: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    reverse = subprocess.run([NHDEV, "port-forward", "web", "R:1:2", "-n", namespace], env=env,
                             capture_output=True, text=True, timeout=30)
    assert reverse.returncode == 2 and "reverse forwards need a dev session" in reverse.stderr
    missing = subprocess.run([NHDEV, "port-forward", "deployment/nope", "8080", "-n", namespace], env=env,
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
