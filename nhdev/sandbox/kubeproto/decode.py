"""Kubernetes protobuf request bodies -> the JSON objects the JSON API would have carried.

A body is the 4 magic bytes ``k8s\\x00`` and a ``runtime.Unknown``: ``typeMeta`` (apiVersion, kind)
and ``raw``, the object's own message. The message type comes from apiVersion/kind; the schemas are
``descriptors.binpb.gz`` (made by ``tools/extract_kube_descriptors.py`` from a kubectl binary).

The walker follows Go's ``encoding/json`` on the Kubernetes types rather than protobuf's JSON
mapping:

* JSON names are the descriptors' ``json_name`` (the Go JSON tag names); ``int64`` stays a number.
* Go value fields (gogoproto ``nullable=false``) are always on the wire, so their presence means
  nothing: zero scalars are left out (Go's ``omitempty``), value structs are kept even when empty
  (``"strategy": {}``), pointer fields are kept whenever present (``"replicas": 0``).
* Anonymous embedded structs (gogoproto ``embed``) are inlined into their parent
  (``Volume.volumeSource``, ``Probe.handler``, ``SecretKeySelector.localObjectReference``).
* ``meta.v1.Time`` -> RFC 3339 to the second, ``null`` when zero; ``MicroTime`` -> with
  microseconds; ``Duration`` -> Go duration string; ``resource.Quantity`` -> its string;
  ``intstr.IntOrString`` -> int or string; ``RawExtension``/``FieldsV1`` -> the embedded JSON;
  ``bytes`` -> base64; maps -> objects with sorted keys; repeated -> lists.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gzip
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, unknown_fields
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

MAGIC = b"k8s\x00"
PROTOBUF_CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
DESCRIPTORS_RESOURCE = "descriptors.binpb.gz"

_GOGO_NULLABLE = 65001
_GOGO_EMBED = 65002
# A RawExtension holding a protobuf object nests another envelope; real clients never go deeper.
_MAX_ENVELOPE_DEPTH = 4

_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
_RUNTIME = "k8s.io.apimachinery.pkg.runtime"
_UNKNOWN = f"{_RUNTIME}.Unknown"
# Go's zero time.Time (0001-01-01T00:00:00Z) in Unix seconds: it marshals to JSON null.
_GO_ZERO_TIME_SECONDS = -62135596800
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Kinds every group version carries besides its own (apimachinery's AddToGroupVersion and the
# unversioned types): they live in meta/v1.
_META_KINDS = frozenset({
    "APIGroup", "APIGroupList", "APIResourceList", "APIVersions", "CreateOptions", "DeleteOptions",
    "GetOptions", "ListOptions", "PartialObjectMetadata", "PartialObjectMetadataList", "PatchOptions",
    "Status", "UpdateOptions", "WatchEvent",
})
# API groups whose proto package is not named after the group's first DNS label.
_GROUP_PACKAGES = {"": "core", "internal.apiserver.k8s.io": "apiserverinternal"}

# Wrapper messages whose JSON form is their repeated ``items`` field.
_STRING_LISTS = frozenset({
    f"{_META}.Verbs",
    "k8s.io.api.authentication.v1.ExtraValue",
    "k8s.io.api.authorization.v1.ExtraValue",
    "k8s.io.api.certificates.v1.ExtraValue",
})


class ProtobufDecodeError(ValueError):
    """A request body that is not a Kubernetes protobuf object this sandbox can read."""


_Convert = Callable[[Any, int], Any]


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    """How one field goes into the JSON object."""

    json_name: str
    convert: _Convert  # for the value, or for each element of a list or map
    repeated: bool
    is_map: bool
    value_scalar: bool  # a Go value scalar: left out when zero
    inline: bool  # an embedded struct: its fields merge into the parent


class Schema:
    """The descriptor pool, message classes and per-field plans; built once (see ``schema()``)."""

    def __init__(self, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> None:
        self.pool = descriptor_pool.DescriptorPool()
        self._gogo: dict[tuple[str, str], dict[int, int | bytes]] = {}
        self._packages: dict[str, str] = {}  # "apps/v1" -> "k8s.io.api.apps.v1"
        for fd in files:
            self.pool.Add(fd)
            self._index(fd)
        self._classes: dict[str, type[Message]] = {}
        self._plans: dict[str, dict[str, _FieldPlan]] = {}
        self._specials: dict[str, _Convert] = {
            f"{_META}.Time": self._time,
            f"{_META}.MicroTime": self._micro_time,
            f"{_META}.Duration": self._duration,
            f"{_META}.FieldsV1": self._fields_v1,
            "k8s.io.apimachinery.pkg.api.resource.Quantity": self._quantity,
            "k8s.io.apimachinery.pkg.api.resource.QuantityValue": self._quantity,
            "k8s.io.apimachinery.pkg.util.intstr.IntOrString": self._int_or_string,
            f"{_RUNTIME}.RawExtension": self._raw_extension,
        }
        for name in _STRING_LISTS:
            self._specials[name] = self._string_list
        self._unknown_class = self.message_class(_UNKNOWN)

    def _index(self, fd: descriptor_pb2.FileDescriptorProto) -> None:
        if fd.package.startswith("k8s.io.api."):
            _, _, group, version = fd.package.rsplit(".", 3)
            self._packages[f"{group}/{version}"] = fd.package
        stack = [(f"{fd.package}.{m.name}", m) for m in fd.message_type]
        while stack:
            full_name, message = stack.pop()
            stack.extend((f"{full_name}.{nested.name}", nested) for nested in message.nested_type)
            for field in message.field:
                options = {f.field_number: f.data for f in unknown_fields.UnknownFieldSet(field.options)}
                if options:
                    self._gogo[(full_name, field.name)] = options

    def message_class(self, full_name: str) -> type[Message]:
        cls = self._classes.get(full_name)
        if cls is None:
            cls = message_factory.GetMessageClass(self.pool.FindMessageTypeByName(full_name))
            self._classes[full_name] = cls
        return cls

    def find_kind(self, api_version: str, kind: str) -> str | None:
        """The full message name for an apiVersion and kind, None when there is none."""
        group, _, version = api_version.rpartition("/")
        if not version or not kind:
            return None
        if group == "meta.k8s.io":
            candidates = [f"{_META}.{kind}"] if version == "v1" else []
        else:
            package = self._packages.get(f"{_GROUP_PACKAGES.get(group, group.split('.')[0])}/{version}")
            candidates = [f"{package}.{kind}"] if package else []
            if kind in _META_KINDS:
                candidates.append(f"{_META}.{kind}")
        for name in candidates:
            try:
                descriptor = self.pool.FindMessageTypeByName(name)
            except KeyError:
                continue
            if descriptor.containing_type is None and not descriptor.GetOptions().map_entry:
                return name
        return None

    # -- envelopes -------------------------------------------------------------------------------

    def decode(self, body: bytes, depth: int = 0) -> dict[str, Any]:
        if depth > _MAX_ENVELOPE_DEPTH:
            raise ProtobufDecodeError("protobuf objects nested too deeply in RawExtensions")
        if not body.startswith(MAGIC):
            raise ProtobufDecodeError("not a Kubernetes protobuf body: it does not start with k8s\\x00")
        try:
            unknown: Any = self._unknown_class.FromString(body[len(MAGIC):])
        except DecodeError as exc:
            raise ProtobufDecodeError(f"malformed protobuf envelope (runtime.Unknown): {exc}") from exc
        api_version = _text(unknown.typeMeta.apiVersion, "typeMeta.apiVersion")
        kind = _text(unknown.typeMeta.kind, "typeMeta.kind")
        if not api_version or not kind:
            raise ProtobufDecodeError("protobuf envelope without apiVersion and kind")
        content_encoding = _text(unknown.contentEncoding, "contentEncoding")
        if content_encoding:
            raise ProtobufDecodeError(f"unsupported protobuf content encoding {content_encoding!r}")
        content_type = _text(unknown.contentType, "contentType")
        if content_type not in ("", PROTOBUF_CONTENT_TYPE):
            raise ProtobufDecodeError(f"unsupported content type {content_type!r} inside the protobuf envelope")
        name = self.find_kind(api_version, kind)
        if name is None:
            raise ProtobufDecodeError(f"no protobuf schema for kind {kind!r} in {api_version!r}")
        try:
            obj = self.message_class(name).FromString(unknown.raw)
        except DecodeError as exc:
            raise ProtobufDecodeError(f"malformed protobuf {api_version} {kind}: {exc}") from exc
        out: dict[str, Any] = {"kind": kind, "apiVersion": api_version}
        converted = self.to_json(obj, depth)
        if not isinstance(converted, dict):
            raise ProtobufDecodeError(f"{api_version} {kind} is not an object")
        out.update(converted)
        return out

    # -- messages --------------------------------------------------------------------------------

    def to_json(self, message: Any, depth: int) -> Any:
        """The JSON value of a message: an object, or a string/number/list for the special types."""
        full_name: str = message.DESCRIPTOR.full_name
        special = self._specials.get(full_name)
        if special is not None:
            return special(message, depth)
        plans = self._plans.get(full_name)
        if plans is None:
            plans = self._plans[full_name] = {}
        out: dict[str, Any] = {}
        for field, value in message.ListFields():
            plan = plans.get(field.name)
            if plan is None:
                plan = plans[field.name] = self._plan(message.DESCRIPTOR, field)
            if plan.is_map:
                entries = sorted((_text(key, f"{full_name}.{field.name} key"), item) for key, item in value.items())
                out[plan.json_name] = {key: plan.convert(item, depth) for key, item in entries}
            elif plan.repeated:
                out[plan.json_name] = [plan.convert(item, depth) for item in value]
            elif plan.inline:
                embedded = plan.convert(value, depth)
                if not isinstance(embedded, dict):
                    raise ProtobufDecodeError(f"{full_name}.{field.name} is inlined but is not an object")
                out.update(embedded)
            elif not (plan.value_scalar and not value):
                out[plan.json_name] = plan.convert(value, depth)
        return out

    def _plan(self, message: Descriptor, field: FieldDescriptor) -> _FieldPlan:
        gogo = self._gogo.get((message.full_name, field.name), {})
        entry = field.message_type
        is_map = entry is not None and entry.GetOptions().map_entry
        element = entry.fields_by_name["value"] if is_map and entry is not None else field
        where = f"{message.full_name}.{field.name}"
        is_message = element.type == FieldDescriptor.TYPE_MESSAGE
        return _FieldPlan(
            json_name=field.json_name or field.name,
            convert=self._converter(element, where),
            repeated=_is_repeated(field),
            is_map=is_map,
            value_scalar=not is_message and gogo.get(_GOGO_NULLABLE) == 0,
            inline=is_message and not _is_repeated(field) and gogo.get(_GOGO_EMBED) == 1,
        )

    def _converter(self, field: FieldDescriptor, where: str) -> _Convert:
        if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            return self.to_json
        if field.type == FieldDescriptor.TYPE_BYTES:
            return _base64
        if field.type == FieldDescriptor.TYPE_STRING:
            return lambda value, _depth: _text(value, where)
        return _scalar

    # -- special types ---------------------------------------------------------------------------

    def _time(self, message: Any, _depth: int) -> str | None:
        moment = _moment(message)
        return None if moment is None else _rfc3339(moment, micro=False)

    def _micro_time(self, message: Any, _depth: int) -> str | None:
        moment = _moment(message)
        return None if moment is None else _rfc3339(moment, micro=True)

    def _duration(self, message: Any, _depth: int) -> str:
        return go_duration(message.duration)

    def _quantity(self, message: Any, _depth: int) -> str:
        return _text(message.string, "Quantity") if message.HasField("string") else "0"

    def _int_or_string(self, message: Any, _depth: int) -> int | str:
        kind = message.type
        if kind == 0:
            return int(message.intVal)
        if kind == 1:
            return _text(message.strVal, "IntOrString")
        raise ProtobufDecodeError(f"IntOrString with unknown type {kind}")

    def _raw_extension(self, message: Any, depth: int) -> Any:
        return self._embedded(message.raw, "RawExtension", depth)

    def _fields_v1(self, message: Any, depth: int) -> Any:
        return self._embedded(message.Raw, "FieldsV1", depth)

    def _embedded(self, raw: bytes, what: str, depth: int) -> Any:
        if not raw:
            return None
        if raw.startswith(MAGIC):
            return self.decode(raw, depth + 1)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProtobufDecodeError(f"{what} holds neither JSON nor a protobuf object: {exc}") from exc

    def _string_list(self, message: Any, _depth: int) -> list[str]:
        return [_text(item, "items") for item in message.items]


def _is_repeated(field: FieldDescriptor) -> bool:
    """``FieldDescriptor.is_repeated`` (protobuf 6+; ``label`` is gone in 7)."""
    repeated = getattr(field, "is_repeated", None)
    if repeated is not None:
        return bool(repeated)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def _text(value: str | bytes, where: str) -> str:
    """A string field's value; upb hands proto2 strings that are not UTF-8 back as bytes."""
    if isinstance(value, str):
        return value
    raise ProtobufDecodeError(f"{where}: string field is not valid UTF-8")


