"""What to do for each path, given the local state, the pod's state and the last common version.

``base`` holds, per path, the signature both sides last agreed on. Against it a difference is
attributed to the side that moved away from it:

- one-way (``send``): the pod mirrors the local tree; pod-only paths are kept (``prune`` deletes
  them), except those the local side deleted since the base (a local deletion while paused).
- two-way (``sendReceive``): a side that kept the base version follows the other; a path gone from
  the pod is restored from the local copy while delete protection is on; a path changed on both
  sides is a conflict (the local copy wins in place, the pod's is kept beside it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from nhdev.sync.index import Entry, Signature

Direction = Literal["send", "sendReceive"]


@dataclass
class Plan:
    send: list[str] = field(default_factory=list)  # push the local entry
    delete_remote: list[str] = field(default_factory=list)
    fetch: list[str] = field(default_factory=list)  # pull the pod's entry
    delete_local: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # pull the pod's copy aside, then push the local one
    agreed: dict[str, Signature] = field(default_factory=dict)  # already equal: the new base
    forget: list[str] = field(default_factory=list)  # gone on both sides (or no longer comparable)

    def is_empty(self) -> bool:
        return not (self.send or self.delete_remote or self.fetch or self.delete_local or self.conflicts)


def reconcile(paths: Iterable[str], local: Mapping[str, Entry], remote: Mapping[str, Entry | None],
              base: Mapping[str, Signature], *, direction: Direction, delete_protection: bool,
              prune: bool = False) -> Plan:
    plan = Plan()
    for path in sorted(set(paths)):
        ours, theirs, agreed = local.get(path), remote.get(path), base.get(path)
        if direction == "send":
            _one_way(plan, path, ours, theirs, agreed, prune)
        else:
            _two_way(plan, path, ours, theirs, agreed, delete_protection)
    return plan


def _same(a: Entry | None, b: Entry | None) -> bool:
    return a is not None and b is not None and a.signature == b.signature


def _is_base(entry: Entry | None, agreed: Signature | None) -> bool:
    return entry is not None and agreed is not None and entry.signature == agreed


def _one_way(plan: Plan, path: str, ours: Entry | None, theirs: Entry | None, agreed: Signature | None,
             prune: bool) -> None:
    if ours is not None and theirs is not None and _same(ours, theirs):
        plan.agreed[path] = ours.signature
    elif ours is not None:
        plan.send.append(path)
    elif theirs is not None and (prune or _is_base(theirs, agreed)):
        plan.delete_remote.append(path)
    else:
        plan.forget.append(path)


def _two_way(plan: Plan, path: str, ours: Entry | None, theirs: Entry | None, agreed: Signature | None,
             delete_protection: bool) -> None:
    if ours is None and theirs is None:
        plan.forget.append(path)
    elif ours is not None and theirs is not None and _same(ours, theirs):
        plan.agreed[path] = ours.signature
    elif theirs is None:
        assert ours is not None
        pod_deleted_it = _is_base(ours, agreed)
        if pod_deleted_it and not delete_protection:
            plan.delete_local.append(path)
        else:
            plan.send.append(path)  # new here, changed here, or protected from the pod's deletion
    elif ours is None:
        if _is_base(theirs, agreed):
            plan.delete_remote.append(path)  # deleted here, unchanged there
        else:
            plan.fetch.append(path)  # new there, or changed there (which outweighs a deletion here)
    elif _is_base(ours, agreed) or (ours.kind == "dir" and theirs.kind == "dir"):
        # Only the pod moved (for two directories, only permissions differ: the pod's win).
        plan.fetch.append(path)
    elif _is_base(theirs, agreed):
        plan.send.append(path)
    else:
        plan.conflicts.append(path)
