"""Run and debug as a session service, with hot reload.

The session owns the processes it starts in the dev container (``run`` and ``debug`` roles), so it
can stop them cleanly and restart them when sync delivers a change that hot reload does not
ignore: one restart per burst of saves. Debugger ports ride the session's tunnel; the local port
stays the same across restarts, so an IDE re-attaches where it was.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from nhdev.config import DevSettings
from nhdev.debug.launch import DebugRun, debug_plan, start_debugging
from nhdev.errors import UsageError, UserError
from nhdev.run.pods import PodTarget
from nhdev.run.process import OutputCallback, RemoteProcess
from nhdev.run.reload import ReloadDebouncer, ReloadScheduler
from nhdev.session.control import Message, OpHandler
from nhdev.session.services import SessionContext, SessionService
from nhdev.session.state import SessionSpec
from nhdev.session.sync_service import SyncService, dev_settings, project_root
from nhdev.sync.rules import IgnoreRules

log = logging.getLogger("nhdev.session.run")
OUTPUT_LOG = logging.getLogger("nhdev.session.output")


@dataclass
class TunnelForward:
    """A debugger port on the session's tunnel: kept for the session's life, reused on restarts."""

    local_port: int

    def close(self) -> None:
        """The listener belongs to the tunnel and lives as long as the session."""


class RunService(SessionService):
    name = "run"

    def __init__(self, spec: SessionSpec, settings: DevSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.context: SessionContext | None = None
        self.lock = threading.RLock()
        self.run_process: RemoteProcess | None = None
        self.debug_run: DebugRun | None = None
        self.forwards: dict[int, int] = {}  # remote debugger port -> local port
        self.reloads = 0
        self.scheduler: ReloadScheduler | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self, context: SessionContext) -> None:
        self.context = context
        hot = self.settings.hot_reload
        sync = next((s for s in context.services if isinstance(s, SyncService)), None)
        if hot.enabled and sync is not None:
            rules = IgnoreRules.from_config(self.settings.sync, project_root(self.spec)).with_extra_ignores(hot.ignore)
            self.scheduler = ReloadScheduler(ReloadDebouncer(hot.delay_ms), self._reload).start()

            def changed(paths: list[str]) -> None:
                relevant = [p for p in paths if not rules.ignored(p)]
                if relevant and self.scheduler is not None:
                    self.scheduler.notify(relevant)

            sync.on_batch(changed)

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        with self.lock:
            self._stop_role("run")
            self._stop_role("debug")

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {
                "run": self._process_status(self.run_process),
                "debug": {**self._process_status(self.debug_run.process if self.debug_run else None),
                          "attach": self.debug_run.info.to_json() if self.debug_run else None},
                "hotReload": {"enabled": self.scheduler is not None, "restarts": self.reloads},
            }

    def ops(self) -> dict[str, OpHandler]:
        return {"run": self._op_run, "debug": self._op_debug, "stop-run": self._op_stop_run,
                "stop-debug": self._op_stop_debug}

    # ---------------------------------------------------------------- ops

    def _discard_pending_reload(self) -> None:
        if self.scheduler is not None:
            self.scheduler.discard_pending()

    def _op_run(self, _request: Message) -> Message:
        with self.lock:
            self._discard_pending_reload()
            self._start_run()
            return {"run": self._process_status(self.run_process)}

    def _op_debug(self, request: Message) -> Message:
        timeout = request.get("timeout")
        with self.lock:
            self._discard_pending_reload()
            self._start_debug(timeout=float(timeout) if isinstance(timeout, int | float) and timeout > 0 else None)
            assert self.debug_run is not None
            return {"attach": self.debug_run.info.to_json()}

    def _op_stop_run(self, _request: Message) -> Message:
        with self.lock:
            return {"exitCode": self._stop_and_tell("run")}

    def _op_stop_debug(self, _request: Message) -> Message:
        with self.lock:
            return {"exitCode": self._stop_and_tell("debug")}

    def _stop_and_tell(self, role: str) -> int | None:
        """Stops ``role`` on request and tells subscribers (an IDE showing it as running)."""
        running = (self.run_process if role == "run" else self.debug_run) is not None
        code = self._stop_role(role)
        if running:
            self._publish({"event": role, "state": "stopped", "exitCode": code})
        return code

    # ---------------------------------------------------------------- processes

    def _pod(self) -> PodTarget:
        assert self.context is not None
        pod = self.context.current_pod()
        if pod is None:
            raise UserError(f"no dev pod reachable for {self.spec.workload} right now; try again in a moment")
        return PodTarget(self.spec.namespace, pod, self.spec.dev_container, self.spec.session_id,
                         self.settings.work_dir)

    def _start_run(self, *, reloading: bool = False) -> None:
        command = self.settings.command.run
        if reloading and self.settings.command.hot_reload_run:
            command = self.settings.command.hot_reload_run
        if command is None:
            raise UsageError("no command.run in the dev config")
        self._stop_role("run")
        pod = self._pod()
        assert self.context is not None
        process = RemoteProcess.start(self.context.target, pod.namespace, pod.pod, pod.container,
                                      command.shell_command(), workdir=self.settings.work_dir,
                                      role="run", on_output=self._output("run"))
        self.run_process = process
        self._publish({"event": "run", "state": "started", "command": command.shell_command()})
        threading.Thread(target=self._report_exit, args=("run", process), name="run-exit", daemon=True).start()

    def _report_exit(self, role: str, process: RemoteProcess) -> None:
        """Tell subscribers (``nhdev dev run``, the IDE) when the command ends by itself."""
        try:
            code = process.wait()
        except UserError as err:
            if role == "run" or self._is_current_debug(process):
                self._publish({"event": role, "state": "exited", "exitCode": None, "error": err.message})
            return
        with self.lock:
            if role == "run" and self.run_process is process:
                self.run_process = None
                self._publish({"event": role, "state": "exited", "exitCode": code})
            elif role == "debug" and self._is_current_debug(process):
                self._publish({"event": role, "state": "exited", "exitCode": code})

    def _is_current_debug(self, process: RemoteProcess) -> bool:
        """Whether ``process`` is the debug command running now (not one stopped for a restart)."""
        return self.debug_run is not None and self.debug_run.process is process

    def _start_debug(self, *, reloading: bool = False, timeout: float | None = None) -> None:
        plan = debug_plan(self.settings)
        if reloading and self.settings.command.hot_reload_debug:
            plan = type(plan)(plan.language, self.settings.command.hot_reload_debug.shell_command(),
                              plan.remote_port, plan.work_dir)
        self._stop_role("debug")
        assert self.context is not None
        self.debug_run = start_debugging(self.context.target, self._pod(), plan, str(project_root(self.spec)),
                                         forwarder=self._tunnel_forwarder, on_output=self._output("debug"),
                                         **({"timeout": timeout} if timeout else {}))
        self._publish({"event": "attach", **self.debug_run.info.to_json(), "restart": reloading})
        threading.Thread(target=self._report_exit, args=("debug", self.debug_run.process), name="debug-exit",
                         daemon=True).start()

    def _tunnel_forwarder(self, _pod: PodTarget, remote_port: int) -> TunnelForward:
        assert self.context is not None
        if remote_port not in self.forwards:
            self.forwards[remote_port] = self.context.tunnel.forward_local(remote_port, 0)
        return TunnelForward(self.forwards[remote_port])

    def _stop_role(self, role: str) -> int | None:
        if role == "run" and self.run_process is not None:
            process, self.run_process = self.run_process, None
            return process.stop()
        if role == "debug" and self.debug_run is not None:
            debug, self.debug_run = self.debug_run, None
            return debug.stop()
        return None

    def _reload(self, paths: list[str]) -> None:
        with self.lock:
            roles = [r for r, live in (("run", self.run_process), ("debug", self.debug_run)) if live is not None]
            if not roles:
                return
            self.reloads += 1
            log.info("hot reload %d of %s: %d changed (%s)", self.reloads, "+".join(roles), len(paths),
                     ", ".join(paths[:5]))
            self._publish({"event": "reload", "roles": roles, "paths": paths[:20], "changed": len(paths)})
            for role in roles:
                try:
                    (self._start_run if role == "run" else self._start_debug)(reloading=True)
                except UserError as err:
                    log.warning("hot reload of %s failed: %s", role, err.message)
                    self._publish({"event": role, "state": "failed", "error": err.message})

    def _output(self, role: str) -> OutputCallback:
        def line(text: str, stream: str) -> None:
            OUTPUT_LOG.info("[%s %s] %s", role, stream, text)
            self._publish({"event": "output", "role": role, "stream": stream, "line": text})

        return line

    def _publish(self, event: Message) -> None:
        if self.context is not None:
            self.context.publish(event)

    @staticmethod
    def _process_status(process: RemoteProcess | None) -> dict[str, Any]:
        if process is None:
            return {"running": False}
        return {"running": process.running, "command": process.command, "pgid": process.pgid,
                "exitCode": process.exit_code}


def run_service(spec: SessionSpec) -> SessionService | None:
    try:
        settings = dev_settings(spec)
    except Exception:
        log.exception("dev config %s could not be read; run/debug is off", spec.config_path)
        return None
    return RunService(spec, settings) if settings is not None else None
