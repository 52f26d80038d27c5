"""The sandbox's node: schedules pods onto ``nhdev-sandbox``, runs them, reports their status.

One :class:`PodWorker` per pod (keyed by uid) owns that pod's sandbox, volumes, containers and
probes, and writes ``status`` through ``store.mutate(..., subresource="status")``. The kubelet
feeds workers from a pod watch plus a periodic re-list (so a missed event, a PVC that became
Bound or a ConfigMap that appeared is noticed), and serves exec, port connections and log paths
to the streaming layer.

Pods that were running when the server stopped are started again on the next start, from their
stored spec; their containers count one more restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import socket
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nhdev.sandbox.container_config import ContainerConfigError, build_container_config
from nhdev.sandbox.events import record_event
from nhdev.sandbox.images import ImageList
from nhdev.sandbox.pod_status import (
    DEFAULT_NODE_LABELS,
    ContainerRecord,
    PodConditions,
    pod_phase,
    schedule_problem,
    terminated_state,
    timestamp,
    unbound_claims_message,
)
from nhdev.sandbox.podlogs import ContainerLogWriter
from nhdev.sandbox.probes import ProbeWorker
from nhdev.sandbox.runtime import (
    ContainerConfig,
    ContainerProcess,
    ContainerStartError,
    ExecProcess,
    PodSandbox,
    Runtime,
)
from nhdev.sandbox.volumes import VolumeError, VolumeSource, prepare_volumes, unbound_claims

if TYPE_CHECKING:
    from nhdev.sandbox.store import Store

log = logging.getLogger("nhdev.sandbox.kubelet")

NODE_NAME = "nhdev-sandbox"
POD_IP = "127.0.0.1"
BACKOFF_CAP = 300.0
BACKOFF_RESET_AFTER = 600.0  # a container that ran this long starts its back-off afresh
T = TypeVar("T")


class ContainerUnavailable(Exception):
    """exec, port-forward or logs asked for a pod/container that cannot serve it (HTTP 400)."""


def backoff_base_from_env() -> float:
    return float(os.environ.get("NHDEV_SANDBOX_BACKOFF_BASE") or 10.0)


class Backoff:
    """The kubelet's restart back-off: the first restart at once, then base, doubling, capped."""

    def __init__(self, base: float) -> None:
        self.base = base
        self.next_delay = 0.0

    def after_run(self, ran_for: float) -> float:
        if ran_for >= BACKOFF_RESET_AFTER:
            self.next_delay = 0.0
        delay = self.next_delay
        self.next_delay = min(BACKOFF_CAP, max(self.base, delay * 2))
        return delay


