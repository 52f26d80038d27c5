"""Defaulting and validation the Store runs on writes, as the real apiserver does.

Defaults are the ones kubectl, controllers and the kubelet rely on (pod spec, workload specs,
services, PVCs...). Validation returns field causes worded like the apiserver's
(``metadata.name: Required value: name or generateName is required``); the Store turns them
into a 422 Invalid.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nhdev.sandbox.resources import ResourceType
from nhdev.sandbox.selectors import SelectorError, selector_from_label_selector_object

DEFAULT_STORAGE_CLASS = "local-path"
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


@dataclass(frozen=True)
class Cause:
    reason: str  # FieldValueRequired, FieldValueInvalid, FieldValueDuplicate, FieldValueForbidden, ...
    field: str
    detail: str

    @property
    def message(self) -> str:
        return self.detail

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.detail, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


def _go_value(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True) if value is not None else "null"


def required(field: str, detail: str = "") -> Cause:
    return Cause("FieldValueRequired", field, "Required value" + (f": {detail}" if detail else ""))


def invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause("FieldValueInvalid", field, f"Invalid value: {_go_value(value)}: {detail}")


def duplicate(field: str, value: Any) -> Cause:
    return Cause("FieldValueDuplicate", field, f"Duplicate value: {_go_value(value)}")


def forbidden(field: str, detail: str) -> Cause:
    return Cause("FieldValueForbidden", field, f"Forbidden: {detail}")


def not_supported(field: str, value: Any, supported: list[str]) -> Cause:
    listed = ", ".join(f'"{s}"' for s in supported)
    return Cause("FieldValueNotSupported", field, f"Unsupported value: {_go_value(value)}: supported values: {listed}")


# --- defaulting ----------------------------------------------------------------------------------


@dataclass
class Allocators:
    """What defaulting needs from the store: free service IPs and node ports, the default class."""

    cluster_ip: Callable[[], str]
    node_port: Callable[[], int]
    default_storage_class: Callable[[], str | None]


def prepare_for_create(rt: ResourceType, obj: dict) -> None:
    """Drop what a client may not set on create (status of kinds with a status subresource)."""
    if rt.has_status and rt.plural != "nodes":
        obj["status"] = {}


def apply_defaults(rt: ResourceType, obj: dict, allocators: Allocators, old: dict | None = None) -> None:
    """Fill defaults in place; ``old`` is the stored object on update (allocated values carry over)."""
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind
    metadata = obj.setdefault("metadata", {})
    defaulter = _DEFAULTERS.get(rt.plural)
    if defaulter is not None:
        defaulter(obj, allocators, old)
    if metadata.get("labels") == {}:
        metadata.pop("labels")


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def _image_pull_policy(image: str) -> str:
    if "@" in image:
        return "IfNotPresent"
    last = image.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    probe.setdefault("timeoutSeconds", 1)
    probe.setdefault("periodSeconds", 10)
    probe.setdefault("successThreshold", 1)
    probe.setdefault("failureThreshold", 3)
    if isinstance(probe.get("httpGet"), dict):
        probe["httpGet"].setdefault("path", "/")
        probe["httpGet"].setdefault("scheme", "HTTP")


def _default_container(container: dict) -> None:
    image = container.get("image")
    if isinstance(image, str) and image:
        container.setdefault("imagePullPolicy", _image_pull_policy(image))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for env in container.get("env") or []:
        field_ref = (env.get("valueFrom") or {}).get("fieldRef") if isinstance(env, dict) else None
        if isinstance(field_ref, dict):
            field_ref.setdefault("apiVersion", "v1")
    for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe_name))


def _default_volume(volume: dict) -> None:
    for source in ("configMap", "secret"):
        if isinstance(volume.get(source), dict):
            volume[source].setdefault("defaultMode", 420)
    if isinstance(volume.get("hostPath"), dict):
        volume["hostPath"].setdefault("type", "")
    if isinstance(volume.get("downwardAPI"), dict):
        volume["downwardAPI"].setdefault("defaultMode", 420)
    if isinstance(volume.get("projected"), dict):
        volume["projected"].setdefault("defaultMode", 420)


def default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in spec.get(key) or []:
            if isinstance(container, dict):
                _default_container(container)
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict):
            _default_volume(volume)


def _default_template(template: Any) -> None:
    if isinstance(template, dict):
        template.setdefault("metadata", {})
        default_pod_spec(template.setdefault("spec", {}))


def _qos_class(spec: dict) -> str:
    containers = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
    requests_or_limits = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in requests_or_limits):
        return "BestEffort"
    guaranteed = all(
        (r.get("limits") or {}).get(k) and (r.get("requests") or {}).get(k, (r.get("limits") or {})[k])
        == (r.get("limits") or {})[k]
        for r in requests_or_limits
        for k in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


def _default_pod(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    default_pod_spec(spec)
    if old is None:
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    status = obj.setdefault("status", {})
    status.setdefault("phase", "Pending")
    status.setdefault("qosClass", _qos_class(spec))


def _default_deployment(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", "25%")
        rolling.setdefault("maxSurge", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _default_template(spec.get("template"))


def _default_replicaset(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    spec.setdefault("replicas", 1)
    _default_template(spec.get("template"))


def _default_statefulset(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    for claim in spec.get("volumeClaimTemplates") or []:
        if isinstance(claim, dict):
            claim.setdefault("apiVersion", "v1")
            claim.setdefault("kind", "PersistentVolumeClaim")
            _spec(claim).setdefault("volumeMode", "Filesystem")
            claim.setdefault("status", {}).setdefault("phase", "Pending")
    _default_template(spec.get("template"))


def _default_daemonset(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec.get("template"))


def _default_job_spec(spec: dict) -> None:
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", None)
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector")
    _default_template(spec.get("template"))


def _default_job(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    _default_job_spec(spec)
    if old is None and not spec.get("manualSelector") and not spec.get("selector"):
        _generate_job_selector(obj, spec)


def _generate_job_selector(obj: dict, spec: dict) -> None:
    """Like the apiserver: select the job's pods by its uid and label the template with it."""
    metadata = obj["metadata"]
    uid, name = metadata.get("uid", ""), metadata.get("name", "")
    spec["selector"] = {"matchLabels": {JOB_UID_LABEL: uid}}
    template = spec.get("template")
    if isinstance(template, dict):
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({JOB_UID_LABEL: uid, JOB_NAME_LABEL: name, "controller-uid": uid, "job-name": name})


