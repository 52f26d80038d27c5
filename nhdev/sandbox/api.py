"""The sandbox's Kubernetes API over HTTP: discovery, CRUD, list/watch, patch, subresources.

One catch-all aiohttp route parses the apiserver's URL layout
(``/api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]`` and ``/apis/GROUP/VERSION/...``) and calls the
Store. Errors are ``Status`` objects worded like the real server's. Pod exec/attach/portforward/log
are handed to an injected ``PodIO``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from aiohttp import web

from nhdev.sandbox import discovery, kubeproto, patch, tables
from nhdev.sandbox.resources import ResourceType, find_resource
from nhdev.sandbox.selectors import label_selector_string
from nhdev.sandbox.store import (
    BadRequestError,
    InvalidError,
    NotFoundError,
    Store,
    StoreError,
    Watch,
    WatchEvent,
    clone,
    conflict,
)

log = logging.getLogger(__name__)

DEFAULT_WATCH_TIMEOUT = 1800.0
DEFAULT_BOOKMARK_INTERVAL = 30.0
# Kinds whose DELETE answers with the object rather than a Status, as on the apiserver (and as
# the generated Python client decodes them: V1Pod, V1Service, ...).
_RETURNS_DELETED_OBJECT = frozenset(
    {"pods", "services", "serviceaccounts", "persistentvolumeclaims", "persistentvolumes", "storageclasses"}
)
# Bodies are JSON (YAML is accepted too). Protobuf and CBOR bodies get 415: decoding them would need
# the generated.proto field numbers of every kind, which no installed package ships.
_JSON_BODY_TYPES = ("application/json", "application/octet-stream", "text/plain", *patch.PATCH_TYPES)
# How often an idle watch checks whether its client went away.
_IDLE_CHECK_SECONDS = 1.0


class PodIO(Protocol):
    async def exec(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse: ...
    async def attach(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse: ...
    async def portforward(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse: ...
    async def log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse: ...


@dataclass
class ApiSettings:
    bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL


STORE_KEY = web.AppKey("nhdev_store", Store)
POD_IO_KEY = web.AppKey("nhdev_pod_io", object)
SETTINGS_KEY = web.AppKey("nhdev_api_settings", ApiSettings)


class HttpStatusError(StoreError):
    """An error with a code and reason the Store never raises (405, 415, 501)."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason = code, reason


def create_app(
    store: Store, pod_io: PodIO | None = None, *, bookmark_interval: float = DEFAULT_BOOKMARK_INTERVAL
) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STORE_KEY] = store
    app[POD_IO_KEY] = pod_io
    app[SETTINGS_KEY] = ApiSettings(bookmark_interval=bookmark_interval)
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


# --- responses -----------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type="application/json"
    )


def _status_response(error: StoreError) -> web.Response:
    return _json(error.to_status(), error.code)


def _not_found_path() -> StoreError:
    error = NotFoundError("the server could not find the requested resource")
    error.details = {}
    return error


def _success_status(rt: ResourceType, obj: dict) -> dict:
    details: dict[str, Any] = {"name": obj["metadata"]["name"]}
    if rt.group:
        details["group"] = rt.group
    details["kind"] = rt.plural
    details["uid"] = obj["metadata"].get("uid", "")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


# --- routing -------------------------------------------------------------------------------------


@dataclass
class _Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool = False


async def _handle(request: web.Request) -> web.StreamResponse:
    started = time.perf_counter()
    try:
        response = await _route(request)
    except StoreError as error:
        response = _status_response(error)
    except patch.PatchError as error:
        cls = InvalidError if error.code == 422 else BadRequestError
        response = _status_response(cls(error.message))
    if log.isEnabledFor(logging.DEBUG):
        log.debug("%s %s -> %s in %.1f ms", request.method, request.path_qs, response.status,
                  (time.perf_counter() - started) * 1000)
    return response


