"""Container runtimes for the sandbox kubelet: how a pod's processes are started, entered and stopped.

Three runtimes share the :class:`Runtime` protocol:

- ``bwrap`` (:mod:`.bwrap`): every pod gets a network/UTS/IPC namespace held by a small holder
  process; every container is a bubblewrap sandbox joined to it, with the host root read-only,
  its volumes bound at their mountPaths and its own PID namespace.
- ``process`` (:mod:`.process`): plain host processes, for machines without bubblewrap. Working
  directory and environment work; volumes are not remapped and all pods share the host network.
- ``podman`` (:mod:`.podman`): real OCI images from podman's local store, a podman pod per pod
  (loopback-only network), and the container's securityContext as podman options.

What each runtime makes of a container's securityContext: :class:`SecurityContext`.

Every process is started from the event loop's thread with ``PR_SET_PDEATHSIG`` so that nothing
outlives the server, even when it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RuntimeUnavailable(Exception):
    """The requested runtime cannot run on this machine (e.g. bubblewrap is missing)."""


class ContainerStartError(Exception):
    """The runtime could not start a container; the message says why (shown in the pod status)."""


@dataclass(frozen=True)
class Mount:
    """A host path bound into a container at ``target``."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class SecurityContext:
    """A container's effective Kubernetes security context: the pod's ``securityContext`` under
    the container's own (see ``container_config.security_context``).

    Which runtime applies what:

    - ``run_as_user``, ``run_as_group``: every runtime (``podman``: ``--user``; ``bwrap``: setpriv;
      ``process``: setuid). A group without a user is ignored (the image's user keeps its group).
    - ``run_as_non_root``: checked by the kubelet before a start, against the image's user where
      the image list knows it (podman's images); never reaches a runtime as a flag.
    - ``read_only_root_filesystem``, ``capabilities_add``/``capabilities_drop``,
      ``allow_privilege_escalation`` (False: no_new_privs), ``supplementary_groups()``: the
      ``podman`` runtime. ``bwrap`` has a read-only root and a fresh writable ``/tmp`` anyway, and
      keeps the server's capabilities; ``process`` ignores them.
    - ``privileged``: never honoured; the sandbox runs no privileged containers.
    """

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    read_only_root_filesystem: bool = False
    allow_privilege_escalation: bool | None = None  # None: not set (Linux default: allowed)
    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    supplemental_groups: tuple[int, ...] = ()  # the pod's supplementalGroups
    fs_group: int | None = None  # the pod's fsGroup (volume ownership, and a supplementary group)

    def supplementary_groups(self) -> tuple[int, ...]:
        """The groups the container's processes get besides their own, as the kubelet passes
        them: the pod's supplementalGroups, then fsGroup."""
        groups = [*self.supplemental_groups, *([self.fs_group] if self.fs_group is not None else [])]
        return tuple(dict.fromkeys(groups))


@dataclass
class ContainerConfig:
    """Everything a runtime needs to start one container instance."""

    name: str
    argv: list[str]
    env: dict[str, str]
    working_dir: str | None = None
    mounts: list[Mount] = field(default_factory=list)
    security: SecurityContext = field(default_factory=SecurityContext)
    image: str = ""  # the image reference; only runtimes with an image store (podman) use it

    @property
    def run_as_user(self) -> int | None:
        return self.security.run_as_user

    @property
    def run_as_group(self) -> int | None:
        return self.security.run_as_group


@dataclass
class PodSandbox:
    """What a pod's containers share. ``netns_pid`` is a process inside the pod's namespaces."""

    uid: str
    hostname: str
    holder: asyncio.subprocess.Process | None = None
    netns_pid: int | None = None


