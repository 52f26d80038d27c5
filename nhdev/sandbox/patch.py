"""The three patch types the apiserver accepts: JSON patch, JSON merge patch, strategic merge patch.

Strategic merge follows apimachinery's ``strategicpatch``: lists are merged by their
``x-kubernetes-patch-merge-key`` when their ``x-kubernetes-patch-strategy`` says ``merge``
(found by following ``$ref``s from the kind's definition in the OpenAPI-derived schemas shipped by
``kubernetes-validate``), other lists are replaced, ``null`` deletes a key, and the directives
``$patch`` (replace/delete/merge), ``$retainKeys``, ``$deleteFromPrimitiveList/<key>`` and
``$setElementOrder/<key>`` are honoured.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonpatch
import jsonpointer

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)
SCHEMA_VERSION = "v1.33.0-local"

_DIRECTIVE = "$patch"
_RETAIN_KEYS = "$retainKeys"
_DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList/"
_SET_ELEMENT_ORDER = "$setElementOrder/"


class PatchError(Exception):
    """A patch that cannot be applied: ``code`` 400 (malformed) or 422 (does not apply)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --- schemas -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, dict]:
    """The OpenAPI definitions (``$defs``) of the Kubernetes API, by name."""
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / SCHEMA_VERSION / "_definitions.json"
    return dict(json.loads(path.read_text())["$defs"])


@dataclass(frozen=True)
class _FieldMeta:
    strategies: frozenset[str]
    merge_key: str | None
    schema: dict | None  # the field's own schema node (may carry a $ref)


_NO_META = _FieldMeta(frozenset(), None, None)


def _resolve(node: dict | None) -> dict | None:
    seen = 0
    while node is not None and "$ref" in node and seen < 50:
        node = definitions().get(node["$ref"].rsplit("/", 1)[-1])
        seen += 1
    return node


def _field_meta(schema: dict | None, key: str) -> _FieldMeta:
    resolved = _resolve(schema)
    if resolved is None:
        return _NO_META
    prop = (resolved.get("properties") or {}).get(key)
    if prop is None:
        extra = resolved.get("additionalProperties")
        return _FieldMeta(frozenset(), None, extra if isinstance(extra, dict) else None)
    strategies = frozenset(s for s in str(prop.get("x-kubernetes-patch-strategy", "")).split(",") if s)
    return _FieldMeta(strategies, prop.get("x-kubernetes-patch-merge-key"), prop)


def _items_schema(schema: dict | None) -> dict | None:
    resolved = _resolve(schema)
    items = resolved.get("items") if resolved else None
    return items if isinstance(items, dict) else None


def schema_for(definition_name: str) -> dict | None:
    return definitions().get(definition_name)


# --- JSON patch and merge patch ------------------------------------------------------------------


def apply_json_patch(obj: dict, operations: Any) -> dict:
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    try:
        result = jsonpatch.JsonPatch(operations).apply(obj)
    except jsonpatch.JsonPatchTestFailed:
        raise PatchError(
            "the server rejected our request due to an error in our request: " + _failed_test(operations)
        ) from None
    except jsonpatch.InvalidJsonPatch as error:
        raise PatchError(str(error), 400) from None
    except (jsonpatch.JsonPatchConflict, jsonpointer.JsonPointerException) as error:
        raise PatchError(f"the server rejected our request due to an error in our request: {error}") from None
    if not isinstance(result, dict):
        raise PatchError("the patch replaced the whole object with a non-object")
    return result


def _failed_test(operations: list) -> str:
    paths = [op.get("path") for op in operations if isinstance(op, dict) and op.get("op") == "test"]
    return f"testing value {paths[0] if len(paths) == 1 else paths} failed: test failed"


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


# --- strategic merge patch -----------------------------------------------------------------------


class _Delete:
    """Marks a map the patch deleted with ``$patch: delete``."""


_DELETED = _Delete()


def apply_strategic_merge_patch(obj: dict, patch: Any, definition_name: str | None) -> dict:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patches must be JSON objects", 400)
    schema = schema_for(definition_name) if definition_name else None
    merged = _merge_map(obj, patch, schema)
    return {} if isinstance(merged, _Delete) else merged


