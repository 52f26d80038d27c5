"""The sandbox contract as a user sees it: kubectl and the official client against a running sandbox."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from kubernetes import client

from nhdev.sandbox import lifecycle
from tests.sandbox.contract import kubectl, kubectl_json, needs_kubectl, processes_with_env, wait_for

pytestmark = needs_kubectl

WEB_MANIFEST = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: web-data}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: python:3.12
          command: [python3, -m, http.server, "8080", --directory, /data]
          env: [{{name: TEST_MARKER, value: "{marker}"}}]
          ports: [{{containerPort: 8080}}]
          readinessProbe:
            tcpSocket: {{port: 8080}}
            periodSeconds: 1
          volumeMounts: [{{name: data, mountPath: /data}}]
        - name: helper
          image: busybox
          command: [sh, -c, "echo helper-up; exec sleep 3600"]
          env: [{{name: TEST_MARKER, value: "{marker}"}}]
      volumes:
        - name: data
          persistentVolumeClaim: {{claimName: web-data}}
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


@pytest.fixture
def namespace(kubeconfig: Path) -> str:
    ns = f"t-{uuid.uuid4().hex[:8]}"
    kubectl(kubeconfig, "apply", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n")
    return ns


def ready_pods(kubeconfig: Path, ns: str, selector: str) -> list[str]:
    pods = kubectl_json(kubeconfig, "-n", ns, "get", "pods", "-l", selector)["items"]
    return [
        p["metadata"]["name"]
        for p in pods
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def test_apply_rollout_logs_exec_and_delete(kubeconfig: Path, namespace: str) -> None:
    marker = f"nhdev-test-{uuid.uuid4().hex}"
    manifest = WEB_MANIFEST.format(marker=marker)
    out = kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", input=manifest).stdout
    assert "deployment.apps/web created" in out
    kubectl(kubeconfig, "-n", namespace, "rollout", "status", "deployment/web", "--timeout=60s")
    pod = wait_for("a ready web pod", lambda: ready_pods(kubeconfig, namespace, "app=web"))[0]

    # exec: exit codes and stdin
    done = kubectl(kubeconfig, "-n", namespace, "exec", pod, "-c", "web", "--", "sh", "-c", "exit 3", check=False)
    assert done.returncode == 3
    echoed = kubectl(kubeconfig, "-n", namespace, "exec", "-i", pod, "-c", "web", "--", "cat", input="via stdin\n")
    assert echoed.stdout == "via stdin\n"

    # logs of the second container
    wait_for("helper logs", lambda: "helper-up" in kubectl(
        kubeconfig, "-n", namespace, "logs", pod, "-c", "helper").stdout)

    # the Service's endpoints list the ready pod
    ep = wait_for("endpoints", lambda: kubectl_json(kubeconfig, "-n", namespace, "get", "endpoints", "web")
                  .get("subsets"))
    assert ep[0]["addresses"][0]["targetRef"]["name"] == pod

    # second apply is a no-op
    again = kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", input=manifest).stdout
    assert "deployment.apps/web unchanged" in again

    assert processes_with_env(marker), "the pod's processes should be running"
    kubectl(kubeconfig, "-n", namespace, "delete", "deployment", "web", "--wait=true", "--timeout=60s")
    wait_for("pods gone", lambda: not kubectl_json(kubeconfig, "-n", namespace, "get", "pods")["items"])
    assert not kubectl_json(kubeconfig, "-n", namespace, "get", "replicasets")["items"]
    wait_for("processes gone", lambda: not processes_with_env(marker), timeout=40)


def test_pvc_data_survives_pod_recreation(kubeconfig: Path, namespace: str) -> None:
    manifest = WEB_MANIFEST.format(marker=f"nhdev-test-{uuid.uuid4().hex}")
    kubectl(kubeconfig, "-n", namespace, "apply", "-f", "-", input=manifest)
    pod = wait_for("a ready web pod", lambda: ready_pods(kubeconfig, namespace, "app=web"), timeout=60)[0]
    kubectl(kubeconfig, "-n", namespace, "exec", pod, "-c", "web", "--", "sh", "-c", "echo kept > /data/f")
    kubectl(kubeconfig, "-n", namespace, "delete", "pod", pod, "--wait=true")
    new = wait_for("a new ready pod",
                   lambda: [p for p in ready_pods(kubeconfig, namespace, "app=web") if p != pod], timeout=60)[0]
    got = kubectl(kubeconfig, "-n", namespace, "exec", new, "-c", "web", "--", "cat", "/data/f").stdout
    assert got == "kept\n"
    pvc = kubectl_json(kubeconfig, "-n", namespace, "get", "pvc", "web-data")
    assert pvc["status"]["phase"] == "Bound"


def test_unknown_image_backs_off_with_event(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nope"},
        "spec": {"containers": [{"name": "c", "image": "registry.invalid/nope:1", "command": ["true"]}]},
    })

    def waiting_reason() -> str | None:
        st = core.read_namespaced_pod("nope", namespace).status
        statuses = st.container_statuses or []
        waiting = statuses[0].state.waiting if statuses and statuses[0].state else None
        return waiting.reason if waiting and waiting.reason == "ImagePullBackOff" else None

    wait_for("ImagePullBackOff", waiting_reason, timeout=30)
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.name=nope").items
    assert any(e.reason == "Failed" and "registry.invalid/nope:1" in (e.message or "") for e in events)


def test_crash_loop_back_off(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(namespace, {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crash"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "echo boom; exit 7"]}]},
    })

    def crash_looping() -> client.V1ContainerStatus | None:
        statuses = core.read_namespaced_pod("crash", namespace).status.container_statuses or []
        s = statuses[0] if statuses else None
        waiting = s.state.waiting if s and s.state else None
        return s if waiting and waiting.reason == "CrashLoopBackOff" else None

    status = wait_for("CrashLoopBackOff", crash_looping, timeout=30)
    assert status.restart_count >= 1
    assert status.last_state.terminated.exit_code == 7
    previous = core.read_namespaced_pod_log("crash", namespace, previous=True)
    assert "boom" in previous


def test_state_survives_down_and_up(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    rec, started = lifecycle.start(state_dir, runtime="bwrap")
    assert started
    again, started_again = lifecycle.start(state_dir, runtime="bwrap")
    assert not started_again and again.pid == rec.pid
    kubectl(rec.kubeconfig, "apply", "-f", "-",
            input="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kept}\ndata: {k: v}\n")
    assert lifecycle.stop(state_dir) is not None
    assert lifecycle.running_server(state_dir) is None
    rec2, _ = lifecycle.start(state_dir, runtime="bwrap")
    try:
        cm = kubectl_json(rec2.kubeconfig, "get", "configmap", "kept")
        assert cm["data"] == {"k": "v"}
    finally:
        lifecycle.stop(state_dir)


def test_kubectl_create_generators_work(kubeconfig: Path) -> None:
    """kubectl >= 1.32 sends protobuf for `create <kind>`; the sandbox decodes it."""
    ns = f"gen-{uuid.uuid4().hex[:6]}"
    kubectl(kubeconfig, "create", "namespace", ns)
    kubectl(kubeconfig, "-n", ns, "create", "deployment", "d", "--image=busybox", "--replicas=2", "--", "sleep", "300")
    kubectl(kubeconfig, "-n", ns, "create", "configmap", "c", "--from-literal=a=b")
    kubectl(kubeconfig, "-n", ns, "rollout", "status", "deployment/d", "--timeout=60s")
    assert kubectl_json(kubeconfig, "-n", ns, "get", "configmap", "c")["data"] == {"a": "b"}
    assert kubectl_json(kubeconfig, "-n", ns, "get", "deployment", "d")["status"]["readyReplicas"] == 2
