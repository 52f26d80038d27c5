"""The whole dev loop through the real CLI, on the sandbox's podman runtime, with the images
``make images`` built: the examples' Python app (``examples/python-http``, its own dev config
plus ``sidecarImage``) as a user develops it.

``nhdev dev start`` replaces the app with the dev image (``ghcr.io/nhdev/dev-python:3.12``) and
nhdev's sidecar image and spawns the session; then, in that order:

- **non-root**: both containers are real podman containers of those images, running as uid 1000;
- **sync**: the session's SyncEngine puts the project into the dev container (owned by uid 1000);
- **terminal**: ``nhdev dev terminal`` in a pty: the dev image's bash in the workDir, exit code;
- **run + hot reload + port forward**: ``nhdev dev run``; the app answers on the session's
  forwarded port; a local edit of the greeting is synced, the app restarts and serves it;
- **debug attach**: ``nhdev dev debug -o json``; a DAP client attaches to debugpy in the dev
  image through the tunnel, a breakpoint set by the local path stops a request;
- **end restores**: ``nhdev dev end``; the original pod serves the original text again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from kubernetes import client

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.cluster.waiting import wait_for_ready_pod
from nhdev.devmode import names
from nhdev.sandbox import lifecycle
from tests.containers.devmode_support import (
    EXAMPLE,
    Cli,
    deploy_example,
    example_objects,
    exec_output,
    forwarded_port,
    http_get_through_port_forward,
    http_text,
    namespace_named,
    pod_containers,
    project_from_example,
)
from tests.containers.podman_support import BASE_IMAGE, CONTEXT, DEV_PYTHON_IMAGE, SIDECAR_IMAGE
from tests.dapclient import DapClient, InBackground
from tests.sandbox.contract import wait_for

ORIGINAL = "Hello from nhdev's Python example"
EDITED = "Hi from the podman sandbox"
BREAK_LINE = next(i for i, line in enumerate((EXAMPLE / "app.py").read_text().splitlines(), 1)
                  if line.strip().startswith("body = "))


@pytest.fixture
def namespace(podman_sandbox: lifecycle.ServerRecord) -> Iterator[str]:
    with namespace_named(podman_sandbox.kubeconfig, "cli") as name:
        yield name


def test_the_dev_loop_through_the_cli_on_real_containers(podman_sandbox: lifecycle.ServerRecord, namespace: str,
                                                         tmp_path: Path) -> None:
    kubeconfig = podman_sandbox.kubeconfig
    kube = KubeRest(api_client(resolve_target(kubeconfig, CONTEXT)))
    core = client.CoreV1Api(api_client(resolve_target(kubeconfig, CONTEXT)))
    deploy_example(kube, namespace, example_objects())
    original_template = copy.deepcopy(kube.get(kind_named("deployment"), namespace, "greeter")["spec"]["template"])
    project = project_from_example(tmp_path)
    cli = Cli(project, tmp_path / "home", kubeconfig, namespace)
    timings: dict[str, float] = {}
    began = time.monotonic()

    started = cli.run("dev", "start", "-o", "json")
    assert started.returncode == 0, started.stderr
    timings["start"] = time.monotonic() - began
    result = json.loads(started.stdout)
    port = forwarded_port(result, 8080)
    pod = kube.get(kind_named("pod"), namespace, result["pod"])
    try:
        # Non-root, in real containers of the built images.
        assert pod_containers(pod["metadata"]["uid"]) == {"greeter": DEV_PYTHON_IMAGE,
                                                          names.SIDECAR_CONTAINER: SIDECAR_IMAGE}
        uid_of_init = "awk '/^Uid:/ { print $2 }' /proc/1/status"
        sidecar = exec_output(core, namespace, result["pod"], names.SIDECAR_CONTAINER, f"id -u; {uid_of_init}")
        assert sidecar.split() == ["1000", "1000"]

        # Sync: the project is in the dev container, the app's user owns it.
        cli.wait_for_initial_sync()
        timings["synced"] = time.monotonic() - began
        dev = cli.exec_out(f"id -u; {uid_of_init}; stat -c '%u %n' app.py; sha256sum app.py").split()
        assert dev[:4] == ["1000", "1000", "1000", "app.py"]
        assert dev[4] == hashlib.sha256((project / "app.py").read_bytes()).hexdigest()

        # Terminal: the dev image's bash in the workDir, in a pty, its exit code comes back.
        shell = pexpect.spawn(cli.argv("dev", "terminal")[0], cli.argv("dev", "terminal")[1:], cwd=str(project),
                              env=cli.env(TERM="xterm"), dimensions=(24, 80), timeout=30)
        shell.expect(r"[#$] ")
        shell.sendline("echo \"$(id -un) $(pwd) $0\"; stty size")
        shell.expect(r"nhdev-dev /home/nhdev-dev (\S*bash)\r\n24 80\r\n")
        shell.sendline("exit 3")
        shell.expect(pexpect.EOF)
        shell.close()
        assert shell.exitstatus == 3
        timings["terminal"] = time.monotonic() - began

        # Run through the session, served on the forwarded port; hot reload on a local edit.
        run_output = tmp_path / "dev-run.log"
        run = cli.popen("dev", "run", output=run_output)
        try:
            assert wait_for("the app through the forward", lambda: ORIGINAL in (http_text(port) or ""), timeout=60)
            (project / "app.py").write_text((project / "app.py").read_text().replace(ORIGINAL, EDITED))
            assert wait_for("the edit served after hot reload", lambda: EDITED in (http_text(port) or ""),
                            timeout=60)
            assert EDITED in cli.exec_out("grep GREETING app.py")
            assert cli.session("status")["status"]["services"]["run"]["hotReload"]["restarts"] >= 1
            run.send_signal(signal.SIGINT)
            try:
                code = run.wait(timeout=60)
            except subprocess.TimeoutExpired:
                code = None
            assert code == 130, f"{run_output.read_text()}\n--- session log ---\n{cli.session_log()}"
            assert wait_for("the app stopped", lambda: http_text(port) is None, timeout=20)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
        timings["hot reload"] = time.monotonic() - began

        # Debug: debugpy in the dev image, a DAP client attached through the tunnel.
        debugged = cli.run("dev", "debug", "-o", "json", timeout=120)
        assert debugged.returncode == 0, debugged.stderr
        info = json.loads(debugged.stdout.strip().splitlines()[-1])
        assert info["language"] == "python" and info["host"] == "127.0.0.1"
        assert info["pathMappings"] == [{"localRoot": str(project), "remoteRoot": "/home/nhdev-dev"}]
        ide = DapClient("127.0.0.1", info["port"], timeout=30)
        try:
            local_source = str(project / "app.py")
            ide.attach("test", "debugpy", local_source, BREAK_LINE, pathMappings=info["pathMappings"],
                       justMyCode=False)
            # One request that waits as long as the breakpoint holds it (a refused one is retried).
            request = InBackground(lambda: wait_for("the debugged app", lambda: http_text(port, timeout=60),
                                                    timeout=60))
            thread_id, frame = ide.breakpoint_hit()
            assert (frame["source"]["path"], frame["line"]) == (local_source, BREAK_LINE)
            ide.request("continue", threadId=thread_id)
            answer = request.result(30)
            assert answer and EDITED in answer
        finally:
            ide.close()
        timings["debug"] = time.monotonic() - began
    finally:
        ended = cli.run("dev", "end")
    assert ended.returncode == 0, ended.stderr

    # End restores the original, which serves the original text again; the dev pod's containers are gone.
    restored = wait_for_ready_pod(kube, namespace, "app=greeter", timeout=120)
    assert [(c["name"], c["image"]) for c in restored["spec"]["containers"]] == [("greeter", BASE_IMAGE)]
    assert kube.get(kind_named("deployment"), namespace, "greeter")["spec"]["template"] == original_template
    assert ORIGINAL.encode() in http_get_through_port_forward(core, namespace, restored["metadata"]["name"], 8080)
    assert wait_for("the dev pod's containers gone", lambda: not pod_containers(pod["metadata"]["uid"]), timeout=30)
    timings["end"] = time.monotonic() - began
    print("dev loop timings (s since start):", {k: round(v, 1) for k, v in timings.items()})