async def _route(request: web.Request) -> web.StreamResponse:
    segments = [s for s in request.path.split("/") if s]
    if not segments:
        return _json({"paths": ["/api", "/api/v1", "/apis", "/openapi/v3", "/version"]})
    head = segments[0]
    if head == "version":
        return _json(discovery.version())
    if head in ("healthz", "livez", "readyz"):
        return web.Response(text="ok")
    if head == "openapi":
        return _openapi(request, segments[1:])
    if head == "api":
        return await _api_group(request, "", segments[1:])
    if head == "apis":
        if len(segments) == 1:
            return _json(discovery.group_list())
        if len(segments) == 2:
            document = discovery.group(segments[1])
            if document is None:
                raise _not_found_path()
            return _json(document)
        return await _api_group(request, segments[1], segments[2:])
    raise _not_found_path()


async def _api_group(request: web.Request, group: str, rest: list[str]) -> web.StreamResponse:
    if not group and not rest:
        return _json(discovery.core_versions(request.host))
    version, rest = rest[0], rest[1:]
    if not rest:
        document = discovery.resource_list(group, version)
        if document is None:
            raise _not_found_path()
        return _json(document)
    target = _parse_target(group, version, rest)
    if target is None:
        raise _not_found_path()
    return await _serve(request, target)


def _parse_target(group: str, version: str, rest: list[str]) -> _Target | None:
    legacy_watch = rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        candidate = find_resource(group, version, rest[2])
        if candidate is not None and candidate.namespaced:
            namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = find_resource(group, version, rest[0])
    if rt is None or (namespace is not None and not rt.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if subresource is not None and subresource not in rt.subresources:
        return None
    return _Target(rt, namespace, name, subresource, legacy_watch)


async def _serve(request: web.Request, target: _Target) -> web.StreamResponse:
    method = request.method
    if target.subresource in ("exec", "attach", "portforward", "log"):
        return await _pod_io(request, target)
    if target.subresource == "scale":
        return await _scale(request, target)
    if target.name is None:
        handler = _COLLECTION_HANDLERS.get(method)
    elif target.subresource == "status":
        handler = _STATUS_HANDLERS.get(method)
    else:
        handler = _ITEM_HANDLERS.get(method)
    if handler is None:
        raise HttpStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                              "resource")
    return await handler(request, target)


# --- request helpers -----------------------------------------------------------------------------


def _store(request: web.Request) -> Store:
    return request.app[STORE_KEY]


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").lower() in ("1", "true")


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for value in values:
        if value != "All":
            raise BadRequestError(f'unsupported dry run directive: "{value}"')
    return bool(values)


async def _body(request: web.Request, *, required: bool = True) -> Any:
    raw = await request.read()
    if not raw.strip():
        if required:
            raise BadRequestError("the body of the request was empty")
        return None
    content_type = request.content_type
    if content_type == kubeproto.PROTOBUF_CONTENT_TYPE:  # kubectl >= 1.32 `create <kind>` generators
        try:
            return kubeproto.decode_request_body(raw)
        except kubeproto.ProtobufDecodeError as error:
            raise BadRequestError(f"the object provided is unrecognized or malformed: {error}") from None
    if content_type not in _JSON_BODY_TYPES and "yaml" not in content_type:
        raise HttpStatusError(
            415, "UnsupportedMediaType",
            f"the nhdev sandbox accepts JSON, YAML and protobuf request bodies, not {content_type}",
        )
    try:
        if "yaml" in content_type:
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as error:
        raise BadRequestError(f"the object provided is unrecognized or malformed: {error}") from None


async def _object_body(request: web.Request, target: _Target) -> dict:
    body = await _body(request)
    if not isinstance(body, dict):
        raise BadRequestError("the object provided is unrecognized (must be a JSON object)")
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind and kind != target.rt.kind) or (api_version and api_version != target.rt.api_version):
        raise BadRequestError(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({target.rt.api_version})" if api_version != target.rt.api_version else
            f'the kind in the data ("{kind}") does not match the expected kind ("{target.rt.kind}")'
        )
    return body


