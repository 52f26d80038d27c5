"""Checks that span several entries (duplicates, limits vs requests), run on the raw data.

They run on the data rather than on the models so that they are reported together with the
schema errors of the same file, even when a model could not be built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from nhdev.config.kinds import normalise_kind
from nhdev.config.locate import render_path
from nhdev.config.quantity import parse_quantity
from nhdev.config.yaml_nodes import Loc

Finding = tuple[Loc, str]
"""Where (path into the data) and what is wrong."""


def check_services(services: list[tuple[Loc, Any]]) -> list[Finding]:
    """Findings for every service (given with its path) and across services."""
    findings: list[Finding] = []
    if len(services) > 1:
        findings += _named_and_unique(services)
    for loc, service in services:
        findings += _containers_unique(loc, service)
        for index, container in enumerate(_items(service, "containers")):
            dev = container.get("dev") if isinstance(container, dict) else None
            dev_loc = (*loc, "containers", index, "dev")
            findings += _requests_within_limits(dev_loc, dev)
            findings += _volume_paths_unique(dev_loc, dev)
    return findings


def _named_and_unique(services: list[tuple[Loc, Any]]) -> Iterator[Finding]:
    seen: dict[tuple[str, str | None], Loc] = {}
    for loc, service in services:
        if not isinstance(service, dict):
            continue
        name = service.get("name")
        if not name:
            yield (*loc, "name"), "missing (expected the workload's name: a list of services names each one)"
            continue
        kind = service.get("serviceType")
        key = (str(name), normalise_kind(kind) if isinstance(kind, str) else None)
        if key in seen:
            first = _render(seen[key])
            yield (*loc, "name"), f"{name!r} is configured twice (expected each workload once; first at {first})"
        else:
            seen[key] = loc


def _containers_unique(loc: Loc, service: Any) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    unnamed: int | None = None
    for index, container in enumerate(_items(service, "containers")):
        name = container.get("name") if isinstance(container, dict) else None
        if isinstance(container, dict) and name in (None, ""):
            if unnamed is not None:
                message = "a second container without a name (expected a name on every container but one)"
                yield (*loc, "containers", index), message
            unnamed = index
        elif isinstance(name, str) and name in seen:
            message = f"container {name!r} is configured twice (expected each container once; first at "
            yield (*loc, "containers", index, "name"), f"{message}containers[{seen[name]}])"
        elif isinstance(name, str):
            seen[name] = index


def _requests_within_limits(dev_loc: Loc, dev: Any) -> Iterator[Finding]:
    resources = dev.get("resources") if isinstance(dev, dict) else None
    if not isinstance(resources, dict):
        return
    limits, requests = resources.get("limits"), resources.get("requests")
    if not (isinstance(limits, dict) and isinstance(requests, dict)):
        return
    for resource in ("cpu", "memory"):
        limit, request = _quantity(limits.get(resource)), _quantity(requests.get(resource))
        if limit is not None and request is not None and request > limit:
            message = f"request {requests[resource]} is above the limit {limits[resource]} (expected at most the limit)"
            yield (*dev_loc, "resources", "requests", resource), message


def _volume_paths_unique(dev_loc: Loc, dev: Any) -> Iterator[Finding]:
    seen: dict[str, int] = {}
    for index, volume in enumerate(_items(dev, "persistentVolumeDirs")):
        path = volume.get("path") if isinstance(volume, dict) else None
        if not isinstance(path, str):
            continue
        normalised = path.rstrip("/") or "/"
        if normalised in seen:
            message = f"{path!r} is listed twice (expected each path once; first at "
            yield (
                (*dev_loc, "persistentVolumeDirs", index, "path"),
                f"{message}persistentVolumeDirs[{seen[normalised]}])",
            )
        seen.setdefault(normalised, index)


def _quantity(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        return parse_quantity(str(value))
    except ValueError:
        return None


def _items(mapping: Any, key: str) -> list[Any]:
    value = mapping.get(key) if isinstance(mapping, dict) else None
    return value if isinstance(value, list) else []


def _render(loc: Loc) -> str:
    return render_path(loc) or "the top"
