"""The ``bwrap`` runtime: pods in namespaces, containers in bubblewrap sandboxes.

A pod is a *holder* process (``bwrap --unshare-net --unshare-uts --unshare-ipc ... sleep infinity``):
bubblewrap brings the new namespace's loopback up. Each container is
``nsenter --net --uts --ipc (holder) bwrap ... -- command``: the host root read-only, fresh
``/dev``, ``/proc`` and ``/tmp``, its own PID namespace, the pod's volumes bound at their mountPaths.

bwrap runs a small init as PID 1 of the container and calls ``setsid()`` there (``--new-session``),
so the container's processes form one process group, distinct from the outer ``bwrap`` that we
started: SIGTERM goes to that group only (the outer bwrap would otherwise die first and take the
container down with SIGKILL via ``--die-with-parent``), SIGKILL goes to the PID-namespace init.

Mount points that do not exist on the host cannot be created in a read-only bind of ``/``. For
those, the deepest existing ancestor is replaced by a tmpfs holding read-only binds of each of
its entries (an *exploded* directory), in which bubblewrap can create the mount point without
writing anything to the host.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import socket
import stat
from pathlib import Path, PurePosixPath

from nhdev.sandbox.runtime import (
    DEFAULT_PATH,
    ContainerConfig,
    ContainerProcess,
    ContainerStartError,
    ExecProcess,
    Mount,
    PodSandbox,
    kill_with_parent,
    signal_quietly,
)
from nhdev.sandbox.runtime.netns import netns_path, open_in_netns
from nhdev.sandbox.runtime.process import spawn_exec

BWRAP = "/usr/bin/bwrap"
NSENTER = "/usr/bin/nsenter"
SETPRIV = "/usr/bin/setpriv"
_FRESH_MOUNTS = ("/dev", "/proc", "/tmp")  # bwrap mounts its own; writable, never exploded


def _tool(name: str, default: str) -> str:
    return default if os.path.exists(default) else (shutil.which(name) or default)


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _depth(path: str) -> int:
    return len(PurePosixPath(path).parts)


def _deepest_existing(path: str) -> str:
    current = PurePosixPath(path)
    while not os.path.lexists(current):
        current = current.parent
    return str(current)


def _entry_binds(directory: str) -> list[str]:
    """Arguments recreating ``directory``'s entries read-only inside a tmpfs."""
    args: list[str] = []
    for entry in sorted(os.scandir(directory), key=lambda e: e.name):
        if directory == "/" and "/" + entry.name in _FRESH_MOUNTS:
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry.path), entry.path]
        else:
            args += ["--ro-bind", entry.path, entry.path]
    return args


def _inside_another_mount(path: str, mounts: list[Mount]) -> Mount | None:
    candidates = [m for m in mounts if m.target != path and _is_under(path, m.target)]
    return max(candidates, key=lambda m: _depth(m.target), default=None)


def filesystem_args(mounts: list[Mount], extra_dirs: list[str]) -> list[str]:
    """bwrap arguments for the container's file system view: host root read-only, fresh
    /dev, /proc, /tmp, ``extra_dirs`` present, ``mounts`` bound (parents before children)."""
    # The container's root is the host's: follow its symlinks (Debian's /var/run -> /run) the way
    # a runtime resolves mount destinations inside the image, or bwrap mounts onto a symlink.
    mounts = [dataclasses.replace(m, target=resolve_in_root(m.target)) for m in mounts]
    extra_dirs = [resolve_in_root(d) for d in extra_dirs]
    exploded: set[str] = set()
    created: list[str] = []
    for path in [m.target for m in mounts] + extra_dirs:
        if any(_is_under(path, fresh) for fresh in _FRESH_MOUNTS) or _inside_another_mount(path, mounts):
            continue
        ancestor = _deepest_existing(path)
        if ancestor != path:
            exploded.add(ancestor)
            if path in extra_dirs:
                created.append(path)
    args = _entry_binds("/") if "/" in exploded else ["--ro-bind", "/", "/"]
    for directory in sorted(exploded - {"/"}, key=_depth):
        mode = stat.S_IMODE(os.stat(directory).st_mode)
        args += ["--tmpfs", directory, "--chmod", f"{mode:o}", directory, *_entry_binds(directory)]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in extra_dirs:
        if path in created or (any(_is_under(path, f) for f in _FRESH_MOUNTS) and path not in _FRESH_MOUNTS):
            args += ["--dir", path]
    for mount in sorted(mounts, key=lambda m: _depth(m.target)):
        args += ["--ro-bind" if mount.read_only else "--bind", str(mount.source), mount.target]
    return args