def _base64(value: bytes, _depth: int) -> str:
    return base64.b64encode(value).decode("ascii")


def _scalar(value: Any, _depth: int) -> Any:
    return value


def _moment(message: Any) -> datetime | None:
    """A meta.v1 Time/MicroTime as a UTC datetime, None for Go's zero time."""
    if not message.HasField("seconds") and not message.HasField("nanos"):
        return None
    seconds, nanos = int(message.seconds), int(message.nanos)
    if seconds == _GO_ZERO_TIME_SECONDS and nanos == 0:
        return None
    try:
        return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError as exc:
        raise ProtobufDecodeError(f"timestamp out of range: {seconds}s {nanos}ns") from exc


def _rfc3339(moment: datetime, *, micro: bool) -> str:
    """Go's ``RFC3339`` (``RFC3339Micro`` with ``micro``) in UTC; strftime pads years < 1000 unreliably."""
    fraction = f".{moment.microsecond:06d}" if micro else ""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}{fraction}Z"
    )


def go_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String()``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    n = abs(nanoseconds)
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _decimal(n, size) + unit
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _decimal(rest, 1_000_000_000) + "s"


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{fraction:0{digits}d}".rstrip("0")


def load_descriptor_set(data: bytes) -> list[descriptor_pb2.FileDescriptorProto]:
    """The files of a gzip-compressed serialized FileDescriptorSet."""
    return list(descriptor_pb2.FileDescriptorSet.FromString(gzip.decompress(data)).file)


@functools.cache
def schema() -> Schema:
    """The schema of the bundled descriptors, built on first use."""
    data = resources.files(__package__).joinpath(DESCRIPTORS_RESOURCE).read_bytes()
    return Schema(load_descriptor_set(data))


def decode_request_body(body: bytes) -> dict[str, Any]:
    """The JSON object a Kubernetes protobuf request body carries (``kind`` and ``apiVersion`` first).

    Raises ``ProtobufDecodeError`` for anything else: wrong magic, malformed protobuf, an unknown
    apiVersion/kind, text that is not UTF-8, a timestamp out of range."""
    try:
        return schema().decode(bytes(body))
    except ProtobufDecodeError:
        raise
    except (DecodeError, binascii.Error, OverflowError, RecursionError, UnicodeError) as exc:
        raise ProtobufDecodeError(f"malformed protobuf body: {exc}") from exc