def _merge_map(original: dict, patch: dict, schema: dict | None) -> dict | _Delete:
    patch = dict(patch)
    directive = patch.pop(_DIRECTIVE, None)
    if directive == "delete":
        return _DELETED
    if directive == "replace":
        return _strip_directives(patch)
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive} in map: {json.dumps(patch)}", 400)
    result = dict(original)
    retain = patch.pop(_RETAIN_KEYS, None)
    if retain is not None:
        if not isinstance(retain, list):
            raise PatchError("$retainKeys must be a list", 400)
        result = {k: v for k, v in result.items() if k in retain}
    orders = _take_prefixed(patch, _SET_ELEMENT_ORDER)
    for field, values in _take_prefixed(patch, _DELETE_FROM_PRIMITIVE_LIST).items():
        if isinstance(result.get(field), list) and isinstance(values, list):
            result[field] = [v for v in result[field] if v not in values]
    for key, value in patch.items():
        _merge_field(result, key, value, _field_meta(schema, key))
    for field, order in orders.items():
        if isinstance(result.get(field), list) and isinstance(order, list):
            meta = _field_meta(schema, field)
            original_value = original.get(field)
            original_list = original_value if isinstance(original_value, list) else []
            result[field] = _apply_element_order(result[field], order, original_list, meta.merge_key)
    return result


def _take_prefixed(patch: dict, prefix: str) -> dict[str, Any]:
    taken = {key[len(prefix):]: patch.pop(key) for key in [k for k in patch if k.startswith(prefix)]}
    return taken


def _merge_field(result: dict, key: str, value: Any, meta: _FieldMeta) -> None:
    current = result.get(key)
    if value is None:
        result.pop(key, None)
    elif isinstance(value, dict):
        merged = _merge_map(current if isinstance(current, dict) else {}, value, meta.schema)
        if isinstance(merged, _Delete):
            result.pop(key, None)
        else:
            result[key] = merged
    elif isinstance(value, list):
        if "merge" in meta.strategies:
            base = current if isinstance(current, list) else []
            result[key] = _merge_list(base, value, meta.merge_key, _items_schema(meta.schema))
        else:
            result[key] = _replace_list(value)
    else:
        result[key] = value


def _replace_list(patch: list) -> list:
    items = [item for item in patch if not (isinstance(item, dict) and item.get(_DIRECTIVE) == "replace")]
    return [_strip_directives(item) if isinstance(item, dict) else item for item in items]


def _merge_list(original: list, patch: list, merge_key: str | None, item_schema: dict | None) -> list:
    if any(isinstance(item, dict) and item.get(_DIRECTIVE) == "replace" for item in patch):
        return _replace_list(patch)
    if merge_key is None or not all(isinstance(item, dict) for item in patch):
        return _deduplicate([*original, *patch])
    result = list(original)
    for item in patch:
        if merge_key not in item:
            raise PatchError(f"map: {json.dumps(item)} does not contain declared merge key: {merge_key}")
        index = _find(result, merge_key, item[merge_key])
        if item.get(_DIRECTIVE) == "delete":
            result = [r for r in result if not (isinstance(r, dict) and r.get(merge_key) == item[merge_key])]
            continue
        base = result[index] if index is not None else {}
        merged = _merge_map(base, item, item_schema)
        if isinstance(merged, _Delete):
            continue
        if index is None:
            result.append(merged)
        else:
            result[index] = merged
    return result


def _find(items: list, merge_key: str, value: Any) -> int | None:
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get(merge_key) == value:
            return index
    return None


def _deduplicate(values: list) -> list:
    result: list = []
    for value in values:
        if value not in result:
            result.append(value)
    return result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v)
            for k, v in value.items()
            if k not in (_DIRECTIVE, _RETAIN_KEYS)
            and not k.startswith((_SET_ELEMENT_ORDER, _DELETE_FROM_PRIMITIVE_LIST))
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _apply_element_order(merged: list, order: list, original: list, merge_key: str | None) -> list:
    """Order as apimachinery does: $setElementOrder first, server-only items keep their relative place."""
    key: Callable[[Any], Any] = (
        (lambda item: item.get(merge_key) if isinstance(item, dict) else item) if merge_key else (lambda item: item)
    )
    order_keys = [key(item) for item in order]
    server_keys = [key(item) for item in original]
    in_patch = sorted((m for m in merged if key(m) in order_keys), key=lambda m: order_keys.index(key(m)))
    server_only = sorted(
        (m for m in merged if key(m) not in order_keys),
        key=lambda m: server_keys.index(key(m)) if key(m) in server_keys else len(server_keys),
    )
    return _merge_sorted(server_only, in_patch, server_keys, key)


def _merge_sorted(left: list, right: list, server_keys: list, key: Callable[[Any], Any]) -> list:
    result: list = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            result.append(right[j])
            j += 1
        elif j >= len(right):
            result.append(left[i])
            i += 1
        else:
            left_key, right_key = key(left[i]), key(right[j])
            both_known = left_key in server_keys and right_key in server_keys
            if both_known and server_keys.index(left_key) < server_keys.index(right_key):
                result.append(left[i])
                i += 1
            else:
                result.append(right[j])
                j += 1
    return result
