"""The examples: each is consistent (config, manifests, launch.json, dev image), and the Node one
runs on the sandbox, in production form and in dev mode with hot reload."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.config import load_config
from nhdev.session import control
from nhdev.session.registry import paths_for, session_key
from tests.e2e.workspace import http_text, nhdev
from tests.sandbox.contract import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if (p / ".nhdev" / "config.yaml").exists())


def launch_configs(example: Path) -> list[dict]:
    text = (example / ".vscode" / "launch.json").read_text()
    without_comments = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
    return list(json.loads(without_comments)["configurations"])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_is_consistent(example: Path) -> None:
    service = load_config(example / ".nhdev" / "config.yaml").service(None, None)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all((example / "k8s" / "app.yaml").read_text())
             if d}
    assert ("Deployment", service.name) in kinds and ("Service", service.name) in kinds
    deployment = next(d for d in yaml.safe_load_all((example / "k8s" / "app.yaml").read_text())
                      if d and d["kind"] == "Deployment")
    container_names = {c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    dev = service.container(None)
    assert dev.name in container_names
    nhdev_entries = [c for c in launch_configs(example) if c["type"] == "nhdev"]
    assert nhdev_entries and nhdev_entries[0]["request"] == "attach"
    assert nhdev_entries[0]["workload"] == f"deployment/{service.name}"
    image = dev.dev.image or ""
    language = re.fullmatch(r"ghcr\.io/nhdev/dev-(\w+):[\w.]+", image)
    assert language and (ROOT / "dev_images" / language.group(1) / "Dockerfile").exists(), image
    assert dev.dev.debug.language == language.group(1)
    assert dev.dev.command.run and dev.dev.command.debug and dev.dev.port_forward


@pytest.fixture
def node_namespace(kubeconfig: Path) -> Iterator[str]:
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    ns = f"ex-node-{int(time.time() * 1000) % 100000}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield ns
    kube.delete(kind_named("namespace"), None, ns)



def test_node_example_runs_and_hot_reloads(node_namespace: str, kubeconfig: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ns, example = node_namespace, ROOT / "examples" / "node-http"
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "greeter-node-code", "namespace": ns},
                 "data": {"server.js": (example / "server.js").read_text()}})
    for doc in yaml.safe_load_all((example / "k8s" / "app.yaml").read_text()):
        kube.create({**doc, "metadata": {**doc["metadata"], "namespace": ns}})

    def ready() -> bool:
        pods = kube.list(kind_named("pod"), ns, label_selector="app=greeter-node")
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for p in pods for c in p.get("status", {}).get("conditions", []))

    wait_for("the production form ready", ready, timeout=60)

    project, home = tmp_path / "project", tmp_path / "home"
    shutil.copytree(example, project)
    started = nhdev("dev", "start", "-n", ns, "-o", "json", cwd=project, home=home, kubeconfig=kubeconfig)
    assert started.returncode == 0, started.stderr
    port = int(json.loads(started.stdout)["localSession"]["forwards"][0]["local"].rsplit(":", 1)[1])
    monkeypatch.setenv("HOME", str(home))
    socket_path = paths_for(session_key("nhdev-sandbox", ns, "deployment/greeter-node")).control

    def op(name: str) -> dict:
        try:
            return control.request(socket_path, {"op": name}, timeout=30)
        except control.ControlError:
            return {}  # the service behind the op is still starting

    try:
        wait_for("the initial sync", lambda: op("sync-status").get("sync", {}).get("state") == "idle", timeout=30)
        wait_for("run started", lambda: op("run"), timeout=30)
        assert "Hello from nhdev's Node example" in wait_for("served", lambda: http_text(port), timeout=30)
        server = project / "server.js"
        server.write_text(server.read_text().replace("Hello from nhdev's Node example", "Node, edited"))
        wait_for("the edit served", lambda: "Node, edited" in (http_text(port) or ""), timeout=30)
    finally:
        ended = nhdev("dev", "end", "-n", ns, cwd=project, home=home, kubeconfig=kubeconfig)
    assert ended.returncode == 0, ended.stderr
