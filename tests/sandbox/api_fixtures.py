"""Fixtures for the sandbox API tests: the aiohttp app in a background thread on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from kubernetes import client

from nhdev.sandbox.api import create_app
from nhdev.sandbox.store import Store

CONTEXT = "nhdev-sandbox"


@dataclass
class ApiServer:
    """A running sandbox API: its URL, a kubeconfig for it, and a way to run code on its loop."""

    url: str
    kubeconfig: Path
    store: Store
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` on the server's loop thread (the Store must only be used from there)."""
        future: Future[Any] = Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:
                future.set_exception(error)

        self.loop.call_soon_threadsafe(run)
        return future.result(timeout=10)

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)


def write_kubeconfig(path: Path, url: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT, "user": {}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"}}],
        "current-context": CONTEXT,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def start_api_server(state_dir: Path, *, bookmark_interval: float = 30.0) -> tuple[ApiServer, Any]:
    """Start the app on its own loop thread; returns the server and a stop() callable."""
    ready: Future[tuple[Store, asyncio.AbstractEventLoop, int]] = Future()
    stopping: dict[str, asyncio.Event] = {}

    async def main() -> None:
        store = Store(state_dir)
        runner = web.AppRunner(create_app(store, bookmark_interval=bookmark_interval), access_log=None,
                               shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        stopping["event"] = asyncio.Event()
        ready.set_result((store, asyncio.get_running_loop(), port))
        await stopping["event"].wait()
        await runner.cleanup()
        store.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="sandbox-api", daemon=True)
    thread.start()
    store, loop, port = ready.result(timeout=30)
    url = f"http://127.0.0.1:{port}"
    server = ApiServer(url, write_kubeconfig(state_dir / "kubeconfig", url), store, loop)

    def stop() -> None:
        loop.call_soon_threadsafe(stopping["event"].set)
        thread.join(timeout=10)

    return server, stop


@contextlib.contextmanager
def running_api_server(state_dir: Path, *, bookmark_interval: float = 0.5) -> Iterator[ApiServer]:
    server, stop = start_api_server(state_dir, bookmark_interval=bookmark_interval)
    try:
        yield server
    finally:
        stop()
