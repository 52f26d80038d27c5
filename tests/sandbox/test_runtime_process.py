"""The process runtime: plain host processes with env, workingDir, exec and signals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nhdev.sandbox.runtime import ContainerConfig, ContainerStartError, RuntimeUnavailable, make_runtime
from nhdev.sandbox.runtime.process import ProcessRuntime
from tests.sandbox.contract import alive


def test_runs_with_env_and_working_dir_and_stops_gracefully(tmp_path: Path) -> None:
    async def main() -> None:
        rt = ProcessRuntime()
        pod = await rt.create_sandbox("u", "proc-pod")
        c = await rt.start_container(pod, ContainerConfig(
            "c", ["sh", "-c", "echo $GREETING $(pwd) $HOSTNAME; trap 'exit 9' TERM; while true; do sleep 0.1; done"],
            {"GREETING": "hi"}, working_dir=str(tmp_path)))
        assert c.process.stdout is not None
        assert (await c.process.stdout.readline()).decode().split() == ["hi", str(tmp_path), "proc-pod"]
        e = await rt.exec(pod, c, ["sh", "-c", "pwd; exit 5"], tty=False, stdin=False)
        assert e.process.stdout is not None
        assert (await e.process.stdout.read()).decode().strip() == str(tmp_path)
        assert await e.wait() == 5
        assert await c.stop(5) == 9
        assert not alive(c.pid)

    asyncio.run(main())


def test_start_errors_are_clear(tmp_path: Path) -> None:
    async def main() -> None:
        rt = ProcessRuntime()
        pod = await rt.create_sandbox("u", "p")
        with pytest.raises(ContainerStartError, match="does not exist on this host"):
            await rt.start_container(pod, ContainerConfig("c", ["true"], {}, working_dir=str(tmp_path / "no")))
        with pytest.raises(ContainerStartError, match="executable file not found"):
            await rt.start_container(pod, ContainerConfig("c", ["no-such-command-nhdev"], {}))

    asyncio.run(main())


def test_make_runtime_names() -> None:
    assert make_runtime("process").name == "process"
    with pytest.raises(RuntimeUnavailable):
        make_runtime("docker")
