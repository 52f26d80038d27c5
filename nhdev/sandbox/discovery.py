"""Discovery documents (/version, /api, /apis, APIResourceLists) and the OpenAPI v3 documents kubectl reads.

kubectl reads OpenAPI v3 to learn whether the server validates fields itself (the ``fieldValidation``
query parameter on PATCH operations) and to compute strategic merge patches for ``apply``; without
it kubectl falls back to downloading OpenAPI v2 as protobuf. The v3 documents here are built from
the same definitions the strategic merge patch uses, so both agree on merge keys.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from typing import Any

from nhdev.sandbox import patch
from nhdev.sandbox.resources import ResourceType, group_versions, resources_in

SERVER_VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-nhdev",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-04-23T00:00:00Z",
    "goVersion": "go1.24.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_POD_IO_KINDS = {
    "attach": ("PodAttachOptions", ["create", "get"]),
    "exec": ("PodExecOptions", ["create", "get"]),
    "portforward": ("PodPortForwardOptions", ["create", "get"]),
    "log": ("Pod", ["get"]),
}


def version() -> dict:
    return dict(SERVER_VERSION)


def core_versions(server_address: str) -> dict:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_entry(group: str) -> dict:
    versions = [{"groupVersion": f"{group}/{v}", "version": v} for g, v in group_versions() if g == group]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def api_groups() -> list[str]:
    return list(dict.fromkeys(g for g, _ in group_versions() if g))


def group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_entry(g) for g in api_groups()]}


def group(name: str) -> dict | None:
    if name not in api_groups():
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_entry(name)}


def _storage_version_hash(rt: ResourceType) -> str:
    digest = hashlib.sha256(f"{rt.api_version}/{rt.kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode()


def _resource_entries(rt: ResourceType) -> list[dict]:
    main: dict[str, Any] = {
        "name": rt.plural,
        "singularName": rt.singular_name,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    main["storageVersionHash"] = _storage_version_hash(rt)
    entries = [main]
    for sub in rt.subresources:
        entry: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced}
        if sub == "scale":
            entry.update(group="autoscaling", version="v1", kind="Scale", verbs=["get", "patch", "update"])
        elif sub == "status":
            entry.update(kind=rt.kind, verbs=["get", "patch", "update"])
        else:
            kind, verbs = _POD_IO_KINDS[sub]
            entry.update(kind=kind, verbs=verbs)
        entries.append(entry)
    return entries


def resource_list(group_name: str, version_name: str) -> dict | None:
    types = list(resources_in(group_name, version_name))
    if not types:
        return None
    group_version = f"{group_name}/{version_name}" if group_name else version_name
    resources = [entry for rt in types for entry in _resource_entries(rt)]
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}


# --- OpenAPI v3 ----------------------------------------------------------------------------------

_REF = re.compile(r'"#/\$defs/')


def _gv_path(group_name: str, version_name: str) -> str:
    return f"api/{version_name}" if not group_name else f"apis/{group_name}/{version_name}"


@functools.cache
def openapi_v3_document(group_name: str, version_name: str) -> bytes | None:
    """The OpenAPI v3 document of one group/version, with every definition it may reference."""
    types = list(resources_in(group_name, version_name))
    if not types:
        return None
    paths: dict[str, Any] = {}
    for rt in types:
        paths.update(_paths_for(rt))
    document = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": SERVER_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": _reachable_schemas(tuple(rt.schema_name for rt in types))},
    }
    return json.dumps(document, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=1)
def _schemas() -> dict:
    """All definitions, as OpenAPI v3 component schemas (refs rewritten, nullable types simplified)."""
    text = _REF.sub('"#/components/schemas/', json.dumps(patch.definitions()))
    schemas = json.loads(text)
    for schema in schemas.values():
        _simplify_types(schema)
    return dict(schemas)


def _reachable_schemas(roots: tuple[str, ...]) -> dict:
    """The schemas the given kinds reference, directly or not (kubectl parses every one it gets)."""
    schemas = _schemas()
    found: dict[str, dict] = {}
    pending = [name for name in roots if name in schemas]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found[name] = schemas[name]
        pending.extend(ref for ref in _refs(schemas[name]) if ref in schemas and ref not in found)
    return found


def _refs(node: Any) -> list[str]:
    refs = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            refs.append(ref.rsplit("/", 1)[-1])
        for value in node.values():
            refs.extend(_refs(value))
    elif isinstance(node, list):
        for value in node:
            refs.extend(_refs(value))
    return refs


def _simplify_types(node: Any) -> None:
    """JSON-schema ``type: [T, "null"]`` becomes OpenAPI ``type: T``; enums kubectl does not need go."""
    if isinstance(node, dict):
        kind = node.get("type")
        if isinstance(kind, list):
            concrete = [t for t in kind if t != "null"]
            if concrete:
                node["type"] = concrete[0]
            else:
                node.pop("type")
        node.pop("enum", None)
        node.pop("const", None)
        for value in node.values():
            _simplify_types(value)
    elif isinstance(node, list):
        for value in node:
            _simplify_types(value)


def _operation(rt: ResourceType, action: str, with_field_validation: bool) -> dict:
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    parameters = []
    if with_field_validation:
        parameters.append({"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True}})
        parameters.append({"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": True}})
    ref = {"$ref": f"#/components/schemas/{rt.schema_name}"}
    operation: dict[str, Any] = {
        "operationId": f"{action}{rt.kind}",
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if action == "patch":
        # kubectl apply computes strategic merge patches from v3 only when the operation accepts them.
        patch_schema = {"schema": {"type": "object"}}
        operation["requestBody"] = {"content": {t: patch_schema for t in patch.PATCH_TYPES}, "required": True}
    elif action in ("put", "post"):
        operation["requestBody"] = {"content": {"application/json": {"schema": ref}}, "required": True}
    return operation


def _paths_for(rt: ResourceType) -> dict[str, Any]:
    prefix = "/" + _gv_path(rt.group, rt.version)
    base = f"{prefix}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{prefix}/{rt.plural}"
    item = {
        "get": _operation(rt, "get", False),
        "put": _operation(rt, "put", True),
        "patch": _operation(rt, "patch", True),
        "delete": _operation(rt, "delete", False),
    }
    collection = {"get": _operation(rt, "list", False), "post": _operation(rt, "post", True)}
    return {base: collection, f"{base}/{{name}}": item}


def _protobuf_string(field: int, value: bytes) -> bytes:
    return bytes([field << 3 | 2]) + _varint(len(value)) + value


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def openapi_v2_protobuf() -> bytes:
    """A minimal OpenAPI v2 document (gnostic protobuf) without definitions.

    kubectl before 1.28 downloads it for client-side validation and apply; finding no schema for a
    kind it skips validation of that kind and computes patches from its compiled-in types.
    """
    info = _protobuf_string(1, b"Kubernetes") + _protobuf_string(2, SERVER_VERSION["gitVersion"].encode())
    return _protobuf_string(1, b"2.0") + _protobuf_string(2, info)


def openapi_v3_root() -> dict:
    paths = {}
    for group_name, version_name in group_versions():
        path = _gv_path(group_name, version_name)
        digest = hashlib.sha256(openapi_v3_document(group_name, version_name) or b"").hexdigest().upper()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest[:128]}"}
    return {"paths": paths}
