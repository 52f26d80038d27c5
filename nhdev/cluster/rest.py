"""A small typed REST facade over the official client's ApiClient, speaking plain dicts.

The generated API classes turn objects into pydantic models and back, which loses fields the
models don't know and costs time; dev mode reads an object, changes it and writes it back whole,
so it works on the JSON as the server sends it. Authentication, TLS and proxies stay the
official client's (``param_serialize`` + ``call_api``).
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from nhdev.errors import ClusterError, Conflict, NotFound

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """A resource kind as the REST API addresses it."""

    kind: str
    plural: str
    api_version: str  # "v1" or "apps/v1"
    namespaced: bool = True
    aliases: tuple[str, ...] = ()

    def collection_path(self, namespace: str | None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced and namespace is not None:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


KINDS: tuple[Kind, ...] = (
    Kind("Deployment", "deployments", "apps/v1", aliases=("deploy",)),
    Kind("StatefulSet", "statefulsets", "apps/v1", aliases=("sts",)),
    Kind("DaemonSet", "daemonsets", "apps/v1", aliases=("ds",)),
    Kind("ReplicaSet", "replicasets", "apps/v1", aliases=("rs",)),
    Kind("Job", "jobs", "batch/v1"),
    Kind("CronJob", "cronjobs", "batch/v1", aliases=("cj",)),
    Kind("Pod", "pods", "v1", aliases=("po",)),
    Kind("Service", "services", "v1", aliases=("svc",)),
    Kind("Endpoints", "endpoints", "v1", aliases=("ep",)),
    Kind("Secret", "secrets", "v1"),
    Kind("ConfigMap", "configmaps", "v1", aliases=("cm",)),
    Kind("PersistentVolumeClaim", "persistentvolumeclaims", "v1", aliases=("pvc",)),
    Kind("Event", "events", "v1", aliases=("ev",)),
    Kind("Namespace", "namespaces", "v1", namespaced=False, aliases=("ns",)),
    Kind("HorizontalPodAutoscaler", "horizontalpodautoscalers", "autoscaling/v2", aliases=("hpa",)),
    Kind("SelfSubjectAccessReview", "selfsubjectaccessreviews", "authorization.k8s.io/v1", namespaced=False),
)


def kind_named(text: str) -> Kind:
    """The kind for a kubectl-style name: ``Deployment``, ``deployment``, ``deployments``, ``deploy``."""
    wanted = text.lower()
    for k in KINDS:
        if wanted in (k.kind.lower(), k.plural, k.plural.rstrip("s"), *k.aliases):
            return k
    raise KeyError(text)


def kind_of(obj: Obj) -> Kind:
    return kind_named(obj["kind"])


class KubeRest:
    """get / list / create / replace / patch / delete of plain dicts, errors as ``ClusterError``s."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def get(self, kind: Kind, namespace: str | None, name: str) -> Obj:
        return self._call("GET", kind.object_path(namespace, name), what=_what(kind, namespace, name))

    def try_get(self, kind: Kind, namespace: str | None, name: str) -> Obj | None:
        try:
            return self.get(kind, namespace, name)
        except NotFound:
            return None

    def list(self, kind: Kind, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[Obj]:
        query = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        got = self._call("GET", kind.collection_path(namespace), query=query, what=kind.plural)
        items: list[Obj] = got.get("items") or []
        for item in items:  # list items come without kind/apiVersion
            item.setdefault("kind", kind.kind)
            item.setdefault("apiVersion", kind.api_version)
        return items

    def create(self, obj: Obj) -> Obj:
        kind, ns = kind_of(obj), obj["metadata"].get("namespace")
        return self._call("POST", kind.collection_path(ns), body=obj,
                          what=_what(kind, ns, obj["metadata"].get("name", "")))

    def replace(self, obj: Obj) -> Obj:
        """PUT; with ``metadata.resourceVersion`` set, fails with ``Conflict`` if it changed meanwhile."""
        kind, ns, name = kind_of(obj), obj["metadata"].get("namespace"), obj["metadata"]["name"]
        return self._call("PUT", kind.object_path(ns, name), body=obj, what=_what(kind, ns, name))

    def patch(self, kind: Kind, namespace: str | None, name: str, patch: Obj | builtins.list[Obj],
              patch_type: str = "strategic") -> Obj:
        content_type = {"strategic": "application/strategic-merge-patch+json",
                        "merge": "application/merge-patch+json",
                        "json": "application/json-patch+json"}[patch_type]
        return self._call("PATCH", kind.object_path(namespace, name), body=patch, content_type=content_type,
                          what=_what(kind, namespace, name))

    def delete(self, kind: Kind, namespace: str | None, name: str, *, propagation: str = "Background",
               grace_seconds: int | None = None) -> Obj | None:
        body: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if grace_seconds is not None:
            body["gracePeriodSeconds"] = grace_seconds
        try:
            return self._call("DELETE", kind.object_path(namespace, name), body=body,
                              what=_what(kind, namespace, name))
        except NotFound:
            return None

    def pod_log(self, namespace: str, pod: str, container: str, *, tail_lines: int | None = None,
                previous: bool = False) -> str:
        query = {"container": container}
        if tail_lines is not None:
            query["tailLines"] = str(tail_lines)
        if previous:
            query["previous"] = "true"
        path = f"{kind_named('pod').object_path(namespace, pod)}/log"
        status, data = self._request("GET", path, query=query, accept="*/*")
        if 200 <= status < 300:
            return data.decode(errors="replace")
        self._raise(status, data, what=f"logs of pod/{pod} container {container}")
        return ""

    def pod_log_stream(self, namespace: str, pod: str, container: str, *, tail_lines: int | None = None,
                       follow: bool = True) -> Iterator[bytes]:
        """The container's log as it is written (``follow``): chunks of bytes until the container ends."""
        query = {"container": container, "follow": "true" if follow else "false"}
        if tail_lines is not None:
            query["tailLines"] = str(tail_lines)
        path = f"{kind_named('pod').object_path(namespace, pod)}/log"
        headers = {"Accept": "*/*", "Content-Type": "application/json"}
        _, url, headers, body, _ = self.api.param_serialize(
            "GET", path, query_params=list(query.items()), header_params=headers, auth_settings=["BearerToken"])
        try:
            resp = self.api.call_api("GET", url, header_params=headers, body=body)
        except Exception as err:
            raise ClusterError(f"cannot reach the cluster at {self.api.configuration.host}: "
                               f"{unreachable_reason(err)}") from err
        if not 200 <= resp.status < 300:
            self._raise(resp.status, resp.read() or b"", what=f"logs of pod/{pod} container {container}")
        try:
            yield from resp.response.stream(4096, decode_content=True)
        finally:
            resp.response.release_conn()

    def _call(self, method: str, path: str, *, what: str, query: dict[str, str] | None = None,
              body: Any = None, content_type: str = "application/json") -> Obj:
        status, data = self._request(method, path, query=query, body=body, content_type=content_type)
        if 200 <= status < 300:
            parsed: Obj = json.loads(data) if data else {}
            return parsed
        self._raise(status, data, what=what)
        return {}

    def _request(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
                 content_type: str = "application/json", accept: str = "application/json") -> tuple[int, bytes]:
        headers = {"Accept": accept, "Content-Type": content_type}
        _, url, headers, body, _ = self.api.param_serialize(
            method, path, query_params=list((query or {}).items()), header_params=headers, body=body,
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.api.call_api(method, url, header_params=headers, body=body)
            return resp.status, resp.read() or b""
        except Exception as err:  # urllib3 raises many kinds; all mean "could not reach the cluster"
            raise ClusterError(f"cannot reach the cluster at {self.api.configuration.host}: "
                               f"{unreachable_reason(err)}") from err

    @staticmethod
    def _raise(status: int, data: bytes, *, what: str) -> None:
        try:
            parsed = json.loads(data) if data else {}
        except ValueError:
            parsed = {"message": data.decode(errors="replace")[:200]}
        message = (parsed.get("message") if isinstance(parsed, dict) else None) or f"HTTP {status}"
        if status == 404:
            raise NotFound(f"{what}: not found ({message})")
        if status == 409:
            raise Conflict(f"{what}: {message}")
        raise ClusterError(f"{what}: {message}")


def _what(kind: Kind, namespace: str | None, name: str) -> str:
    where = f" in namespace {namespace}" if kind.namespaced and namespace else ""
    return f"{kind.kind.lower()}/{name}{where}"


def unreachable_reason(err: BaseException) -> str:
    """Why a request never got an answer, in a few words ("connection refused", a TLS failure).

    urllib3 wraps the socket's error in a retry error whose text repeats the pool, the URL and
    the whole chain; the user needs the root cause only.
    """
    seen: set[int] = set()
    current: BaseException | None = getattr(err, "reason", None) or err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and isinstance(current.strerror, str) and current.strerror:
            return current.strerror[:1].lower() + current.strerror[1:]
        current = current.__cause__ or current.__context__
    reason = getattr(err, "reason", None) or err
    text = str(reason) or type(reason).__name__
    return re.sub(r"^\w+Connection(Pool)?\(host=[^)]*\):\s*", "", text)
