"""ownerReferences: building them, reading the controller of an object, finding an owner's resource."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from nhdev.sandbox.controllers.base import Key
from nhdev.sandbox.resources import RESOURCE_TYPES, ResourceType

_BY_GROUP_KIND = {(rt.group, rt.kind): rt for rt in RESOURCE_TYPES}


def owner_reference(owner: dict, *, controller: bool = True, block_owner_deletion: bool = True) -> dict:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": controller,
        "blockOwnerDeletion": block_owner_deletion,
    }


def owner_references(obj: dict) -> list[dict]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def controller_reference(obj: dict) -> dict | None:
    return next((ref for ref in owner_references(obj) if ref.get("controller")), None)


def is_controlled_by(obj: dict, owner: dict) -> bool:
    ref = controller_reference(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


def controlled_by(objects: Iterable[dict], owner: dict) -> list[dict]:
    return [obj for obj in objects if is_controlled_by(obj, owner)]


def resource_type_for(api_version: str, kind: str) -> ResourceType | None:
    group = api_version.rpartition("/")[0]
    return _BY_GROUP_KIND.get((group, kind))


def controller_keys(kind: str) -> Callable[[dict], list[Key]]:
    """A key mapper: an object to the key of its controller, when that controller is of ``kind``."""

    def keys(obj: dict) -> list[Key]:
        ref = controller_reference(obj)
        if ref is None or ref.get("kind") != kind:
            return []
        return [((obj.get("metadata") or {}).get("namespace") or "", ref.get("name", ""))]

    return keys
