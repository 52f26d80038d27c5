"""Real kubectl 1.32+/1.33 request bodies: typed commands send protobuf, and it decodes to the JSON
that kubectl 1.31 sends for the same command.

A recording server on 127.0.0.1:0 serves the little discovery kubectl needs, keeps what it is sent
(decoded with ``nhdev.sandbox.kubeproto``) and answers 201 with the object, as an API server would.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from nhdev.sandbox.kubeproto import MAGIC, PROTOBUF_CONTENT_TYPE, ProtobufDecodeError, decode_request_body

KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")
PROTOBUF_VERSIONS = [v for v in ("1.32", "1.33") if (KUBECTL_DIR / f"kubectl.{v}").is_file()]
JSON_VERSION = "1.31"  # the last kubectl that sends JSON bodies
pytestmark = pytest.mark.skipif(not PROTOBUF_VERSIONS, reason="kubectl 1.32/1.33 binaries are not installed")

# group version -> (plural or plural/subresource, kind, namespaced)
RESOURCES: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("namespaces", "Namespace", False),
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("pods", "Pod", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
    ],
    "apps/v1": [("deployments", "Deployment", True), ("deployments/scale", "Scale", True)],
    "batch/v1": [("jobs", "Job", True), ("cronjobs", "CronJob", True)],
    "autoscaling/v2": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
    "autoscaling/v1": [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)],
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes

    def decoded(self) -> Any:
        if self.content_type == PROTOBUF_CONTENT_TYPE:
            return decode_request_body(self.body)
        return json.loads(self.body)


@dataclass
class RecordingServer:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)

    def discovery(self, path: str) -> dict[str, Any] | None:
        if path == "/version":
            return {"major": "1", "minor": "33", "gitVersion": "v1.33.0", "platform": "linux/amd64"}
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for group_version in RESOURCES:
                if "/" in group_version:
                    group, version = group_version.split("/")
                    groups.setdefault(group, []).append(version)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": group,
                        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                        "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
                    }
                    for group, versions in groups.items()
                ],
            }
        group_version = path.removeprefix("/api/").removeprefix("/apis/")
        if path.startswith(("/api/", "/apis/")) and group_version in RESOURCES:
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
            resources = []
            for name, kind, namespaced in RESOURCES[group_version]:
                entry = {"name": name, "singularName": "", "namespaced": namespaced, "kind": kind, "verbs": verbs}
                if name.endswith("/scale"):  # kubectl autoscale looks for it
                    entry.update(group="autoscaling", version="v1", verbs=["get", "patch", "update"])
                resources.append(entry)
            return {
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources
            }
        return None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.method == "GET":
            found = self.discovery(request.path) or self.objects.get(request.path)
            if found is None:
                return status(404, "NotFound", f"{request.path} not found")
            return web.json_response(found)
        recorded = Recorded(request.method, request.path, dict(request.query), request.content_type, body)
        self.requests.append(recorded)
        if request.method != "POST":
            return status(405, "MethodNotAllowed", f"{request.method} is not recorded")
        try:
            obj = recorded.decoded()
        except (ProtobufDecodeError, ValueError) as error:
            return status(400, "BadRequest", str(error))
        metadata = obj.setdefault("metadata", {})
        if "/namespaces/" in request.path:
            metadata["namespace"] = request.path.split("/namespaces/")[1].split("/")[0]
        self.objects[f"{request.path}/{metadata.get('name', '')}"] = obj
        return web.json_response(obj, status=201)


def status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message}
    return web.json_response(body, status=code)


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    recording = RecordingServer()
    ready: Future[None] = Future()
    stop: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", recording.handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        recording.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        stopping = asyncio.Event()
        stop["loop"] = (asyncio.get_running_loop(), stopping)
        ready.set_result(None)
        try:
            await stopping.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="kubectl-recorder", daemon=True)
    thread.start()
    ready.result(timeout=10)
    yield recording
    loop, stopping = stop["loop"]
    loop.call_soon_threadsafe(stopping.set)
    thread.join(timeout=10)


@pytest.fixture
def kubectl(server: RecordingServer, tmp_path: Path) -> Any:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "rec", "cluster": {"server": server.url}}],
        "users": [{"name": "rec", "user": {}}],
        "contexts": [{"name": "rec", "context": {"cluster": "rec", "user": "rec", "namespace": "default"}}],
        "current-context": "rec",
    }))

    def run(version: str, *args: str) -> list[Recorded]:
        """Run one kubectl command; the requests with a body it sent."""
        binary = KUBECTL_DIR / f"kubectl.{version}"
        if not binary.is_file():
            pytest.skip(f"kubectl {version} is not installed")
        start = len(server.requests)
        result = subprocess.run(
            [str(binary), "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / f"cache-{version}"), *args],
            capture_output=True, text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, f"kubectl {version} {' '.join(args)}: {result.stderr}"
        return server.requests[start:]

    return run


def one_post(requests: list[Recorded], path: str) -> Recorded:
    assert [(r.method, r.path) for r in requests] == [("POST", path)]
    return requests[0]


def protobuf_object(requests: list[Recorded], path: str) -> Any:
    request = one_post(requests, path)
    assert request.content_type == PROTOBUF_CONTENT_TYPE
    assert request.body.startswith(MAGIC)
    return request.decoded()


NS = "/api/v1/namespaces/default"
versions = pytest.mark.parametrize("version", PROTOBUF_VERSIONS)


@versions
def test_create_namespace(kubectl: Any, version: str) -> None:
    obj = protobuf_object(kubectl(version, "create", "namespace", "x"), "/api/v1/namespaces")
    assert obj == {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": "x", "creationTimestamp": None},
        "spec": {},
        "status": {},
    }


@versions
def test_create_configmap(kubectl: Any, version: str) -> None:
    requests = kubectl(version, "create", "configmap", "c", "--from-literal=a=b", "--from-literal=empty=")
    assert one_post(requests, f"{NS}/configmaps").query["fieldValidation"] == "Strict"
    assert protobuf_object(requests, f"{NS}/configmaps") == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "c", "creationTimestamp": None},
        "data": {"a": "b", "empty": ""},
    }


@versions
def test_create_secret_generic(kubectl: Any, version: str) -> None:
    obj = protobuf_object(kubectl(version, "create", "secret", "generic", "s", "--from-literal=k=v"), f"{NS}/secrets")
    assert obj == {
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {"name": "s", "creationTimestamp": None},
        "data": {"k": base64.b64encode(b"v").decode()},
    }


@versions
def test_create_deployment(kubectl: Any, version: str) -> None:
    requests = kubectl(
        version, "create", "deployment", "d", "--image=busybox", "--replicas=2", "--port=8080", "--", "sleep", "10"
    )
    obj = protobuf_object(requests, "/apis/apps/v1/namespaces/default/deployments")
    assert obj == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "d", "creationTimestamp": None, "labels": {"app": "d"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"creationTimestamp": None, "labels": {"app": "d"}},
                "spec": {
                    "containers": [
                        {
                            "name": "busybox",
                            "image": "busybox",
                            "command": ["sleep", "10"],
                            "ports": [{"containerPort": 8080}],
                            "resources": {},
                        }
                    ]
                },
            },
            "strategy": {},
        },
        "status": {},
    }


@versions
def test_run(kubectl: Any, version: str) -> None:
    """``kubectl run`` builds its pod unstructured and still sends JSON; it reads the reply's kind."""
    requests = kubectl(
        version, "run", "p", "--image=busybox", "--labels=a=b", "--env=K=V", "--port=80", "--", "sleep", "5"
    )
    request = one_post(requests, f"{NS}/pods")
    assert request.content_type in (PROTOBUF_CONTENT_TYPE, "application/json")
    obj = request.decoded()
    assert obj["kind"] == "Pod"
    assert obj["metadata"]["labels"] == {"a": "b"}
    assert obj["spec"]["containers"] == [
        {
            "name": "p",
            "image": "busybox",
            "args": ["sleep", "5"],
            "ports": [{"containerPort": 80}],
            "env": [{"name": "K", "value": "V"}],
            "resources": {},
        }
    ]


