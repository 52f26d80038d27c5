"""What runs inside a session besides the tunnel: sync, run/debug, hot reload.

A service is started once the tunnel first connects, stopped when the session ends, and
reports a JSON-able status under ``services[<name>]``. It may add control-socket ops (``run``,
``debug``, ...). To plug one in, append a factory to ``SERVICE_FACTORIES``::

    def sync_service(spec: SessionSpec) -> SessionService | None:
        return SyncService(spec) if spec.config_path else None

    SERVICE_FACTORIES.append(sync_service)

and in ``start(context)`` use ``context.tunnel`` (a ``SyncLink``: ``transport()``, ``generation``),
``context.publish({...})`` for pushed events and ``context.stopping`` to end its threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nhdev.cluster.kubeconfig import ClusterTarget
from nhdev.session.control import Message, OpHandler
from nhdev.session.state import SessionSpec
from nhdev.tunnel import Tunnel


@dataclass
class SessionContext:
    spec: SessionSpec
    target: ClusterTarget
    tunnel: Tunnel
    publish: Callable[[Message], None]  # pushed to every `subscribe`r; include an "event" key
    current_pod: Callable[[], str | None]  # the dev pod the tunnel reaches now
    state_dir: Path  # ~/.nhdev/sessions/<key>/, private to this session
    stopping: threading.Event
    services: list[SessionService] = field(default_factory=list)  # those started so far, in order


class SessionService:
    """Base class: override ``start`` and ``stop``; ``status`` and ``ops`` as needed."""

    name = "service"

    def start(self, context: SessionContext) -> None:
        """Start work on threads of its own and return promptly."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def status(self) -> dict[str, Any]:
        return {}

    def ops(self) -> dict[str, OpHandler]:
        """Extra control-socket ops this service answers."""
        return {}


ServiceFactory = Callable[[SessionSpec], "SessionService | None"]

SERVICE_FACTORIES: list[ServiceFactory] = []


def build_services(spec: SessionSpec) -> list[SessionService]:
    return [service for factory in service_factories() if (service := factory(spec)) is not None]


def service_factories() -> list[ServiceFactory]:
    """The built-in services (imported here, not at module load, so they may import this module)."""
    from nhdev.session.run_service import run_service
    from nhdev.session.sync_service import sync_service

    return [sync_service, run_service, *SERVICE_FACTORIES]  # run after sync: hot reload listens to it
