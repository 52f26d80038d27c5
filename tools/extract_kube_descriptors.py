#!/usr/bin/env python3
"""Extract the Kubernetes protobuf schemas the sandbox needs from a kubectl binary.

kubectl 1.32+ sends typed request bodies (``kubectl create deployment``, ``kubectl autoscale``, ...)
as ``application/vnd.kubernetes.protobuf``. No maintained Python package carries the current
Kubernetes ``.proto`` schemas, but every Go binary built against ``k8s.io/api`` embeds them: each
``generated.pb.go`` registers its ``FileDescriptorProto`` as a gzip member (gzip header
``1f 8b 08 00 00 00 00 00``). This script finds them, keeps the API groups the sandbox serves and
their dependencies, normalises them and writes one gzip-compressed ``FileDescriptorSet``::

    python tools/extract_kube_descriptors.py /usr/lib/google-cloud-sdk/bin/kubectl.1.33 \\
        -o nhdev/sandbox/kubeproto/descriptors.binpb.gz

Use the newest kubectl available: API types only ever gain fields, so its schemas read bodies from
every older client too.

Normalisation (what ``nhdev.sandbox.kubeproto`` relies on):

* The ``github.com/gogo/protobuf/gogoproto/gogo.proto`` import is dropped: no type comes from it,
  only option extensions.
* File options keep ``go_package`` only; message options and source info are dropped.
* Field options keep two gogoproto extensions, as unknown fields (the decoder reads them raw):
  ``nullable`` (65001) as found: ``false`` marks a Go value field, which the Go marshaller always
  writes, so its presence on the wire says nothing. ``embed`` (65002) is set to ``true`` on the
  anonymous embedded structs that JSON inlines into their parent (``Volume.volumeSource``,
  ``Probe.handler``, ``SecretKeySelector.localObjectReference``, ...): the binary's descriptors do
  not say so, its struct tags (``json:",inline"``) do.
* ``json_name`` is set to the field's real JSON name, taken from the Go struct tags
  (``json:"apiGroup,omitempty" protobuf:"bytes,1,opt,name=aPIGroup"``) that the binary also
  carries, so the few fields whose proto name differs from their JSON name come out right.

Struct tags are not tied to a message, so a field counts as inlined only when its descriptor allows
it (see ``is_embedding_candidate``) and every tag with its proto name and number says ``,inline``;
the script stops on mixed or missing evidence rather than guess.

Output is deterministic for a given binary and zlib: files in dependency order, then by name;
deterministic serialisation; gzip header with mtime 0.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, unknown_fields

GZIP_MAGIC = b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
GOGO_PROTO = "github.com/gogo/protobuf/gogoproto/gogo.proto"
GOGO_NULLABLE = 65001
GOGO_EMBED = 65002
GOGO_CUSTOMNAME = 65004

# The API groups the sandbox serves; their dependencies (meta/v1, runtime, runtime/schema,
# intstr, resource) come along.
ROOTS: tuple[str, ...] = (
    "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto",
    "k8s.io/apimachinery/pkg/runtime/generated.proto",
    "k8s.io/apimachinery/pkg/runtime/schema/generated.proto",
    "k8s.io/apimachinery/pkg/util/intstr/generated.proto",
    "k8s.io/apimachinery/pkg/api/resource/generated.proto",
    "k8s.io/api/core/v1/generated.proto",
    "k8s.io/api/apps/v1/generated.proto",
    "k8s.io/api/batch/v1/generated.proto",
    "k8s.io/api/autoscaling/v1/generated.proto",
    "k8s.io/api/autoscaling/v2/generated.proto",
    "k8s.io/api/storage/v1/generated.proto",
    "k8s.io/api/policy/v1/generated.proto",
    "k8s.io/api/rbac/v1/generated.proto",
    "k8s.io/api/networking/v1/generated.proto",
    "k8s.io/api/discovery/v1/generated.proto",
)

# A Go struct field tag holding both a json and a protobuf key, in that order.
_TAG = re.compile(rb'json:"([^"]*)"(?: [A-Za-z]+:"[^"]*")*? protobuf:"([^"]*)"')
_TAG_NAME = re.compile(r"(?:^|,)name=([A-Za-z0-9_]+)")
_PROTO_TAG = re.compile(r"^[a-z0-9]+,[0-9]+(?:,|$)")  # wire type, field number, ...


class ExtractError(Exception):
    """The binary does not hold what this script expects."""


def scan_descriptors(binary: bytes) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Every ``k8s.io/.../generated.proto`` file descriptor embedded in ``binary``, by file name."""
    found: dict[str, descriptor_pb2.FileDescriptorProto] = {}
    view = memoryview(binary)
    start = binary.find(GZIP_MAGIC)
    while start >= 0:
        fd = _try_descriptor(view[start:])
        if fd is not None and fd.name.startswith("k8s.io/") and fd.name.endswith("generated.proto"):
            previous = found.get(fd.name)
            if previous is not None and previous != fd:
                raise ExtractError(f"two different descriptors named {fd.name}")
            found[fd.name] = fd
        start = binary.find(GZIP_MAGIC, start + 1)
    return found


