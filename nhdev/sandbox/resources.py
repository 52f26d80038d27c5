"""The resource types the sandbox serves: group, version, kind, plural, scope, short names, subresources.

One registry used by the store (keys objects by plural), the API (discovery and routing) and
admission (schema definition names for strategic merge and validation messages).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")

# Schema package per API group, as in the OpenAPI definition names (io.k8s.api.<package>.<version>.<Kind>).
_SCHEMA_PACKAGE = {
    "": "core",
    "apps": "apps",
    "batch": "batch",
    "autoscaling": "autoscaling",
    "storage.k8s.io": "storage",
    "events.k8s.io": "events",
}


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    # Subresources besides the ones every object has: "status", "scale", "exec", "log", ...
    subresources: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = STANDARD_VERBS
    singular: str = field(default="")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def has_scale(self) -> bool:
        return "scale" in self.subresources

    @property
    def schema_name(self) -> str:
        """The OpenAPI definition name of this kind, e.g. ``io.k8s.api.apps.v1.Deployment``."""
        return f"io.k8s.api.{_SCHEMA_PACKAGE[self.group]}.{self.version}.{self.kind}"

    @property
    def qualified_kind(self) -> str:
        """How the apiserver names the kind in messages: ``Deployment.apps``, ``Pod``."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


def _rt(
    group: str,
    version: str,
    kind: str,
    plural: str,
    namespaced: bool,
    short_names: tuple[str, ...] = (),
    subresources: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
    verbs: tuple[str, ...] = STANDARD_VERBS,
) -> ResourceType:
    return ResourceType(group, version, kind, plural, namespaced, short_names, subresources, categories, verbs)


_ALL = ("all",)
_POD_IO = ("attach", "exec", "log", "portforward")

RESOURCE_TYPES: tuple[ResourceType, ...] = (
    _rt("", "v1", "Namespace", "namespaces", False, ("ns",), ("status",)),
    _rt("", "v1", "Pod", "pods", True, ("po",), ("status", *_POD_IO), _ALL),
    _rt("", "v1", "Service", "services", True, ("svc",), ("status",), _ALL),
    _rt("", "v1", "Endpoints", "endpoints", True, ("ep",)),
    _rt("", "v1", "ConfigMap", "configmaps", True, ("cm",)),
    _rt("", "v1", "Secret", "secrets", True),
    _rt("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, ("pvc",), ("status",)),
    _rt("", "v1", "PersistentVolume", "persistentvolumes", False, ("pv",), ("status",)),
    _rt("", "v1", "Event", "events", True, ("ev",)),
    _rt("", "v1", "Node", "nodes", False, ("no",), ("status",)),
    _rt("", "v1", "ServiceAccount", "serviceaccounts", True, ("sa",)),
    _rt("apps", "v1", "Deployment", "deployments", True, ("deploy",), ("scale", "status"), _ALL),
    _rt("apps", "v1", "ReplicaSet", "replicasets", True, ("rs",), ("scale", "status"), _ALL),
    _rt("apps", "v1", "StatefulSet", "statefulsets", True, ("sts",), ("scale", "status"), _ALL),
    _rt("apps", "v1", "DaemonSet", "daemonsets", True, ("ds",), ("status",), _ALL),
    _rt("batch", "v1", "Job", "jobs", True, (), ("status",), _ALL),
    _rt("batch", "v1", "CronJob", "cronjobs", True, ("cj",), ("status",), _ALL),
    _rt("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", True, ("hpa",),
        ("status",), _ALL),
    _rt("storage.k8s.io", "v1", "StorageClass", "storageclasses", False, ("sc",)),
)

_BY_PLURAL = {rt.plural: rt for rt in RESOURCE_TYPES}


class UnknownResourceError(KeyError):
    pass


def resource_type(plural: str) -> ResourceType:
    try:
        return _BY_PLURAL[plural]
    except KeyError:
        raise UnknownResourceError(plural) from None


def find_resource(group: str, version: str, plural: str) -> ResourceType | None:
    rt = _BY_PLURAL.get(plural)
    if rt is None or rt.group != group or rt.version != version:
        return None
    return rt


def group_versions() -> list[tuple[str, str]]:
    """(group, version) pairs in a stable order, core first."""
    seen: dict[tuple[str, str], None] = {}
    for rt in RESOURCE_TYPES:
        seen[(rt.group, rt.version)] = None
    return list(seen)


def resources_in(group: str, version: str) -> Iterator[ResourceType]:
    return (rt for rt in RESOURCE_TYPES if rt.group == group and rt.version == version)
