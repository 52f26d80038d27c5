"""``nhdev doctor``: can dev mode work here, and if not, what to fix.

Each check is a small function returning a :class:`Check`; none changes anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nhdev.cluster.kubeconfig import ClusterTarget, api_client
from nhdev.cluster.rest import Kind, KubeRest, kind_named
from nhdev.errors import ClusterError, NotFound

# Everything dev mode asks the API for (docs/rbac.yaml grants exactly this; tests/e2e/test_rbac.py
# records every request of a tour of dev mode and checks each is listed here), as
# (group, resources, verbs) rules.
DEV_MODE_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("apps", ("deployments", "statefulsets"), ("get", "list", "create", "update", "patch", "delete")),
    ("apps", ("daemonsets",), ("get", "list", "update", "patch")),
    ("batch", ("jobs", "cronjobs"), ("get", "list", "update", "patch")),
    ("", ("pods",), ("get", "list", "create", "update", "patch", "delete")),
    ("", ("pods/exec", "pods/portforward"), ("create",)),
    ("", ("pods/log",), ("get",)),
    ("", ("events",), ("list",)),
    ("", ("secrets",), ("get", "list", "create", "update", "delete")),
    ("", ("persistentvolumeclaims",), ("get", "list", "create", "delete")),
    ("autoscaling", ("horizontalpodautoscalers",), ("get", "list", "update")),
)
# The same, one (verb, group, resource, subresource) per access review.
DEV_MODE_PERMISSIONS: tuple[tuple[str, str, str, str], ...] = tuple(
    (verb, group, resource.partition("/")[0], resource.partition("/")[2])
    for group, resources, verbs in DEV_MODE_RULES for resource in resources for verb in verbs)
SSAR = kind_named("selfsubjectaccessreviews")
INOTIFY_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    skipped: bool = False

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_checks(target: ClusterTarget | None, workspace: Path, target_error: str = "") -> list[Check]:
    checks = [check_inotify(workspace)]
    if target is None:
        return [Check("kube access", False, target_error or "no kubeconfig",
                      "pass --kubeconfig/--context or set KUBECONFIG"), *checks]
    kube = KubeRest(api_client(target))
    access = check_access(kube, target)
    checks.insert(0, access)
    if access.ok:
        checks.insert(1, check_permissions(kube, target.namespace))
    return checks


def check_access(kube: KubeRest, target: ClusterTarget) -> Check:
    where = f"context {target.context}, namespace {target.namespace}"
    try:
        kube.get(Kind("Namespace", "namespaces", "v1", namespaced=False), None, target.namespace)
    except NotFound:
        return Check("kube access", False, f"{where}: namespace {target.namespace} does not exist",
                     f"kubectl create namespace {target.namespace}, or pass -n")
    except ClusterError as err:
        return Check("kube access", False, f"{where}: {err.message}", "check the kubeconfig and that the cluster runs")
    return Check("kube access", True, f"{where}: {kube.api.configuration.host} answers")


def check_permissions(kube: KubeRest, namespace: str) -> Check:
    denied = []
    for verb, group, resource, sub in DEV_MODE_PERMISSIONS:
        review = {"apiVersion": SSAR.api_version, "kind": SSAR.kind, "metadata": {}, "spec": {"resourceAttributes": {
            "namespace": namespace, "verb": verb, "group": group, "resource": resource, "subresource": sub}}}
        try:
            allowed = kube.create(review).get("status", {}).get("allowed", False)
        except NotFound:
            return Check("permissions", True, "the cluster does not serve access reviews (the nhdev sandbox "
                         "allows everything); not checked", skipped=True)
        except ClusterError as err:
            return Check("permissions", False, f"access review failed: {err.message}")
        if not allowed:
            denied.append(f"{verb} {resource}{'/' + sub if sub else ''}")
    if denied:
        return Check("permissions", False, f"in {namespace}, not allowed: {', '.join(denied)}",
                     "ask a cluster admin for the Role in nhdev's docs/rbac.yaml, bound to you in this namespace")
    return Check("permissions", True, f"everything dev mode does is allowed in {namespace}")


def check_inotify(workspace: Path) -> Check:
    try:
        limit = int(INOTIFY_WATCHES.read_text())
    except (OSError, ValueError):
        return Check("file watching", True, "inotify limits not readable; sync will poll", skipped=True)
    dirs = sum(1 for _ in _directories(workspace))
    if dirs * 2 > limit:
        return Check("file watching", False,
                     f"{workspace} has {dirs} directories; inotify allows {limit} watches",
                     f"sudo sysctl fs.inotify.max_user_watches={max(524288, dirs * 4)} (sync falls back to polling)")
    return Check("file watching", True, f"{dirs} directories to watch, inotify allows {limit}")


def _directories(root: Path, limit: int = 1_000_000) -> Iterator[str]:
    for count, (current, subdirs, _) in enumerate(os.walk(root), 1):
        subdirs[:] = [d for d in subdirs if d not in (".git", "node_modules", ".venv", "__pycache__")]
        yield current
        if count >= limit:
            return
