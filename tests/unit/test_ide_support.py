"""What the VS Code extension reads from nhdev, without a cluster: `cluster contexts`, the workload
listing with dev state, the session's `resync` op and the session spec's mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nhdev.cluster.rest import Kind
from nhdev.devmode import names
from nhdev.devmode.inventory import list_workloads
from nhdev.session.state import SessionSpec
from nhdev.session.sync_service import SyncService

NHDEV = str(Path(sys.executable).parent / "nhdev")


def nhdev(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NHDEV_", "KUBECONFIG"))}
    return subprocess.run([NHDEV, *args], env={**clean, **env}, capture_output=True, text=True, timeout=60,
                          check=False)


def test_cluster_contexts_lists_every_context_and_the_current_one(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "b",
        "clusters": [{"name": "c1", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u1", "user": {"token": "x"}}],
        "contexts": [{"name": "a", "context": {"cluster": "c1", "user": "u1", "namespace": "team"}},
                     {"name": "b", "context": {"cluster": "c1", "user": "u1"}}]}))
    done = nhdev("cluster", "contexts", "-o", "json", env={"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"kubeconfig": str(kubeconfig), "current": "b", "contexts": [
        {"name": "a", "cluster": "c1", "user": "u1", "namespace": "team"},
        {"name": "b", "cluster": "c1", "user": "u1", "namespace": "default"}]}
    text = nhdev("cluster", "contexts", env={"KUBECONFIG": str(kubeconfig), "HOME": str(tmp_path)}).stdout
    assert "* b" in text and "  a" in text


def test_cluster_contexts_without_a_kubeconfig_is_a_usage_error(tmp_path: Path) -> None:
    done = nhdev("cluster", "contexts", "-o", "json", env={"KUBECONFIG": str(tmp_path / "none"),
                                                           "HOME": str(tmp_path)})
    assert done.returncode == 2 and "no kubeconfig found" in done.stderr


class FakeKube:
    """``list(kind, namespace)`` from a fixed set of objects, as KubeRest returns them."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects

    def list(self, kind: Kind, namespace: str | None, label_selector: str | None = None) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind.kind]


def _owner(identity: str, session: str, mode: str = "replace") -> dict[str, str]:
    return {names.OWNER: json.dumps({"identity": identity, "session": session, "mode": mode,
                                     "since": "2026-01-01T00:00:00Z"})}


def _deployment(name: str, *, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None,
                ready: int = 1) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": name, "namespace": "ns", "annotations": annotations or {},
                                               "labels": labels or {}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "app", "ports": [{"containerPort": 8080, "name": "http"}]},
                {"name": names.SIDECAR_CONTAINER, "ports": [{"containerPort": 2222}]}]}}},
            "status": {"readyReplicas": ready}}


def test_list_workloads_shows_dev_state_and_hides_what_nhdev_generated() -> None:
    kube = FakeKube([
        _deployment("web", annotations=_owner("me@host", "s1")),
        _deployment("api"),
        _deployment("api-nhdev-abc123", annotations=_owner("you@there", "s2", "duplicate"), labels={
            names.ROLE: "duplicate", names.DUPLICATE_OF: "api", names.WORKLOAD_KIND: "deployment"}),
        _deployment("cron-nhdev-dev", labels={names.ROLE: "generated"}),
        {"kind": "CronJob", "metadata": {"name": "cron", "namespace": "ns",
                                         "annotations": _owner("you@there", "s3")},
         "spec": {"suspend": True, "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job"}]}}}}}},
        {"kind": "Job", "metadata": {"name": "cron-123", "namespace": "ns", "ownerReferences": [{"kind": "CronJob"}]},
         "spec": {}},
        {"kind": "Pod", "metadata": {"name": "web-1", "namespace": "ns", "ownerReferences": [{"kind": "ReplicaSet"}]},
         "spec": {"containers": [{"name": "app"}]}, "status": {"phase": "Running"}},
        {"kind": "Pod", "metadata": {"name": "bare", "namespace": "ns"}, "spec": {"containers": [{"name": "c"}]},
         "status": {"phase": "Pending"}},
    ])
    rows = {row["workload"]: row for row in list_workloads(kube, "ns", "me@host")}  # type: ignore[arg-type]
    assert list(rows) == ["cronjob/cron", "deployment/api", "deployment/web", "pod/bare"]
    web = rows["deployment/web"]
    assert web["containers"] == ["app"] and web["status"] == "1/1 ready"
    assert web["ports"] == [{"container": "app", "port": 8080, "name": "http"}]
    assert [(d["mode"], d["identity"], d["mine"], d["copy"]) for d in web["dev"]] == [
        ("replace", "me@host", True, None)]
    assert [(d["mode"], d["mine"], d["copy"]) for d in rows["deployment/api"]["dev"]] == [
        ("duplicate", False, "deployment/api-nhdev-abc123")]
    assert rows["cronjob/cron"]["status"] == "suspended" and rows["cronjob/cron"]["containers"] == ["job"]
    assert rows["cronjob/cron"]["dev"][0]["mine"] is False
    assert rows["pod/bare"] == {"workload": "pod/bare", "kind": "pod", "name": "bare", "namespace": "ns",
                                "containers": ["c"], "ports": [], "status": "Pending", "dev": []}


