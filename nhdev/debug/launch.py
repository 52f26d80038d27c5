"""Starting a debug session: the debug command in the pod, a local port to it, the attach info.

What runs comes from the dev config: ``command.debug`` (a shell line, Nocalhost's meaning), else
the language preset's; the port is ``debug.remoteDebugPort``, else the preset's. The local port
comes from a forwarder given by the caller: the session passes its tunnel's; without a session,
:func:`kube_forwarder` (one kube port-forward per connection).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nhdev.cluster.kubeconfig import ClusterTarget
from nhdev.cluster.portforward import PortForwardListener
from nhdev.config import DevSettings
from nhdev.debug.attach import AttachInfo, attach_info
from nhdev.debug.presets import PRESETS
from nhdev.debug.probes import wait_until_debugger_listens
from nhdev.errors import ClusterError, UsageError
from nhdev.run.pods import PodTarget
from nhdev.run.process import OutputCallback, RemoteProcess

# Words in a debug command that give its language away, for configs that name no language.
_LANGUAGE_HINTS = (("debugpy", "python"), ("dlv", "go"), ("--inspect", "node"), ("jdwp", "java"))


class LocalForward(Protocol):
    @property
    def local_port(self) -> int: ...

    def close(self) -> None: ...


Forwarder = Callable[[PodTarget, int], LocalForward]


@dataclass(frozen=True)
class DebugPlan:
    """What to run and where the debugger will listen inside the pod."""

    language: str
    command: str
    remote_port: int
    work_dir: str


def guess_language(command: str) -> str | None:
    return next((language for hint, language in _LANGUAGE_HINTS if hint in command), None)


def debug_plan(dev: DevSettings) -> DebugPlan:
    """The plan from a container's dev settings; :class:`UsageError` when it cannot be made."""
    configured = dev.command.debug.shell_command() if dev.command.debug else None
    language = dev.debug.language or (guess_language(configured) if configured else None)
    if language is None:
        raise UsageError("which debugger? set dev.debug.language (or dev.command.debug) in the dev config",
                         hint=f"languages with presets: {', '.join(PRESETS)}")
    preset = PRESETS.get(language)
    command = configured or (preset.debug if preset else None)
    port = dev.debug.remote_debug_port or (preset.debug_port if preset else None)
    if command is None or port is None:
        missing = " and ".join(w for w, v in (("dev.command.debug", command), ("dev.debug.remoteDebugPort", port))
                               if v is None)
        raise UsageError(f"no preset for {language}: set {missing} in the dev config")
    return DebugPlan(language, command, port, dev.work_dir)


@dataclass
class DebugRun:
    """A debug command running in the pod, its debugger answering on ``info.host:info.port``."""

    process: RemoteProcess
    forward: LocalForward
    info: AttachInfo

    def stop(self, grace: float = 5.0) -> int | None:
        try:
            return self.process.stop(grace)
        finally:
            self.forward.close()


def kube_forwarder(target: ClusterTarget) -> Forwarder:
    """Without a session: a 127.0.0.1 listener opening one kube port-forward per connection."""
    def forward(pod: PodTarget, remote_port: int) -> LocalForward:
        listener = PortForwardListener(target, pod.namespace, lambda: pod.pod, remote_port).start()
        return ListenerForward(listener)
    return forward


@dataclass
class ListenerForward:
    """A :class:`PortForwardListener` seen as the :class:`LocalForward` a debug run holds."""

    listener: PortForwardListener

    @property
    def local_port(self) -> int:
        return self.listener.local_port

    def close(self) -> None:
        self.listener.stop()


def start_debugging(target: ClusterTarget, pod: PodTarget, plan: DebugPlan, local_root: str, *,
                    forwarder: Forwarder, timeout: float = 60.0,
                    on_output: OutputCallback | None = None) -> DebugRun:
    """Runs the debug command (its own process group, role ``debug``) and waits until it listens.

    On failure everything started is stopped again, and the error carries the command's last output.
    """
    process = RemoteProcess.start(target, pod.namespace, pod.pod, pod.container, plan.command,
                                  workdir=plan.work_dir, role="debug", on_output=on_output)
    forward: LocalForward | None = None
    try:
        forward = forwarder(pod, plan.remote_port)
        wait_until_debugger_listens(plan.language, "127.0.0.1", forward.local_port, timeout,
                                    command=plan.command, still_worth_waiting=lambda: process.running)
        if not process.running:
            raise ClusterError(_exited_early(process))
    except ClusterError as err:
        _abandon(process, forward)
        if not process.running and process.exit_code is not None:
            raise ClusterError(_exited_early(process)) from err
        raise
    except BaseException:
        _abandon(process, forward)
        raise
    info = attach_info(plan.language, "127.0.0.1", forward.local_port, local_root, plan.work_dir)
    return DebugRun(process, forward, info)


def _abandon(process: RemoteProcess, forward: LocalForward | None) -> None:
    with contextlib.suppress(ClusterError):
        process.stop(grace=2)
    if forward is not None:
        forward.close()


def _exited_early(process: RemoteProcess) -> str:
    tail = " | ".join(line for line, _ in list(process.recent_output)[-5:]) or "no output"
    return (f"the debug command `{process.command}` exited with code {process.exit_code} before its "
            f"debugger listened; last output: {tail}")