def _check_name(body: dict, name: str) -> None:
    metadata = body.setdefault("metadata", {})
    given = metadata.get("name")
    if given and given != name:
        raise BadRequestError(f"the name of the object ({given}) does not match the name on the URL ({name})")
    metadata["name"] = name


def _output(request: web.Request, rt: ResourceType, obj: dict, status: int = 200) -> web.Response:
    if tables.wants_table(request.headers.get("Accept", "")):
        include = request.query.get("includeObject", "Metadata")
        return _json(tables.to_table(rt, [obj], obj["metadata"].get("resourceVersion", ""),
                                     include_object=include), status)
    return _json(obj, status)


# --- collection: list, watch, create, deletecollection -------------------------------------------


async def _collection_get(request: web.Request, target: _Target) -> web.StreamResponse:
    if target.legacy_watch or _flag(request, "watch"):
        return await _watch(request, target)
    store = _store(request)
    items, resource_version = store.list(
        target.rt.plural,
        target.namespace,
        label_selector=request.query.get("labelSelector"),
        field_selector=request.query.get("fieldSelector"),
    )
    items, continue_token, remaining = _paginate(items, request.query.get("limit"), request.query.get("continue"))
    if tables.wants_table(request.headers.get("Accept", "")):
        include = request.query.get("includeObject", "Metadata")
        return _json(tables.to_table(target.rt, items, resource_version, include_object=include,
                                     continue_token=continue_token))
    metadata: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        metadata["continue"] = continue_token
        metadata["remainingItemCount"] = remaining
    return _json({"kind": target.rt.list_kind, "apiVersion": target.rt.api_version, "metadata": metadata,
                  "items": items})


def _object_key(obj: dict) -> str:
    metadata = obj["metadata"]
    return f"{metadata.get('namespace', '')}/{metadata['name']}"


def _paginate(items: list[dict], limit: str | None, token: str | None) -> tuple[list[dict], str, int]:
    """limit/continue over the (namespace, name) order the store lists in."""
    if token:
        try:
            after = json.loads(base64.urlsafe_b64decode(token.encode()))["start"]
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise HttpStatusError(410, "Expired", "The provided continue parameter is too old to display a "
                                  "consistent list result. You can start a new list without the continue "
                                  "parameter.") from None
        items = [item for item in items if _sort_key(item) > tuple(after)]
    try:
        count = int(limit) if limit else 0
    except ValueError:
        raise BadRequestError(f'invalid limit "{limit}"') from None
    if count <= 0 or len(items) <= count:
        return items, "", 0
    page = items[:count]
    next_token = base64.urlsafe_b64encode(json.dumps({"start": list(_sort_key(page[-1]))}).encode()).decode()
    return page, next_token, len(items) - count


def _sort_key(obj: dict) -> tuple[str, str]:
    metadata = obj["metadata"]
    return (metadata.get("namespace", ""), metadata["name"])


async def _collection_post(request: web.Request, target: _Target) -> web.StreamResponse:
    body = await _object_body(request, target)
    created = _store(request).create(target.rt.plural, target.namespace, body, dry_run=_dry_run(request))
    return _output(request, target.rt, created, 201)


async def _collection_delete(request: web.Request, target: _Target) -> web.StreamResponse:
    options = await _delete_options(request)
    deleted = _store(request).delete_collection(
        target.rt.plural,
        target.namespace,
        label_selector=request.query.get("labelSelector"),
        field_selector=request.query.get("fieldSelector"),
        propagation=options.propagation,
        grace_period_seconds=options.grace_period_seconds,
        dry_run=options.dry_run,
    )
    return _json({"kind": target.rt.list_kind, "apiVersion": target.rt.api_version,
                  "metadata": {"resourceVersion": str(_store(request).resource_version)}, "items": deleted})