def kill_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the thread that started it (the loop's) dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def exit_code_of(returncode: int) -> int:
    """A Popen return code as a container exit code (killed by signal N -> 128+N, like runc)."""
    return 128 - returncode if returncode < 0 else returncode


def signal_quietly(pid: int, sig: int, *, group: bool = False) -> None:
    """Send a signal to a process (group) that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


class ContainerProcess:
    """A running container instance.

    ``process`` is the outermost process we started (its stdout/stderr are the container's),
    ``init_pid`` the process whose namespaces ``exec`` enters, ``group`` the process group that
    receives SIGTERM (the container's own processes, never the runtime's wrapper).
    """

    def __init__(self, process: asyncio.subprocess.Process, init_pid: int, group: int,
                 config: ContainerConfig) -> None:
        self.process = process
        self.init_pid = init_pid
        self.group = group
        self.config = config

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait(self) -> int:
        return exit_code_of(await self.process.wait())

    def terminate(self) -> None:
        signal_quietly(self.group, signal.SIGTERM, group=True)

    def kill(self) -> None:
        # SIGKILL of a PID-namespace init kills everything in the namespace. The wrapper we
        # started then reaps it and exits by itself: killing both at once would leave the init
        # a zombie of PID 1, which does not reap in every environment.
        signal_quietly(self.init_pid, signal.SIGKILL)
        signal_quietly(self.group, signal.SIGKILL, group=True)

    async def wait_or_kill_wrapper(self, seconds: float = 2.0) -> int:
        """Waits for the outer process; SIGKILLs its group if it does not end in time."""
        try:
            async with asyncio.timeout(seconds):
                await asyncio.shield(self.process.wait())
        except TimeoutError:
            signal_quietly(self.process.pid, signal.SIGKILL, group=True)
        return await self.wait()

    async def stop(self, grace_seconds: float) -> int:
        """SIGTERM, then SIGKILL once ``grace_seconds`` have passed; returns the exit code."""
        if self.process.returncode is None:
            self.terminate()
            try:
                async with asyncio.timeout(max(grace_seconds, 0)):
                    await asyncio.shield(self.process.wait())
            except TimeoutError:
                self.kill()
        return await self.wait_or_kill_wrapper()


class ExecProcess:
    """A command run inside a container by ``exec``: pipes, or a pty when ``tty`` was asked."""

    def __init__(self, process: asyncio.subprocess.Process, pty_master: int | None) -> None:
        self.process = process
        self.pty_master = pty_master

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait(self) -> int:
        return exit_code_of(await self.process.wait())

    def kill(self) -> None:
        if self.process.returncode is None:
            signal_quietly(self.process.pid, signal.SIGKILL, group=True)

    def close(self) -> None:
        if self.pty_master is not None:
            with contextlib.suppress(OSError):
                os.close(self.pty_master)
            self.pty_master = None


class Runtime(Protocol):
    """Starts pod sandboxes and containers; enters them for exec and port connections."""

    name: str

    async def create_sandbox(self, uid: str, hostname: str) -> PodSandbox: ...

    async def remove_sandbox(self, sandbox: PodSandbox) -> None: ...

    async def start_container(self, sandbox: PodSandbox, config: ContainerConfig) -> ContainerProcess: ...

    async def exec(self, sandbox: PodSandbox, container: ContainerProcess, argv: list[str], *,
                   tty: bool, stdin: bool) -> ExecProcess: ...

    async def open_connection(self, sandbox: PodSandbox, port: int, timeout: float = 5.0) -> socket.socket:
        """A connected TCP socket to 127.0.0.1:port as seen from inside the pod."""
        ...


def bwrap_available() -> bool:
    return shutil.which("bwrap") is not None and shutil.which("nsenter") is not None


def default_runtime_name() -> str:
    return "bwrap" if bwrap_available() else "process"


def make_runtime(name: str | None = None) -> Runtime:
    """The runtime called ``name`` (``bwrap``, ``process`` or ``podman``); ``None`` picks the best
    available of the first two (podman is only used when asked for)."""
    chosen = name or default_runtime_name()
    if chosen == "bwrap":
        from nhdev.sandbox.runtime.bwrap import BwrapRuntime

        if not bwrap_available():
            raise RuntimeUnavailable(
                "the bwrap runtime needs bubblewrap and nsenter (apt-get install bubblewrap util-linux)")
        return BwrapRuntime()
    if chosen == "process":
        from nhdev.sandbox.runtime.process import ProcessRuntime

        return ProcessRuntime()
    if chosen == "podman":
        from nhdev.sandbox.runtime.podman import PodmanRuntime, podman_available

        if not podman_available():
            raise RuntimeUnavailable("the podman runtime needs podman and runc (apt-get install podman runc)")
        return PodmanRuntime()
    raise RuntimeUnavailable(f"unknown sandbox runtime {chosen!r} (choose bwrap, process or podman)")
