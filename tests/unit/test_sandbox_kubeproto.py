"""Kubernetes protobuf request bodies decode to the JSON objects the JSON API would carry."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhdev.sandbox.kubeproto import MAGIC, PROTOBUF_CONTENT_TYPE, ProtobufDecodeError, decode_request_body
from nhdev.sandbox.kubeproto.decode import go_duration, schema

CORE = "k8s.io.api.core.v1"
APPS = "k8s.io.api.apps.v1"
META = "k8s.io.apimachinery.pkg.apis.meta.v1"


def new(full_name: str) -> Any:
    return schema().message_class(full_name)()


def envelope(api_version: str, kind: str, raw: bytes, **extra: str) -> bytes:
    unknown = new("k8s.io.apimachinery.pkg.runtime.Unknown")
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    unknown.raw = raw
    for key, value in extra.items():
        setattr(unknown, key, value)
    return MAGIC + unknown.SerializeToString()


def body(api_version: str, kind: str, message: Any) -> bytes:
    return envelope(api_version, kind, message.SerializeToString())


# -- objects ---------------------------------------------------------------------------------------


def test_namespace() -> None:
    ns = new(f"{CORE}.Namespace")
    ns.metadata.name = "dev"
    ns.metadata.creationTimestamp.SetInParent()
    ns.spec.SetInParent()
    ns.status.SetInParent()
    assert decode_request_body(body("v1", "Namespace", ns)) == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "dev", "creationTimestamp": None},
        "spec": {},
        "status": {},
    }


def test_configmap_with_data_and_binary_data() -> None:
    cm = new(f"{CORE}.ConfigMap")
    cm.metadata.name = "settings"
    cm.metadata.namespace = "team"
    cm.data["b"] = "2"
    cm.data["a"] = "1"
    cm.data["empty"] = ""
    cm.binaryData["blob"] = b"\x00\xff"
    cm.immutable = False
    decoded = decode_request_body(body("v1", "ConfigMap", cm))
    assert decoded == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "settings", "namespace": "team"},
        "immutable": False,
        "data": {"a": "1", "b": "2", "empty": ""},
        "binaryData": {"blob": "AP8="},
    }
    assert list(decoded["data"]) == ["a", "b", "empty"]  # Go's JSON sorts map keys


def test_secret_with_binary_data() -> None:
    payload = bytes(range(256))
    secret = new(f"{CORE}.Secret")
    secret.metadata.name = "creds"
    secret.metadata.labels["app"] = "web"
    secret.data["key"] = payload
    secret.data["empty"] = b""
    secret.type = "Opaque"
    decoded = decode_request_body(body("v1", "Secret", secret))
    assert decoded == {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "creds", "labels": {"app": "web"}},
        "data": {"empty": "", "key": base64.b64encode(payload).decode()},
        "type": "Opaque",
    }
    assert base64.b64decode(decoded["data"]["key"]) == payload


def deployment_message() -> Any:
    d = new(f"{APPS}.Deployment")
    d.metadata.name = "web"
    d.metadata.labels["app"] = "web"
    d.metadata.creationTimestamp.SetInParent()
    d.spec.replicas = 3
    d.spec.selector.matchLabels["app"] = "web"
    template = d.spec.template
    template.metadata.labels["app"] = "web"
    template.metadata.creationTimestamp.SetInParent()
    c = template.spec.containers.add()
    c.name = "app"
    c.image = "nginx:1.27"
    c.args.extend(["--port", "8080"])
    port = c.ports.add()
    port.name = "http"
    port.containerPort = 8080
    port.protocol = "TCP"
    env = c.env.add()
    env.name = "MODE"
    env.value = "dev"
    secret_env = c.env.add()
    secret_env.name = "TOKEN"
    secret_env.valueFrom.secretKeyRef.localObjectReference.name = "creds"
    secret_env.valueFrom.secretKeyRef.key = "token"
    c.resources.limits["cpu"].string = "500m"
    c.resources.limits["memory"].string = "128Mi"
    c.resources.requests["cpu"].string = "100m"
    c.readinessProbe.handler.httpGet.path = "/ready"
    c.readinessProbe.handler.httpGet.port.type = 0
    c.readinessProbe.handler.httpGet.port.intVal = 8080
    c.readinessProbe.periodSeconds = 5
    c.livenessProbe.handler.httpGet.path = "/live"
    c.livenessProbe.handler.httpGet.port.type = 1
    c.livenessProbe.handler.httpGet.port.strVal = "http"
    mount = c.volumeMounts.add()
    mount.name = "cache"
    mount.mountPath = "/cache"
    volume = template.spec.volumes.add()
    volume.name = "cache"
    volume.volumeSource.emptyDir.SetInParent()
    config = template.spec.volumes.add()
    config.name = "config"
    config.volumeSource.configMap.localObjectReference.name = "settings"
    config.volumeSource.configMap.defaultMode = 0o644
    d.spec.strategy.type = "RollingUpdate"
    d.spec.strategy.rollingUpdate.maxSurge.type = 1
    d.spec.strategy.rollingUpdate.maxSurge.strVal = "25%"
    d.spec.strategy.rollingUpdate.maxUnavailable.type = 0
    d.spec.strategy.rollingUpdate.maxUnavailable.intVal = 0
    d.status.SetInParent()
    return d


DEPLOYMENT_JSON = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "web", "creationTimestamp": None, "labels": {"app": "web"}},
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"creationTimestamp": None, "labels": {"app": "web"}},
            "spec": {
                "volumes": [
                    {"name": "cache", "emptyDir": {}},
                    {"name": "config", "configMap": {"name": "settings", "defaultMode": 420}},
                ],
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.27",
                        "args": ["--port", "8080"],
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "env": [
                            {"name": "MODE", "value": "dev"},
                            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                        ],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
                        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
                        "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
                    }
                ],
            },
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
    },
    "status": {},
}


def test_deployment() -> None:
    decoded = decode_request_body(body("apps/v1", "Deployment", deployment_message()))
    assert decoded == DEPLOYMENT_JSON
    assert list(decoded) == ["kind", "apiVersion", "metadata", "spec", "status"]
    # the decoded object is plain JSON data
    assert json.loads(json.dumps(decoded)) == decoded


def test_service_with_named_target_port() -> None:
    svc = new(f"{CORE}.Service")
    svc.metadata.name = "web"
    svc.spec.type = "ClusterIP"
    svc.spec.selector["app"] = "web"
    port = svc.spec.ports.add()
    port.name = "http"
    port.protocol = "TCP"
    port.port = 80
    port.targetPort.type = 1
    port.targetPort.strVal = "http"
    svc.status.loadBalancer.SetInParent()
    assert decode_request_body(body("v1", "Service", svc)) == {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": "web"},
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
            "selector": {"app": "web"},
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }


def test_go_value_fields_drop_zero_values_and_pointer_fields_keep_them() -> None:
    """Go always marshals value fields, so an empty string or 0 there means "not set"; a pointer
    field on the wire was set, zero or not."""
    d = new(f"{APPS}.Deployment")
    d.metadata.name = "web"
    d.metadata.namespace = ""  # value string
    d.metadata.generation = 0  # value int64
    d.spec.replicas = 0  # *int32
    d.spec.paused = False  # value bool
    d.spec.minReadySeconds = 0  # value int32
    d.spec.revisionHistoryLimit = 0  # *int32
    d.spec.template.spec.terminationGracePeriodSeconds = 0  # *int64
    d.spec.template.spec.hostNetwork = False  # value bool
    d.spec.template.spec.automountServiceAccountToken = False  # *bool
    assert decode_request_body(body("apps/v1", "Deployment", d)) == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 0,
            "template": {"spec": {"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False}},
            "revisionHistoryLimit": 0,
        },
    }


def test_int64_stays_a_number() -> None:
    pod = new(f"{CORE}.Pod")
    pod.spec.activeDeadlineSeconds = 2**40
    pod.spec.securityContext.runAsUser = 0
    decoded = decode_request_body(body("v1", "Pod", pod))
    assert decoded["spec"] == {"activeDeadlineSeconds": 2**40, "securityContext": {"runAsUser": 0}}


def test_times() -> None:
    event = new(f"{CORE}.Event")
    event.metadata.name = "e"
    event.metadata.creationTimestamp.seconds = 1795514400  # 2026-11-24T10:00:00Z
    event.metadata.creationTimestamp.nanos = 999_999_999  # JSON Time has seconds only
    event.metadata.deletionTimestamp.seconds = 0
    event.firstTimestamp.SetInParent()  # zero time
    event.eventTime.seconds = 1795514400
    event.eventTime.nanos = 123_456_789
    series = event.series
    series.count = 2
    series.lastObservedTime.seconds = -62135596800  # Go's zero time
    decoded = decode_request_body(body("v1", "Event", event))
    assert decoded["metadata"] == {
        "name": "e",
        "creationTimestamp": "2026-11-24T10:00:00Z",
        "deletionTimestamp": "1970-01-01T00:00:00Z",
    }
    assert decoded["firstTimestamp"] is None
    assert decoded["eventTime"] == "2026-11-24T10:00:00.123456Z"
    assert decoded["series"] == {"count": 2, "lastObservedTime": None}


def test_time_before_year_1000_is_zero_padded() -> None:
    ns = new(f"{CORE}.Namespace")
    ns.metadata.creationTimestamp.seconds = -59011459200  # 0100-01-01
    assert decode_request_body(body("v1", "Namespace", ns))["metadata"]["creationTimestamp"] == "0100-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1_500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (999_999_999, "999.999999ms"),
        (1_000_000_000, "1s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_500_000_000, "1h2m3.5s"),
        (-2_000_000_000, "-2s"),
    ],
)
def test_go_duration(nanoseconds: int, text: str) -> None:
    assert go_duration(nanoseconds) == text


def test_raw_extension_holds_json_or_a_protobuf_object() -> None:
    revision = new(f"{APPS}.ControllerRevision")
    revision.metadata.name = "web-1"
    revision.revision = 1
    revision.data.raw = b'{"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}'
    assert decode_request_body(body("apps/v1", "ControllerRevision", revision)) == {
        "kind": "ControllerRevision",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web-1"},
        "data": {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}},
        "revision": 1,
    }
    revision.data.raw = body("apps/v1", "Deployment", deployment_message())
    assert decode_request_body(body("apps/v1", "ControllerRevision", revision))["data"] == DEPLOYMENT_JSON
    revision.data.raw = b""
    assert decode_request_body(body("apps/v1", "ControllerRevision", revision))["data"] is None


def test_managed_fields() -> None:
    cm = new(f"{CORE}.ConfigMap")
    entry = cm.metadata.managedFields.add()
    entry.manager = "kubectl"
    entry.operation = "Update"
    entry.fieldsType = "FieldsV1"
    entry.fieldsV1.Raw = b'{"f:data": {".": {}}}'
    entry.time.seconds = 1795514400
    assert decode_request_body(body("v1", "ConfigMap", cm))["metadata"]["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Update",
            "time": "2026-11-24T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}}},
        }
    ]


def test_meta_kinds_in_any_group_version() -> None:
    options = new(f"{META}.DeleteOptions")
    options.gracePeriodSeconds = 0
    options.propagationPolicy = "Foreground"
    options.preconditions.uid = "1234"
    options.dryRun.append("All")
    expected = {
        "gracePeriodSeconds": 0,
        "preconditions": {"uid": "1234"},
        "propagationPolicy": "Foreground",
        "dryRun": ["All"],
    }
    for api_version in ("v1", "apps/v1", "batch/v1", "meta.k8s.io/v1"):
        decoded = decode_request_body(body(api_version, "DeleteOptions", options))
        assert decoded == {"kind": "DeleteOptions", "apiVersion": api_version, **expected}


def test_verbs_are_a_list() -> None:
    resources = new(f"{META}.APIResourceList")
    resources.groupVersion = "apps/v1"
    resource = resources.resources.add()
    resource.name = "deployments"
    resource.namespaced = True
    resource.kind = "Deployment"
    resource.verbs.items.extend(["get", "list"])
    decoded = decode_request_body(body("v1", "APIResourceList", resources))
    assert decoded["resources"] == [
        {"name": "deployments", "namespaced": True, "kind": "Deployment", "verbs": ["get", "list"]}
    ]


def test_json_names_from_the_go_struct_tags() -> None:
    ingress_class = new("k8s.io.api.networking.v1.IngressClass")
    ingress_class.spec.controller = "example.com/ingress"
    ingress_class.spec.parameters.aPIGroup = "example.com"
    ingress_class.spec.parameters.kind = "Params"
    ingress_class.spec.parameters.name = "p"
    ingress = new("k8s.io.api.networking.v1.Ingress")
    rule = ingress.spec.rules.add()
    rule.host = "example.com"
    http_path = rule.ingressRuleValue.http.paths.add()
    http_path.path = "/"
    http_path.pathType = "Prefix"
    http_path.backend.service.name = "web"
    http_path.backend.service.port.number = 80
    assert decode_request_body(body("networking.k8s.io/v1", "IngressClass", ingress_class))["spec"] == {
        "controller": "example.com/ingress",
        "parameters": {"apiGroup": "example.com", "kind": "Params", "name": "p"},
    }
    backend = {"service": {"name": "web", "port": {"number": 80}}}
    assert decode_request_body(body("networking.k8s.io/v1", "Ingress", ingress))["spec"] == {
        "rules": [{"host": "example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}]
    }


@pytest.mark.parametrize(
    ("api_version", "kind", "full_name"),
    [
        ("v1", "Pod", f"{CORE}.Pod"),
        ("apps/v1", "StatefulSet", f"{APPS}.StatefulSet"),
        ("batch/v1", "CronJob", "k8s.io.api.batch.v1.CronJob"),
        ("autoscaling/v1", "Scale", "k8s.io.api.autoscaling.v1.Scale"),
        ("autoscaling/v2", "HorizontalPodAutoscaler", "k8s.io.api.autoscaling.v2.HorizontalPodAutoscaler"),
        ("storage.k8s.io/v1", "StorageClass", "k8s.io.api.storage.v1.StorageClass"),
        ("policy/v1", "Eviction", "k8s.io.api.policy.v1.Eviction"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", "k8s.io.api.rbac.v1.RoleBinding"),
        ("networking.k8s.io/v1", "NetworkPolicy", "k8s.io.api.networking.v1.NetworkPolicy"),
        ("discovery.k8s.io/v1", "EndpointSlice", "k8s.io.api.discovery.v1.EndpointSlice"),
        ("apps/v1", "DeleteOptions", f"{META}.DeleteOptions"),
        ("meta.k8s.io/v1", "Status", f"{META}.Status"),
    ],
)
def test_find_kind(api_version: str, kind: str, full_name: str) -> None:
    assert schema().find_kind(api_version, kind) == full_name


KUBECTL_1_33 = Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.33")


@pytest.mark.skipif(not KUBECTL_1_33.is_file(), reason="kubectl 1.33 is not installed")
def test_shipped_descriptors_are_what_the_script_extracts_from_kubectl_1_33() -> None:
    script = Path(__file__).resolve().parents[2] / "tools" / "extract_kube_descriptors.py"
    spec = importlib.util.spec_from_file_location("extract_kube_descriptors", script)
    assert spec is not None and spec.loader is not None
    extract = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(extract)
    data, names, inlined = extract.build(KUBECTL_1_33.read_bytes())
    shipped = resources.files("nhdev.sandbox.kubeproto").joinpath("descriptors.binpb.gz").read_bytes()
    assert gzip.decompress(shipped) == data
    assert "k8s.io/api/discovery/v1/generated.proto" in names
    assert "k8s.io.api.core.v1.Volume.volumeSource" in inlined
    assert "k8s.io.api.core.v1.WeightedPodAffinityTerm.podAffinityTerm" not in inlined


def test_content_type_constant() -> None:
    assert PROTOBUF_CONTENT_TYPE == "application/vnd.kubernetes.protobuf"


# -- bad input -------------------------------------------------------------------------------------


def test_error_is_a_value_error() -> None:
    assert issubclass(ProtobufDecodeError, ValueError)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "does not start with k8s"),
        (b'{"kind": "Namespace"}', "does not start with k8s"),
        (MAGIC + b"\xff\xff\xff", "malformed protobuf envelope"),
        (MAGIC, "without apiVersion and kind"),
        (envelope("v1", "", b""), "without apiVersion and kind"),
        (envelope("v1", "Frobnicator", b""), "no protobuf schema for kind 'Frobnicator' in 'v1'"),
        (envelope("example.com/v1", "Widget", b""), "no protobuf schema for kind 'Widget'"),
        (envelope("v1", "ObjectMeta", b""), "no protobuf schema"),  # not a kind
        (envelope("v1", "Secret.DataEntry", b""), "no protobuf schema"),
        (envelope("apps/v2", "Deployment", b""), "no protobuf schema"),
        (envelope("v1", "Namespace", b"\x0a\x05\x0a\x01"), "malformed protobuf v1 Namespace"),
        (envelope("v1", "Namespace", b"", contentEncoding="gzip"), "content encoding 'gzip'"),
        (envelope("v1", "Namespace", b"", contentType="application/json"), "content type 'application/json'"),
    ],
)
def test_bad_bodies(data: bytes, message: str) -> None:
    with pytest.raises(ProtobufDecodeError, match=message):
        decode_request_body(data)


def test_truncated_bodies() -> None:
    data = body("apps/v1", "Deployment", deployment_message())
    empty = {"kind": "Deployment", "apiVersion": "apps/v1"}
    for end in range(len(data) - 1, 0, -1):
        try:
            decoded = decode_request_body(data[:end])
        except ProtobufDecodeError:
            continue
        assert decoded == empty  # cut right after typeMeta: an envelope without raw is an empty object



def test_invalid_utf8_in_a_string() -> None:
    ns = new(f"{CORE}.Namespace")
    ns.metadata.name = "x"
    raw = ns.SerializeToString().replace(b"\x01x", b"\x01\xff")
    with pytest.raises(ProtobufDecodeError, match="not valid UTF-8"):
        decode_request_body(envelope("v1", "Namespace", raw))


def test_bad_special_values() -> None:
    svc = new(f"{CORE}.Service")
    svc.spec.ports.add().targetPort.type = 7
    with pytest.raises(ProtobufDecodeError, match="IntOrString with unknown type 7"):
        decode_request_body(body("v1", "Service", svc))
    ns = new(f"{CORE}.Namespace")
    ns.metadata.creationTimestamp.seconds = 2**62
    with pytest.raises(ProtobufDecodeError, match="timestamp out of range"):
        decode_request_body(body("v1", "Namespace", ns))
    revision = new(f"{APPS}.ControllerRevision")
    revision.data.raw = b"\x00not json"
    with pytest.raises(ProtobufDecodeError, match="neither JSON nor a protobuf object"):
        decode_request_body(body("apps/v1", "ControllerRevision", revision))


def test_nested_envelopes_are_bounded() -> None:
    data = body("v1", "Namespace", new(f"{CORE}.Namespace"))
    for _ in range(10):
        revision = new(f"{APPS}.ControllerRevision")
        revision.data.raw = data
        data = body("apps/v1", "ControllerRevision", revision)
    with pytest.raises(ProtobufDecodeError, match="nested too deeply"):
        decode_request_body(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_envelopes_never_raise_anything_else(tail: bytes) -> None:
    try:
        decoded = decode_request_body(MAGIC + tail)
    except ProtobufDecodeError:
        return
    assert isinstance(decoded, dict)


KINDS = [("v1", "Pod"), ("v1", "Service"), ("apps/v1", "Deployment"), ("batch/v1", "CronJob"), ("v1", "Event")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(KINDS), st.binary(max_size=400))
def test_random_objects_never_raise_anything_else(kind: tuple[str, str], raw: bytes) -> None:
    try:
        decoded = decode_request_body(envelope(*kind, raw))
    except ProtobufDecodeError:
        return
    json.dumps(decoded)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_deployments_never_raise_anything_else(data: st.DataObject) -> None:
    raw = bytearray(deployment_message().SerializeToString())
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    try:
        decoded = decode_request_body(envelope("apps/v1", "Deployment", bytes(raw)))
    except ProtobufDecodeError:
        return
    json.dumps(decoded)
