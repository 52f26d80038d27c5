"""Kubeconfig to ApiClient, resolved the way kubectl resolves it.

``--kubeconfig`` wins; else every file in ``$KUBECONFIG`` (merged, first wins per entry); else
``~/.kube/config``. The context is ``--context`` or the merged current-context; the namespace is
``-n`` or the context's namespace or ``default``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from nhdev.errors import UsageError


@dataclass(frozen=True)
class ClusterTarget:
    """Where commands go: the files read, the context chosen and the namespace in effect."""

    kubeconfig: str  # one path or several joined by os.pathsep, as KUBECONFIG holds them
    context: str
    namespace: str


@dataclass(frozen=True)
class KubeContexts:
    """The contexts of the kubeconfig files in effect, and which one is current."""

    kubeconfig: str
    current: str | None
    contexts: list[dict[str, Any]]  # kubeconfig entries: {"name": ..., "context": {"cluster", "user", "namespace"}}

    def to_json(self) -> dict[str, Any]:
        return {"kubeconfig": self.kubeconfig, "current": self.current, "contexts": [
            {"name": c["name"], "cluster": (c.get("context") or {}).get("cluster"),
             "user": (c.get("context") or {}).get("user"),
             "namespace": (c.get("context") or {}).get("namespace") or "default"} for c in self.contexts]}


def list_contexts(kubeconfig: str | os.PathLike[str] | None = None) -> KubeContexts:
    """Every context of the kubeconfig files kubectl would read (``--kubeconfig``, ``$KUBECONFIG``, ~/.kube/config)."""
    default = str(Path.home() / ".kube" / "config")
    files = str(kubeconfig) if kubeconfig else os.environ.get("KUBECONFIG") or default
    existing = [f for f in files.split(os.pathsep) if f and Path(f).expanduser().exists()]
    if not existing:
        raise UsageError(f"no kubeconfig found at {files}", hint="pass --kubeconfig or set KUBECONFIG")
    try:
        contexts, current = config.list_kube_config_contexts(config_file=os.pathsep.join(existing))
    except ConfigException as err:
        raise UsageError(f"invalid kubeconfig {files}: {err}") from err
    return KubeContexts(os.pathsep.join(existing), (current or {}).get("name"), list(contexts))


def resolve_target(
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    namespace: str | None = None,
) -> ClusterTarget:
    found = list_contexts(kubeconfig)
    chosen = context or found.current
    entry = next((c for c in found.contexts if c["name"] == chosen), None)
    if entry is None:
        known = ", ".join(c["name"] for c in found.contexts) or "none"
        raise UsageError(f"context {chosen!r} not found in {kubeconfig or found.kubeconfig}", hint=f"contexts: {known}")
    ns = namespace or entry.get("context", {}).get("namespace") or "default"
    return ClusterTarget(kubeconfig=found.kubeconfig, context=entry["name"], namespace=ns)


def api_client(target: ClusterTarget) -> client.ApiClient:
    """A fresh ApiClient for ``target``. Streams need their own (see kube-wire.md §1)."""
    try:
        return config.new_client_from_config(
            config_file=target.kubeconfig, context=target.context, persist_config=False
        )
    except ConfigException as err:
        raise UsageError(f"cannot use context {target.context!r}: {err}") from err