def _default_cronjob(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    spec.setdefault("suspend", False)
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        _default_template((job_template.get("spec") or {}).get("template"))


def _default_service(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    old_spec = (old or {}).get("spec") or {}
    if spec["type"] != "ExternalName":
        _default_cluster_ip(spec, old_spec, allocators)
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in old_spec.get("ports") or []}
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer") and not port.get("nodePort"):
            previous = old_ports.get((port.get("port"), port["protocol"]), {}).get("nodePort")
            port["nodePort"] = previous or allocators.node_port()
    if spec["type"] in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    obj.setdefault("status", {}).setdefault("loadBalancer", {})


def _default_cluster_ip(spec: dict, old_spec: dict, allocators: Allocators) -> None:
    if not spec.get("clusterIP"):
        # An update without clusterIP keeps the allocated one, like the apiserver does.
        spec["clusterIP"] = old_spec.get("clusterIP") or allocators.cluster_ip()
    if not spec.get("clusterIPs") or spec["clusterIPs"][0] != spec["clusterIP"]:
        spec["clusterIPs"] = [spec["clusterIP"]]


def _default_pvc(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    spec.setdefault("volumeMode", "Filesystem")
    if "storageClassName" not in spec and old is None:
        default_class = allocators.default_storage_class()
        if default_class:
            spec["storageClassName"] = default_class
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def _default_pv(obj: dict, allocators: Allocators, old: dict | None) -> None:
    spec = _spec(obj)
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    obj.setdefault("status", {}).setdefault("phase", "Pending")


def _default_namespace(obj: dict, allocators: Allocators, old: dict | None) -> None:
    name = obj["metadata"].get("name", "")
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    _spec(obj).setdefault("finalizers", ["kubernetes"])
    obj.setdefault("status", {}).setdefault("phase", "Active")


def _default_secret(obj: dict, allocators: Allocators, old: dict | None) -> None:
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict):
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _default_hpa(obj: dict, allocators: Allocators, old: dict | None) -> None:
    _spec(obj).setdefault("minReplicas", 1)


def _default_storage_class(obj: dict, allocators: Allocators, old: dict | None) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


_Defaulter = Callable[[dict, Allocators, "dict | None"], None]
_DEFAULTERS: dict[str, _Defaulter] = {
    "pods": _default_pod,
    "deployments": _default_deployment,
    "replicasets": _default_replicaset,
    "statefulsets": _default_statefulset,
    "daemonsets": _default_daemonset,
    "jobs": _default_job,
    "cronjobs": _default_cronjob,
    "services": _default_service,
    "persistentvolumeclaims": _default_pvc,
    "persistentvolumes": _default_pv,
    "namespaces": _default_namespace,
    "secrets": _default_secret,
    "horizontalpodautoscalers": _default_hpa,
    "storageclasses": _default_storage_class,
}


# --- validation ----------------------------------------------------------------------------------

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")

# Which name rule each resource's metadata.name follows.
_NAME_RULES: dict[str, tuple[re.Pattern[str], str, int]] = {
    "namespaces": (_DNS1123_LABEL, _LABEL_MESSAGE, 63),
    "services": (_DNS1035_LABEL, _DNS1035_MESSAGE, 63),
}
_SUBDOMAIN_RULE = (_DNS1123_SUBDOMAIN, _SUBDOMAIN_MESSAGE, 253)


def validate_create(rt: ResourceType, obj: dict) -> list[Cause]:
    return list(_validate_metadata(rt, obj)) + list(_validate_spec(rt, obj))


def validate_update(rt: ResourceType, obj: dict, old: dict) -> list[Cause]:
    causes = list(_validate_metadata(rt, obj)) + list(_validate_spec(rt, obj))
    immutable = _IMMUTABILITY.get(rt.plural)
    if immutable is not None:
        causes.extend(immutable(obj, old))
    return causes


def _validate_metadata(rt: ResourceType, obj: dict) -> Iterator[Cause]:
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        yield required("metadata.name", "name or generateName is required")
    elif rt.plural != "events":
        pattern, message, max_length = _NAME_RULES.get(rt.plural, _SUBDOMAIN_RULE)
        if len(name) > max_length:
            yield invalid("metadata.name", name, f"must be no more than {max_length} characters")
        elif not pattern.match(name):
            yield invalid("metadata.name", name, message)
    yield from _validate_labels(metadata.get("labels"), "metadata.labels")


def _validate_labels(labels: Any, field: str) -> Iterator[Cause]:
    if not isinstance(labels, dict):
        return
    for key, value in labels.items():
        name = key.rsplit("/", 1)[-1]
        if not _QUALIFIED_NAME.match(name) or len(name) > 63:
            yield invalid(field, key, "name part must consist of alphanumeric characters, '-', '_' or '.', "
                          "and must start and end with an alphanumeric character")
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            yield invalid(f"{field}", value, "a valid label must be an empty string or consist of alphanumeric "
                          "characters, '-', '_' or '.', and must start and end with an alphanumeric character")


def _validate_spec(rt: ResourceType, obj: dict) -> Iterator[Cause]:
    spec = obj.get("spec") or {}
    if rt.plural == "pods":
        yield from validate_pod_spec(spec, "spec")
    elif rt.plural in ("deployments", "replicasets", "statefulsets", "daemonsets"):
        yield from _validate_workload(spec)
    elif rt.plural == "jobs":
        yield from _validate_job_spec(spec, "spec")
    elif rt.plural == "cronjobs":
        yield from _validate_cronjob(spec)
    elif rt.plural == "services":
        yield from _validate_service(spec)
    elif rt.plural == "persistentvolumeclaims":
        yield from _validate_pvc(spec)


def validate_pod_spec(spec: dict, path: str) -> Iterator[Cause]:
    containers = spec.get("containers")
    if not containers:
        yield required(f"{path}.containers")
    seen: set[str] = set()
    for key in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(key) or []):
            yield from _validate_container(container, f"{path}.{key}[{index}]", seen)
    volume_names: set[str] = set()
    for index, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name", "") if isinstance(volume, dict) else ""
        if not name:
            yield required(f"{path}.volumes[{index}].name")
        elif name in volume_names:
            yield duplicate(f"{path}.volumes[{index}].name", name)
        volume_names.add(name)
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in ("Always", "OnFailure", "Never"):
        yield not_supported(f"{path}.restartPolicy", policy, ["Always", "OnFailure", "Never"])


