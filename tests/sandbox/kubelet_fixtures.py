"""An in-process sandbox for kubelet and streaming tests: Store + Kubelet + API on 127.0.0.1:0,
running on an event loop in a background thread (the store is only touched from that thread)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from kubernetes import client

from nhdev.sandbox.images import ImageList
from nhdev.sandbox.kubelet import Kubelet
from nhdev.sandbox.runtime import bwrap_available, make_runtime

T = TypeVar("T")
needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bubblewrap/nsenter not installed")


class LocalSandbox:
    def __init__(self, state_dir: Path, *, runtime: str = "bwrap", backoff_base: float = 0.3) -> None:
        self.state_dir = state_dir
        self.runtime_name = runtime
        self.backoff_base = backoff_base
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sandbox-loop", daemon=True)
        self.thread.start()
        self.port = 0
        self.run(self._start())

    def run(self, coroutine: Any, timeout: float = 60) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def in_loop() -> T:
            return fn()

        result: T = self.run(in_loop())
        return result

    async def _start(self) -> None:
        from nhdev.sandbox.api import create_app
        from nhdev.sandbox.store import Store
        from nhdev.sandbox.streaming import PodStreams

        self.store = Store(self.state_dir)
        self.kubelet = Kubelet(self.store, self.state_dir, make_runtime(self.runtime_name),
                               ImageList(self.state_dir), backoff_base=self.backoff_base, resync_seconds=0.5)
        await self.kubelet.start()
        self.runner = web.AppRunner(create_app(self.store, PodStreams(self.store, self.kubelet)),
                                    shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.kubelet.stop()
        self.store.close()

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: s, cluster: {{server: '{self.url}'}}}}]\n"
            "contexts: [{name: s, context: {cluster: s, user: u, namespace: default}}]\n"
            "users: [{name: u, user: {}}]\ncurrent-context: s\n")
        return path

    def create_pod(self, pod: dict, namespace: str = "default") -> dict:
        pod = {"apiVersion": "v1", "kind": "Pod", **pod}
        return self.call(lambda: self.store.create("pods", namespace, pod))

    def pod(self, name: str, namespace: str = "default") -> dict | None:
        return self.call(lambda: self.store.try_get("pods", namespace, name))

    def events(self, name: str, namespace: str = "default") -> list[tuple[str, str]]:
        items, _ = self.call(lambda: self.store.list("events", namespace))
        return [(e["reason"], e["message"]) for e in items if e["involvedObject"]["name"] == name]

    def wait_pod(self, name: str, check: Callable[[dict], Any], timeout: float = 20,
                 namespace: str = "default") -> dict:
        deadline = time.monotonic() + timeout
        pod = None
        while time.monotonic() < deadline:
            pod = self.pod(name, namespace)
            if pod is not None and check(pod):
                return pod
            time.sleep(0.1)
        raise AssertionError(f"pod {name} never got there; last: {pod and pod.get('status')}")

    def wait_ready(self, name: str, timeout: float = 20, namespace: str = "default") -> dict:
        return self.wait_pod(name, is_ready, timeout, namespace)


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def container_status(pod: dict, name: str) -> dict:
    statuses = (pod["status"].get("containerStatuses") or []) + (pod["status"].get("initContainerStatuses") or [])
    return next((s for s in statuses if s["name"] == name), {})


def waiting_reason(pod: dict, name: str) -> str | None:
    return (container_status(pod, name).get("state") or {}).get("waiting", {}).get("reason")


@pytest.fixture(scope="module")
def local_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSandbox]:
    if not bwrap_available():
        pytest.skip("bubblewrap/nsenter not installed")
    sandbox = LocalSandbox(tmp_path_factory.mktemp("kubelet-state"))
    yield sandbox
    sandbox.stop()
