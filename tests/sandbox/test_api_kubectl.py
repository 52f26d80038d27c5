"""The sandbox API against real kubectl: apply (twice), get, table output, patch, label, scale, delete."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.sandbox.api_fixtures import ApiServer, running_api_server

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
OLDER_KUBECTLS = sorted(Path("/usr/lib/google-cloud-sdk/bin").glob("kubectl.1.*"))

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:IMAGE_TAG
        ports:
        - containerPort: 80
        env:
        - {name: MODE, value: "dev"}
        volumeMounts:
        - {name: data, mountPath: /data}
      - name: sidecar
        image: busybox:1.36
        command: ["sleep", "3600"]
      volumes:
      - name: data
        persistentVolumeClaim: {claimName: data}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with running_api_server(tmp_path_factory.mktemp("sandbox-kubectl")) as running:
        yield running


def kubectl(server: ApiServer, *args: str, binary: str | None = None, check: bool = True,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [binary or str(KUBECTL), "--kubeconfig", str(server.kubeconfig), "--context", "nhdev-sandbox", *args]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def manifest(path: Path, tag: str) -> Path:
    path.write_text(MANIFEST.replace("IMAGE_TAG", tag))
    return path


def apply_lines(server: ApiServer, path: Path, binary: str | None = None) -> list[str]:
    return kubectl(server, "apply", "-f", str(path), binary=binary).stdout.splitlines()


def test_apply_twice_then_change(server: ApiServer, tmp_path: Path) -> None:
    first = manifest(tmp_path / "v1.yaml", "1.25")
    assert apply_lines(server, first) == [
        "deployment.apps/web created", "service/web created", "persistentvolumeclaim/data created"]
    assert apply_lines(server, first) == [
        "deployment.apps/web unchanged", "service/web unchanged", "persistentvolumeclaim/data unchanged"]
    second = manifest(tmp_path / "v2.yaml", "1.26")
    assert apply_lines(server, second) == [
        "deployment.apps/web configured", "service/web unchanged", "persistentvolumeclaim/data unchanged"]
    listing = json.loads(kubectl(server, "get", "deploy,svc,pvc", "-o", "json").stdout)
    by_kind = {item["kind"]: item for item in listing["items"]}
    assert set(by_kind) == {"Deployment", "Service", "PersistentVolumeClaim"}
    deployment = by_kind["Deployment"]
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert containers["app"]["image"] == "nginx:1.26" and containers["sidecar"]["image"] == "busybox:1.36"
    assert containers["app"]["env"] == [{"name": "MODE", "value": "dev"}]
    assert deployment["metadata"]["generation"] == 2
    assert by_kind["Service"]["spec"]["clusterIP"].startswith("10.96.")
    assert by_kind["PersistentVolumeClaim"]["spec"]["storageClassName"] == "local-path"


def test_patch_types_label_annotate_scale(server: ApiServer, tmp_path: Path) -> None:
    kubectl(server, "apply", "-f", str(manifest(tmp_path / "m.yaml", "1.25")))
    kubectl(server, "patch", "deploy", "web", "--type=merge", "-p", '{"spec":{"replicas":3}}')
    kubectl(server, "patch", "deploy", "web", "--type=json",
            "-p", '[{"op":"add","path":"/metadata/labels/patched","value":"json"}]')
    kubectl(server, "patch", "deploy", "web", "--type=strategic",
            "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.37"}]}}}}')
    kubectl(server, "label", "deploy", "web", "tier=frontend")
    kubectl(server, "annotate", "deploy", "web", "note=hello")
    assert kubectl(server, "scale", "deploy", "web", "--replicas=5").stdout.strip() == "deployment.apps/web scaled"
    kubectl(server, "wait", "--for=jsonpath={.spec.replicas}=5", "deploy/web", "--timeout=10s")
    deployment = json.loads(kubectl(server, "get", "deploy", "web", "-o", "json").stdout)
    assert deployment["spec"]["replicas"] == 5
    assert deployment["metadata"]["labels"] == {"app": "web", "patched": "json", "tier": "frontend"}
    assert deployment["metadata"]["annotations"]["note"] == "hello"
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert images == ["nginx:1.25", "busybox:1.37"]
    selected = kubectl(server, "get", "deploy", "-l", "tier=frontend", "-o", "name").stdout.split()
    assert selected == ["deployment.apps/web"]
    failed = kubectl(server, "patch", "deploy", "web", "--type=json",
                     "-p", '[{"op":"test","path":"/spec/replicas","value":1}]', check=False)
    assert failed.returncode != 0 and "The request is invalid" in failed.stderr
    assert "testing value /spec/replicas failed" in failed.stderr


def test_tables(server: ApiServer) -> None:
    core = client.CoreV1Api(server.api_client())
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="table-pod", labels={"t": "1"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
    )
    core.create_namespaced_pod("default", pod)
    lines = kubectl(server, "get", "pods", "-l", "t=1").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert lines[1].split()[:4] == ["table-pod", "0/1", "Pending", "0"]
    wide = kubectl(server, "get", "pods", "-l", "t=1", "-o", "wide").stdout.splitlines()
    assert "NODE" in wide[0].split() and "IP" in wide[0].split()
    nodes = kubectl(server, "get", "nodes").stdout.splitlines()
    assert nodes[1].split()[:3] == ["nhdev-sandbox", "Ready", "control-plane"]
    classes = kubectl(server, "get", "sc").stdout
    assert "local-path (default)" in classes
    by_field = kubectl(server, "get", "pods", "--field-selector=status.phase=Pending", "-o", "name").stdout
    assert "pod/table-pod" in by_field.split()


def test_errors_and_delete(server: ApiServer, tmp_path: Path) -> None:
    missing = kubectl(server, "get", "deploy", "nope", check=False)
    assert missing.returncode != 0
    assert 'Error from server (NotFound): deployments.apps "nope" not found' in missing.stderr
    bad_selector = kubectl(server, "get", "pods", "-l", "a in b", check=False)
    assert "BadRequest" in bad_selector.stderr
    path = manifest(tmp_path / "m.yaml", "1.25")
    kubectl(server, "apply", "-f", str(path))
    deleted = kubectl(server, "delete", "-f", str(path)).stdout.splitlines()
    assert deleted == ['deployment.apps "web" deleted', 'service "web" deleted',
                       'persistentvolumeclaim "data" deleted']
    assert kubectl(server, "get", "deploy,svc,pvc", "-o", "name").stdout.strip() == ""


@pytest.mark.parametrize("binary", OLDER_KUBECTLS, ids=lambda p: p.name)
def test_apply_with_other_kubectl_versions(server: ApiServer, tmp_path: Path, binary: Path) -> None:
    path = manifest(tmp_path / "m.yaml", "1.25")
    kubectl(server, "delete", "-f", str(path), "--ignore-not-found", binary=str(binary))
    assert apply_lines(server, path, str(binary))[0] == "deployment.apps/web created"
    assert apply_lines(server, path, str(binary))[0] == "deployment.apps/web unchanged"
    assert apply_lines(server, manifest(path, "1.26"), str(binary))[0] == "deployment.apps/web configured"
    kubectl(server, "delete", "-f", str(path), binary=str(binary))