def _validate_container(container: Any, path: str, seen: set[str]) -> Iterator[Cause]:
    if not isinstance(container, dict):
        yield invalid(path, container, "must be an object")
        return
    name = container.get("name")
    if not name:
        yield required(f"{path}.name")
    elif not _DNS1123_LABEL.match(name):
        yield invalid(f"{path}.name", name, _LABEL_MESSAGE)
    elif name in seen:
        yield duplicate(f"{path}.name", name)
    if name:
        seen.add(name)
    if not container.get("image"):
        yield required(f"{path}.image")


def _validate_template(template: Any, path: str) -> Iterator[Cause]:
    if not isinstance(template, dict):
        yield required(path)
        return
    yield from _validate_labels((template.get("metadata") or {}).get("labels"), f"{path}.metadata.labels")
    yield from validate_pod_spec(template.get("spec") or {}, f"{path}.spec")


def _validate_selector_matches(spec: dict, path: str) -> Iterator[Cause]:
    selector = spec.get("selector")
    if not selector:
        yield required(f"{path}.selector")
        return
    if not (selector.get("matchLabels") or selector.get("matchExpressions")):
        yield invalid(f"{path}.selector", selector, "empty selector is invalid for deployment")
        return
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    try:
        matches = selector_from_label_selector_object(selector).matches(labels)
    except SelectorError as error:
        yield invalid(f"{path}.selector", selector, str(error))
        return
    if not matches:
        yield invalid(f"{path}.template.metadata.labels", labels, "`selector` does not match template `labels`")


