"""The ``podman`` runtime: pods are podman pods, containers are real OCI containers.

A pod is ``podman pod create --network none``: its infra container holds a network namespace
with only a loopback interface (never podman's bridge network), shared by the pod's containers,
plus the pod's UTS and IPC namespaces. Port connections enter that namespace through the infra
container's PID, like the ``bwrap`` runtime's holder.

A container is ``podman run --rm --pod POD ...`` of an image from podman's local store (nothing
is pulled), *attached*: the ``podman run`` process we start carries the container's stdout and
stderr (the kubelet writes the pod logs from them) and ends with the container's exit code.
``command`` becomes the entrypoint, so the image's own ENTRYPOINT never runs before it; the
image's ENV, USER and WORKDIR apply unless the pod spec overrides them; the securityContext
becomes podman's options (``--user``, ``--read-only``, ``--cap-drop``/``--cap-add``,
``no-new-privileges``, ``--group-add``: :func:`security_options`). As in the ``bwrap``
runtime, a small init (``--init``, podman's catatonit) is the container's PID 1 and passes
signals on, so a program that installs no SIGTERM handler still ends on SIGTERM (as PID 1 it
would ignore it and wait out the grace period). SIGTERM and SIGKILL go straight to that init (its
host PID), so the grace period works like a kubelet's.

Podman reads nhdev's settings (runc, rlimits, no bridge, no pulls; see ``dev_images/podman/``)
through ``CONTAINERS_CONF`` and friends, set here when the caller has not set them and the
files exist (a source checkout). Every pod and container is named ``nhdev-<pod uid>...``: a pod
left behind by a killed server is replaced when its pod starts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from nhdev.sandbox.runtime import (
    ContainerConfig,
    ContainerProcess,
    ContainerStartError,
    ExecProcess,
    PodSandbox,
    kill_with_parent,
)
from nhdev.sandbox.runtime.netns import netns_path, open_in_netns
from nhdev.sandbox.runtime.process import spawn_exec

NAME_PREFIX = "nhdev-"
LABEL = "org.nhdev.sandbox"
# The default HOME the sandbox gives every container; a real runtime takes HOME from the image's
# /etc/passwd for the container's user instead (the dev images' user lives in /home/nhdev-dev).
_SANDBOX_DEFAULT_HOME = "/root"
# podman run's own failures (exec: not found, not executable, could not start): these codes plus
# podman's "Error: " on stderr before the container ever ran.
_START_FAILURE_CODES = (125, 126, 127)
# What the init (catatonit) says when it cannot exec the command, before it exits 1.
_INIT_EXEC_FAILURE = "failed to exec pid1"
_EXEC_FAILURE_WINDOW = 0.15
_CONFIG_FILES = {"CONTAINERS_CONF": "containers.conf", "CONTAINERS_REGISTRIES_CONF": "registries.conf",
                 "CONTAINERS_STORAGE_CONF": "storage.conf"}


def project_config_dir() -> Path:
    """``dev_images/podman`` of the source checkout this module belongs to."""
    return Path(__file__).resolve().parents[3] / "dev_images" / "podman"


def podman_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment podman runs with: ``base`` (default: ours) plus nhdev's config files
    wherever ``base`` does not name its own."""
    env = dict(os.environ if base is None else base)
    directory = project_config_dir()
    for variable, filename in _CONFIG_FILES.items():
        if variable not in env and (directory / filename).is_file():
            env[variable] = str(directory / filename)
    return env


def podman_available() -> bool:
    return shutil.which("podman") is not None and shutil.which("runc") is not None


def pod_name(uid: str) -> str:
    return f"{NAME_PREFIX}{uid}"


def container_name(uid: str, container: str) -> str:
    return f"{pod_name(uid)}-{container}"


def pod_create_args(uid: str, hostname: str) -> list[str]:
    """``podman pod create`` arguments: loopback-only network, the pod's hostname."""
    return ["pod", "create", "--replace", "--name", pod_name(uid), "--hostname", hostname,
            "--network", "none", "--label", f"{LABEL}=1", "--label", f"{LABEL}.pod-uid={uid}"]


def user_option(config: ContainerConfig) -> list[str]:
    """``--user`` for runAsUser/runAsGroup; nothing (the image's USER) when neither is set."""
    if config.run_as_user is None:
        # A group alone cannot be named without a user; the image's user keeps its own group.
        return []
    if config.run_as_group is None:
        return ["--user", str(config.run_as_user)]
    return ["--user", f"{config.run_as_user}:{config.run_as_group}"]