# --- watch ---------------------------------------------------------------------------------------


def _watch_line(event: WatchEvent, rt: ResourceType, as_table: bool, first: bool) -> bytes:
    obj = event.object
    if as_table and event.type != "BOOKMARK":
        obj = tables.to_table(rt, [obj], obj["metadata"].get("resourceVersion", ""), with_headers=first)
    return json.dumps({"type": event.type, "object": obj}, separators=(",", ":")).encode() + b"\n"


async def _watch(request: web.Request, target: _Target) -> web.StreamResponse:
    store = _store(request)
    timeout = _watch_timeout(request)
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    response.enable_chunked_encoding()
    try:
        watch = store.watch(
            target.rt.plural,
            target.namespace,
            resource_version=request.query.get("resourceVersion"),
            label_selector=request.query.get("labelSelector"),
            field_selector=_watch_field_selector(request, target),
            send_initial_events=_flag(request, "sendInitialEvents"),
        )
    except StoreError as error:
        if error.code != 410:
            raise
        # The apiserver answers 200 and sends the 410 as an ERROR event, then ends the stream.
        await response.prepare(request)
        line = json.dumps({"type": "ERROR", "object": error.to_status()}, separators=(",", ":"))
        await response.write(line.encode() + b"\n")
        await response.write_eof()
        return response
    await response.prepare(request)
    try:
        await _pump_watch(request, response, watch, target.rt, timeout)
    finally:
        watch.close()
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


def _watch_field_selector(request: web.Request, target: _Target) -> str | None:
    selector = request.query.get("fieldSelector")
    if target.name is not None:  # /watch/.../pods/NAME: the legacy single-object watch
        pinned = f"metadata.name={target.name}"
        selector = f"{selector},{pinned}" if selector else pinned
    return selector


def _watch_timeout(request: web.Request) -> float:
    value = request.query.get("timeoutSeconds")
    if not value:
        return DEFAULT_WATCH_TIMEOUT
    try:
        return max(0.0, float(value))
    except ValueError:
        raise BadRequestError(f'invalid timeoutSeconds "{value}"') from None


async def _pump_watch(
    request: web.Request, response: web.StreamResponse, watch: Watch, rt: ResourceType, timeout: float
) -> None:
    bookmarks = _flag(request, "allowWatchBookmarks")
    interval = request.app[SETTINGS_KEY].bookmark_interval
    as_table = tables.wants_table(request.headers.get("Accept", ""))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    next_bookmark = loop.time() + interval
    first = True
    pending: asyncio.Task[WatchEvent] | None = None
    try:
        while True:
            now = loop.time()
            if now >= deadline:
                break
            if bookmarks and now >= next_bookmark:
                await response.write(_watch_line(watch.bookmark(), rt, as_table, first))
                next_bookmark = now + interval
            if pending is None:
                pending = asyncio.ensure_future(watch.__anext__())
            wait = min(deadline, next_bookmark if bookmarks else deadline, now + _IDLE_CHECK_SECONDS) - now
            done, _ = await asyncio.wait({pending}, timeout=max(wait, 0.0))
            if not done:
                if request.transport is None or request.transport.is_closing():
                    return
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            await response.write(_watch_line(event, rt, as_table, first))
            first = False
        if bookmarks:
            await response.write(_watch_line(watch.bookmark(), rt, as_table, first))
    except (ConnectionError, RuntimeError):
        return  # the client went away
    finally:
        if pending is not None:
            pending.cancel()


# --- single objects ------------------------------------------------------------------------------


async def _item_get(request: web.Request, target: _Target) -> web.StreamResponse:
    if target.legacy_watch:
        return await _watch(request, target)
    assert target.name is not None
    obj = _store(request).get(target.rt.plural, target.namespace, target.name)
    return _output(request, target.rt, obj)


