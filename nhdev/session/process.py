"""The session process: ``python -m nhdev.session.process --spec ~/.nhdev/sessions/<key>/spec.json``.

Holds the tunnel to the dev pod's sidecar, every ``portForward`` entry, and the services plugged
in through ``SERVICE_FACTORIES`` (sync, run/debug), and answers the control socket until told to
stop (``{"op": "stop"}``, SIGTERM, SIGINT) or until dev mode ends under it. ``nhdev dev start``
spawns it detached; ``--foreground`` runs the same ``Session`` in the CLI process.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nhdev.cluster.kubeconfig import api_client
from nhdev.cluster.portforward import open_pod_port
from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.devmode import names
from nhdev.devmode.identity import now_rfc3339
from nhdev.errors import UserError
from nhdev.session.control import ControlServer, EventHub, Message, OpHandler
from nhdev.session.registry import SessionPaths, clean_stale, nhdev_home, paths_for, pid_alive
from nhdev.session.services import SessionContext, SessionService, build_services
from nhdev.session.state import SessionSpec
from nhdev.session.sync_service import project_root
from nhdev.tunnel import FAILED, ForwardBindError, Tunnel, TunnelError, TunnelEvent, TunnelGone

log = logging.getLogger("nhdev.session")

PODS, SECRETS = kind_named("pod"), kind_named("secret")
ALREADY_RUNNING = 3
SIGNAL_CHECK_INTERVAL = 0.2


class SessionBusy(UserError):
    """Another live process holds this session's control socket."""


class DevPods:
    """Finds the dev pod of a session by its label, each time the tunnel (re)connects."""

    def __init__(self, spec: SessionSpec) -> None:
        self.spec = spec
        self.kube = KubeRest(api_client(spec.target))
        self.current: str | None = None

    def resolve(self) -> str:
        selector = f"{names.SESSION}={self.spec.session_id}"
        pods = self.kube.list(PODS, self.spec.namespace, label_selector=selector)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                and p.get("status", {}).get("phase") == "Running"]
        candidates = [p for p in live if _sidecar_ready(p)] or live
        if not candidates:
            if not pods and not self._keys_exist():
                raise TunnelGone(f"dev mode for {self.spec.workload} in {self.spec.namespace} has ended")
            raise TunnelError(f"no running dev pod for session {self.spec.session_id} yet")
        newest = max(candidates, key=lambda p: p["metadata"].get("creationTimestamp", ""))
        self.current = str(newest["metadata"]["name"])
        return self.current

    def _keys_exist(self) -> bool:
        selector = f"{names.SESSION}={self.spec.session_id},{names.ROLE}=keys"
        return bool(self.kube.list(SECRETS, self.spec.namespace, label_selector=selector))


def _sidecar_ready(pod: Obj) -> bool:
    return any(s.get("name") == names.SIDECAR_CONTAINER and s.get("ready")
               for s in pod.get("status", {}).get("containerStatuses") or [])


def session_keys_dir(session_id: str) -> Path:
    """Where ``DevModeEngine`` saved the client key and pinned host key of a dev-mode session."""
    return nhdev_home() / "sessions" / session_id