@versions
def test_create_service_clusterip(kubectl: Any, version: str) -> None:
    obj = protobuf_object(kubectl(version, "create", "service", "clusterip", "s", "--tcp=80:8080"), f"{NS}/services")
    assert obj == {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {"name": "s", "creationTimestamp": None, "labels": {"app": "s"}},
        "spec": {
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "s"},
            "type": "ClusterIP",
        },
        "status": {"loadBalancer": {}},
    }


@versions
def test_create_service_nodeport_with_named_target_port(kubectl: Any, version: str) -> None:
    obj = protobuf_object(kubectl(version, "create", "service", "nodeport", "n", "--tcp=80:http"), f"{NS}/services")
    assert obj["spec"]["ports"] == [{"name": "80-http", "protocol": "TCP", "port": 80, "targetPort": "http"}]
    assert obj["spec"]["type"] == "NodePort"


@versions
def test_create_job(kubectl: Any, version: str) -> None:
    obj = protobuf_object(
        kubectl(version, "create", "job", "j", "--image=busybox", "--", "echo", "hi"),
        "/apis/batch/v1/namespaces/default/jobs",
    )
    assert obj == {
        "kind": "Job",
        "apiVersion": "batch/v1",
        "metadata": {"name": "j", "creationTimestamp": None},
        "spec": {
            "template": {
                "metadata": {"creationTimestamp": None},
                "spec": {
                    "containers": [{"name": "j", "image": "busybox", "command": ["echo", "hi"], "resources": {}}],
                    "restartPolicy": "Never",
                },
            }
        },
        "status": {},
    }


