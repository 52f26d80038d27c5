"""The sandbox's controllers, all running in the server's asyncio loop against the Store.

``start_controllers`` starts every controller as a task and returns the set to stop them with.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from nhdev.sandbox.controllers.base import Controller
from nhdev.sandbox.controllers.clock import Clock, ManualClock, SystemClock
from nhdev.sandbox.controllers.cronjob import CronJobController
from nhdev.sandbox.controllers.daemonset import DaemonSetController
from nhdev.sandbox.controllers.deployment import DeploymentController
from nhdev.sandbox.controllers.endpoints import EndpointsController
from nhdev.sandbox.controllers.gc import GarbageCollector
from nhdev.sandbox.controllers.job import JobController
from nhdev.sandbox.controllers.namespace import NamespaceController
from nhdev.sandbox.controllers.pvc import ClaimBinder, VolumeReclaimer
from nhdev.sandbox.controllers.replicaset import ReplicaSetController
from nhdev.sandbox.controllers.statefulset import StatefulSetController
from nhdev.sandbox.store import Store

__all__ = ["Clock", "ControllerSet", "ManualClock", "SystemClock", "start_controllers"]

DEFAULT_RESYNC_SECONDS = 5.0


class ControllerSet:
    """The running controllers; ``stop()`` cancels them and waits until they are gone."""

    def __init__(self, controllers: list[Controller | GarbageCollector]) -> None:
        self.controllers = controllers
        self._tasks = [
            asyncio.get_running_loop().create_task(c.run(), name=f"controller-{c.name}") for c in controllers
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def start_controllers(
    store: Store,
    state_dir: Path,
    *,
    clock: Clock | None = None,
    resync_seconds: float = DEFAULT_RESYNC_SECONDS,
) -> ControllerSet:
    """Start every controller in the running loop. ``clock`` drives deadlines and cron schedules."""
    clock = clock or SystemClock()
    controllers: list[Controller | GarbageCollector] = [
        DeploymentController(store, clock, resync_seconds),
        ReplicaSetController(store, clock, resync_seconds),
        StatefulSetController(store, clock, resync_seconds),
        DaemonSetController(store, clock, resync_seconds),
        JobController(store, clock, resync_seconds),
        CronJobController(store, clock, resync_seconds),
        ClaimBinder(store, clock, resync_seconds, state_dir),
        VolumeReclaimer(store, clock, resync_seconds, state_dir),
        EndpointsController(store, clock, resync_seconds),
        GarbageCollector(store, clock, resync_seconds),
        NamespaceController(store, clock, resync_seconds),
    ]
    return ControllerSet(controllers)
