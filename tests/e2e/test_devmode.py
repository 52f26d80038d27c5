"""Dev mode end to end on the sandbox: every kind, duplicates, the lock, crash safety, HPA, drift."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.stream import stream

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.cluster.waiting import PodFailed
from nhdev.devmode import names
from nhdev.devmode.engine import FAULT_STEPS, DevModeEngine, WorkloadRef, owner_of, parse_workload_ref
from nhdev.devmode.plan import CacheDir, DevSpec, strip_server_fields
from nhdev.errors import Conflict, UsageError
from nhdev.sandbox.lifecycle import ServerRecord
from tests.sandbox.contract import wait_for

NHDEV = str(Path(sys.executable).parent / "nhdev")
DEV_IMAGE = "ghcr.io/nhdev/dev-python:3.12"
CONTAINER = {"name": "app", "image": "python:3.12", "command": ["python3", "-m", "http.server", "8080"],
             "env": [{"name": "MODE", "value": "prod"}],
             "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}
LABELS = {"app": "web"}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": {"containers": [CONTAINER]}}


def workload(kind: str, name: str) -> Obj:
    template = copy.deepcopy(TEMPLATE)
    meta = {"name": name, "labels": {"team": "core"}}
    if kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
                "spec": {"replicas": 2, "selector": {"matchLabels": LABELS}, "template": template}}
    if kind == "StatefulSet":
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
                "spec": {"replicas": 1, "serviceName": name, "selector": {"matchLabels": LABELS}, "template": template}}
    if kind == "DaemonSet":
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta,
                "spec": {"selector": {"matchLabels": LABELS}, "template": template}}
    job_template = copy.deepcopy(template)
    job_template["spec"]["restartPolicy"] = "Never"
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": {"template": job_template}}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta,
                "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": job_template}}}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta, "labels": {**meta["labels"], **LABELS}},
            "spec": copy.deepcopy(template["spec"])}


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    ns = f"dev-{uuid.uuid4().hex[:8]}"
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield ns
    kube.delete(kind_named("namespace"), None, ns)


@pytest.fixture
def kube(kubeconfig: Path) -> KubeRest:
    return KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))


def engine(kube: KubeRest, ns: str, identity: str, tmp_path: Path) -> DevModeEngine:
    return DevModeEngine(kube, ns, identity, state_dir=tmp_path / identity)


def spec(**kw: Any) -> DevSpec:
    return DevSpec(image=DEV_IMAGE, cache_dirs=(CacheDir("/cache", "1Gi"),), env=(("MODE", "dev"),), **kw)


def comparable(obj: Obj) -> Obj:
    clean = strip_server_fields(obj)
    annotations = clean["metadata"].get("annotations") or {}
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if clean["kind"] == "Pod":  # the scheduler's binding
        clean["spec"].pop("nodeName", None)
    if not annotations:
        clean["metadata"].pop("annotations", None)
    return clean


def exec_in(kubeconfig: Path, ns: str, pod: str, container: str, script: str) -> str:
    core = client.CoreV1Api(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    return str(stream(core.connect_get_namespaced_pod_exec, pod, ns, container=container,
                      command=["sh", "-c", script], stdout=True, stderr=True, stdin=False, tty=False))


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"])
def test_replace_round_trip_for_every_kind(kind: str, kube: KubeRest, kubeconfig: Path, namespace: str,
                                           tmp_path: Path) -> None:
    created = kube.create({**workload(kind, "web"), "metadata": {**workload(kind, "web")["metadata"],
                                                                  "namespace": namespace}})
    ref = parse_workload_ref(f"{kind.lower()}/web")
    before = comparable(created)
    eng = engine(kube, namespace, "ada@laptop", tmp_path)

    result = eng.start(ref, spec(container="app"), mode="replace", session_id="s1" + uuid.uuid4().hex[:10],
                       timeout=60)
    pod = kube.get(kind_named("pod"), namespace, result.pod)
    containers = {c["name"]: c for c in pod["spec"]["containers"]}
    assert containers["app"]["image"] == DEV_IMAGE and names.SIDECAR_CONTAINER in containers
    out = exec_in(kubeconfig, namespace, result.pod, "app", "pwd; echo $MODE; echo kept > /cache/f; ls /cache")
    assert out.split() == ["/home/nhdev-dev", "dev", "f"]
    claims = kube.list(kind_named("pvc"), namespace, label_selector=f"{names.ROLE}=cache")
    assert len(claims) == 1 and claims[0]["status"]["phase"] == "Bound"

    ended = eng.end(ref)
    assert ended.restored and not [d for d in ended.drifts if not d.kept]
    assert comparable(kube.get(ref.kind, namespace, "web")) == before
    assert not kube.list(kind_named("secret"), namespace, label_selector=f"{names.MANAGED_BY}=nhdev")
    assert kube.list(kind_named("pvc"), namespace, label_selector=f"{names.ROLE}=cache"), "caches are kept"

    again = eng.start(ref, spec(container="app"), mode="replace", session_id="s2" + uuid.uuid4().hex[:10],
                      timeout=60)
    assert exec_in(kubeconfig, namespace, again.pod, "app", "cat /cache/f") == "kept\n"
    eng.end(ref)
    assert comparable(kube.get(ref.kind, namespace, "web")) == before


def test_duplicates_leave_the_original_serving(kube: KubeRest, namespace: str, tmp_path: Path) -> None:
    kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    kube.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
                 "spec": {"selector": LABELS, "ports": [{"port": 80, "targetPort": 8080}]}})
    ref = WorkloadRef(kind_named("deployment"), "web")

    def original_pods() -> list[str] | None:
        pods = [p for p in kube.list(kind_named("pod"), namespace, label_selector="app=web")
                if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]
        return sorted(p["metadata"]["name"] for p in pods) if len(pods) == 2 else None

    before = wait_for("two ready original pods", original_pods, timeout=60)
    ada, bob = engine(kube, namespace, "ada@laptop", tmp_path), engine(kube, namespace, "bob@desk", tmp_path)
    a = ada.start(ref, spec(container="app"), mode="duplicate", session_id=uuid.uuid4().hex[:12], timeout=60)
    b = bob.start(ref, spec(container="app"), mode="duplicate", session_id=uuid.uuid4().hex[:12], timeout=60)
    assert a.target != b.target
    assert original_pods() == before, "the original's pods are untouched"
    ep = kube.get(kind_named("endpoints"), namespace, "web")
    targets = {a_["targetRef"]["name"] for s in ep.get("subsets", []) for a_ in s.get("addresses", [])}
    assert targets == set(before), "the Service routes to the original only"

    ada.end(ref)
    assert kube.try_get(kind_named("deployment"), namespace, a.target.split("/")[1]) is None
    assert kube.try_get(kind_named("deployment"), namespace, b.target.split("/")[1]) is not None
    bob.end(ref)


def test_lock_refuses_a_second_identity(kube: KubeRest, namespace: str, tmp_path: Path) -> None:
    kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    ref = WorkloadRef(kind_named("deployment"), "web")
    engine(kube, namespace, "ada@laptop", tmp_path).start(ref, spec(container="app"), mode="replace",
                                                          session_id=uuid.uuid4().hex[:12], timeout=60)
    with pytest.raises(Conflict, match="in dev mode by ada@laptop"):
        engine(kube, namespace, "bob@desk", tmp_path).start(ref, spec(container="app"), mode="replace",
                                                            session_id=uuid.uuid4().hex[:12], timeout=60)
    with pytest.raises(Conflict, match="by ada@laptop"):
        engine(kube, namespace, "bob@desk", tmp_path).end(ref)
    engine(kube, namespace, "bob@desk", tmp_path).end(ref, force=True)


def test_hpa_pinned_and_restored_and_drift_reported(kube: KubeRest, namespace: str, tmp_path: Path) -> None:
    original = kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    kube.create({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "web", "namespace": namespace},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                          "minReplicas": 2, "maxReplicas": 7}})
    ref = WorkloadRef(kind_named("deployment"), "web")
    eng = engine(kube, namespace, "ada@laptop", tmp_path)
    eng.start(ref, spec(container="app"), mode="replace", session_id=uuid.uuid4().hex[:12], timeout=60)
    hpa = kube.get(kind_named("hpa"), namespace, "web")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 1)
    # someone labels the workload and scales it during the session
    kube.patch(ref.kind, namespace, "web", {"metadata": {"labels": {"release": "r2"}}, "spec": {"replicas": 4}})
    ended = eng.end(ref)
    by_path = {d.path: d for d in ended.drifts}
    assert by_path["/metadata/labels"].kept and by_path["/metadata/labels"].now == {"release": "r2"}
    assert not by_path["/spec/replicas"].kept
    after = kube.get(ref.kind, namespace, "web")
    assert after["metadata"]["labels"]["release"] == "r2"
    assert after["spec"]["replicas"] == original["spec"]["replicas"]
    hpa = kube.get(kind_named("hpa"), namespace, "web")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 7)


def test_unknown_image_fails_fast_with_events_and_rolls_back(kube: KubeRest, namespace: str,
                                                               tmp_path: Path) -> None:
    created = kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    ref = WorkloadRef(kind_named("deployment"), "web")
    eng = engine(kube, namespace, "ada@laptop", tmp_path)
    bad = DevSpec(image="registry.invalid/dev:1", container="app")
    with pytest.raises(PodFailed, match=r"ImagePullBackOff|ErrImagePull") as err:
        eng.start(ref, bad, mode="replace", session_id=uuid.uuid4().hex[:12], timeout=60)
    assert "registry.invalid/dev:1" in str(err.value)
    assert comparable(kube.get(ref.kind, namespace, "web")) == comparable(created), "nothing left half-patched"
    assert not kube.list(kind_named("secret"), namespace, label_selector=f"{names.MANAGED_BY}=nhdev")
    dup = eng.start  # a failing duplicate leaves no copy behind either
    with pytest.raises(PodFailed):
        dup(ref, bad, mode="duplicate", session_id=uuid.uuid4().hex[:12], timeout=60)
    assert not kube.list(kind_named("deployment"), namespace, label_selector=f"{names.ROLE}=duplicate")


@pytest.mark.parametrize("mode", ["replace", "duplicate"])
def test_a_wrong_container_name_writes_nothing(mode: str, kube: KubeRest, namespace: str, tmp_path: Path) -> None:
    created = kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    ref = WorkloadRef(kind_named("deployment"), "web")
    eng = engine(kube, namespace, "ada@laptop", tmp_path)
    with pytest.raises(UsageError, match=r"deployment/web: no container 'ap' \(containers: app\)"):
        eng.start(ref, spec(container="ap"), mode=mode, session_id=uuid.uuid4().hex[:12], timeout=60)
    assert comparable(kube.get(ref.kind, namespace, "web")) == comparable(created), "the workload was changed"
    for kind in ("secret", "persistentvolumeclaim", "deployment"):
        made = kube.list(kind_named(kind), namespace, label_selector=f"{names.MANAGED_BY}=nhdev")
        assert not made, f"a {kind} was written: {[o['metadata']['name'] for o in made]}"


def test_config_patches_apply_after_the_recipe(kube: KubeRest, kubeconfig: Path, namespace: str,
                                               tmp_path: Path) -> None:
    from nhdev.devmode.plan import WorkloadPatch

    created = kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    ref = WorkloadRef(kind_named("deployment"), "web")
    eng = engine(kube, namespace, "ada@laptop", tmp_path)
    patches = (WorkloadPatch("strategic", {"spec": {"template": {"metadata": {"annotations": {"x": "1"}}}}}),
               WorkloadPatch("json", [{"op": "add", "path": "/metadata/annotations/patched", "value": "yes"}]))
    started = eng.start(ref, spec(container="app", patches=patches), mode="replace",
                        session_id=uuid.uuid4().hex[:12], timeout=60)
    live = kube.get(ref.kind, namespace, "web")
    assert live["metadata"]["annotations"]["patched"] == "yes"
    pod = kube.get(kind_named("pod"), namespace, started.pod)
    assert pod["metadata"]["annotations"]["x"] == "1"
    ended = eng.end(ref)
    assert ended.drifts == [], "nhdev's own patches are not someone else's changes"
    assert comparable(kube.get(ref.kind, namespace, "web")) == comparable(created)


def test_cleanup_finds_expired_duplicates_and_orphaned_backups(kube: KubeRest, kubeconfig: Path, namespace: str,
                                                               tmp_path: Path) -> None:
    import time

    kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    kube.create({**workload("Deployment", "gone"), "metadata": {"name": "gone", "namespace": namespace}})
    ref = WorkloadRef(kind_named("deployment"), "web")
    eng = engine(kube, namespace, "ada@laptop", tmp_path)
    dup = eng.start(ref, spec(container="app"), mode="duplicate", session_id=uuid.uuid4().hex[:12], timeout=60,
                    ttl_seconds=1)
    eng.start(WorkloadRef(ref.kind, "gone"), spec(container="app"), mode="replace",
              session_id=uuid.uuid4().hex[:12], timeout=60)
    kube.delete(ref.kind, namespace, "gone")  # someone deletes the workload while it is in dev mode
    time.sleep(2.1)  # RFC 3339 expiry has one-second resolution
    home = tmp_path / "home"
    dry = run_cli("cleanup", "-n", namespace, "--dry-run", "-o", "json", home=home, kubeconfig=kubeconfig)
    listed = json.loads(dry.stdout)["objects"]
    assert dup.target in listed
    assert "secret/nhdev-backup-deployment-gone" in listed
    assert not any(o.startswith("persistentvolumeclaim/") for o in listed), "caches only with --pvc"
    assert kube.try_get(kind_named("deployment"), namespace, dup.target.split("/")[1]) is not None
    done = run_cli("cleanup", "-n", namespace, "--pvc", home=home, kubeconfig=kubeconfig)
    assert done.returncode == 0, done.stderr
    assert kube.try_get(kind_named("deployment"), namespace, dup.target.split("/")[1]) is None
    assert not kube.list(kind_named("secret"), namespace, label_selector=f"{names.MANAGED_BY}=nhdev")
    assert not kube.list(kind_named("pvc"), namespace, label_selector=f"{names.MANAGED_BY}=nhdev")


def test_crash_looping_sidecar_fails_with_its_logs(kube: KubeRest, namespace: str, tmp_path: Path) -> None:
    kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    ref = WorkloadRef(kind_named("deployment"), "web")
    eng = engine(kube, namespace, "ada@laptop", tmp_path)
    broken = DevSpec(image=DEV_IMAGE, container="app", sidecar_args=("--no-such-flag",))
    with pytest.raises(PodFailed, match="CrashLoopBackOff"):
        eng.start(ref, broken, mode="replace", session_id=uuid.uuid4().hex[:12], timeout=60)
    assert owner_of(kube.get(ref.kind, namespace, "web")) is None, "rolled back"


def run_cli(*args: str, home: Path, kubeconfig: Path, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("NHDEV_")}
    full = {**inherited, "HOME": str(home), "KUBECONFIG": str(kubeconfig), **(env or {})}
    return subprocess.run([NHDEV, *args], capture_output=True, text=True, env=full, timeout=120)


@pytest.mark.parametrize("step", FAULT_STEPS)
def test_reset_after_a_crash_at_every_step(step: str, kube: KubeRest, kubeconfig: Path, namespace: str,
                                           tmp_path: Path, sandbox: ServerRecord) -> None:
    created = kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    kube.create({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "web", "namespace": namespace},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                          "minReplicas": 2, "maxReplicas": 5}})
    crashed = run_cli("dev", "start", "deployment/web", "-n", namespace, "--image", DEV_IMAGE, "-c", "app",
                      home=tmp_path / "a", kubeconfig=kubeconfig, env={"NHDEV_FAULT": step})
    assert crashed.returncode == -9, crashed.stderr
    reset = run_cli("dev", "reset", "deployment/web", "-n", namespace, "-o", "json",
                    home=tmp_path / "fresh", kubeconfig=kubeconfig)
    assert reset.returncode == 0, reset.stderr
    assert json.loads(reset.stdout)["workload"] == "deployment/web"
    assert comparable(kube.get(kind_named("deployment"), namespace, "web")) == comparable(created)
    hpa = kube.get(kind_named("hpa"), namespace, "web")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert not kube.list(kind_named("secret"), namespace, label_selector=f"{names.MANAGED_BY}=nhdev")


def test_cli_start_status_list_end_json(kube: KubeRest, kubeconfig: Path, namespace: str, tmp_path: Path) -> None:
    kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    home = tmp_path / "home"
    started = run_cli("dev", "start", "deploy/web", "-n", namespace, "--image", DEV_IMAGE, "-c", "app",
                      "-o", "json", home=home, kubeconfig=kubeconfig)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    assert info["mode"] == "replace" and info["devContainer"] == "app" and info["pod"].startswith("web-")
    listed = json.loads(run_cli("dev", "list", "-A", "-o", "json", home=home, kubeconfig=kubeconfig).stdout)
    assert any(e["workload"] == "deployment/web" and e["namespace"] == namespace for e in listed)
    status = json.loads(run_cli("dev", "status", "deployment/web", "-n", namespace, "-o", "json",
                                home=home, kubeconfig=kubeconfig).stdout)
    assert status["sessions"][0]["mine"] and status["sessions"][0]["pod"]["containers"]["app"]
    again = run_cli("dev", "start", "deploy/web", "-n", namespace, "--image", DEV_IMAGE, "-c", "app", "-o", "json",
                    home=home, kubeconfig=kubeconfig)
    assert json.loads(again.stdout)["resumed"] is True
    other = run_cli("dev", "start", "deploy/web", "-n", namespace, "--image", DEV_IMAGE, "-c", "app",
                    home=home, kubeconfig=kubeconfig, env={"NHDEV_IDENTITY": "bob@desk"})
    assert other.returncode == 1 and "in dev mode by" in other.stderr and "Traceback" not in other.stderr
    ended = run_cli("dev", "end", "deploy/web", "-n", namespace, "-o", "json", home=home, kubeconfig=kubeconfig)
    assert ended.returncode == 0 and json.loads(ended.stdout)["restored"] is True
    missing = run_cli("dev", "start", "deploy/nope", "-n", namespace, "--image", DEV_IMAGE,
                      home=home, kubeconfig=kubeconfig)
    assert missing.returncode == 1 and "deployment/nope" in missing.stderr and "not found" in missing.stderr


def test_session_keys_stay_where_they_belong(kube: KubeRest, kubeconfig: Path, namespace: str,
                                             tmp_path: Path) -> None:
    import base64
    import stat

    kube.create({**workload("Deployment", "web"), "metadata": {"name": "web", "namespace": namespace}})
    ref = WorkloadRef(kind_named("deployment"), "web")
    eng = engine(kube, namespace, "ada@laptop", tmp_path)
    started = eng.start(ref, spec(container="app"), mode="replace", session_id=uuid.uuid4().hex[:12], timeout=60)
    pod = kube.get(kind_named("pod"), namespace, started.pod)
    mounts = {c["name"]: {m["name"]: m for m in c.get("volumeMounts", [])} for c in pod["spec"]["containers"]}
    assert names.KEYS_VOLUME not in mounts["app"], "the dev container never sees the keys"
    assert mounts[names.SIDECAR_CONTAINER][names.KEYS_VOLUME]["readOnly"] is True
    assert "MISSING" in exec_in(kubeconfig, namespace, started.pod, "app",
                                f"ls {names.KEYS_MOUNT} 2>/dev/null || echo MISSING")

    secret = kube.list(kind_named("secret"), namespace, label_selector=f"{names.ROLE}=keys")[0]
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == {"authorized_keys", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"}
    assert data["authorized_keys"].startswith("ssh-ed25519 ") and "PRIVATE KEY" not in data["authorized_keys"]

    key_dir = tmp_path / "ada@laptop" / started.session
    assert stat.S_IMODE((key_dir / "client_key").stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert (key_dir / "host_key.pub").read_text().strip() == data["ssh_host_ed25519_key.pub"].strip()
    eng.end(ref)
    assert not kube.list(kind_named("secret"), namespace, label_selector=f"{names.ROLE}=keys"), \
        "ending dev mode revokes the session's keys"