def _validate_workload(spec: dict) -> Iterator[Cause]:
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas < 0:
        yield invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    yield from _validate_selector_matches(spec, "spec")
    yield from _validate_template(spec.get("template"), "spec.template")


def _validate_job_spec(spec: dict, path: str) -> Iterator[Cause]:
    if spec.get("selector"):
        yield from _validate_selector_matches(spec, path)
    yield from _validate_template(spec.get("template"), f"{path}.template")
    policy = ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy")
    if policy not in ("OnFailure", "Never"):
        yield not_supported(f"{path}.template.spec.restartPolicy", policy, ["OnFailure", "Never"])


def _validate_cronjob(spec: dict) -> Iterator[Cause]:
    if not spec.get("schedule"):
        yield required("spec.schedule")
    job_spec = (spec.get("jobTemplate") or {}).get("spec")
    if not isinstance(job_spec, dict):
        yield required("spec.jobTemplate.spec")
        return
    yield from _validate_job_spec(job_spec, "spec.jobTemplate.spec")


def _validate_service(spec: dict) -> Iterator[Cause]:
    service_type = spec.get("type", "ClusterIP")
    supported = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    if service_type not in supported:
        yield not_supported("spec.type", service_type, supported)
    ports = spec.get("ports") or []
    if not ports and service_type != "ExternalName" and spec.get("clusterIP") != "None":
        yield required("spec.ports")
    names: set[str] = set()
    for index, port in enumerate(ports):
        number = port.get("port") if isinstance(port, dict) else None
        if not isinstance(number, int) or not 0 < number < 65536:
            yield invalid(f"spec.ports[{index}].port", number, "must be between 1 and 65535, inclusive")
        name = (port or {}).get("name", "")
        if len(ports) > 1 and not name:
            yield required(f"spec.ports[{index}].name")
        elif name in names:
            yield duplicate(f"spec.ports[{index}].name", name)
        names.add(name)