class Session:
    """One dev session on this machine: tunnel, forwards, services and the control socket."""

    def __init__(self, spec: SessionSpec, paths: SessionPaths, *,
                 on_event: Callable[[Message], None] = lambda _event: None) -> None:
        self.spec = spec
        self.paths = paths
        self.on_event = on_event
        self.hub = EventHub()
        self.pods = DevPods(spec)
        self.started_at = now_rfc3339()
        self.forward_errors: list[str] = []
        self.services: list[SessionService] = []
        self.stopping = threading.Event()
        keys = session_keys_dir(spec.session_id)
        if not (keys / "client_key").exists():
            raise UserError(f"no keys for dev session {spec.session_id} under {keys}",
                            hint="dev mode was started on another machine; run `nhdev dev start` here")
        self.tunnel = Tunnel(self._connect, keys / "client_key", (keys / "host_key.pub").read_text().strip(),
                             keepalive=spec.keepalive)

    def _connect(self) -> Any:
        pod = self.pods.resolve()
        return open_pod_port(self.spec.target, self.spec.namespace, pod, names.SIDECAR_PORT)

    # ---------------------------------------------------------------- run

    def run(self, stopping: threading.Event | None = None) -> int:
        """Serve until stopped; returns the exit status."""
        self.stopping = stopping or self.stopping
        self._claim()
        control = ControlServer(self.paths.control, self._handler_for, self.hub, self.status).start()
        try:
            self.tunnel.on_state(self._tunnel_changed)
            self._open_forwards()
            self.tunnel.start()
            threading.Thread(target=self._start_services, name="services", daemon=True).start()
            # Short waits: a signal delivered to another thread only runs its Python handler once
            # the main thread returns to the interpreter; an untimed wait would never do so.
            while not self.stopping.wait(SIGNAL_CHECK_INTERVAL):
                pass
        finally:
            self._shutdown(control)
        return 0

    def _claim(self) -> None:
        self.paths.ensure()
        pid = self.paths.read_pid()
        if pid is not None and pid != os.getpid() and pid_alive(pid):
            raise SessionBusy(f"a session for {self.spec.workload} already runs (pid {pid})",
                              hint=f"stop it with `nhdev dev end {self.spec.workload}`")
        clean_stale(self.paths)
        self.paths.write_pid(os.getpid())

    def _open_forwards(self) -> None:
        for forward in self.spec.port_forwards():
            try:
                if forward.reverse:
                    self.tunnel.forward_reverse(forward.remote, forward.local or 0)
                else:
                    self.tunnel.forward_local(forward.remote, forward.local or 0)
            except ForwardBindError as err:
                self.forward_errors.append(f"{forward.text()}: {err.message}")
                log.warning("forward %s: %s", forward.text(), err.message)

    def _start_services(self) -> None:
        while not self.tunnel.wait_connected(1.0):
            if self.stopping.is_set() or self.tunnel.state.state == FAILED:
                return
        context = SessionContext(self.spec, self.spec.target, self.tunnel, self.publish,
                                 lambda: self.pods.current, self.paths.dir, self.stopping, self.services)
        for service in build_services(self.spec):
            if self.stopping.is_set():
                return
            try:
                service.start(context)
            except Exception:  # one broken service must not take the forwards down
                log.exception("service %s failed to start", service.name)
                continue
            self.services.append(service)
            self.publish({"event": "service", "name": service.name, "state": "started"})

    def _tunnel_changed(self, event: TunnelEvent) -> None:
        self.publish({"event": "tunnel", **event.to_json(), "pod": self.pods.current})
        if event.state == FAILED:
            log.info("stopping: %s", event.reason)
            self.stopping.set()

    def publish(self, event: Message) -> None:
        self.hub.publish(event)
        self.on_event(event)

    def _shutdown(self, control: ControlServer) -> None:
        for service in reversed(self.services):
            try:
                service.stop()
            except Exception:
                log.exception("service %s failed to stop", service.name)
        self.tunnel.stop()
        control.stop()
        if self.paths.read_pid() == os.getpid():
            self.paths.pid_file.unlink(missing_ok=True)

    # ---------------------------------------------------------------- control

    def _handler_for(self, op: str) -> OpHandler | None:
        """The session's own ops, then those the running services add (``run``, ``debug``, ...)."""
        own: dict[str, OpHandler] = {"status": lambda _request: {"status": self.status()}, "stop": self._stop_op}
        if op in own:
            return own[op]
        return next((s.ops()[op] for s in self.services if op in s.ops()), None)

    def _stop_op(self, _request: Message) -> Message:
        threading.Timer(0.05, self.stopping.set).start()  # answer first, then stop
        return {"pid": os.getpid()}

    def status(self) -> dict[str, Any]:
        tunnel = self.tunnel.state
        return {
            "key": self.paths.key, "pid": os.getpid(), "workload": self.spec.workload,
            "namespace": self.spec.namespace, "context": self.spec.context, "session": self.spec.session_id,
            "pod": self.pods.current, "since": self.started_at, "mode": self.spec.mode,
            "controlSocket": str(self.paths.control), "log": str(self.paths.log),
            "localRoot": self.spec.local_root, "configPath": self.spec.config_path,
            "projectRoot": str(project_root(self.spec)),
            "tunnel": {"state": tunnel.state, "reason": tunnel.reason, "generation": tunnel.generation,
                       "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(tunnel.at))},
            "forwards": [f.to_json() for f in self.tunnel.forwards()],
            "forwardErrors": list(self.forward_errors),
            "services": {s.name: s.status() for s in self.services},
        }


def install_stop_signals(stopping: threading.Event) -> None:
    def stop(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nhdev.session.process")
    parser.add_argument("--spec", required=True, help="the session's spec.json")
    parser.add_argument("--log-level", default=os.environ.get("NHDEV_SESSION_LOG", "INFO"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec_path = Path(args.spec)
    spec = SessionSpec.read(spec_path)
    stopping = threading.Event()
    install_stop_signals(stopping)
    try:
        session = Session(spec, paths_for(spec_path.parent.name))
        log.info("session %s for %s in %s (pid %d)", spec.session_id, spec.workload, spec.namespace, os.getpid())
        return session.run(stopping)
    except SessionBusy as err:
        log.error("%s", err.render())
        return ALREADY_RUNNING
    except UserError as err:
        log.error("%s", err.render())
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
