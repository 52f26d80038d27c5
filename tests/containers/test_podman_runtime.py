"""The podman runtime against real podman: pods with a shared loopback, exec, port connections,
stop with grace, start errors, clean removal. Runs under ``make test-containers``."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nhdev.sandbox.runtime import ContainerConfig, ContainerStartError, Mount, PodSandbox
from nhdev.sandbox.runtime.podman import PodmanRuntime, pod_name
from tests.containers.podman_support import DEV_PYTHON_IMAGE, podman, require_containers

IDLE = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]


@pytest.fixture(autouse=True)
def _containers() -> None:
    require_containers()


@pytest.fixture
def pod_uid() -> Iterator[str]:
    uid = f"test-{uuid.uuid4()}"
    yield uid
    podman("pod", "rm", "--force", "--time", "0", pod_name(uid), check=False)


def dev_container(name: str, argv: list[str], **changes: object) -> ContainerConfig:
    values: dict[str, object] = {"name": name, "argv": argv, "env": {"HOME": "/root"}, "image": DEV_PYTHON_IMAGE}
    values.update(changes)
    return ContainerConfig(**values)  # type: ignore[arg-type]


async def output_of(runtime: PodmanRuntime, sandbox: PodSandbox, container: object, argv: list[str]) -> str:
    from nhdev.sandbox.runtime import ContainerProcess

    assert isinstance(container, ContainerProcess)
    running = await runtime.exec(sandbox, container, argv, tty=False, stdin=False)
    assert running.process.stdout is not None
    out = await running.process.stdout.read()
    assert await running.wait() == 0, out
    return out.decode()


def test_a_pod_shares_loopback_and_files_and_runs_as_the_images_user(pod_uid: str, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    (shared / "index.html").write_text("served from a volume\n")

    async def scenario() -> None:
        runtime = PodmanRuntime()
        sandbox = await runtime.create_sandbox(pod_uid, "web-0")
        try:
            mount = Mount(shared, "/srv")
            server = await runtime.start_container(sandbox, dev_container(
                "server", ["python3", "-m", "http.server", "8080"], working_dir="/srv", mounts=[mount]))
            idle = await runtime.start_container(sandbox, dev_container("idle", IDLE, mounts=[mount]))
            identity = await output_of(runtime, sandbox, idle, ["sh", "-c", "id -u; echo $HOME; hostname"])
            assert identity.split() == ["1000", "/home/nhdev-dev", "web-0"]
            for _ in range(50):  # the server container binds its port a moment after it starts
                try:
                    sock = await runtime.open_connection(sandbox, 8080, timeout=2.0)
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            sock.setblocking(True)
            sock.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
            sock.close()
            assert reply.endswith(b"served from a volume\n")
            across = await output_of(runtime, sandbox, idle, ["curl", "-s", "http://127.0.0.1:8080/index.html"])
            assert across == "served from a volume\n"  # one loopback for the pod's containers
            links = await output_of(runtime, sandbox, idle, ["cat", "/proc/net/dev"])
            assert [line.split(":")[0].strip() for line in links.splitlines()[2:]] == ["lo"]
            await output_of(runtime, sandbox, idle, ["sh", "-c", "echo from-idle > /srv/written"])
            assert (shared / "written").read_text() == "from-idle\n"
            assert (shared / "written").stat().st_uid == 1000

            assert await idle.stop(grace_seconds=10) == 0  # the trap answers TERM at once
            began = time.monotonic()
            assert await server.stop(grace_seconds=20) == 143  # the init passes TERM on to python
            assert time.monotonic() - began < 5
        finally:
            await runtime.remove_sandbox(sandbox)
        assert podman("pod", "exists", pod_name(pod_uid), check=False).returncode == 1

    asyncio.run(scenario())


def test_logs_and_exit_code_come_from_the_run(pod_uid: str) -> None:
    async def scenario() -> tuple[bytes, bytes, int]:
        runtime = PodmanRuntime()
        sandbox = await runtime.create_sandbox(pod_uid, "job")
        try:
            container = await runtime.start_container(sandbox, dev_container(
                "job", ["sh", "-c", "echo out; echo err >&2; exit 3"]))
            assert container.process.stdout is not None and container.process.stderr is not None
            out, err = await asyncio.gather(container.process.stdout.read(), container.process.stderr.read())
            return out, err, await container.wait()
        finally:
            await runtime.remove_sandbox(sandbox)

    out, err, code = asyncio.run(scenario())
    assert (out, err, code) == (b"out\n", b"err\n", 3)


def test_a_missing_executable_is_a_start_error(pod_uid: str) -> None:
    async def scenario() -> None:
        runtime = PodmanRuntime()
        sandbox = await runtime.create_sandbox(pod_uid, "broken")
        try:
            with pytest.raises(ContainerStartError, match="no-such-program"):
                await runtime.start_container(sandbox, dev_container("broken", ["no-such-program"]))
        finally:
            await runtime.remove_sandbox(sandbox)

    asyncio.run(scenario())


def test_exec_with_a_terminal(pod_uid: str) -> None:
    async def scenario() -> bytes:
        runtime = PodmanRuntime()
        sandbox = await runtime.create_sandbox(pod_uid, "tty")
        try:
            container = await runtime.start_container(sandbox, dev_container("shell", IDLE))
            running = await runtime.exec(sandbox, container, ["sh", "-c", "test -t 0 && tty"], tty=True, stdin=True)
            assert running.pty_master is not None
            code = await running.wait()
            output = b""
            while True:
                try:
                    chunk = os.read(running.pty_master, 4096)
                except (BlockingIOError, OSError):
                    break
                if not chunk:
                    break
                output += chunk
            running.close()
            assert code == 0, output
            await container.stop(grace_seconds=5)
            return output
        finally:
            await runtime.remove_sandbox(sandbox)

    assert b"/dev/pts/" in asyncio.run(scenario())
