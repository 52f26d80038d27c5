"""Endpoints controller: each Service with a selector gets an Endpoints object listing its pods.

Ready pods go to ``addresses``, the others to ``notReadyAddresses`` (all of them to ``addresses``
when ``publishNotReadyAddresses`` is set); named target ports are looked up in each pod's
container ports, so pods exposing different ports land in different subsets.
"""

from __future__ import annotations

from nhdev.sandbox.controllers.base import Controller, Key
from nhdev.sandbox.controllers.pods import TERMINAL_PHASES, is_ready, is_terminating, phase
from nhdev.sandbox.store import NotFoundError

HEADLESS_LABEL = "service.kubernetes.io/headless"


def selects(service: dict, pod: dict) -> bool:
    selector = (service.get("spec") or {}).get("selector") or {}
    labels = pod["metadata"].get("labels") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def resolve_target_port(service_port: dict, pod: dict) -> int | None:
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return int(port["containerPort"])
    return None


def build_subsets(service: dict, pods: list[dict]) -> list[dict]:
    """The Endpoints subsets for ``service`` from every pod of its namespace."""
    spec = service.get("spec") or {}
    publish_not_ready = bool(spec.get("publishNotReadyAddresses"))
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        pod_ip = (pod.get("status") or {}).get("podIP")
        if not selects(service, pod) or not pod_ip or phase(pod) in TERMINAL_PHASES:
            continue
        if is_terminating(pod) and not publish_not_ready:
            continue
        ports = _endpoint_ports(spec.get("ports") or [], pod)
        if spec.get("ports") and not ports:
            continue
        group = groups.setdefault(tuple(tuple(sorted(p.items())) for p in ports),
                                  {"addresses": [], "notReadyAddresses": []})
        bucket = "addresses" if publish_not_ready or is_ready(pod) else "notReadyAddresses"
        group[bucket].append(_address(service, pod, pod_ip))
    subsets = []
    for port_key, group in groups.items():
        subset: dict = {kind: addresses for kind, addresses in group.items() if addresses}
        if port_key:
            subset["ports"] = [dict(p) for p in port_key]
        subsets.append(subset)
    return subsets


def _endpoint_ports(service_ports: list[dict], pod: dict) -> list[dict]:
    ports = []
    for service_port in service_ports:
        number = resolve_target_port(service_port, pod)
        if number is None:
            continue
        port = {"port": number, "protocol": service_port.get("protocol", "TCP")}
        if service_port.get("name"):
            port["name"] = service_port["name"]
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        ports.append(port)
    return ports


def _address(service: dict, pod: dict, pod_ip: str) -> dict:
    meta, spec = pod["metadata"], pod.get("spec") or {}
    address: dict = {
        "ip": pod_ip,
        "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
    }
    if spec.get("nodeName"):
        address["nodeName"] = spec["nodeName"]
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        address["hostname"] = spec["hostname"]
    return address


def endpoints_labels(service: dict) -> dict[str, str]:
    labels = dict(service["metadata"].get("labels") or {})
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


class EndpointsController(Controller):
    name = "endpoints"
    resource = "services"

    def related(self) -> dict:
        return {"pods": self._services_near_pod, "endpoints": self._service_of_endpoints}

    def _services_near_pod(self, pod: dict) -> list[Key]:
        # Every selecting service of the namespace: a relabelled pod must leave the ones it no longer matches.
        namespace = pod["metadata"].get("namespace") or ""
        services, _ = self.store.list("services", namespace)
        return [(namespace, s["metadata"]["name"]) for s in services if (s.get("spec") or {}).get("selector")]

    def _service_of_endpoints(self, endpoints: dict) -> list[Key]:
        meta = endpoints["metadata"]
        exists = self.store.try_get("services", meta.get("namespace"), meta["name"]) is not None
        return [(meta.get("namespace") or "", meta["name"])] if exists else []

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        service = self.store.try_get("services", namespace, name)
        if service is None:
            self._delete_endpoints(namespace, name)
            return None
        spec = service.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            return None  # endpoints of such services are the user's to write
        subsets = build_subsets(service, self.store.list("pods", namespace)[0])
        labels = endpoints_labels(service)
        if self.store.try_get("endpoints", namespace, name) is None:
            endpoints: dict = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name, "namespace": namespace, "labels": labels}}
            if subsets:
                endpoints["subsets"] = subsets
            self.store.create("endpoints", namespace, endpoints)
            return None

        def update(obj: dict) -> None:
            obj["metadata"]["labels"] = labels
            if subsets:
                obj["subsets"] = subsets
            else:
                obj.pop("subsets", None)  # upstream omits an empty list

        self.store.mutate("endpoints", namespace, name, update)
        return None

    def _delete_endpoints(self, namespace: str, name: str) -> None:
        try:
            self.store.delete("endpoints", namespace, name)
        except NotFoundError:
            return