def security_options(config: ContainerConfig) -> list[str]:
    """The securityContext as ``podman run`` options (see ``SecurityContext`` for what is not).

    ``readOnlyRootFilesystem`` is ``--read-only`` without podman's writable tmpfs on /tmp, /var/tmp
    and /run (``--read-only-tmpfs=false``): a kubelet adds none, the pod mounts an emptyDir where
    it writes. Capabilities are dropped before they are added (podman's order, and the CRI's),
    so ``drop: [ALL], add: [NET_BIND_SERVICE]`` leaves that one.
    """
    security = config.security
    args = user_option(config)
    for group in security.supplementary_groups():
        args += ["--group-add", str(group)]
    if security.read_only_root_filesystem:
        args += ["--read-only", "--read-only-tmpfs=false"]
    for capability in security.capabilities_drop:
        args += ["--cap-drop", capability]
    for capability in security.capabilities_add:
        args += ["--cap-add", capability]
    if security.allow_privilege_escalation is False:
        args += ["--security-opt", "no-new-privileges"]
    return args


def container_env(config: ContainerConfig) -> dict[str, str]:
    """The variables passed with ``--env``: the spec's, without the sandbox's default HOME."""
    return {key: value for key, value in config.env.items()
            if not (key == "HOME" and value == _SANDBOX_DEFAULT_HOME)}


def run_args(uid: str, image: str, config: ContainerConfig) -> list[str]:
    """``podman run`` arguments for one container instance of pod ``uid``."""
    args = ["run", "--rm", "--replace", "--name", container_name(uid, config.name), "--pod", pod_name(uid),
            "--pull", "never", "--sig-proxy=false", "--log-driver", "none", "--init",
            "--label", f"{LABEL}=1", "--label", f"{LABEL}.pod-uid={uid}"]
    args += security_options(config)
    if config.working_dir:
        args += ["--workdir", config.working_dir]
    for key, value in container_env(config).items():
        args += ["--env", f"{key}={value}"]
    for mount in config.mounts:
        option = f"type=bind,source={mount.source},destination={mount.target}"
        args += ["--mount", option + (",ro=true" if mount.read_only else "")]
    args += ["--entrypoint", config.argv[0], image, *config.argv[1:]]
    return args


def exec_args(uid: str, container: str, argv: list[str], *, tty: bool, stdin: bool) -> list[str]:
    """``podman exec`` arguments: the container's user, working directory and environment."""
    args = ["exec"]
    if stdin or tty:
        args.append("--interactive")
    if tty:
        args.append("--tty")
    return [*args, container_name(uid, container), *argv]


