"""Deploy an example app (its k8s/ manifests) to the cluster of KUBECONFIG and wait until it serves.

Run with nhdev's venv python: ``python deploy_example.py KUBECONFIG EXAMPLE_DIR NAMESPACE APP [WAIT]``.
Like ``kubectl apply -f k8s`` (create, else patch), plus what ``nhdev demo`` does: the ConfigMap
that carries the app's code (``greeter-code``, data key ``app.py``) gets the example's app.py, so the
stock image runs the real app. A ConfigMap that a Deployment mounts but the manifests do not define
(``greeter-go-code`` of examples/go-http) is made of the example's top-level files (main.go, go.mod).
WAIT is ``ready`` (the default: the pod passes its readiness probe) or ``running`` (its containers
started: enough when dev mode replaces the pod anyway, and the Go app compiles before it is ready).
Prints one line: the pod's name.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named, kind_of
from nhdev.errors import Conflict


def code_config_maps(docs: list[dict], example: Path) -> list[dict]:
    """ConfigMaps that the Deployments mount but DOCS do not define, made of the example's top-level files."""
    defined = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    files = {f.name: f.read_text() for f in sorted(example.iterdir()) if f.is_file() and not f.name.startswith(".")}
    made = []
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        for volume in doc["spec"]["template"]["spec"].get("volumes") or []:
            name = (volume.get("configMap") or {}).get("name")
            if name and name not in defined:
                defined.add(name)
                made.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": files})
    return made


def main(kubeconfig: str, example: Path, namespace: str, app: str, wait: str = "ready") -> None:
    kube = KubeRest(api_client(resolve_target(kubeconfig, None, namespace)))
    if kube.try_get(kind_named("namespace"), None, namespace) is None:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    docs = [doc for manifest in sorted((example / "k8s").glob("*.y*ml"))
            for doc in yaml.safe_load_all(manifest.read_text()) if doc]
    for doc in code_config_maps(docs, example) + docs:
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "ConfigMap" and "app.py" in (doc.get("data") or {}):
            doc["data"]["app.py"] = (example / "app.py").read_text()
        try:
            kube.create(doc)
        except Conflict:
            kube.patch(kind_of(doc), namespace, doc["metadata"]["name"], doc)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for pod in kube.list(kind_named("pod"), namespace, label_selector=f"app={app}"):
            status = pod.get("status", {})
            conditions = status.get("conditions") or []
            started = (status.get("phase") == "Running" if wait == "running" else
                       any(c["type"] == "Ready" and c["status"] == "True" for c in conditions))
            if pod["metadata"].get("deletionTimestamp") is None and started:
                print(pod["metadata"]["name"])
                return
        time.sleep(0.2)
    sys.exit(f"deployment/{app} in {namespace} was not {wait} within 120 s")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], *sys.argv[5:6])
