"""Sandbox benchmark: API latency, watch latency and pod start, each beside its floor.

Run: ``.venv/bin/python bench/sandbox_bench.py [--rounds N]``. Starts its own sandbox in a temp
state dir (runtime bwrap), measures through the official Python client over real HTTP, and prints
medians and ratios against floors measured in the same run:

- API requests vs. a bare HTTP GET of ``/version`` on the same server (HTTP + client overhead);
- pod create-to-Running vs. starting ``bwrap ... true`` directly (namespace setup floor).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from kubernetes import client, watch

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.sandbox import lifecycle


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms"


def row(name: str, samples: list[float], floor: list[float] | None = None) -> None:
    ratio = f"  x{statistics.median(samples) / statistics.median(floor):5.1f} of floor" if floor else ""
    print(f"  {name:<34}{ms(samples)}{ratio}")


def bench_api(api: client.ApiClient, rounds: int) -> None:
    core = client.CoreV1Api(api)
    ns = "default"
    for i in range(50):
        core.create_namespaced_config_map(ns, {"metadata": {"name": f"bench-{i}", "labels": {"bench": "yes"}},
                                               "data": {"k": str(i)}})
    version = client.VersionApi(api)
    floor = timed(lambda: version.get_code(), rounds)
    print("API requests (median, official client, loopback HTTP):")
    row("GET /version (floor)", floor)
    row("get configmap", timed(lambda: core.read_namespaced_config_map("bench-7", ns), rounds), floor)
    row("list 50 configmaps by label", timed(
        lambda: core.list_namespaced_config_map(ns, label_selector="bench=yes"), rounds), floor)
    n = iter(range(10**9))
    row("strategic-merge patch configmap", timed(
        lambda: core.patch_namespaced_config_map("bench-7", ns, {"data": {"k": str(next(n))}}), rounds), floor)


def bench_watch(api: client.ApiClient, watch_api: client.ApiClient, rounds: int) -> None:
    core, wcore = client.CoreV1Api(api), client.CoreV1Api(watch_api)
    ns = "default"
    rv = core.list_namespaced_config_map(ns).metadata.resource_version
    seen: dict[str, float] = {}
    w = watch.Watch()

    def consume() -> None:
        for ev in w.stream(wcore.list_namespaced_config_map, ns, resource_version=rv, timeout_seconds=120):
            name = ev["object"].metadata.name
            if name.startswith("watch-") and ev["type"] == "ADDED":
                seen[name] = time.perf_counter()
                if len(seen) == rounds:
                    w.stop()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    time.sleep(0.3)
    lat = []
    for i in range(rounds):
        name = f"watch-{i}"
        t0 = time.perf_counter()
        core.create_namespaced_config_map(ns, {"metadata": {"name": name}})
        while name not in seen:
            time.sleep(0.0005)
        lat.append(seen[name] - t0)
    print("Watch:")
    row("create -> ADDED event delivered", lat)


def bench_pods(api: client.ApiClient, rounds: int) -> None:
    core = client.CoreV1Api(api)
    ns = "default"
    bwrap = shutil.which("bwrap") or "bwrap"
    floor = timed(lambda: subprocess.run(
        [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-all", "--die-with-parent",
         "true"], check=True), rounds)
    starts = []
    for _ in range(rounds):
        name = f"bench-{uuid.uuid4().hex[:6]}"
        t0 = time.perf_counter()
        core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
            "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}]}})
        while core.read_namespaced_pod(name, ns).status.phase != "Running":
            time.sleep(0.005)
        starts.append(time.perf_counter() - t0)
        core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
    print("Pods (bwrap runtime):")
    row("bwrap start of `true` (floor)", floor)
    row("pod create -> Running", starts, floor)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="nhdev-bench-"))
    rec, _ = lifecycle.start(state, runtime="bwrap")
    try:
        target = resolve_target(rec.kubeconfig, "nhdev-sandbox")
        api = api_client(target)
        bench_api(api, args.rounds * 10)
        bench_watch(api, api_client(target), args.rounds)
        bench_pods(api, max(5, args.rounds // 3))
    finally:
        lifecycle.stop(state)
        shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