def _try_descriptor(member: memoryview) -> descriptor_pb2.FileDescriptorProto | None:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(member, 1 << 24)
    except zlib.error:
        return None
    if not inflater.eof:
        return None
    try:
        fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
    except Exception:  # not a descriptor: the gzip member holds something else
        return None
    return fd if fd.name else None


def closure(found: dict[str, descriptor_pb2.FileDescriptorProto], roots: Iterable[str]) -> list[str]:
    """``roots`` and their transitive dependencies (without gogo.proto), dependencies first."""
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in chain:
            raise ExtractError(f"import cycle through {name}")
        fd = found.get(name)
        if fd is None:
            raise ExtractError(f"{name} is not embedded in this binary")
        for dep in sorted(fd.dependency):
            if dep != GOGO_PROTO:
                visit(dep, (*chain, name))
        seen.add(name)
        ordered.append(name)

    for root in sorted(roots):
        visit(root, ())
    return ordered


def struct_tags(binary: bytes) -> list[tuple[str, str]]:
    """The (json tag, protobuf tag) pairs of the Go struct tags in ``binary``."""
    pairs = {(j.decode("utf-8", "replace"), p.decode("utf-8", "replace")) for j, p in _TAG.findall(binary)}
    return sorted((j, p) for j, p in pairs if _PROTO_TAG.match(p))


def json_renames(tags: list[tuple[str, str]]) -> dict[str, str]:
    """Proto field name -> JSON name, for the fields whose names differ (not inline, not ``-``)."""
    names: dict[str, set[str]] = {}
    for json_tag, proto_tag in tags:
        json_name = json_tag.split(",")[0]
        match = _TAG_NAME.search(proto_tag)
        if match is None or json_name in ("", "-"):
            continue
        names.setdefault(match.group(1), set()).add(json_name)
    renames: dict[str, str] = {}
    for proto_name, json_names in names.items():
        if json_names == {proto_name}:
            continue
        if len(json_names) != 1:
            raise ExtractError(f"proto field {proto_name} has several JSON names: {sorted(json_names)}")
        renames[proto_name] = json_names.pop()
    return renames


def _tag_key(proto_tag: str) -> tuple[str | None, int]:
    """(proto name or None, field number) of a Go ``protobuf:"..."`` struct tag."""
    match = _TAG_NAME.search(proto_tag)
    return (match.group(1) if match else None), int(proto_tag.split(",")[1])


def _is_inline_tag(json_tag: str) -> bool:
    parts = json_tag.split(",")
    return parts[0] == "" and "inline" in parts[1:]


def _gogo_options(options: descriptor_pb2.FieldOptions) -> dict[int, int | bytes]:
    return {f.field_number: f.data for f in unknown_fields.UnknownFieldSet(options)}


def is_embedding_candidate(field: descriptor_pb2.FieldDescriptorProto) -> bool:
    """Whether ``field`` can be an anonymous embedded Go struct: a non-nullable message field whose
    Go name is its type's name. Named fields can look the same (``ObjectMeta metav1.ObjectMeta``
    with ``json:"metadata"``, ``WeightedPodAffinityTerm.podAffinityTerm``): the struct tags decide."""
    if field.type != descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE:
        return False
    gogo = _gogo_options(field.options)
    customname = gogo.get(GOGO_CUSTOMNAME)
    if gogo.get(GOGO_NULLABLE) != 0 or not isinstance(customname, bytes):
        return False
    return field.type_name.rsplit(".", 1)[-1] == customname.decode()