def resolve_in_root(path: str) -> str:
    """``path`` with the symlinks of its existing part resolved; the missing rest appended."""
    existing = _deepest_existing(path)
    rest = PurePosixPath(path).relative_to(existing)
    resolved = PurePosixPath(os.path.realpath(existing)) / rest
    return str(resolved)


def host_path_in_view(path: str, mounts: list[Mount]) -> Path:
    """Where a path of the container's view lives on the host."""
    mount = max((m for m in mounts if _is_under(path, m.target)), key=lambda m: _depth(m.target),
                default=None)
    if mount is None:
        return Path(path)
    relative = PurePosixPath(path).relative_to(mount.target)
    return mount.source / relative


def find_executable(argv0: str, env: dict[str, str], working_dir: str | None,
                    mounts: list[Mount]) -> bool:
    """Whether ``argv0`` resolves to an executable in the container's view (like execvp)."""
    if "/" in argv0:
        in_view = argv0 if argv0.startswith("/") else str(PurePosixPath(working_dir or "/") / argv0)
        return os.access(host_path_in_view(in_view, mounts), os.X_OK)
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = host_path_in_view(str(PurePosixPath(directory or ".") / argv0), mounts)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return True
    return False


async def _read_info(fd: int) -> dict[str, int]:
    """The JSON bwrap writes to --info-fd once its namespaces are set up ({} if it failed)."""

    def read_all() -> bytes:
        chunks = []
        while chunk := os.read(fd, 4096):
            chunks.append(chunk)
        os.close(fd)
        return b"".join(chunks)

    data = await asyncio.to_thread(read_all)
    return json.loads(data) if data.strip() else {}


async def _session_started(init_pid: int, process: asyncio.subprocess.Process) -> None:
    """Waits until the container's init has forked the command into its new session.

    bwrap reports the child's pid before that. A SIGTERM sent to the group meanwhile would reach
    only the init, which as PID 1 of its namespace ignores it, and the command started a moment
    later would never see it. Init either forks the command or exits, so this loop ends.
    """
    children = Path(f"/proc/{init_pid}/task/{init_pid}/children")
    while process.returncode is None:
        try:
            if children.read_text().strip():
                return
        except OSError:  # init is gone: nothing left to wait for
            return
        await asyncio.sleep(0.005)


