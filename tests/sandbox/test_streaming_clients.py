"""pods/exec, portforward, attach and log against the official Python client and kubectl."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward, stream

from tests.sandbox.kubelet_fixtures import LocalSandbox, local_sandbox  # noqa: F401 - the fixture

WEB_POD = {
    "metadata": {"name": "web"},
    "spec": {"containers": [
        {"name": "web", "image": "python:3.12", "workingDir": "/srv",
         "command": ["sh", "-c", "echo hello > /srv/index.html; echo started; "
                     "exec python3 -m http.server 8080 --bind 127.0.0.1 --directory /srv"],
         "env": [{"name": "GREETING", "value": "hi"}],
         "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1},
         "volumeMounts": [{"name": "srv", "mountPath": "/srv"}]},
        {"name": "side", "image": "busybox",
         "command": ["sh", "-c", "for i in 1 2 3; do echo line $i; echo err $i >&2; done; exec sleep 3600"]},
    ], "volumes": [{"name": "srv", "emptyDir": {}}]},
}


@pytest.fixture(scope="module")
def web(local_sandbox: LocalSandbox) -> str:  # noqa: F811
    local_sandbox.create_pod(WEB_POD)
    local_sandbox.wait_ready("web")
    return "web"


@pytest.fixture
def core(local_sandbox: LocalSandbox) -> client.CoreV1Api:  # noqa: F811
    return client.CoreV1Api(local_sandbox.api_client())  # a dedicated ApiClient per stream call


def test_exec_preloaded_output_and_env(core: client.CoreV1Api, web: str) -> None:
    out = stream(core.connect_get_namespaced_pod_exec, web, "default", container="web",
                 command=["sh", "-c", "echo $GREETING; pwd; hostname; echo err >&2"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert sorted(out.split()) == sorted(["hi", "/srv", "web", "err"])


def test_exec_interactive_stdin_close_and_exit_code(core: client.CoreV1Api, web: str) -> None:
    ws = stream(core.connect_get_namespaced_pod_exec, web, "default", container="web",
                command=["sh", "-c", "cat; exit 3"], stderr=True, stdin=True, stdout=True, tty=False,
                _preload_content=False)
    ws.write_stdin("via stdin\n")
    ws.close_channel(0)  # v5: stdin EOF
    ws.run_forever(timeout=10)
    assert ws.read_stdout() == "via stdin\n"
    assert ws.returncode == 3
    ws.close()


def test_exec_tty_and_resize(core: client.CoreV1Api, web: str) -> None:
    ws = stream(core.connect_get_namespaced_pod_exec, web, "default", container="web",
                command=["sh", "-c", "read line; stty size; echo got $line"], stderr=True, stdin=True,
                stdout=True, tty=True, _preload_content=False)
    ws.write_channel(4, json.dumps({"Width": 91, "Height": 27}))
    time.sleep(0.2)
    ws.write_stdin("abc\n")
    ws.run_forever(timeout=10)
    output = ws.read_stdout()
    assert "27 91" in output and "got abc" in output
    assert ws.returncode == 0


def test_exec_errors(core: client.CoreV1Api, web: str) -> None:
    with pytest.raises(ApiException):
        stream(core.connect_get_namespaced_pod_exec, web, "default", container="nope", command=["true"],
               stderr=True, stdin=False, stdout=True, tty=False)
    ws = stream(core.connect_get_namespaced_pod_exec, web, "default", container="web",
                command=["no-such-binary-nhdev"], stderr=True, stdin=False, stdout=True, tty=False,
                _preload_content=False)
    ws.run_forever(timeout=10)
    assert ws.returncode == 127
    assert "no-such-binary-nhdev" in ws.read_stderr()


def test_exec_default_container_is_the_first(core: client.CoreV1Api, web: str) -> None:
    out = stream(core.connect_get_namespaced_pod_exec, web, "default", command=["sh", "-c", "echo $GREETING"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out.strip() == "hi"


def test_portforward_reaches_the_pod_and_reports_closed_ports(core: client.CoreV1Api, web: str) -> None:
    pf = portforward(core.connect_get_namespaced_pod_portforward, web, "default", ports="8080,8081")
    sock = pf.socket(8080)
    sock.setblocking(True)
    sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    assert data.startswith(b"HTTP/1.0 200") and data.endswith(b"hello\n")
    deadline = time.monotonic() + 5
    while pf.error(8081) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "connection refused" in (pf.error(8081) or "")
    pf.close()


def test_port_8080_is_not_on_the_host(web: str) -> None:
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", 8080), timeout=1).close()


def test_logs_container_choice_tail_timestamps_and_previous(local_sandbox: LocalSandbox,  # noqa: F811
                                                           web: str) -> None:
    base = f"{local_sandbox.url}/api/v1/namespaces/default/pods/web/log"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base)
    assert refused.value.code == 400
    assert "a container name must be specified" in json.loads(refused.value.read())["message"]
    core = client.CoreV1Api(local_sandbox.api_client())
    text = core.read_namespaced_pod_log("web", "default", container="side")
    assert "line 1\n" in text and "err 3\n" in text
    assert core.read_namespaced_pod_log("web", "default", container="side", tail_lines=2).count("\n") == 2
    stamped = core.read_namespaced_pod_log("web", "default", container="side", timestamps=True)
    assert stamped.splitlines()[0].split(" ", 1)[0].endswith("Z")
    with pytest.raises(ApiException) as previous:
        core.read_namespaced_pod_log("web", "default", container="side", previous=True)
    assert previous.value.status == 400


def test_log_follow_streams_until_the_container_ends(local_sandbox: LocalSandbox) -> None:  # noqa: F811
    local_sandbox.create_pod({"metadata": {"name": "ticker"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": "t", "image": "busybox", "command": ["sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.3; done"]},
    ]}})
    local_sandbox.wait_pod("ticker", lambda p: p["status"].get("phase") in ("Running", "Succeeded"))
    started = time.monotonic()
    with urllib.request.urlopen(f"{local_sandbox.url}/api/v1/namespaces/default/pods/ticker/log?follow=true",
                                timeout=10) as response:
        body = response.read().decode()
    assert body == "tick 1\ntick 2\ntick 3\n"
    assert time.monotonic() - started < 5


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")
def test_kubectl_exec_exit_code_and_stdin(local_sandbox: LocalSandbox, web: str, tmp_path: Path) -> None:  # noqa: F811
    assert KUBECTL is not None
    config = local_sandbox.kubeconfig(tmp_path / "kubeconfig")
    base = [KUBECTL, "--kubeconfig", str(config)]
    failed = subprocess.run([*base, "exec", web, "-c", "web", "--", "sh", "-c", "exit 4"],
                            capture_output=True, text=True, timeout=30)
    assert failed.returncode == 4, failed.stderr
    echoed = subprocess.run([*base, "exec", "-i", web, "-c", "web", "--", "cat"], input="via kubectl\n",
                            capture_output=True, text=True, timeout=30)
    assert echoed.stdout == "via kubectl\n", echoed.stderr
    logs = subprocess.run([*base, "logs", web, "-c", "side", "--tail=1"], capture_output=True, text=True, timeout=30)
    assert logs.stdout in ("line 3\n", "err 3\n"), logs.stderr
