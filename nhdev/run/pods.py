"""Which pod and container a terminal, exec, run or debug command goes to.

The pod: the current dev pod of a dev-mode session (label ``nhdev.dev/session``), preferring the
caller's own replace session, then the caller's duplicate, then whoever holds the workload; when
the workload is not in dev mode, its newest running pod (found by its selector). The container:
``-c``, else the pod's dev container (annotation ``nhdev.dev/dev-container``), else the dev
config's container name, else the pod's first container.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from nhdev.cluster.rest import KubeRest, Obj, kind_named
from nhdev.devmode import names
from nhdev.devmode.engine import WorkloadRef, owner_of
from nhdev.errors import NotFound, Timeout, UsageError

PODS = kind_named("pod")
_DUPLICATE_KINDS = (kind_named("deployment"), kind_named("statefulset"))


@dataclass(frozen=True)
class PodTarget:
    """A running pod and the container to use in it."""

    namespace: str
    pod: str
    container: str
    session: str | None  # the dev-mode session whose pod this is; None outside dev mode
    work_dir: str | None  # the container's workingDir, when it sets one

    def __str__(self) -> str:
        return f"pod/{self.pod} container {self.container}"


@dataclass(frozen=True)
class PodQuery:
    """How to find the pod of one workload again (after it was replaced): a label selector."""

    namespace: str
    workload: str
    selector: str
    session: str | None
    pod_name: str | None = None  # a bare pod outside dev mode has no selector of its own


def pod_query(kube: KubeRest, namespace: str, ref: WorkloadRef, identity: str) -> PodQuery:
    """How to find ``ref``'s current pod: its dev-mode session's label, else its own selector."""
    live = kube.get(ref.kind, namespace, ref.name)
    owner = owner_of(live)
    mine = owner if owner and owner.get("identity") == identity else None
    session = _session(mine) or _my_duplicate_session(kube, namespace, ref, identity) or _session(owner)
    if session:
        return PodQuery(namespace, str(ref), f"{names.SESSION}={session}", session)
    if ref.kind.kind == "Pod":
        return PodQuery(namespace, str(ref), "", None, pod_name=ref.name)
    selector = label_selector(((live.get("spec") or {}).get("selector")) or {})
    if not selector:
        raise UsageError(f"{ref} has no pod selector and is not in dev mode",
                         hint=f"start dev mode first: nhdev dev start {ref}")
    return PodQuery(namespace, str(ref), selector, None)


def find_pod(kube: KubeRest, query: PodQuery, container: str | None, config_container: str | None, *,
             wait: float = 0.0, poll: float = 0.3) -> PodTarget:
    """The newest running pod for ``query`` and the container to use, waiting up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        pod = _newest_running(kube, query)
        if pod is not None:
            return _target(pod, query, container, config_container)
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    where = f"session {query.session}" if query.session else query.workload
    message = f"no running pod for {where} in namespace {query.namespace}"
    if wait:
        raise Timeout(f"{message} after {wait:g}s")
    raise NotFound(message, hint=None if query.session else f"is {query.workload} scaled to zero?")


def label_selector(selector: dict[str, Any]) -> str:
    """A LabelSelector object as the query-string form: ``a=b,c in (d,e),!f``."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], ",".join(expr.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": key, "DoesNotExist": f"!{key}"}[op])
    return ",".join(parts)


def _session(owner: dict[str, Any] | None) -> str | None:
    return str(owner["session"]) if owner and owner.get("session") else None


def _my_duplicate_session(kube: KubeRest, namespace: str, ref: WorkloadRef, identity: str) -> str | None:
    for kind in _DUPLICATE_KINDS:
        selector = f"{names.ROLE}=duplicate,{names.DUPLICATE_OF}={ref.name}"
        for obj in kube.list(kind, namespace, label_selector=selector):
            owner = owner_of(obj) or {}
            if owner.get("identity") == identity and owner.get("session"):
                return str(owner["session"])
    return None


def _newest_running(kube: KubeRest, query: PodQuery) -> Obj | None:
    if query.pod_name:
        pod = kube.try_get(PODS, query.namespace, query.pod_name)
        candidates = [pod] if pod else []
    else:
        candidates = kube.list(PODS, query.namespace, label_selector=query.selector)
    running = [p for p in candidates
               if (p.get("status") or {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]
    return max(running, key=lambda p: p["metadata"].get("creationTimestamp") or "", default=None)


def _target(pod: Obj, query: PodQuery, container: str | None, config_container: str | None) -> PodTarget:
    specs = {c["name"]: c for c in pod["spec"].get("containers") or []}
    annotated = (pod["metadata"].get("annotations") or {}).get(names.DEV_CONTAINER)
    chosen = container or annotated or (config_container if config_container in specs else None) or next(iter(specs))
    if chosen not in specs:
        raise NotFound(f"container {chosen} not found in pod {pod['metadata']['name']} "
                       f"(containers: {', '.join(specs)})")
    return PodTarget(query.namespace, pod["metadata"]["name"], chosen, query.session,
                     specs[chosen].get("workingDir"))