class BwrapRuntime:
    """Pods in namespaces of their own, containers in bubblewrap (see the module docstring)."""

    name = "bwrap"

    def __init__(self) -> None:
        self.bwrap = _tool("bwrap", BWRAP)
        self.nsenter = _tool("nsenter", NSENTER)
        self.setpriv = _tool("setpriv", SETPRIV)

    async def _spawn_with_info(self, argv: list[str], env: dict[str, str], *,
                               capture: bool) -> tuple[asyncio.subprocess.Process, dict[str, int]]:
        read_fd, write_fd = os.pipe()
        argv = [arg if arg != "{info_fd}" else str(write_fd) for arg in argv]
        output = asyncio.subprocess.PIPE if capture else asyncio.subprocess.DEVNULL
        try:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=output, stderr=output, env=env,
                pass_fds=(write_fd,), start_new_session=True, preexec_fn=kill_with_parent)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        return process, await _read_info(read_fd)

    async def create_sandbox(self, uid: str, hostname: str) -> PodSandbox:
        argv = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", "--unshare-uts",
                "--unshare-ipc", "--hostname", hostname, "--die-with-parent", "--info-fd", "{info_fd}",
                "--", "sleep", "infinity"]
        process, info = await self._spawn_with_info(argv, {"PATH": DEFAULT_PATH}, capture=False)
        if "child-pid" not in info:
            await process.wait()
            raise ContainerStartError(f"could not create the pod's namespaces (bwrap exited {process.returncode})")
        return PodSandbox(uid=uid, hostname=hostname, holder=process, netns_pid=info["child-pid"])

    async def remove_sandbox(self, sandbox: PodSandbox) -> None:
        if sandbox.holder is None:
            return
        if sandbox.netns_pid is not None:
            signal_quietly(sandbox.netns_pid, signal.SIGKILL)  # bwrap reaps it and exits
        try:
            async with asyncio.timeout(2.0):
                await sandbox.holder.wait()
        except TimeoutError:
            signal_quietly(sandbox.holder.pid, signal.SIGKILL, group=True)
            await sandbox.holder.wait()

    def _join_pod(self, sandbox: PodSandbox) -> list[str]:
        pid = sandbox.netns_pid
        return [self.nsenter, f"--net=/proc/{pid}/ns/net", f"--uts=/proc/{pid}/ns/uts",
                f"--ipc=/proc/{pid}/ns/ipc", "--"]

    def _identity(self, config: ContainerConfig) -> list[str]:
        if config.run_as_user is None and config.run_as_group is None:
            return []
        uid = config.run_as_user if config.run_as_user is not None else os.getuid()
        gid = config.run_as_group if config.run_as_group is not None else 0
        return [self.setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]

    def _prepare_dirs(self, config: ContainerConfig) -> list[str]:
        """Creates the working directory inside a volume on the host; else asks bwrap to."""
        wd = config.working_dir
        if not wd:
            return []
        if any(_is_under(wd, m.target) for m in config.mounts):
            host_path_in_view(wd, config.mounts).mkdir(parents=True, exist_ok=True)
            return []
        return [wd]

    async def start_container(self, sandbox: PodSandbox, config: ContainerConfig) -> ContainerProcess:
        env = {"PATH": DEFAULT_PATH, **config.env}
        try:
            extra_dirs = self._prepare_dirs(config)
            view = filesystem_args(config.mounts, extra_dirs)
        except OSError as exc:
            raise ContainerStartError(f"cannot prepare the container's file system: {exc}") from exc
        if not find_executable(config.argv[0], env, config.working_dir, config.mounts):
            raise ContainerStartError(f'exec: "{config.argv[0]}": executable file not found in $PATH')
        argv = [*self._join_pod(sandbox), self.bwrap, *view, "--unshare-pid", "--new-session",
                "--die-with-parent", "--info-fd", "{info_fd}"]
        if config.working_dir:
            argv += ["--chdir", config.working_dir]
        argv += ["--", *self._identity(config), *config.argv]
        process, info = await self._spawn_with_info(argv, env, capture=True)
        if "child-pid" not in info:
            assert process.stderr is not None
            message = (await process.stderr.read()).decode(errors="replace").strip()
            await process.wait()
            raise ContainerStartError(message or f"bwrap exited {process.returncode}")
        init_pid = info["child-pid"]
        await _session_started(init_pid, process)
        return ContainerProcess(process, init_pid=init_pid, group=init_pid, config=config)

    async def exec(self, sandbox: PodSandbox, container: ContainerProcess, argv: list[str], *,
                   tty: bool, stdin: bool) -> ExecProcess:
        config = container.config
        # nsenter opens an explicit --wd before entering the namespaces: name it through the
        # container's root as the host sees it.
        wd = f"--wd=/proc/{container.init_pid}/root{config.working_dir}" if config.working_dir else "--wd"
        identity = []
        if config.run_as_user is not None:
            identity += ["-S", str(config.run_as_user)]
        if config.run_as_group is not None or config.run_as_user is not None:
            identity += ["-G", str(config.run_as_group or 0)]
        command = [self.nsenter, "-t", str(container.init_pid), "--mount", "--pid", "--net", "--uts",
                   "--ipc", "--root", wd, *identity, "--", *argv]
        return await spawn_exec(command, {"PATH": DEFAULT_PATH, **config.env}, None, tty=tty, stdin=stdin)

    async def open_connection(self, sandbox: PodSandbox, port: int, timeout: float = 5.0) -> socket.socket:
        path = netns_path(sandbox.netns_pid) if sandbox.netns_pid is not None else None
        return await open_in_netns(path, port, timeout)