async def _item_put(request: web.Request, target: _Target) -> web.StreamResponse:
    assert target.name is not None
    body = await _object_body(request, target)
    _check_name(body, target.name)
    updated = _store(request).update(
        target.rt.plural, target.namespace, body, subresource=target.subresource, dry_run=_dry_run(request)
    )
    return _output(request, target.rt, updated)


async def _item_patch(request: web.Request, target: _Target) -> web.StreamResponse:
    assert target.name is not None
    store = _store(request)
    current = store.get(target.rt.plural, target.namespace, target.name)
    patched = await _apply_patch(request, current, target.rt.schema_name)
    _check_name(patched, target.name)
    updated = store.update(
        target.rt.plural, target.namespace, patched, subresource=target.subresource, dry_run=_dry_run(request)
    )
    return _output(request, target.rt, updated)


async def _apply_patch(request: web.Request, current: dict, schema_name: str) -> dict:
    content_type = request.content_type
    if content_type == patch.APPLY_PATCH:
        raise HttpStatusError(
            415, "UnsupportedMediaType",
            "server-side apply (application/apply-patch+yaml) is not supported by the nhdev sandbox; "
            "use client-side apply (kubectl apply without --server-side) or another patch type",
        )
    if content_type not in patch.PATCH_TYPES:
        raise HttpStatusError(
            415, "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(patch.PATCH_TYPES)}",
        )
    body = await _body(request)
    if content_type == patch.JSON_PATCH:
        return patch.apply_json_patch(current, body)
    if content_type == patch.MERGE_PATCH:
        if not isinstance(body, dict):
            raise BadRequestError("merge patches must be JSON objects")
        return dict(patch.apply_merge_patch(current, body))
    return patch.apply_strategic_merge_patch(current, body, schema_name)


@dataclass
class _DeleteOptions:
    propagation: str
    grace_period_seconds: int | None
    preconditions: dict | None
    dry_run: bool


async def _delete_options(request: web.Request) -> _DeleteOptions:
    body = await _body(request, required=False) or {}
    if not isinstance(body, dict):
        raise BadRequestError("DeleteOptions must be a JSON object")
    query = request.query
    propagation = body.get("propagationPolicy") or query.get("propagationPolicy")
    orphan = body.get("orphanDependents")
    if orphan is None and "orphanDependents" in query:
        orphan = query["orphanDependents"].lower() == "true"
    if propagation is None:
        propagation = "Orphan" if orphan else "Background"
    if propagation not in ("Background", "Foreground", "Orphan"):
        raise BadRequestError(f'propagationPolicy "{propagation}" is not supported')
    grace = body.get("gracePeriodSeconds")
    if grace is None and "gracePeriodSeconds" in query:
        try:
            grace = int(query["gracePeriodSeconds"])
        except ValueError:
            raise BadRequestError("gracePeriodSeconds must be an integer") from None
    dry_run = bool(body.get("dryRun")) or _dry_run(request)
    return _DeleteOptions(propagation, grace, body.get("preconditions"), dry_run)


async def _item_delete(request: web.Request, target: _Target) -> web.StreamResponse:
    assert target.name is not None
    options = await _delete_options(request)
    store = _store(request)
    result = store.delete(
        target.rt.plural,
        target.namespace,
        target.name,
        propagation=options.propagation,
        grace_period_seconds=options.grace_period_seconds,
        preconditions=options.preconditions,
        dry_run=options.dry_run,
    )
    still_there = store.try_get(target.rt.plural, target.namespace, target.name) is not None
    if target.rt.plural in _RETURNS_DELETED_OBJECT or still_there:
        return _json(result)
    return _json(_success_status(target.rt, result))


async def _status_get(request: web.Request, target: _Target) -> web.StreamResponse:
    assert target.name is not None
    return _output(request, target.rt, _store(request).get(target.rt.plural, target.namespace, target.name))


# --- scale ---------------------------------------------------------------------------------------


