"""The ``process`` runtime: containers as plain host processes, for machines without bubblewrap.

What works: command/args, environment, workingDir (it must exist on the host), exit codes,
restarts, logs, exec, probes, port connections. What does not, by construction:

- no file system isolation: volumes are *not* mounted at their mountPaths; a container sees the
  host's file system as it is (volume directories still exist under the state dir);
- no network isolation: every pod shares the host's loopback, so two pods cannot both listen
  on one port, and port-forward reaches the host's 127.0.0.1;
- a process that leaves its process group (``setsid``) escapes termination.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import socket
import termios

from nhdev.sandbox.runtime import (
    DEFAULT_PATH,
    ContainerConfig,
    ContainerProcess,
    ContainerStartError,
    ExecProcess,
    PodSandbox,
    kill_with_parent,
)
from nhdev.sandbox.runtime.netns import open_in_netns


def _take_terminal() -> None:
    """preexec_fn for a pty: dies with the server and makes fd 0 its controlling terminal
    (the child is already a session leader through start_new_session)."""
    kill_with_parent()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def spawn_exec(argv: list[str], env: dict[str, str], cwd: str | None, *, tty: bool,
                     stdin: bool) -> ExecProcess:
    """Starts an exec'd command, either on a fresh pty or on pipes."""
    if not tty:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd,
            start_new_session=True, preexec_fn=kill_with_parent)
        return ExecProcess(process, pty_master=None)
    master, slave = os.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
            start_new_session=True, preexec_fn=_take_terminal)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return ExecProcess(process, pty_master=master)


class ProcessRuntime:
    """Containers as host processes in their own session (see the module docstring)."""

    name = "process"

    async def create_sandbox(self, uid: str, hostname: str) -> PodSandbox:
        return PodSandbox(uid=uid, hostname=hostname)

    async def remove_sandbox(self, sandbox: PodSandbox) -> None:
        return None

    async def start_container(self, sandbox: PodSandbox, config: ContainerConfig) -> ContainerProcess:
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": sandbox.hostname, **config.env}
        if config.working_dir and not os.path.isdir(config.working_dir):
            raise ContainerStartError(
                f"workingDir {config.working_dir} does not exist on this host "
                "(the process runtime does not remap paths)")
        argv0 = config.argv[0]
        if "/" in argv0:
            found = os.access(os.path.join(config.working_dir or os.getcwd(), argv0), os.X_OK)
        else:
            found = shutil.which(argv0, path=env["PATH"]) is not None
        if not found:
            raise ContainerStartError(f'exec: "{config.argv[0]}": executable file not found in $PATH')
        process = await asyncio.create_subprocess_exec(
            *config.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=config.working_dir or None,
            user=config.run_as_user, group=config.run_as_group, start_new_session=True,
            preexec_fn=kill_with_parent)
        return ContainerProcess(process, init_pid=process.pid, group=process.pid, config=config)

    async def exec(self, sandbox: PodSandbox, container: ContainerProcess, argv: list[str], *,
                   tty: bool, stdin: bool) -> ExecProcess:
        config = container.config
        env = {"PATH": DEFAULT_PATH, "HOSTNAME": sandbox.hostname, **config.env}
        return await spawn_exec(argv, env, config.working_dir or None, tty=tty, stdin=stdin)

    async def open_connection(self, sandbox: PodSandbox, port: int, timeout: float = 5.0) -> socket.socket:
        return await open_in_netns(None, port, timeout)
