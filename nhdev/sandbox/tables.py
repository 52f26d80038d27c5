"""Server-side printing: ``meta.k8s.io/v1`` Tables with the columns the real apiserver uses.

kubectl asks for Tables (``Accept: application/json;as=Table;v=v1;g=meta.k8s.io``) for
``kubectl get`` without ``-o``; these columns are what makes its output look like a real cluster's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nhdev.sandbox.resources import ResourceType
from nhdev.sandbox.selectors import label_selector_string

Cell = Callable[[dict], Any]
# (name, type, priority, cell)
Column = tuple[str, str, int, Cell]


def wants_table(accept: str) -> bool:
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    seconds = max(0, int(seconds))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 730:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _since(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    try:
        moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - moment).total_seconds())


def _age(obj: dict) -> str:
    return _since(obj["metadata"].get("creationTimestamp"))


def _name(obj: dict) -> str:
    return str(obj["metadata"].get("name", ""))


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def _containers(obj: dict, *template_path: str) -> list[dict]:
    return list(_get(obj, *template_path, "containers", default=[]))


def _container_names(*template_path: str) -> Cell:
    return lambda obj: ",".join(c.get("name", "") for c in _containers(obj, *template_path))


def _container_images(*template_path: str) -> Cell:
    return lambda obj: ",".join(c.get("image", "") for c in _containers(obj, *template_path))


def _selector(obj: dict) -> str:
    return label_selector_string(_get(obj, "spec", "selector")) or "<none>"


def _pod_status(pod: dict) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for state in status.get("initContainerStatuses") or []:
        waiting = _get(state, "state", "waiting", "reason")
        if waiting and waiting != "PodInitializing":
            return f"Init:{waiting}"
    for state in reversed(status.get("containerStatuses") or []):
        waiting = _get(state, "state", "waiting", "reason")
        terminated = _get(state, "state", "terminated")
        if waiting:
            reason = waiting
        elif terminated:
            reason = terminated.get("reason") or f"ExitCode:{terminated.get('exitCode', 0)}"
    return str(reason)


def _pod_ready(pod: dict) -> str:
    statuses = _get(pod, "status", "containerStatuses", default=[])
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{len(_get(pod, 'spec', 'containers', default=[]))}"


def _pod_restarts(pod: dict) -> int:
    return sum(int(s.get("restartCount") or 0) for s in _get(pod, "status", "containerStatuses", default=[]))


def _service_ports(svc: dict) -> str:
    ports = []
    for port in _get(svc, "spec", "ports", default=[]):
        text = f"{port.get('port')}"
        if port.get("nodePort"):
            text += f":{port['nodePort']}"
        ports.append(f"{text}/{port.get('protocol', 'TCP')}")
    return ",".join(ports) or "<none>"


def _external_ip(svc: dict) -> str:
    spec = svc.get("spec") or {}
    if spec.get("type") == "ExternalName":
        return str(spec.get("externalName", "<none>"))
    ips = list(spec.get("externalIPs") or [])
    ips += [i.get("ip") or i.get("hostname") for i in _get(svc, "status", "loadBalancer", "ingress", default=[])]
    if ips:
        return ",".join(str(i) for i in ips)
    return "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"


def _endpoints(ep: dict) -> str:
    addresses = []
    for subset in ep.get("subsets") or []:
        for address in subset.get("addresses") or []:
            for port in subset.get("ports") or [{}]:
                suffix = f":{port['port']}" if port.get("port") else ""
                addresses.append(f"{address.get('ip')}{suffix}")
    if not addresses:
        return "<none>"
    shown = ",".join(addresses[:3])
    return shown + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")


def _access_modes(obj: dict) -> str:
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    modes = _get(obj, "status", "accessModes") or _get(obj, "spec", "accessModes", default=[])
    return ",".join(short.get(m, m) for m in modes)


def _node_status(node: dict) -> str:
    for condition in _get(node, "status", "conditions", default=[]):
        if condition.get("type") == "Ready":
            ready = "Ready" if condition.get("status") == "True" else "NotReady"
            return ready + (",SchedulingDisabled" if _get(node, "spec", "unschedulable") else "")
    return "Unknown"


def _node_roles(node: dict) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = [k[len(prefix):] for k in (node["metadata"].get("labels") or {}) if k.startswith(prefix)]
    return ",".join(sorted(roles)) or "<none>"


def _node_address(kind: str) -> Cell:
    def cell(node: dict) -> str:
        for address in _get(node, "status", "addresses", default=[]):
            if address.get("type") == kind:
                return str(address.get("address"))
        return "<none>"

    return cell


def _job_status(job: dict) -> str:
    for condition in _get(job, "status", "conditions", default=[]):
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed", "Suspended"):
            return str(condition["type"])
    return "Running"


def _job_duration(job: dict) -> str:
    start = _get(job, "status", "startTime")
    if not start:
        return ""
    end = _get(job, "status", "completionTime")
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    finish = datetime.fromisoformat(end.replace("Z", "+00:00")) if end else datetime.now(UTC)
    return human_duration((finish - begin).total_seconds())


def _event_object(event: dict) -> str:
    involved = event.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _hpa_targets(hpa: dict) -> str:
    metrics = _get(hpa, "spec", "metrics", default=[])
    if not metrics:
        return "<none>"
    return ", ".join(f"<unknown>/{_get(m, 'resource', 'target', 'averageUtilization', default='?')}%"
                     for m in metrics)


def _storage_class_name(sc: dict) -> str:
    default = (sc["metadata"].get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class")
    return _name(sc) + (" (default)" if default == "true" else "")


def _count(*path: str) -> Cell:
    return lambda obj: int(_get(obj, *path, default=0) or 0)


def _field(*path: str, default: Any = "<none>") -> Cell:
    return lambda obj: _get(obj, *path, default=default)


_NAME: Column = ("Name", "string", 0, _name)
_AGE: Column = ("Age", "string", 0, _age)

_COLUMNS: dict[str, list[Column]] = {
    "pods": [
        _NAME, ("Ready", "string", 0, _pod_ready), ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0, _pod_restarts), _AGE,
        ("IP", "string", 1, _field("status", "podIP")), ("Node", "string", 1, _field("spec", "nodeName")),
        ("Nominated Node", "string", 1, _field("status", "nominatedNodeName")),
        ("Readiness Gates", "string", 1, lambda o: "<none>"),
    ],
    "deployments": [
        _NAME, ("Ready", "string", 0, lambda o: f"{_get(o, 'status', 'readyReplicas', default=0)}/"
                                                f"{_get(o, 'spec', 'replicas', default=0)}"),
        ("Up-to-date", "integer", 0, _count("status", "updatedReplicas")),
        ("Available", "integer", 0, _count("status", "availableReplicas")), _AGE,
        ("Containers", "string", 1, _container_names("spec", "template", "spec")),
        ("Images", "string", 1, _container_images("spec", "template", "spec")),
        ("Selector", "string", 1, _selector),
    ],
    "replicasets": [
        _NAME, ("Desired", "integer", 0, _count("spec", "replicas")),
        ("Current", "integer", 0, _count("status", "replicas")),
        ("Ready", "integer", 0, _count("status", "readyReplicas")), _AGE,
        ("Containers", "string", 1, _container_names("spec", "template", "spec")),
        ("Images", "string", 1, _container_images("spec", "template", "spec")),
        ("Selector", "string", 1, _selector),
    ],
    "statefulsets": [
        _NAME, ("Ready", "string", 0, lambda o: f"{_get(o, 'status', 'readyReplicas', default=0)}/"
                                                f"{_get(o, 'spec', 'replicas', default=0)}"), _AGE,
        ("Containers", "string", 1, _container_names("spec", "template", "spec")),
        ("Images", "string", 1, _container_images("spec", "template", "spec")),
    ],
    "daemonsets": [
        _NAME, ("Desired", "integer", 0, _count("status", "desiredNumberScheduled")),
        ("Current", "integer", 0, _count("status", "currentNumberScheduled")),
        ("Ready", "integer", 0, _count("status", "numberReady")),
        ("Up-to-date", "integer", 0, _count("status", "updatedNumberScheduled")),
        ("Available", "integer", 0, _count("status", "numberAvailable")),
        ("Node Selector", "string", 0, lambda o: ",".join(
            f"{k}={v}" for k, v in (_get(o, "spec", "template", "spec", "nodeSelector", default={})).items())
            or "<none>"),
        _AGE,
        ("Containers", "string", 1, _container_names("spec", "template", "spec")),
        ("Images", "string", 1, _container_images("spec", "template", "spec")),
        ("Selector", "string", 1, _selector),
    ],
    "jobs": [
        _NAME, ("Status", "string", 0, _job_status),
        ("Completions", "string", 0, lambda o: f"{_get(o, 'status', 'succeeded', default=0)}/"
                                               f"{_get(o, 'spec', 'completions', default=1)}"),
        ("Duration", "string", 0, _job_duration), _AGE,
        ("Containers", "string", 1, _container_names("spec", "template", "spec")),
        ("Images", "string", 1, _container_images("spec", "template", "spec")),
        ("Selector", "string", 1, _selector),
    ],
    "cronjobs": [
        _NAME, ("Schedule", "string", 0, _field("spec", "schedule")),
        ("Timezone", "string", 0, _field("spec", "timeZone")),
        ("Suspend", "boolean", 0, lambda o: bool(_get(o, "spec", "suspend", default=False))),
        ("Active", "integer", 0, lambda o: len(_get(o, "status", "active", default=[]))),
        ("Last Schedule", "string", 0, lambda o: _since(_get(o, "status", "lastScheduleTime"))
         if _get(o, "status", "lastScheduleTime") else "<none>"),
        _AGE,
        ("Containers", "string", 1, _container_names("spec", "jobTemplate", "spec", "template", "spec")),
        ("Images", "string", 1, _container_images("spec", "jobTemplate", "spec", "template", "spec")),
    ],
    "services": [
        _NAME, ("Type", "string", 0, _field("spec", "type")),
        ("Cluster-IP", "string", 0, _field("spec", "clusterIP")),
        ("External-IP", "string", 0, _external_ip), ("Port(s)", "string", 0, _service_ports), _AGE,
        ("Selector", "string", 1, lambda o: ",".join(
            f"{k}={v}" for k, v in sorted(_get(o, "spec", "selector", default={}).items())) or "<none>"),
    ],
    "endpoints": [_NAME, ("Endpoints", "string", 0, _endpoints), _AGE],
    "configmaps": [_NAME, ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
                   _AGE],
    "secrets": [_NAME, ("Type", "string", 0, _field("type")),
                ("Data", "integer", 0, lambda o: len(o.get("data") or {})), _AGE],
    "serviceaccounts": [_NAME, ("Secrets", "integer", 0, lambda o: len(o.get("secrets") or [])), _AGE],
    "namespaces": [_NAME, ("Status", "string", 0, _field("status", "phase")), _AGE],
    "nodes": [
        _NAME, ("Status", "string", 0, _node_status), ("Roles", "string", 0, _node_roles), _AGE,
        ("Version", "string", 0, _field("status", "nodeInfo", "kubeletVersion")),
        ("Internal-IP", "string", 1, _node_address("InternalIP")),
        ("External-IP", "string", 1, _node_address("ExternalIP")),
        ("OS-Image", "string", 1, _field("status", "nodeInfo", "osImage")),
        ("Kernel-Version", "string", 1, _field("status", "nodeInfo", "kernelVersion")),
        ("Container-Runtime", "string", 1, _field("status", "nodeInfo", "containerRuntimeVersion")),
    ],
    "persistentvolumeclaims": [
        _NAME, ("Status", "string", 0, _field("status", "phase")),
        ("Volume", "string", 0, _field("spec", "volumeName", default="")),
        ("Capacity", "string", 0, _field("status", "capacity", "storage", default="")),
        ("Access Modes", "string", 0, _access_modes),
        ("StorageClass", "string", 0, _field("spec", "storageClassName")),
        ("VolumeAttributesClass", "string", 0, _field("spec", "volumeAttributesClassName", default="<unset>")),
        _AGE, ("VolumeMode", "string", 1, _field("spec", "volumeMode")),
    ],
    "persistentvolumes": [
        _NAME, ("Capacity", "string", 0, _field("spec", "capacity", "storage", default="")),
        ("Access Modes", "string", 0, _access_modes),
        ("Reclaim Policy", "string", 0, _field("spec", "persistentVolumeReclaimPolicy")),
        ("Status", "string", 0, _field("status", "phase")),
        ("Claim", "string", 0, lambda o: "/".join(
            x for x in (_get(o, "spec", "claimRef", "namespace"), _get(o, "spec", "claimRef", "name")) if x)),
        ("StorageClass", "string", 0, _field("spec", "storageClassName", default="")),
        ("VolumeAttributesClass", "string", 0, _field("spec", "volumeAttributesClassName", default="<unset>")),
        ("Reason", "string", 0, _field("status", "reason", default="")), _AGE,
        ("VolumeMode", "string", 1, _field("spec", "volumeMode")),
    ],
    "events": [
        ("Last Seen", "string", 0, lambda o: _since(o.get("lastTimestamp") or o.get("eventTime")
                                                     or o["metadata"].get("creationTimestamp"))),
        ("Type", "string", 0, _field("type", default="")), ("Reason", "string", 0, _field("reason", default="")),
        ("Object", "string", 0, _event_object), ("Message", "string", 0, _field("message", default="")),
    ],
    "horizontalpodautoscalers": [
        _NAME, ("Reference", "string", 0, lambda o: f"{_get(o, 'spec', 'scaleTargetRef', 'kind', default='')}/"
                                                    f"{_get(o, 'spec', 'scaleTargetRef', 'name', default='')}"),
        ("Targets", "string", 0, _hpa_targets), ("MinPods", "string", 0, _field("spec", "minReplicas", default=1)),
        ("MaxPods", "integer", 0, _field("spec", "maxReplicas", default=0)),
        ("Replicas", "integer", 0, _count("status", "currentReplicas")), _AGE,
    ],
    "storageclasses": [
        ("Name", "string", 0, _storage_class_name), ("Provisioner", "string", 0, _field("provisioner")),
        ("ReclaimPolicy", "string", 0, _field("reclaimPolicy")),
        ("VolumeBindingMode", "string", 0, _field("volumeBindingMode")),
        ("AllowVolumeExpansion", "string", 0, lambda o: bool(o.get("allowVolumeExpansion", False))), _AGE,
    ],
}
_DEFAULT_COLUMNS: list[Column] = [_NAME, ("Created At", "date", 0, lambda o: o["metadata"].get("creationTimestamp"))]


def _column_definition(column: Column) -> dict:
    name, kind, priority, _ = column
    definition = {"name": name, "type": kind, "format": "name" if name == "Name" else "", "description": name,
                  "priority": priority}
    return definition


def _row_object(obj: dict, include: str) -> dict | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def to_table(rt: ResourceType, objects: list[dict], resource_version: str, *, include_object: str = "Metadata",
             with_headers: bool = True, continue_token: str = "") -> dict:
    columns = _COLUMNS.get(rt.plural, _DEFAULT_COLUMNS)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": [cell(obj) for _, _, _, cell in columns]}
        row_object = _row_object(obj, include_object)
        if row_object is not None:
            row["object"] = row_object
        rows.append(row)
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": [_column_definition(c) for c in columns] if with_headers else [],
        "rows": rows,
    }
