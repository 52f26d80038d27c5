"""Workload kinds a dev config can name (``serviceType``), with kubectl's plural and short forms."""

from __future__ import annotations

from typing import Literal, cast, get_args

WorkloadKind = Literal["deployment", "statefulset", "daemonset", "job", "cronjob", "pod"]
WORKLOAD_KINDS: tuple[str, ...] = get_args(WorkloadKind)

_ALIASES = {
    "deploy": "deployment",
    "sts": "statefulset",
    "ds": "daemonset",
    "cj": "cronjob",
    "po": "pod",
}


def normalise_kind(text: str) -> WorkloadKind | None:
    """``Deployments``, ``deploy``, ``deployment.apps`` -> ``deployment``; None if not a known kind."""
    word = text.strip().lower()
    for group in (".apps", ".batch", ".v1.apps", ".v1.batch"):
        word = word.removesuffix(group)
    word = _ALIASES.get(word, word)
    if word not in WORKLOAD_KINDS and word.endswith("s"):
        word = word[:-1]
    return cast(WorkloadKind, word) if word in WORKLOAD_KINDS else None


def kind_choices() -> str:
    return ", ".join(WORKLOAD_KINDS)
