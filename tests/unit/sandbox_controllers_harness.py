"""Drives the sandbox controllers against a real Store, with the test playing the kubelet."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from nhdev.sandbox.controllers import start_controllers
from nhdev.sandbox.controllers.base import watch_forever
from nhdev.sandbox.controllers.clock import Clock
from nhdev.sandbox.events import format_timestamp
from nhdev.sandbox.store import NotFoundError, Store, WatchEvent

NODE = "nhdev-sandbox"
T = TypeVar("T")

# What the fake kubelet does with a new pod: "ready" (Running + Ready), "running" (Running, not
# Ready), "succeed" / "fail" (the pod's containers exit 0 / 1), or None (leave it Pending).
Behaviour = Callable[[dict], str | None]


def pod_status(outcome: str, restarts: int = 0) -> dict:
    now = format_timestamp(datetime.now(UTC))
    phase = {"ready": "Running", "running": "Running", "succeed": "Succeeded", "fail": "Failed"}[outcome]
    ready = "True" if outcome == "ready" else "False"
    return {
        "phase": phase,
        "podIP": "127.0.0.1",
        "hostIP": "127.0.0.1",
        "conditions": [{"type": "Ready", "status": ready, "lastTransitionTime": now}],
        "containerStatuses": [{"name": "main", "ready": ready == "True", "restartCount": restarts}],
    }


@dataclass
class FakeKubelet:
    """Binds new pods to the node, gives them a status, and finishes graceful deletions."""

    store: Store
    behaviour: Behaviour = lambda pod: "ready"
    finish_terminations: bool = True

    def on_event(self, event: WatchEvent) -> None:
        if event.type != "DELETED":
            self.handle(event.object)

    def handle(self, pod: dict) -> None:
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if meta.get("deletionTimestamp"):
            if self.finish_terminations:
                with contextlib.suppress(NotFoundError):
                    self.store.delete("pods", namespace, name, grace_period_seconds=0)
            return
        if not (pod.get("spec") or {}).get("nodeName"):
            self.store.mutate("pods", namespace, name, lambda p: p["spec"].__setitem__("nodeName", NODE))
            return
        if (pod.get("status") or {}).get("phase") not in (None, "", "Pending"):
            return
        outcome = self.behaviour(pod)
        if outcome is not None:
            set_pod_status(self.store, namespace, name, outcome)

    def resume_terminations(self) -> None:
        self.finish_terminations = True
        for pod in self.store.list("pods")[0]:
            if pod["metadata"].get("deletionTimestamp"):
                self.handle(pod)

    def revisit_running(self) -> None:
        """Apply a changed behaviour to the pods already running (e.g. make them finish)."""
        for pod in self.store.list("pods")[0]:
            if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp"):
                outcome = self.behaviour(pod)
                if outcome is not None:
                    set_pod_status(self.store, pod["metadata"]["namespace"], pod["metadata"]["name"], outcome)


def set_pod_status(store: Store, namespace: str, name: str, outcome: str, restarts: int = 0) -> None:
    store.mutate("pods", namespace, name, lambda p: p.__setitem__("status", pod_status(outcome, restarts)),
                 subresource="status")


@dataclass
class Cluster:
    store: Store
    kubelet: FakeKubelet
    state_dir: Path

    def create(self, resource: str, obj: dict, namespace: str | None = "default") -> dict:
        return self.store.create(resource, namespace, obj)

    def get(self, resource: str, name: str, namespace: str | None = "default") -> dict:
        return self.store.get(resource, namespace, name)

    def find(self, resource: str, name: str, namespace: str | None = "default") -> dict | None:
        return self.store.try_get(resource, namespace, name)

    def items(self, resource: str, namespace: str | None = "default", label_selector: str | None = None) -> list[dict]:
        return self.store.list(resource, namespace, label_selector=label_selector)[0]

    def names(self, resource: str, namespace: str | None = "default", label_selector: str | None = None) -> list[str]:
        return sorted(o["metadata"]["name"] for o in self.items(resource, namespace, label_selector))

    def edit(self, resource: str, name: str, fn: Callable[[dict], None], namespace: str | None = "default") -> dict:
        return self.store.mutate(resource, namespace, name, fn)

    def events(self, namespace: str = "default") -> list[tuple[str, str]]:
        return [(e["reason"], e["message"]) for e in self.items("events", namespace)]


async def eventually(what: str, check: Callable[[], T | None], timeout: float = 5.0) -> T:
    """Poll ``check`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


async def stays(what: str, check: Callable[[], object], seconds: float = 0.3) -> None:
    """Assert ``check`` holds throughout ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        await asyncio.sleep(0.02)


def run_cluster(
    state_dir: Path,
    scenario: Callable[[Cluster], Awaitable[None]],
    *,
    clock: Clock | None = None,
    behaviour: Behaviour | None = None,
) -> None:
    async def main() -> None:
        store = Store(state_dir)
        kubelet = FakeKubelet(store)
        if behaviour is not None:
            kubelet.behaviour = behaviour
        controllers = start_controllers(store, state_dir, clock=clock)
        kubelet_task = asyncio.create_task(watch_forever(store, "pods", kubelet.on_event, "fake-kubelet"))
        try:
            await scenario(Cluster(store, kubelet, state_dir))
        finally:
            kubelet_task.cancel()
            await asyncio.gather(kubelet_task, return_exceptions=True)
            await controllers.stop()
            store.close()

    asyncio.run(main())


def deployment(name: str = "web", replicas: int = 3, image: str = "app:v1", **spec: object) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
            **spec,
        },
    }


def set_image(image: str) -> Callable[[dict], None]:
    def edit(obj: dict) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = image

    return edit