def _validate_pvc(spec: dict) -> Iterator[Cause]:
    if not spec.get("accessModes"):
        yield required("spec.accessModes", "at least 1 access mode is required")
    requests = (spec.get("resources") or {}).get("requests") or {}
    if "storage" not in requests:
        yield required("spec.resources[storage]")


def _immutable(field: str, new: Any, old: Any) -> Iterator[Cause]:
    if new != old:
        yield invalid(field, new, "field is immutable")


def _selector_immutable(obj: dict, old: dict) -> Iterator[Cause]:
    yield from _immutable("spec.selector", (obj.get("spec") or {}).get("selector"),
                          (old.get("spec") or {}).get("selector"))


def _statefulset_immutable(obj: dict, old: dict) -> Iterator[Cause]:
    mutable = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
               "persistentVolumeClaimRetentionPolicy", "minReadySeconds")
    new_rest = {k: v for k, v in (obj.get("spec") or {}).items() if k not in mutable}
    old_rest = {k: v for k, v in (old.get("spec") or {}).items() if k not in mutable}
    if new_rest != old_rest:
        yield forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                        "'template', 'updateStrategy', 'revisionHistoryLimit', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")


def _pvc_immutable(obj: dict, old: dict) -> Iterator[Cause]:
    def without_resources(spec: dict) -> dict:
        return {k: v for k, v in spec.items() if k not in ("resources", "volumeAttributesClassName", "volumeName")}

    new_spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    if without_resources(new_spec) != without_resources(old_spec):
        yield forbidden("spec", "spec is immutable after creation except resources.requests and "
                        "volumeAttributesClassName for bound claims")
    if old_spec.get("volumeName") and new_spec.get("volumeName") != old_spec.get("volumeName"):
        yield forbidden("spec", "spec is immutable after creation except resources.requests and "
                        "volumeAttributesClassName for bound claims")


def _service_immutable(obj: dict, old: dict) -> Iterator[Cause]:
    old_ip = (old.get("spec") or {}).get("clusterIP")
    new_ip = (obj.get("spec") or {}).get("clusterIP")
    if old_ip and new_ip != old_ip:
        yield invalid("spec.clusterIPs[0]", [new_ip], "may not change once set")


def _pod_immutable(obj: dict, old: dict) -> Iterator[Cause]:
    """Pod specs are immutable except images and a few scheduling fields, as on the apiserver."""
    def comparable(spec: dict) -> dict:
        spec = json.loads(json.dumps(spec))
        for key in ("containers", "initContainers"):
            for container in spec.get(key) or []:
                container.pop("image", None)
        for key in ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "nodeName"):
            spec.pop(key, None)
        return spec

    if comparable(obj.get("spec") or {}) != comparable(old.get("spec") or {}):
        yield forbidden("spec", "pod updates may not change fields other than `spec.containers[*].image`,"
                        "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                        "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                        "(allow it to be set to 1 if it was previously negative)")


_IMMUTABILITY: dict[str, Callable[[dict, dict], Iterator[Cause]]] = {
    "deployments": _selector_immutable,
    "replicasets": _selector_immutable,
    "daemonsets": _selector_immutable,
    "statefulsets": _statefulset_immutable,
    "jobs": _selector_immutable,
    "persistentvolumeclaims": _pvc_immutable,
    "services": _service_immutable,
    "pods": _pod_immutable,
}