@versions
def test_create_cronjob_then_a_job_from_it(kubectl: Any, version: str) -> None:
    requests = kubectl(
        version, "create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *", "--", "echo", "hi"
    )
    cronjob = protobuf_object(requests, "/apis/batch/v1/namespaces/default/cronjobs")
    assert cronjob["kind"] == "CronJob"
    assert cronjob["spec"]["schedule"] == "*/5 * * * *"
    pod_template = {
        "metadata": {"creationTimestamp": None},
        "spec": {
            "containers": [{"name": "cj", "image": "busybox", "command": ["echo", "hi"], "resources": {}}],
            "restartPolicy": "OnFailure",
        },
    }
    assert cronjob["spec"]["jobTemplate"] == {
        "metadata": {"name": "cj", "creationTimestamp": None},
        "spec": {"template": pod_template},
    }
    job = protobuf_object(
        kubectl(version, "create", "job", "j2", "--from=cronjob/cj"), "/apis/batch/v1/namespaces/default/jobs"
    )
    assert job["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    assert job["metadata"]["ownerReferences"] == [
        {"kind": "CronJob", "name": "cj", "apiVersion": "batch/v1", "controller": True}
    ]
    assert job["spec"] == {"template": pod_template}


@versions
def test_create_serviceaccount(kubectl: Any, version: str) -> None:
    obj = protobuf_object(kubectl(version, "create", "serviceaccount", "sa"), f"{NS}/serviceaccounts")
    assert obj == {
        "kind": "ServiceAccount",
        "apiVersion": "v1",
        "metadata": {"name": "sa", "creationTimestamp": None},
    }


@versions
def test_autoscale_and_expose(kubectl: Any, version: str) -> None:
    kubectl(version, "create", "deployment", "web", "--image=nginx", "--port=80")
    hpa = kubectl(version, "autoscale", "deployment", "web", "--min=1", "--max=3", "--cpu-percent=50")
    # kubectl 1.33 creates autoscaling/v2 objects when the server offers v2, 1.32 autoscaling/v1
    assert len(hpa) == 1
    api_version = hpa[0].path.split("/")[3]
    request = one_post(hpa, f"/apis/autoscaling/{api_version}/namespaces/default/horizontalpodautoscalers")
    assert request.content_type == PROTOBUF_CONTENT_TYPE
    obj = request.decoded()
    assert obj["apiVersion"] == f"autoscaling/{api_version}"
    target = {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}
    if api_version == "v2":
        cpu = {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}
        assert obj["spec"] == {
            "scaleTargetRef": target,
            "minReplicas": 1,
            "maxReplicas": 3,
            "metrics": [{"type": "Resource", "resource": cpu}],
        }
    else:
        assert obj["spec"] == {
            "scaleTargetRef": target, "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50
        }
    exposed = one_post(kubectl(version, "expose", "deployment", "web", "--port=8080", "--target-port=80"),
                       f"{NS}/services")
    service = exposed.decoded()
    assert service["spec"]["selector"] == {"app": "web"}
    assert service["spec"]["ports"] == [{"port": 8080, "protocol": "TCP", "targetPort": 80}]


SAME_AS_JSON = [
    ["create", "namespace", "x"],
    ["create", "configmap", "c", "--from-literal=a=b", "--from-literal=empty="],
    ["create", "secret", "generic", "s", "--from-literal=k=v", "--type=example.com/t"],
    ["create", "secret", "docker-registry", "r", "--docker-server=x", "--docker-username=u", "--docker-password=p"],
    ["create", "deployment", "d", "--image=busybox", "--image=nginx", "--replicas=0"],
    ["create", "service", "clusterip", "s", "--tcp=80:8080", "--tcp=443:https"],
    ["create", "service", "externalname", "e", "--external-name=example.com"],
    ["create", "job", "j", "--image=busybox", "--", "echo", "hi"],
    ["create", "cronjob", "cj", "--image=busybox", "--schedule=*/5 * * * *", "--restart=Never", "--", "echo"],
    ["create", "serviceaccount", "sa"],
    ["create", "quota", "q", "--hard=pods=2,cpu=1,memory=1Gi"],
    ["create", "role", "r", "--verb=get,list", "--resource=pods,deployments.apps"],
    ["create", "rolebinding", "rb", "--role=r", "--user=u", "--serviceaccount=default:sa"],
    ["create", "ingress", "i", "--rule=example.com/path*=svc:http", "--class=nginx"],
]


@versions
@pytest.mark.parametrize("command", SAME_AS_JSON, ids=lambda c: " ".join(c[:3]))
def test_protobuf_decodes_to_what_json_clients_send(kubectl: Any, version: str, command: list[str]) -> None:
    if not (KUBECTL_DIR / f"kubectl.{JSON_VERSION}").is_file():
        pytest.skip(f"kubectl {JSON_VERSION} is not installed")
    from_json = kubectl(JSON_VERSION, *command)
    from_protobuf = kubectl(version, *command)
    assert [r.content_type for r in from_json] == ["application/json"]
    assert [r.content_type for r in from_protobuf] == [PROTOBUF_CONTENT_TYPE]
    assert from_protobuf[0].decoded() == from_json[0].decoded()
