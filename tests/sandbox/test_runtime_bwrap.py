"""The bwrap runtime on its own: namespaces, volumes, exec, signals, and no leftover processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from nhdev.sandbox.runtime import ContainerConfig, ContainerProcess, ContainerStartError, Mount, bwrap_available
from nhdev.sandbox.runtime.bwrap import BwrapRuntime, filesystem_args
from tests.sandbox.contract import alive

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap/nsenter not installed")

HTTP_SERVER = "python3 -m http.server 8080 --bind 127.0.0.1 --directory {d}"


def run(main: Callable[[BwrapRuntime], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(BwrapRuntime()), 30))


async def output_of(container: ContainerProcess) -> str:
    assert container.process.stdout is not None
    out = await container.process.stdout.read()
    await container.wait()
    return out.decode()


async def http_get(runtime: BwrapRuntime, sandbox_: object, port: int) -> bytes:
    for _ in range(100):
        try:
            sock = await runtime.open_connection(sandbox_, port)  # type: ignore[arg-type]
            break
        except ConnectionRefusedError:
            await asyncio.sleep(0.05)
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(b"GET /name HTTP/1.0\r\n\r\n")
    body = await reader.read()
    writer.close()
    return body


def test_two_containers_of_a_pod_share_an_empty_dir_and_hostname(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()

    async def main(rt: BwrapRuntime) -> None:
        pod = await rt.create_sandbox("uid-1", "pod-a")
        try:
            mounts = [Mount(shared, "/shared")]
            writer = await rt.start_container(pod, ContainerConfig(
                "w", ["sh", "-c", "echo hi > /shared/f"], {}, mounts=mounts))
            assert await writer.wait() == 0
            reader = await rt.start_container(pod, ContainerConfig(
                "r", ["sh", "-c", "cat /shared/f; hostname; echo $$"], {}, mounts=mounts))
            assert (await output_of(reader)).split() == ["hi", "pod-a", "2"]
        finally:
            await rt.remove_sandbox(pod)

    run(main)
    assert (shared / "f").read_text() == "hi\n"


def test_two_pods_listen_on_the_same_port(tmp_path: Path) -> None:
    async def main(rt: BwrapRuntime) -> None:
        pods, servers = [], []
        for name in ("one", "two"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "name").write_text(name)
            pod = await rt.create_sandbox(name, name)
            pods.append(pod)
            servers.append(await rt.start_container(pod, ContainerConfig(
                "web", ["sh", "-c", HTTP_SERVER.format(d="/srv")], {},
                mounts=[Mount(tmp_path / name, "/srv")])))
        try:
            assert (await http_get(rt, pods[0], 8080)).endswith(b"one")
            assert (await http_get(rt, pods[1], 8080)).endswith(b"two")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", 8080), timeout=1)
            with pytest.raises(ConnectionRefusedError):
                await rt.open_connection(pods[0], 8081)
        finally:
            for server in servers:
                await server.stop(1)
            for pod in pods:
                await rt.remove_sandbox(pod)

    run(main)


def test_missing_mount_points_and_working_dir_do_not_touch_the_host(tmp_path: Path) -> None:
    volume = tmp_path / "vol"
    volume.mkdir()
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    (config_dir / "app.conf").write_text("conf")

    async def main(rt: BwrapRuntime) -> None:
        pod = await rt.create_sandbox("uid-m", "m")
        try:
            c = await rt.start_container(pod, ContainerConfig(
                "c", ["sh", "-c", "pwd; cat /etc/nhdev-test-cfg/app.conf; echo; ls /nhdev-test-root/a;"
                      "echo x > /etc/nhdev-test-cfg/w || echo ro; touch /usr/nope 2>/dev/null || echo usr-ro"],
                {}, working_dir="/nhdev-test-root/a/work",
                mounts=[Mount(volume, "/nhdev-test-root/a"),
                        Mount(config_dir, "/etc/nhdev-test-cfg", read_only=True)]))
            assert (await output_of(c)).split() == [
                "/nhdev-test-root/a/work", "conf", "work", "ro", "usr-ro"]
        finally:
            await rt.remove_sandbox(pod)

    run(main)
    assert (volume / "work").is_dir(), "a workingDir inside a volume is created in the volume"
    assert not os.path.exists("/nhdev-test-root") and not os.path.exists("/etc/nhdev-test-cfg")


def test_working_dir_outside_volumes_is_created_in_the_container_only() -> None:
    async def main(rt: BwrapRuntime) -> None:
        pod = await rt.create_sandbox("uid-w", "w")
        try:
            c = await rt.start_container(pod, ContainerConfig(
                "c", ["pwd"], {}, working_dir="/opt/nhdev-test-wd/x"))
            assert (await output_of(c)).strip() == "/opt/nhdev-test-wd/x"
        finally:
            await rt.remove_sandbox(pod)

    run(main)
    assert not os.path.exists("/opt/nhdev-test-wd")


def test_filesystem_args_explode_only_what_is_needed() -> None:
    args = filesystem_args([Mount(Path("/x"), "/etc/nhdev-missing/conf")], ["/tmp/wd"])
    assert args[:6] == ["--ro-bind", "/", "/", "--tmpfs", "/etc", "--chmod"]
    assert args[args.index("/etc/passwd") - 1:][:3] == ["--ro-bind", "/etc/passwd", "/etc/passwd"]
    assert args[args.index("/tmp/wd") - 1:][:2] == ["--dir", "/tmp/wd"]
    assert args[-3:] == ["--bind", "/x", "/etc/nhdev-missing/conf"]
    assert filesystem_args([], [])[:3] == ["--ro-bind", "/", "/"]


def test_exec_enters_the_container_with_its_env_and_exit_code(tmp_path: Path) -> None:
    async def main(rt: BwrapRuntime) -> None:
        pod = await rt.create_sandbox("uid-e", "exec-pod")
        c = await rt.start_container(pod, ContainerConfig(
            "c", ["sleep", "60"], {"GREETING": "hello"}, working_dir="/data",
            mounts=[Mount(tmp_path, "/data")]))
        try:
            script = 'echo "$GREETING $(pwd) $(hostname)"; ls /proc | grep -c "^[0-9]"; exit 3'
            e = await rt.exec(pod, c, ["sh", "-c", script], tty=False, stdin=False)
            assert e.process.stdout is not None
            out = (await e.process.stdout.read()).decode().split()
            assert await e.wait() == 3
            assert out[:3] == ["hello", "/data", "exec-pod"]
            assert int(out[3]) <= 5, "exec sees only the container's processes"
            t = await rt.exec(pod, c, ["sh", "-c", "test -t 0 && echo tty"], tty=True, stdin=True)
            assert t.pty_master is not None
            await t.wait()
            await asyncio.sleep(0.05)
            assert os.read(t.pty_master, 100).strip() == b"tty"
            t.close()
        finally:
            await c.stop(1)
            await rt.remove_sandbox(pod)

    run(main)


def test_sigterm_then_sigkill_and_no_orphans() -> None:
    async def main(rt: BwrapRuntime) -> None:
        pod = await rt.create_sandbox("uid-s", "s")
        assert pod.holder is not None and pod.netns_pid is not None
        graceful = await rt.start_container(pod, ContainerConfig(
            "g", ["sh", "-c", "trap 'echo bye; exit 7' TERM; echo up; while true; do sleep 0.1; done"], {}))
        stubborn = await rt.start_container(pod, ContainerConfig(
            "s", ["sh", "-c", "trap '' TERM; echo up; while true; do sleep 0.1; done"], {}))
        for c in (graceful, stubborn):
            assert c.process.stdout is not None
            assert await c.process.stdout.readline() == b"up\n"
        pids = {graceful.pid, graceful.init_pid, stubborn.pid, stubborn.init_pid, pod.holder.pid, pod.netns_pid}
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await graceful.stop(5) == 7
        assert loop.time() - started < 2
        started = loop.time()
        assert await stubborn.stop(0.5) == 137
        assert 0.4 < loop.time() - started < 3
        await rt.remove_sandbox(pod)
        await asyncio.sleep(0.1)
        assert not [pid for pid in pids if alive(pid)]

    run(main)


def test_a_missing_executable_fails_to_start() -> None:
    async def main(rt: BwrapRuntime) -> None:
        pod = await rt.create_sandbox("uid-x", "x")
        try:
            with pytest.raises(ContainerStartError, match="executable file not found"):
                await rt.start_container(pod, ContainerConfig("c", ["no-such-command-nhdev"], {}))
        finally:
            await rt.remove_sandbox(pod)

    run(main)


def test_kill_signals_reach_only_the_container_group() -> None:
    async def main(rt: BwrapRuntime) -> None:
        pod = await rt.create_sandbox("uid-k", "k")
        c = await rt.start_container(pod, ContainerConfig("c", ["sleep", "30"], {}))
        try:
            assert os.getpgid(c.init_pid) == c.init_pid != os.getpgid(c.pid)
            os.killpg(c.group, signal.SIGTERM)
            assert await c.wait() == 143
        finally:
            await rt.remove_sandbox(pod)

    run(main)


def test_mount_targets_follow_symlinks_of_the_root(tmp_path: Path) -> None:
    from nhdev.sandbox.runtime.bwrap import resolve_in_root

    (tmp_path / "run").mkdir()
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "run").symlink_to(tmp_path / "run")
    assert resolve_in_root(f"{tmp_path}/var/run/nhdev/keys") == f"{tmp_path}/run/nhdev/keys"
    assert resolve_in_root(f"{tmp_path}/missing/dir") == f"{tmp_path}/missing/dir"
