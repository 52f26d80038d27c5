"""The sandbox server process: one asyncio loop holding the store, controllers, kubelet and API.

Started in the background by ``nhdev sandbox up`` (see ``lifecycle.py``); stops cleanly on
SIGTERM or SIGINT, taking every pod process down with it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from pathlib import Path

from aiohttp import web

log = logging.getLogger("nhdev.sandbox")


async def serve(state_dir: Path, port: int, runtime_name: str) -> None:
    from nhdev.sandbox.api import create_app
    from nhdev.sandbox.controllers import start_controllers
    from nhdev.sandbox.images import ImageList
    from nhdev.sandbox.kubelet import Kubelet
    from nhdev.sandbox.runtime import make_runtime
    from nhdev.sandbox.runtime.podman import PodmanImageStore
    from nhdev.sandbox.store import Store
    from nhdev.sandbox.streaming import PodStreams

    state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(state_dir)
    images = ImageList(state_dir, local_store=PodmanImageStore() if runtime_name == "podman" else None)
    kubelet = Kubelet(store, state_dir, make_runtime(runtime_name), images)
    controllers = start_controllers(store, state_dir)
    await kubelet.start()
    app = create_app(store, PodStreams(store, kubelet))
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    log.info("sandbox API listening on http://127.0.0.1:%d (runtime %s)", port, runtime_name)

    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()

    log.info("stopping")
    # Stop answering first, then stop reconciling, then take the pods down.
    await runner.cleanup()
    await controllers.stop()
    await kubelet.stop()
    store.close()
    log.info("stopped")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m nhdev.sandbox.server")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--runtime", default="bwrap", choices=["bwrap", "process", "podman"])
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(serve(args.state_dir.resolve(), args.port, args.runtime))


if __name__ == "__main__":
    main()
