"""What a session is asked to hold (``SessionSpec``, written as JSON beside its control socket)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nhdev.cluster.kubeconfig import ClusterTarget
from nhdev.config.ports import PortForward


@dataclass
class SessionSpec:
    """Everything the background process needs; plain JSON so the CLI and the process agree."""

    kubeconfig: str
    context: str
    namespace: str
    workload: str  # "deployment/web"
    session_id: str  # the dev-mode session: labels its pods, names its key directory
    dev_container: str = ""
    forwards: list[str] = field(default_factory=list)  # portForward entries as written: "L:R", ":R", "P", "R:r:l"
    config_path: str | None = None  # the dev config, for services that read more of it (sync, run)
    service: str | None = None  # the config's service name
    container: str | None = None  # the config's container name
    local_root: str | None = None  # the developer's source tree (sync's local side)
    mode: str = "replace"  # the dev mode the session belongs to: replace | duplicate
    keepalive: float = 3.0

    @property
    def target(self) -> ClusterTarget:
        return ClusterTarget(self.kubeconfig, self.context, self.namespace)

    def port_forwards(self) -> list[PortForward]:
        return [PortForward.model_validate(text) for text in self.forwards]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionSpec:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> SessionSpec:
        return cls.from_json(json.loads(path.read_text()))