def inline_fields(
    files: list[descriptor_pb2.FileDescriptorProto], tags: list[tuple[str, str]]
) -> dict[tuple[str, str], bool]:
    """(message full name, field name) -> True for every field JSON inlines into its parent.

    A field is inlined when it is an embedding candidate and every struct tag with its proto name
    and number (or, for a candidate no named tag matches, every unnamed tag with its number) says
    ``json:",inline"``. Mixed or missing evidence stops the script rather than guess."""
    by_key: dict[tuple[str | None, int], set[bool]] = {}
    for json_tag, proto_tag in tags:
        by_key.setdefault(_tag_key(proto_tag), set()).add(_is_inline_tag(json_tag))
    inlined: dict[tuple[str, str], bool] = {}
    for fd in files:
        for full_name, message in _messages(fd):
            for field in message.field:
                where = f"{full_name}.{field.name}"
                evidence = by_key.get((field.name, field.number))
                if is_embedding_candidate(field):
                    if evidence is None:
                        evidence = by_key.get((None, field.number))
                    if evidence is None or len(evidence) != 1:
                        raise ExtractError(f"cannot tell whether JSON inlines {where} (struct tags: {evidence})")
                    if evidence == {True}:
                        inlined[(full_name, field.name)] = True
                elif evidence == {True} and field.type == descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE:
                    raise ExtractError(f"{where} has an ,inline JSON tag but cannot be an embedded struct")
    return inlined


def _messages(fd: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[str, descriptor_pb2.DescriptorProto]]:
    """(full name, message) for every message of ``fd``, nested ones included."""
    stack = [(f"{fd.package}.{message.name}", message) for message in fd.message_type]
    while stack:
        full_name, message = stack.pop()
        yield full_name, message
        stack.extend((f"{full_name}.{nested.name}", nested) for nested in message.nested_type)


def normalise(
    fd: descriptor_pb2.FileDescriptorProto, renames: dict[str, str], inlined: dict[tuple[str, str], bool]
) -> descriptor_pb2.FileDescriptorProto:
    """A copy of ``fd`` with only what the decoder uses (see the module docstring)."""
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(fd)
    out.ClearField("source_code_info")
    deps = [dep for dep in out.dependency if dep != GOGO_PROTO]
    del out.dependency[:]
    out.dependency.extend(deps)
    go_package = out.options.go_package
    out.ClearField("options")
    if go_package:
        out.options.go_package = go_package
    for full_name, message in _messages(out):
        map_entry = message.options.map_entry
        message.ClearField("options")
        if map_entry:
            message.options.map_entry = True
        for field in message.field:
            options = {n: v for n, v in _gogo_options(field.options).items() if n == GOGO_NULLABLE}
            if inlined.get((full_name, field.name)):
                options[GOGO_EMBED] = 1
            kept = b"".join(_encode_option(number, value) for number, value in sorted(options.items()))
            field.ClearField("options")
            if kept:
                field.options.MergeFromString(kept)
            field.json_name = renames.get(field.name, field.name)
    return out


def _encode_option(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def build(binary: bytes, roots: Iterable[str] = ROOTS) -> tuple[bytes, list[str], list[str]]:
    """The serialized FileDescriptorSet, the file names in it, and the inlined fields."""
    found = scan_descriptors(binary)
    if not found:
        raise ExtractError("no k8s.io generated.proto descriptors found: is this a kubectl binary?")
    names = closure(found, roots)
    tags = struct_tags(binary)
    renames = json_renames(tags)
    inlined = inline_fields([found[name] for name in names], tags)
    files = [normalise(found[name], renames, inlined) for name in names]
    fds = descriptor_pb2.FileDescriptorSet(file=files)
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    for fd in fds.file:
        pool.FindFileByName(fd.name)  # builds it: fails on a missing dependency or type
    return fds.SerializeToString(deterministic=True), names, sorted(".".join(key) for key in inlined)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kubectl", type=Path, help="a kubectl binary (the newest available)")
    parser.add_argument(
        "-o", "--output", type=Path,
        default=Path(__file__).resolve().parent.parent / "nhdev" / "sandbox" / "kubeproto" / "descriptors.binpb.gz",
        help="where to write the gzip-compressed FileDescriptorSet (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        data, names, inlined = build(args.kubectl.read_bytes())
    except ExtractError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    compressed = gzip.compress(data, compresslevel=9, mtime=0)
    args.output.write_bytes(compressed)
    print(f"wrote {args.output}: {len(names)} files, {len(data)} bytes ({len(compressed)} compressed)")
    for name in names:
        print(f"  {name}")
    print("inlined fields: " + ", ".join(inlined))
    return 0


if __name__ == "__main__":
    sys.exit(main())