def _scale_of(obj: dict) -> dict:
    metadata = obj["metadata"]
    scale_meta = {k: metadata[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                  if k in metadata}
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": scale_meta,
        "spec": {"replicas": int(spec.get("replicas") or 0)},
        "status": {"replicas": int(status.get("replicas") or 0),
                   "selector": label_selector_string(spec.get("selector"))},
    }


async def _scale(request: web.Request, target: _Target) -> web.StreamResponse:
    assert target.name is not None
    store = _store(request)
    current = store.get(target.rt.plural, target.namespace, target.name)
    if request.method == "GET":
        return _json(_scale_of(current))
    if request.method == "PUT":
        wanted = await _body(request)
    elif request.method == "PATCH":
        wanted = await _apply_patch(request, _scale_of(current), "io.k8s.api.autoscaling.v1.Scale")
    else:
        raise HttpStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                              "resource")
    if not isinstance(wanted, dict):
        raise BadRequestError("the object provided is unrecognized (must be a Scale object)")
    replicas = (wanted.get("spec") or {}).get("replicas", 0)
    if not isinstance(replicas, int) or replicas < 0:
        raise InvalidError(f'Scale.autoscaling "{target.name}" is invalid: spec.replicas: Invalid value: '
                           f"{json.dumps(replicas)}: must be greater than or equal to 0")
    wanted_rv = (wanted.get("metadata") or {}).get("resourceVersion")
    if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
        raise conflict(target.rt, target.name, "the object has been modified; please apply your changes to the "
                       "latest version and try again")
    updated = clone(current)
    updated["spec"]["replicas"] = replicas
    result = store.update(target.rt.plural, target.namespace, updated, dry_run=_dry_run(request))
    return _json(_scale_of(result))


# --- pod I/O -------------------------------------------------------------------------------------


async def _pod_io(request: web.Request, target: _Target) -> web.StreamResponse:
    assert target.name is not None and target.namespace is not None and target.subresource is not None
    allowed = ("GET",) if target.subresource == "log" else ("GET", "POST")
    if request.method not in allowed:
        raise HttpStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                              "resource")
    _store(request).get("pods", target.namespace, target.name)
    pod_io = request.app[POD_IO_KEY]
    if pod_io is None:
        raise HttpStatusError(501, "NotImplemented",
                              f"pods/{target.subresource} is not available: this sandbox API runs without a kubelet")
    handler: Callable[[web.Request, str, str], Awaitable[web.StreamResponse]] = getattr(pod_io, target.subresource)
    return await handler(request, target.namespace, target.name)


# --- OpenAPI -------------------------------------------------------------------------------------


def _openapi(request: web.Request, rest: list[str]) -> web.Response:
    if rest == ["v2"]:
        return web.Response(body=discovery.openapi_v2_protobuf(),
                            content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    if rest == ["v3"]:
        return _json(discovery.openapi_v3_root())
    if len(rest) >= 3 and rest[0] == "v3":
        if rest[1] == "api" and len(rest) == 3:
            document = discovery.openapi_v3_document("", rest[2])
        elif rest[1] == "apis" and len(rest) == 4:
            document = discovery.openapi_v3_document(rest[2], rest[3])
        else:
            document = None
        if document is not None:
            return web.Response(body=document, content_type="application/json",
                                headers={"Cache-Control": "public, immutable"})
    raise _not_found_path()


_Handler = Callable[[web.Request, _Target], Awaitable[web.StreamResponse]]
_COLLECTION_HANDLERS: dict[str, _Handler] = {
    "GET": _collection_get,
    "POST": _collection_post,
    "DELETE": _collection_delete,
}
_ITEM_HANDLERS: dict[str, _Handler] = {
    "GET": _item_get,
    "PUT": _item_put,
    "PATCH": _item_patch,
    "DELETE": _item_delete,
}
_STATUS_HANDLERS: dict[str, _Handler] = {
    "GET": _status_get,
    "PUT": _item_put,
    "PATCH": _item_patch,
}

