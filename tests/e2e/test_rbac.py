"""docs/rbac.yaml grants every API request dev mode makes.

The sandbox allows everything, so instead of applying the Role, every request nhdev's REST client
sends is recorded during a tour of dev mode (every workload kind in replace mode, a duplicate,
HPAs, cache volumes, config patches, status, list, end, reset, cleanup, doctor and finding the pod
for terminal/exec/run/debug), turned into the (verb, group, resource) RBAC would check, and looked
up in the Role. Streams (exec, port-forward, logs) do not go through that client; test_docs.py
checks those rules statically.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from nhdev.cli import cli
from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.devmode.engine import parse_workload_ref
from nhdev.doctor import DEV_MODE_PERMISSIONS
from nhdev.run.pods import find_pod, pod_query
from tests.unit.test_docs import RBAC, Permission, role_allows

IDENTITY = "rita@rbac"
CONTAINER = {"name": "app", "image": "python:3.12", "command": ["python3", "-m", "http.server", "8080"]}
KINDS = ("deployment", "statefulset", "daemonset", "job", "cronjob", "pod")
CONFIG = """
- name: web
  serviceType: {kind}
  containers:
    - name: app
      dev:
        image: ghcr.io/nhdev/dev-python:3.12
        persistentVolumeDirs: [{{path: /cache, capacity: 1Gi}}]
        patches:
          - type: merge
            patch: '{{"metadata": {{"annotations": {{"nhdev-test/patched": "yes"}}}}}}'
"""


def workload(kind: str, namespace: str) -> Obj:
    labels = {"app": f"web-{kind}"}
    template: dict[str, Any] = {"metadata": {"labels": labels}, "spec": {"containers": [copy.deepcopy(CONTAINER)]}}
    meta = {"name": "web", "namespace": namespace}
    if kind in ("deployment", "statefulset", "daemonset"):
        spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": template}
        if kind == "statefulset":
            spec["serviceName"] = "web"
        return {"apiVersion": "apps/v1", "kind": kind_named(kind).kind, "metadata": meta, "spec": spec}
    template["spec"]["restartPolicy"] = "Never"
    if kind == "job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": template}}
    if kind == "cronjob":
        return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
                "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {**meta, "labels": labels},
            "spec": copy.deepcopy(template["spec"]) | {"restartPolicy": "Always"}}


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    ns = f"rbac-{uuid.uuid4().hex[:8]}"
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield ns
    kube.delete(kind_named("namespace"), None, ns)


def permission_of(method: str, path: str, query: dict[str, str]) -> Permission:
    """What RBAC checks for one REST request (the apiserver's RequestInfo, for the paths nhdev uses)."""
    parts = path.strip("/").split("/")
    if parts[0] == "api":  # /api/v1/...
        group, rest = "", parts[2:]
    else:  # /apis/GROUP/VERSION/...
        group, rest = parts[1], parts[3:]
    namespace = None
    if rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    elif rest[0] == "namespaces" and len(rest) == 2:
        namespace = rest[1]  # the namespace object itself: its own namespace, for RBAC
    resource, name, sub = rest[0], (rest[1] if len(rest) > 1 else ""), (rest[2] if len(rest) > 2 else "")
    verb = {"GET": "get" if name else ("watch" if query.get("watch") else "list"), "POST": "create",
            "PUT": "update", "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}[method]
    return Permission(verb, group, resource + (f"/{sub}" if sub else ""), namespace)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Permission]:
    calls: list[Permission] = []
    original = KubeRest._request

    def recording(self: KubeRest, method: str, path: str, **kw: Any) -> tuple[int, bytes]:
        calls.append(permission_of(method, path, kw.get("query") or {}))
        return original(self, method, path, **kw)

    monkeypatch.setattr(KubeRest, "_request", recording)
    return calls


def test_the_role_grants_every_request_of_dev_mode(kubeconfig: Path, namespace: str, tmp_path: Path,
                                                   recorded: list[Permission],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox", namespace)))
    for kind in KINDS:
        kube.create(workload(kind, namespace))
    kube.create({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "web", "namespace": namespace},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                          "minReplicas": 2, "maxReplicas": 5}})
    (tmp_path / ".nhdev").mkdir()
    (tmp_path / ".nhdev" / "config.yaml").write_text("".join(CONFIG.format(kind=k) for k in KINDS))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NHDEV_IDENTITY", IDENTITY)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    recorded.clear()  # what the test set up is not nhdev's doing

    def nhdev(*args: str) -> str:
        result = CliRunner().invoke(cli, [*args[:2], "-n", namespace, *args[2:]], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    for kind in KINDS:
        nhdev("dev", "start", f"{kind}/web", "--no-session", "--timeout", "90")
        nhdev("dev", "status", f"{kind}/web")
        ref = parse_workload_ref(f"{kind}/web")
        find_pod(kube, pod_query(kube, namespace, ref, IDENTITY), None, "app", wait=30)  # terminal, exec, run
        nhdev("dev", "end", f"{kind}/web")
    nhdev("dev", "start", "deployment/web", "--mode", "duplicate", "--no-session", "--timeout", "90")
    nhdev("dev", "list")
    nhdev("dev", "end", "deployment/web")
    nhdev("dev", "reset", "deployment/web")
    nhdev("cleanup", "--pvc")
    nhdev("doctor")

    seen = set(recorded)
    assert {p.resource for p in seen} >= {"deployments", "statefulsets", "daemonsets", "jobs", "cronjobs", "pods",
                                          "secrets", "persistentvolumeclaims", "horizontalpodautoscalers",
                                          "events"}, "the tour did not reach everything"
    assert all(p.namespace == namespace for p in seen if p.resource != "selfsubjectaccessreviews")
    role = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d["kind"] == "Role")
    denied = sorted({p for p in seen if p.resource != "selfsubjectaccessreviews" and not role_allows(role, p)})
    assert not denied, f"docs/rbac.yaml does not allow: {denied}"
    checked_by_doctor = {Permission(verb, group, resource + (f"/{sub}" if sub else ""))
                         for verb, group, resource, sub in DEV_MODE_PERMISSIONS}
    unchecked = sorted({p._replace(namespace=None) for p in seen
                        if p.resource not in ("selfsubjectaccessreviews", "namespaces")} - checked_by_doctor)
    assert not unchecked, f"nhdev doctor does not check: {unchecked}"