def _restarts(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


class _ProbeTarget:
    """A container instance as probes see it."""

    def __init__(self, runtime: Runtime, sandbox: PodSandbox, process: ContainerProcess) -> None:
        self.runtime, self.sandbox, self.process = runtime, sandbox, process

    async def exec_output(self, argv: list[str], timeout: float) -> tuple[int, str]:
        running = await self.runtime.exec(self.sandbox, self.process, argv, tty=False, stdin=False)
        try:
            assert running.process.stdout is not None and running.process.stderr is not None
            async with asyncio.timeout(timeout):
                out, err = await asyncio.gather(running.process.stdout.read(), running.process.stderr.read())
            return await running.wait(), (out + err).decode(errors="replace")
        finally:
            if running.process.returncode is None:
                running.kill()

    async def connect(self, port: int, timeout: float) -> socket.socket:
        return await self.runtime.open_connection(self.sandbox, port, timeout)


class PodWorker:
    """Runs one pod: scheduling, sandbox, volumes, init and app containers, probes, deletion."""

    def __init__(self, kubelet: Kubelet, pod: dict) -> None:
        self.kubelet = kubelet
        self.store = kubelet.store
        self.pod = pod
        meta = pod["metadata"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.dir = kubelet.pod_dir(self.uid)
        self.changed = asyncio.Event()
        self.sandbox: PodSandbox | None = None
        self.volumes: dict[str, VolumeSource] = {}
        stored = pod.get("status") or {}
        self.conditions = PodConditions(stored.get("conditions"))
        self.start_time: str | None = stored.get("startTime")
        spec = pod["spec"]
        self.init_records = [ContainerRecord(c["name"], c.get("image", ""), init=True)
                             for c in spec.get("initContainers") or []]
        self.app_records = [ContainerRecord(c["name"], c.get("image", "")) for c in spec["containers"]]
        self._resume(stored)
        self.scheduled = False
        self.initialized = not self.init_records
        self.init_failed = False
        self.stopping = False
        self.silent = False  # server shutdown or pod gone: no more status writes
        self.main: asyncio.Task[None] | None = None
        self.supervisors: list[asyncio.Task[int]] = []
        self.pending: set[asyncio.Future[Any]] = set()
        self.background: set[asyncio.Task[int]] = set()
        self.terminating: asyncio.Task[None] | None = None
        self.kill_deadline: float | None = None
        self._last_problem: str | None = None

    # --- bookkeeping ---------------------------------------------------------------------

    def _resume(self, stored: dict) -> None:
        for key, records in (("initContainerStatuses", self.init_records), ("containerStatuses", self.app_records)):
            previous = {s.get("name"): s for s in stored.get(key) or []}
            for record in records:
                if record.name in previous:
                    record.resume_from(previous[record.name])

    @property
    def records(self) -> list[ContainerRecord]:
        return self.init_records + self.app_records

    def record(self, name: str) -> ContainerRecord | None:
        return next((r for r in self.records if r.name == name), None)

    def _spec_of(self, record: ContainerRecord) -> dict:
        key = "initContainers" if record.init else "containers"
        return next(c for c in self.pod["spec"].get(key) or [] if c["name"] == record.name)

    def _event(self, reason: str, message: str, *, warning: bool = False, component: str = "kubelet") -> None:
        if not self.silent:
            record_event(self.store, self.pod, reason, message, type="Warning" if warning else "Normal",
                         component=component)

    async def _guarded(self, awaitable: Awaitable[T]) -> T:
        """Awaits a start (of a sandbox or container) that must not be lost if we are cancelled
        meanwhile: its result is then cleaned up by the termination path."""
        future = asyncio.ensure_future(awaitable)
        self.pending.add(future)
        result = await asyncio.shield(future)
        self.pending.discard(future)
        return result

    async def _wait_for_change(self) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # arrives together with the event, and the worker would never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.kubelet.resync_seconds):
                await self.changed.wait()
        if self.stopping:
            raise asyncio.CancelledError

    def update(self, pod: dict) -> None:
        self.pod = pod
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            grace = float(meta.get("deletionGracePeriodSeconds") or 0)
            deadline = time.monotonic() + grace
            self.kill_deadline = deadline if self.kill_deadline is None else min(self.kill_deadline, deadline)
            if self.terminating is None:
                self.terminating = asyncio.create_task(self._terminate(remove_from_store=True))
        else:
            self._restart_changed_images()
        self.changed.set()

    def _restart_changed_images(self) -> None:
        for record in self.app_records:
            image = self._spec_of(record).get("image", "")
            if record.process is not None and image != record.image and not record.replace:
                record.replace = True
                self._event("Killing", f"Container {record.name} definition changed, will be restarted")
                task = asyncio.create_task(record.process.stop(self._grace()))
                self.background.add(task)
                task.add_done_callback(self.background.discard)

    def _grace(self) -> float:
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    # --- status --------------------------------------------------------------------------

    def _phase(self) -> str:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        return pod_phase(policy, self.init_records, self.app_records, self.initialized, self.init_failed)

    def _status(self) -> dict:
        phase = self._phase()
        if self.scheduled:
            self._set_container_conditions(phase)
        status: dict[str, Any] = {"phase": phase, "conditions": self.conditions.to_list()}
        if self.scheduled:
            status.update(hostIP=POD_IP, hostIPs=[{"ip": POD_IP}], startTime=self.start_time,
                          containerStatuses=[r.status() for r in self.app_records])
            if self.init_records:
                status["initContainerStatuses"] = [r.status() for r in self.init_records]
        if self.sandbox is not None:
            status.update(podIP=POD_IP, podIPs=[{"ip": POD_IP}])
        return status

    def _set_container_conditions(self, phase: str) -> None:
        incomplete = [r.name for r in self.init_records
                      if not ("terminated" in r.state and r.state["terminated"]["exitCode"] == 0)]
        if self.initialized or not incomplete:
            self.conditions.set("Initialized", True)
        else:
            self.conditions.set("Initialized", False, "ContainersNotInitialized",
                                f"containers with incomplete status: [{' '.join(incomplete)}]")
        unready = [r.name for r in self.app_records if not r.ready]
        if not unready:
            for type_ in ("ContainersReady", "Ready"):
                self.conditions.set(type_, True)
            return
        reason = "PodCompleted" if phase in ("Succeeded", "Failed") else "ContainersNotReady"
        message = None if reason == "PodCompleted" else f"containers with unready status: [{' '.join(unready)}]"
        for type_ in ("ContainersReady", "Ready"):
            self.conditions.set(type_, False, reason, message)

    def publish(self) -> None:
        if self.silent:
            return
        from nhdev.sandbox.store import NotFoundError, StoreError

        status = self._status()

        def apply(pod: dict) -> None:
            pod.setdefault("status", {}).update(status)

        try:
            self.store.mutate("pods", self.namespace, self.name, apply, subresource="status")
        except NotFoundError:
            pass
        except StoreError:
            log.warning("could not write the status of pod %s/%s", self.namespace, self.name, exc_info=True)

    # --- the pod's life --------------------------------------------------------------------

    def start(self) -> None:
        self.main = asyncio.create_task(self._run(), name=f"pod {self.namespace}/{self.name}")

    async def _run(self) -> None:
        try:
            await self._schedule()
            await self._set_up()
            if await self._run_init_containers():
                await self._run_app_containers()
            self.publish()
            if self._phase() in ("Succeeded", "Failed") and not self.stopping:
                await self._remove_sandbox()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("pod %s/%s failed in the kubelet", self.namespace, self.name)

    def _node_labels(self) -> dict[str, str]:
        node = self.store.try_get("nodes", None, self.kubelet.node_name)
        labels = ((node or {}).get("metadata") or {}).get("labels")
        return dict(labels) if labels else {**DEFAULT_NODE_LABELS, "kubernetes.io/hostname": self.kubelet.node_name}

    def _schedule_problem(self) -> str | None:
        problem = schedule_problem(self.pod["spec"], self.kubelet.node_name, self._node_labels())
        if problem is None and (claims := unbound_claims(self.store, self.pod)):
            problem = unbound_claims_message(claims)
        return problem

    async def _schedule(self) -> None:
        while True:
            self.changed.clear()
            problem = self._schedule_problem()
            if problem is None:
                break
            self.conditions.set("PodScheduled", False, "Unschedulable", problem)
            if problem != self._last_problem:
                self._event("FailedScheduling", problem, warning=True, component="default-scheduler")
                self._last_problem = problem
            self.publish()
            await self._wait_for_change()
        if self.pod["spec"].get("nodeName") != self.kubelet.node_name:
            self._bind()
        self.scheduled = True
        self.conditions.set("PodScheduled", True)

    def _bind(self) -> None:
        node = self.kubelet.node_name

        def bind(pod: dict) -> None:
            pod["spec"]["nodeName"] = node

        from nhdev.sandbox.store import StoreError

        try:
            self.pod = self.store.mutate("pods", self.namespace, self.name, bind)
        except StoreError:
            log.warning("could not bind pod %s/%s to %s", self.namespace, self.name, node, exc_info=True)
            return
        self._event("Scheduled", f"Successfully assigned {self.namespace}/{self.name} to {node}",
                    component="default-scheduler")

    async def _set_up(self) -> None:
        self.start_time = self.start_time or timestamp()
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.init_records:
            for record in self.app_records:
                record.state = {"waiting": {"reason": "PodInitializing"}}
        self.publish()
        hostname = self.pod["spec"].get("hostname") or self.name
        self.sandbox = await self._guarded(self.kubelet.runtime.create_sandbox(self.uid, hostname[:63]))
        while True:
            self.changed.clear()
            try:
                self.volumes = prepare_volumes(self.store, self.pod, self.dir)
                return
            except VolumeError as exc:
                self._event("FailedMount", str(exc), warning=True)
                self.publish()
            await self._wait_for_change()

    async def _run_init_containers(self) -> bool:
        policy = "Never" if self.pod["spec"].get("restartPolicy") == "Never" else "OnFailure"
        for record in self.init_records:
            if await self._supervise(record, policy) != 0:
                self.init_failed = not self.stopping
                self.publish()
                return False
        self.initialized = True
        for record in self.app_records:
            if record.state.get("waiting", {}).get("reason") == "PodInitializing":
                record.state = {"waiting": {"reason": "ContainerCreating"}}
        self.publish()
        return True

    async def _run_app_containers(self) -> None:
        policy = self.pod["spec"].get("restartPolicy", "Always")
        self.supervisors = [asyncio.create_task(self._supervise(r, policy)) for r in self.app_records]
        await asyncio.gather(*self.supervisors)

    # --- one container ---------------------------------------------------------------------

    async def _supervise(self, record: ContainerRecord, policy: str) -> int:
        """Runs a container until it ends for good; returns its last exit code."""
        backoff = Backoff(self.kubelet.backoff_base)
        while True:
            await self._pull(record)
            started = time.monotonic()
            code = await self._run_instance(record)
            if self.stopping:
                return code if code is not None else 1
            replaced, record.replace = record.replace, False
            if code is not None and not replaced and not _restarts(policy, code):
                return code
            delay = 0.0 if replaced else backoff.after_run(time.monotonic() - started)
            if code is not None:
                record.last_state = record.state
                if delay:
                    self._back_off(record, delay)
            await asyncio.sleep(delay if code is not None else max(delay, 1.0))

    def _back_off(self, record: ContainerRecord, delay: float) -> None:
        pod = f"{self.name}_{self.namespace}({self.uid})"
        message = f"back-off {delay:g}s restarting failed container={record.name} pod={pod}"
        record.state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        self._event("BackOff", f"Back-off restarting failed container {record.name} in pod {pod}", warning=True)
        self.publish()

    async def _pull(self, record: ContainerRecord) -> None:
        """Waits until the container's image is in the image list, like a failing pull."""
        delay = self.kubelet.backoff_base
        while True:
            image = self._spec_of(record).get("image", "")
            record.image = image
            # A thread: with podman, asking its image store runs podman, which may wait on its locks.
            if await asyncio.to_thread(self.kubelet.images.known, image):
                break
            message = (f'Failed to pull image "{image}": the image is not in the sandbox image list '
                       f"(the sandbox runs images on the host root; add it with: nhdev sandbox images add {image})")
            record.state = {"waiting": {"reason": "ErrImagePull", "message": message}}
            self._event("Failed", message, warning=True)
            self._event("Failed", "Error: ErrImagePull", warning=True)
            self.publish()
            await asyncio.sleep(min(delay, 1.0))
            record.state = {"waiting": {"reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}}
            self._event("BackOff", f'Back-off pulling image "{image}"')
            self._event("Failed", "Error: ImagePullBackOff", warning=True)
            self.publish()
            await asyncio.sleep(delay)
            delay = min(BACKOFF_CAP, delay * 2)
        self._event("Pulled", f'Container image "{record.image}" already present on machine')

    async def _run_instance(self, record: ContainerRecord) -> int | None:
        """Starts one instance and waits for its end: its exit code, None if it could not be configured."""
        spec = self._spec_of(record)
        image = spec.get("image", "")
        images = self.kubelet.images
        image_user = await asyncio.to_thread(images.user, image)
        try:
            config = build_container_config(self.store, self.pod, spec, self.volumes, images.environment(image),
                                            images.mounts(image), image_user=image_user)
        except ContainerConfigError as exc:
            record.state = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
            self._event("Failed", f"Error: {exc}", warning=True)
            self.publish()
            return None
        if record.ever_ran:
            record.restart_count += 1
        record.ever_ran = True
        instance = record.restart_count
        digest = hashlib.sha256(f"{self.uid}/{record.name}/{instance}".encode()).hexdigest()
        record.container_id = f"{self.kubelet.runtime.name}://{digest}"
        writer = ContainerLogWriter(self.kubelet.log_file(self.uid, record.name, instance))
        self.kubelet.live_logs.add(writer.path)
        try:
            return await self._run_started(record, spec, config, writer)
        finally:
            writer.close()
            self.kubelet.live_logs.discard(writer.path)

    async def _run_started(self, record: ContainerRecord, spec: dict, config: ContainerConfig,
                           writer: ContainerLogWriter) -> int:
        assert self.sandbox is not None
        try:
            process = await self._guarded(self.kubelet.runtime.start_container(self.sandbox, config))
        except ContainerStartError as exc:
            record.state = terminated_state(128, None, record.container_id, "StartError", str(exc))
            self._event("Failed", f"Error: {exc}", warning=True)
            self.publish()
            return 128
        if self.stopping:
            process.kill()
        record.process, record.config = process, config
        started_at = timestamp()
        record.state = {"running": {"startedAt": started_at}}
        self._event("Created", f"Created container {record.name}")
        self._event("Started", f"Started container {record.name}")
        assert process.process.stdout is not None and process.process.stderr is not None
        pumps = [asyncio.create_task(writer.pump("stdout", process.process.stdout)),
                 asyncio.create_task(writer.pump("stderr", process.process.stderr))]
        probes = self._start_probes(record, spec, process)
        self.publish()
        try:
            code = await process.wait()
        finally:
            for task in probes:
                task.cancel()
            await asyncio.wait(pumps, timeout=1.0)
            for task in pumps:
                task.cancel()
            record.process = None
            record.ready = record.started = False
        record.state = terminated_state(code, started_at, record.container_id)
        self.publish()
        return code

    # --- probes ------------------------------------------------------------------------------

    def _start_probes(self, record: ContainerRecord, spec: dict, process: ContainerProcess) -> list[asyncio.Task]:
        assert self.sandbox is not None
        target = _ProbeTarget(self.kubelet.runtime, self.sandbox, process)
        tasks: list[asyncio.Task] = []
        readiness_ok = [spec.get("readinessProbe") is None]

        def refresh_ready() -> None:
            ready = record.running and record.started and readiness_ok[0]
            if ready != record.ready:
                record.ready = ready
                self.publish()

        def unhealthy(message: str) -> None:
            self._event("Unhealthy", message, warning=True)

        def readiness_changed(healthy: bool, message: str) -> None:
            readiness_ok[0] = healthy
            refresh_ready()

        def kill_on_failure(kind: str) -> Any:
            def changed(healthy: bool, message: str) -> None:
                if not healthy and record.process is process:
                    self._event("Killing", f"Container {record.name} failed {kind} probe, will be restarted")
                    probe = spec.get(f"{kind}Probe") or {}
                    grace = float(probe.get("terminationGracePeriodSeconds") or self._grace())
                    tasks.append(asyncio.create_task(process.stop(grace)))
            return changed

        def begin_after_startup() -> None:
            for kind, on_change, healthy in (("liveness", kill_on_failure("liveness"), True),
                                             ("readiness", readiness_changed, False)):
                if spec.get(f"{kind}Probe"):
                    worker = ProbeWorker(kind.capitalize(), spec[f"{kind}Probe"], spec, target,
                                         initially_healthy=healthy, on_change=on_change, on_failure=unhealthy)
                    tasks.append(asyncio.create_task(worker.run()))
            refresh_ready()

        def startup_changed(healthy: bool, message: str) -> None:
            if healthy:
                record.started = True
                begin_after_startup()
            else:
                kill_on_failure("startup")(False, message)

        if spec.get("startupProbe"):
            worker = ProbeWorker("Startup", spec["startupProbe"], spec, target, initially_healthy=False,
                                 on_change=startup_changed, on_failure=unhealthy)
            tasks.append(asyncio.create_task(worker.run()))
        else:
            record.started = True
            begin_after_startup()
        return tasks

    # --- the end -------------------------------------------------------------------------------

    async def _run_pre_stop(self, record: ContainerRecord, deadline: float) -> None:
        hook = (self._spec_of(record).get("lifecycle") or {}).get("preStop") or {}
        budget = max(0.0, deadline - time.monotonic())
        if "sleep" in hook:
            await asyncio.sleep(min(budget, float(hook["sleep"].get("seconds") or 0)))
        elif "exec" in hook and record.process is not None and self.sandbox is not None:
            target = _ProbeTarget(self.kubelet.runtime, self.sandbox, record.process)
            with contextlib.suppress(Exception):
                await target.exec_output(list(hook["exec"].get("command") or []), budget)

    async def _stop_containers(self) -> None:
        """SIGTERM (after preStop hooks) to every container, SIGKILL at the kill deadline."""
        self.stopping = True
        running = [r for r in self.records if r.process is not None]
        deadline = self.kill_deadline if self.kill_deadline is not None else time.monotonic()
        for record in running:
            self._event("Killing", f"Stopping container {record.name}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await asyncio.gather(*(self._run_pre_stop(r, deadline) for r in running))
        processes = [r.process for r in running if r.process is not None]
        for process in processes:
            process.terminate()
        waits = [asyncio.ensure_future(p.wait()) for p in processes]
        while waits and not all(w.done() for w in waits):
            deadline = self.kill_deadline if self.kill_deadline is not None else time.monotonic()
            if time.monotonic() >= deadline:
                break
            self.changed.clear()
            shortened = asyncio.ensure_future(self.changed.wait())  # a new delete may shorten the grace
            await asyncio.wait([*waits, shortened], timeout=max(0.0, deadline - time.monotonic()),
                               return_when=asyncio.FIRST_COMPLETED)
            shortened.cancel()
        for process in processes:
            if process.process.returncode is None:
                process.kill()
        await asyncio.gather(*(p.wait_or_kill_wrapper() for p in processes))
        for wait in waits:
            wait.cancel()

    async def _cancel_tasks(self) -> None:
        tasks = [t for t in [self.main, *self.supervisors] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future in list(self.pending):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                result = await future
                if isinstance(result, ContainerProcess):
                    result.kill()
                    await result.wait_or_kill_wrapper()
                elif isinstance(result, PodSandbox):
                    await self.kubelet.runtime.remove_sandbox(result)
        self.pending.clear()

    async def _remove_sandbox(self) -> None:
        if self.sandbox is not None:
            sandbox, self.sandbox = self.sandbox, None
            await self.kubelet.runtime.remove_sandbox(sandbox)

    async def shut_down(self, grace: float) -> None:
        """Server shutdown: stop everything, write nothing (the pod runs again on the next start)."""
        self.silent = True
        deadline = time.monotonic() + min(grace, self._grace())
        self.kill_deadline = deadline if self.kill_deadline is None else min(self.kill_deadline, deadline)
        self.changed.set()  # a termination in progress must see the shorter deadline now
        if self.terminating is not None:
            await asyncio.gather(self.terminating, return_exceptions=True)
        await self._stop_containers()
        await self._cancel_tasks()
        await self._remove_sandbox()

    def gone(self) -> None:
        """The pod object disappeared from the store: kill at once, then clean up."""
        self.silent = True
        self.kill_deadline = time.monotonic()
        self.changed.set()
        if self.terminating is None:
            self.terminating = asyncio.create_task(self._terminate(remove_from_store=False))

    async def _terminate(self, *, remove_from_store: bool) -> None:
        try:
            await self._stop_containers()
            await self._cancel_tasks()
            self.publish()
            await self._remove_sandbox()
            if remove_from_store and not self.silent:
                self.kubelet.finish_deletion(self.pod)
            else:
                self.kubelet.remove_pod_dir(self.uid)
        finally:
            self.kubelet.forget(self)


class Kubelet:
    """Runs the pods of node ``node_name`` through ``runtime`` (see the module docstring)."""

    def __init__(self, store: Store, state_dir: Path, runtime: Runtime, images: ImageList,
                 node_name: str = NODE_NAME, *, backoff_base: float | None = None,
                 resync_seconds: float = 2.0, shutdown_grace: float = 5.0) -> None:
        self.store = store
        self.state_dir = Path(state_dir)
        self.runtime = runtime
        self.images = images
        self.node_name = node_name
        self.backoff_base = backoff_base if backoff_base is not None else backoff_base_from_env()
        self.resync_seconds = resync_seconds
        self.shutdown_grace = shutdown_grace
        self.workers: dict[str, PodWorker] = {}
        self.live_logs: set[Path] = set()
        self._tasks: list[asyncio.Task[None]] = []

    # --- files ---------------------------------------------------------------------------------

    def pod_dir(self, uid: str) -> Path:
        return self.state_dir / "pods" / uid

    def log_file(self, uid: str, container: str, instance: int) -> Path:
        return self.pod_dir(uid) / "logs" / container / f"{instance}.log"

    def remove_pod_dir(self, uid: str) -> None:
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)

    def _collect_orphan_dirs(self) -> None:
        pods, _ = self.store.list("pods")
        known = {p["metadata"]["uid"] for p in pods}
        root = self.state_dir / "pods"
        for directory in root.iterdir() if root.is_dir() else []:
            if directory.name not in known:
                shutil.rmtree(directory, ignore_errors=True)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._collect_orphan_dirs()
        self._tasks = [asyncio.create_task(self._watch_pods(), name="kubelet watch"),
                       asyncio.create_task(self._resync(), name="kubelet resync")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(w.shut_down(self.shutdown_grace) for w in list(self.workers.values())),
                             return_exceptions=True)
        self.workers.clear()

    async def _watch_pods(self) -> None:
        from nhdev.sandbox.store import StoreError

        while True:
            watch = self.store.watch("pods")
            try:
                async for event in watch:
                    if event.type == "DELETED":
                        self._observe_deleted(event.object)
                    elif event.type in ("ADDED", "MODIFIED"):
                        self.observe(event.object)
            except StoreError:
                log.debug("pod watch ended; watching again", exc_info=True)
            finally:
                watch.close()
            await asyncio.sleep(0.1)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            try:
                pods, _ = self.store.list("pods")
                present = {p["metadata"]["uid"] for p in pods}
                for pod in pods:
                    self.observe(pod)
                for uid, worker in list(self.workers.items()):
                    if uid not in present:
                        worker.gone()
                    else:
                        worker.changed.set()
            except Exception:
                log.exception("kubelet resync failed")

    def observe(self, pod: dict) -> None:
        meta = pod["metadata"]
        worker = self.workers.get(meta["uid"])
        if worker is not None:
            worker.update(pod)
            return
        if meta.get("deletionTimestamp"):
            self.finish_deletion(pod)  # e.g. deleted while the server was down
            return
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return
        worker = PodWorker(self, pod)
        self.workers[meta["uid"]] = worker
        worker.start()

    def _observe_deleted(self, pod: dict) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.gone()
        else:
            self.remove_pod_dir(pod["metadata"]["uid"])

    def forget(self, worker: PodWorker) -> None:
        if self.workers.get(worker.uid) is worker:
            del self.workers[worker.uid]

    def finish_deletion(self, pod: dict) -> None:
        from nhdev.sandbox.store import NotFoundError

        meta = pod["metadata"]
        with contextlib.suppress(NotFoundError):
            self.store.delete("pods", meta["namespace"], meta["name"], grace_period_seconds=0,
                              preconditions={"uid": meta["uid"]})
        self.remove_pod_dir(meta["uid"])

    # --- serving exec, port-forward and logs ------------------------------------------------------

    def _worker(self, namespace: str, name: str) -> PodWorker:
        for worker in self.workers.values():
            if worker.namespace == namespace and worker.name == name and worker.terminating is None:
                return worker
        raise ContainerUnavailable(f'pod "{name}" is not running')

    def _running_container(self, namespace: str, pod: str, container: str) -> tuple[PodWorker, ContainerRecord]:
        worker = self._worker(namespace, pod)
        record = worker.record(container)
        if record is None:
            raise ContainerUnavailable(f"container {container} is not valid for pod {pod}")
        if record.process is None or worker.sandbox is None:
            raise ContainerUnavailable(f'container not found ("{container}")')
        return worker, record

    async def exec_in(self, namespace: str, pod: str, container: str, argv: list[str], *, tty: bool,
                      stdin: bool = True) -> ExecProcess:
        worker, record = self._running_container(namespace, pod, container)
        assert worker.sandbox is not None and record.process is not None
        return await self.runtime.exec(worker.sandbox, record.process, argv, tty=tty, stdin=stdin)

    async def open_port(self, namespace: str, pod: str, port: int, timeout: float = 5.0) -> socket.socket:
        worker = self._worker(namespace, pod)
        if worker.sandbox is None:
            raise ContainerUnavailable(f'pod "{pod}" has no running sandbox')
        return await self.runtime.open_connection(worker.sandbox, port, timeout)

    def container_process(self, namespace: str, pod: str, container: str) -> ContainerProcess:
        _, record = self._running_container(namespace, pod, container)
        assert record.process is not None
        return record.process

    def log_path(self, namespace: str, pod: str, container: str, previous: bool = False) -> Path:
        """The log file ``pods/log`` serves, chosen from the stored status like the kubelet does."""
        obj = self.store.get("pods", namespace, pod)
        status = obj.get("status") or {}
        statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
        found = next((s for s in statuses if s.get("name") == container), None)
        if found is None:
            raise ContainerUnavailable(f'container "{container}" in pod "{pod}" is waiting to start: ContainerCreating')
        state, count = found.get("state") or {}, int(found.get("restartCount") or 0)
        has_previous = bool((found.get("lastState") or {}).get("terminated"))
        if previous:
            if not has_previous:
                raise ContainerUnavailable(f'previous terminated container "{container}" in pod "{pod}" not found')
            return self.log_file(obj["metadata"]["uid"], container, count if "waiting" in state else count - 1)
        if "waiting" in state and not has_previous:
            reason = state["waiting"].get("reason") or "ContainerCreating"
            raise ContainerUnavailable(f'container "{container}" in pod "{pod}" is waiting to start: {reason}')
        return self.log_file(obj["metadata"]["uid"], container, count)

    def log_is_live(self, path: Path) -> bool:
        """Whether a container instance is still writing this log file."""
        return path in self.live_logs
