"""A loaded dev config file: its services, and finding the one for a workload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nhdev.config.kinds import kind_choices, normalise_kind
from nhdev.config.model import ServiceConfig
from nhdev.errors import UsageError

# Nocalhost keys nhdev accepts but does not act on: left out of `config show` unless set.
_IGNORED_KEYS = frozenset(
    {"priorityClass", "dependLabelSelector", "hub", "install", "gitUrl", "useDevContainer", "waitForFirstConsumer"}
)


@dataclass(frozen=True)
class DevConfig:
    """The services of one config file. ``is_list``: the file held a list (kept for ``config show``)."""

    services: tuple[ServiceConfig, ...]
    path: Path | None = None
    is_list: bool = False

    def service(self, name: str | None = None, kind: str | None = None) -> ServiceConfig:
        """The config for workload ``kind/name``, with ``name`` and ``serviceType`` filled in.

        A file with a single unnamed service applies to any workload; ``name`` None picks the only
        service of the file. Raises :class:`UsageError` naming the configured services otherwise.
        """
        wanted_kind = _kind(kind)
        if name is None:
            if len(self.services) == 1:
                return _filled(self.services[0], None, wanted_kind)
            raise UsageError(
                f"{self._where()} configures {len(self.services)} services; say which workload",
                hint=f"configured: {self._listing()}",
            )
        for candidate in self.services:
            if candidate.name == name and candidate.service_type in (None, wanted_kind or candidate.service_type):
                return _filled(candidate, name, wanted_kind)
        only = self.services[0] if len(self.services) == 1 else None
        if only is not None and only.name is None and only.service_type in (None, wanted_kind or only.service_type):
            return _filled(only, name, wanted_kind)
        workload = f"{wanted_kind}/{name}" if wanted_kind else name
        raise UsageError(
            f"{self._where()} has no dev config for {workload}",
            hint=f"configured: {self._listing()}",
        )

    def to_data(self) -> Any:
        """The effective config in the file format (camelCase keys, defaults filled in)."""
        dumped = [_without_ignored(s.model_dump(by_alias=True, mode="json")) for s in self.services]
        return dumped if self.is_list or len(dumped) != 1 else dumped[0]

    def summary(self) -> str:
        """``1 service (app-samples: 1 container)``."""
        parts = []
        for service in self.services:
            count = len(service.containers)
            parts.append(f"{service.name or '(any workload)'}: {count} container{'' if count == 1 else 's'}")
        plural = "" if len(self.services) == 1 else "s"
        return f"{len(self.services)} service{plural} ({', '.join(parts)})"

    def _where(self) -> str:
        return str(self.path) if self.path else "the dev config"

    def _listing(self) -> str:
        return ", ".join(f"{s.service_type or 'any kind'}/{s.name or '(any name)'}" for s in self.services)


def _kind(kind: str | None) -> str | None:
    if kind is None:
        return None
    normalised = normalise_kind(kind)
    if normalised is None:
        raise UsageError(f"{kind!r} is not a workload kind (expected one of: {kind_choices()})")
    return normalised


def _filled(service: ServiceConfig, name: str | None, kind: str | None) -> ServiceConfig:
    return service.model_copy(update={"name": service.name or name, "service_type": service.service_type or kind})


def _without_ignored(data: Any) -> Any:
    if isinstance(data, dict):
        return {
            key: _without_ignored(value)
            for key, value in data.items()
            if not (key in _IGNORED_KEYS and value in (None, False))
        }
    if isinstance(data, list):
        return [_without_ignored(item) for item in data]
    return data