class PodmanRuntime:
    """Pods as podman pods, containers as podman containers (see the module docstring)."""

    name = "podman"

    def __init__(self, podman: str | None = None, env: dict[str, str] | None = None) -> None:
        self.podman = podman or shutil.which("podman") or "podman"
        self.env = podman_environment(env)

    async def _podman(self, *args: str, timeout: float = 60.0) -> str:
        """Runs a podman command to its end; its stdout, or ContainerStartError with its stderr."""
        process = await asyncio.create_subprocess_exec(
            self.podman, *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self.env, start_new_session=True, preexec_fn=kill_with_parent)
        try:
            async with asyncio.timeout(timeout):
                out, err = await process.communicate()
        except TimeoutError:
            process.kill()
            await process.wait()
            raise ContainerStartError(f"podman {args[0]} {args[1] if len(args) > 1 else ''} timed out") from None
        if process.returncode != 0:
            message = err.decode(errors="replace").strip() or f"podman exited {process.returncode}"
            raise ContainerStartError(message)
        return out.decode(errors="replace").strip()

    async def create_sandbox(self, uid: str, hostname: str) -> PodSandbox:
        await self._podman(*pod_create_args(uid, hostname))
        await self._podman("pod", "start", pod_name(uid))
        infra = await self._podman("pod", "inspect", "--format", "{{.InfraContainerID}}", pod_name(uid))
        pid = int(await self._podman("container", "inspect", "--format", "{{.State.Pid}}", infra) or 0)
        if pid <= 0:
            raise ContainerStartError(f"the infra container of pod {pod_name(uid)} is not running")
        return PodSandbox(uid=uid, hostname=hostname, netns_pid=pid)

    async def remove_sandbox(self, sandbox: PodSandbox) -> None:
        # --time 0: the kubelet stopped the containers (with their grace) before removing the pod.
        try:
            await self._podman("pod", "rm", "--force", "--time", "0", pod_name(sandbox.uid))
        except ContainerStartError:
            await self._podman("pod", "rm", "--force", pod_name(sandbox.uid))

    async def _container_pid(self, name: str, process: asyncio.subprocess.Process) -> int | None:
        """The host PID of the container's init once it runs; None if ``podman run`` ended first."""
        deadline = time.monotonic() + 60.0
        while process.returncode is None and time.monotonic() < deadline:
            try:
                state = await self._podman("container", "inspect", "--format", "{{.State.Pid}}", name)
            except ContainerStartError:
                state = ""  # not created yet
            if state.isdigit() and int(state) > 0:
                return int(state)
            await asyncio.sleep(0.05)
        return None

    async def start_container(self, sandbox: PodSandbox, config: ContainerConfig) -> ContainerProcess:
        image = config.image
        if not image:
            raise ContainerStartError("the podman runtime needs the container's image")
        name = container_name(sandbox.uid, config.name)
        process = await asyncio.create_subprocess_exec(
            self.podman, *run_args(sandbox.uid, image, config), stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self.env,
            start_new_session=True, preexec_fn=kill_with_parent)
        pid = await self._container_pid(name, process)
        if pid is None and process.returncode is None:
            process.kill()
            await process.wait()
            raise ContainerStartError("the container did not start within 60 s")
        # The init execs the command right after it starts: give a missing program a moment to show.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_EXEC_FAILURE_WINDOW):
                await asyncio.shield(process.wait())
        if process.returncode is not None:
            await _raise_if_never_ran(process, config.argv[0])
        return ContainerProcess(process, init_pid=pid or process.pid, group=pid or process.pid, config=config)

    async def exec(self, sandbox: PodSandbox, container: ContainerProcess, argv: list[str], *,
                   tty: bool, stdin: bool) -> ExecProcess:
        command = [self.podman, *exec_args(sandbox.uid, container.config.name, argv, tty=tty, stdin=stdin)]
        return await spawn_exec(command, self.env, None, tty=tty, stdin=stdin)

    async def open_connection(self, sandbox: PodSandbox, port: int, timeout: float = 5.0) -> socket.socket:
        if sandbox.netns_pid is None:
            raise ConnectionRefusedError(f"pod {pod_name(sandbox.uid)} has no network namespace")
        return await open_in_netns(netns_path(sandbox.netns_pid), port, timeout)


async def _raise_if_never_ran(process: asyncio.subprocess.Process, program: str) -> None:
    """ContainerStartError when ``podman run`` (or the container's init) could not start the
    command; otherwise the output read here is handed back to the kubelet's log pumps."""
    assert process.stderr is not None
    output = await process.stderr.read()
    message = output.decode(errors="replace").strip()
    if message.startswith("Error: ") and process.returncode in _START_FAILURE_CODES:
        raise ContainerStartError(message.removeprefix("Error: "))
    if _INIT_EXEC_FAILURE in message and process.returncode == 1:
        reason = message.rpartition(": ")[2]
        raise ContainerStartError(f'exec: "{program}": {reason.lower()}')
    replay = asyncio.StreamReader()
    replay.feed_data(output)
    replay.feed_eof()
    process.stderr = replay


def image_exists(image: str, *, podman: str | None = None, env: dict[str, str] | None = None) -> bool:
    """Whether ``image`` is in podman's local store (``podman image exists``)."""
    if not image:
        return False
    command = [podman or shutil.which("podman") or "podman", "image", "exists", image]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, env=podman_environment(env), timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def image_user(image: str, *, podman: str | None = None, env: dict[str, str] | None = None) -> str | None:
    """The ``USER`` of ``image`` in podman's local store ("" when it names none); None when the
    store does not have the image."""
    if not image:
        return None
    command = [podman or shutil.which("podman") or "podman", "image", "inspect", "--format",
               "{{.Config.User}}", image]
    try:
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                env=podman_environment(env), timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


class PodmanImageStore:
    """podman's local store as the sandbox's image list; a found image (and its user) is
    remembered a while (the kubelet asks before every container start)."""

    def __init__(self, podman: str | None = None, env: dict[str, str] | None = None,
                 remember_seconds: float = 10.0) -> None:
        self.podman = podman
        self.env = env
        self.remember_seconds = remember_seconds
        self._found: dict[str, tuple[float, str]] = {}

    def user(self, image: str) -> str | None:
        found = self._found.get(image)
        if found is not None and time.monotonic() - found[0] < self.remember_seconds:
            return found[1]
        user = image_user(image, podman=self.podman, env=self.env)
        if user is None:
            self._found.pop(image, None)
        else:
            self._found[image] = (time.monotonic(), user)
        return user

    def exists(self, image: str) -> bool:
        return self.user(image) is not None