class FakeEngine:
    def __init__(self) -> None:
        self.compares = 0

    def request_full_compare(self) -> None:
        self.compares += 1

    def status(self) -> Any:
        class Status:
            def to_json(self) -> dict[str, Any]:
                return {"state": "idle"}
        return Status()


def test_resync_op_asks_the_engine_for_a_full_compare(tmp_path: Path) -> None:
    service = SyncService.__new__(SyncService)
    service.engine = None
    with pytest.raises(Exception, match="sync has not started yet"):
        service.ops()["resync"]({"op": "resync"})
    engine = FakeEngine()
    service.engine = engine  # type: ignore[assignment]
    assert service.ops()["resync"]({"op": "resync"}) == {"sync": {"state": "idle"}}
    assert engine.compares == 1


def test_session_spec_keeps_the_mode_and_reads_specs_written_before_it(tmp_path: Path) -> None:
    spec = SessionSpec(kubeconfig="k", context="c", namespace="n", workload="deployment/web", session_id="s",
                       mode="duplicate")
    spec.write(tmp_path / "spec.json")
    assert SessionSpec.read(tmp_path / "spec.json").mode == "duplicate"
    old = {k: v for k, v in spec.to_json().items() if k != "mode"}
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert SessionSpec.read(tmp_path / "old.json").mode == "replace"


class FakeProcess:
    def __init__(self, code: int = 143) -> None:
        self.code = code
        self.stopped = False

    def stop(self, grace: float = 5.0) -> int:
        self.stopped = True
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        return self.code


def _run_service(published: list[dict[str, Any]]) -> Any:
    import threading

    from nhdev.session.run_service import RunService

    service = RunService.__new__(RunService)
    service.lock = threading.RLock()
    service.run_process = None
    service.debug_run = None
    service._publish = published.append  # type: ignore[method-assign,assignment]
    return service


def test_stopping_run_or_debug_on_request_is_pushed_to_subscribers() -> None:
    from nhdev.debug.launch import DebugRun

    published: list[dict[str, Any]] = []
    service = _run_service(published)
    assert service.ops()["stop-debug"]({"op": "stop-debug"}) == {"exitCode": None}
    assert published == [], "nothing ran, nothing to tell"
    process = FakeProcess()
    service.debug_run = DebugRun(process, type("Forward", (), {"close": lambda self: None})(), None)  # type: ignore[arg-type]
    assert service.ops()["stop-debug"]({"op": "stop-debug"}) == {"exitCode": 143}
    assert process.stopped and service.debug_run is None
    assert published == [{"event": "debug", "state": "stopped", "exitCode": 143}]
    service.run_process = FakeProcess(0)
    service.ops()["stop-run"]({"op": "stop-run"})
    assert published[-1] == {"event": "run", "state": "stopped", "exitCode": 0}


def test_a_debug_command_that_ends_by_itself_is_pushed_but_not_one_stopped_for_a_restart() -> None:
    from nhdev.debug.launch import DebugRun

    published: list[dict[str, Any]] = []
    service = _run_service(published)
    current, replaced = FakeProcess(1), FakeProcess(143)
    service.debug_run = DebugRun(current, None, None)  # type: ignore[arg-type]
    service._report_exit("debug", replaced)
    assert published == []
    service._report_exit("debug", current)
    assert published == [{"event": "debug", "state": "exited", "exitCode": 1}]


def test_a_running_session_is_kept_only_for_the_same_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nhdev.session.launcher import _same_spec
    from nhdev.session.registry import paths_for

    monkeypatch.setenv("HOME", str(tmp_path))
    project = tmp_path / "app"
    (project / ".nhdev").mkdir(parents=True)
    config = str(project / ".nhdev" / "config.yaml")
    running = SessionSpec(kubeconfig="k", context="c", namespace="n", workload="deployment/web", session_id="s",
                          forwards=[":8080"], config_path=config, local_root=str(project))
    paths = paths_for("key").ensure()
    running.write(paths.spec_file)
    same = SessionSpec(**{**running.to_json(), "local_root": str(project / "src")})  # dev start from a subdirectory
    assert _same_spec(paths, same)
    elsewhere = tmp_path / "copy"
    (elsewhere / ".nhdev").mkdir(parents=True)
    moved = SessionSpec(**{**running.to_json(), "config_path": str(elsewhere / ".nhdev" / "config.yaml"),
                           "local_root": str(elsewhere)})
    assert not _same_spec(paths, moved), "another checkout of the project: the session must sync that one"
    assert not _same_spec(paths, SessionSpec(**{**running.to_json(), "forwards": [":9090"]}))
