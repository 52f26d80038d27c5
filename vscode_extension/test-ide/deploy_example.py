"""Deploy an example app (its k8s/ manifests) to the cluster of KUBECONFIG and wait until it serves.

Run with nhdev's venv python: ``python deploy_example.py KUBECONFIG EXAMPLE_DIR NAMESPACE APP``.
Like ``kubectl apply -f k8s`` (create, else patch), plus what ``nhdev demo`` does: the ConfigMap
that carries the app's code (``greeter-code``, data key ``app.py``) gets the example's app.py, so the
stock image runs the real app. Prints one line: the ready pod's name.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named, kind_of
from nhdev.errors import Conflict


def main(kubeconfig: str, example: Path, namespace: str, app: str) -> None:
    kube = KubeRest(api_client(resolve_target(kubeconfig, None, namespace)))
    if kube.try_get(kind_named("namespace"), None, namespace) is None:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for manifest in sorted((example / "k8s").glob("*.y*ml")):
        for doc in yaml.safe_load_all(manifest.read_text()):
            if not doc:
                continue
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
            conditions = pod.get("status", {}).get("conditions") or []
            if pod["metadata"].get("deletionTimestamp") is None and any(
                    c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                print(pod["metadata"]["name"])
                return
        time.sleep(0.2)
    sys.exit(f"deployment/{app} in {namespace} was not ready within 120 s")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4])
