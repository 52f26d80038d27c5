"""Volume binding, Service endpoints and namespace deletion against a real Store."""

from __future__ import annotations

from pathlib import Path

from tests.unit.sandbox_controllers_harness import Cluster, eventually, run_cluster, set_pod_status, stays


def claim(name: str = "data", storage_class: str | None = None, size: str = "2Gi") -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name}, "spec": spec}


def storage_class(name: str, **fields: str) -> dict:
    return {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": "nhdev.io/local-path", **fields}


def phase_of(cluster: Cluster, resource: str, name: str, namespace: str | None = "default") -> str:
    return str(((cluster.find(resource, name, namespace) or {}).get("status") or {}).get("phase", ""))


def test_claim_of_the_default_class_binds_to_a_new_volume_directory(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        created = cluster.create("persistentvolumeclaims", claim())
        await eventually("bound", lambda: phase_of(cluster, "persistentvolumeclaims", "data") == "Bound")
        bound = cluster.get("persistentvolumeclaims", "data")
        volume_name = f"pvc-{created['metadata']['uid']}"
        assert bound["spec"]["volumeName"] == volume_name
        assert bound["status"]["capacity"] == {"storage": "2Gi"}
        assert bound["status"]["accessModes"] == ["ReadWriteOnce"]
        volume = cluster.get("persistentvolumes", volume_name, None)
        assert volume["status"]["phase"] == "Bound"
        assert volume["spec"]["claimRef"]["uid"] == created["metadata"]["uid"]
        assert volume["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
        directory = Path(volume["spec"]["hostPath"]["path"])
        assert directory == tmp_path / "volumes" / volume_name and directory.is_dir()
        assert any(reason == "ProvisioningSucceeded" for reason, _ in cluster.events())
        (directory / "file").write_text("data")
        cluster.store.delete("persistentvolumeclaims", "default", "data")
        await eventually("volume deleted", lambda: cluster.find("persistentvolumes", volume_name, None) is None)
        assert not directory.exists()

    run_cluster(tmp_path, scenario)


def test_retained_volume_is_released_and_keeps_its_data(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("storageclasses", storage_class("keep", reclaimPolicy="Retain"), None)
        created = cluster.create("persistentvolumeclaims", claim(storage_class="keep"))
        await eventually("bound", lambda: phase_of(cluster, "persistentvolumeclaims", "data") == "Bound")
        volume_name = f"pvc-{created['metadata']['uid']}"
        cluster.store.delete("persistentvolumeclaims", "default", "data")
        await eventually("released", lambda: phase_of(cluster, "persistentvolumes", volume_name, None) == "Released")
        assert (tmp_path / "volumes" / volume_name).is_dir()

    run_cluster(tmp_path, scenario)


def test_claim_naming_an_unknown_class_stays_pending_with_an_event(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("persistentvolumeclaims", claim(storage_class="fast-ssd"))
        await eventually("event", lambda: ("ProvisioningFailed", 'storageclass.storage.k8s.io "fast-ssd" not found')
                         in cluster.events())
        assert phase_of(cluster, "persistentvolumeclaims", "data") == "Pending"
        assert not cluster.items("persistentvolumes", None)

    run_cluster(tmp_path, scenario)


def test_wait_for_first_consumer_binds_once_a_pod_uses_the_claim(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("storageclasses", storage_class("lazy", volumeBindingMode="WaitForFirstConsumer"), None)
        cluster.create("persistentvolumeclaims", claim(storage_class="lazy"))
        await stays("pending without a consumer",
                    lambda: phase_of(cluster, "persistentvolumeclaims", "data") == "Pending")
        cluster.create("pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "user"}, "spec": {
            "containers": [{"name": "main", "image": "app:v1"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}})
        await eventually("bound", lambda: phase_of(cluster, "persistentvolumeclaims", "data") == "Bound")

    run_cluster(tmp_path, scenario, behaviour=lambda pod: None)


def test_existing_volume_of_the_class_is_bound_statically(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("persistentvolumes", {"apiVersion": "v1", "kind": "PersistentVolume",
                                             "metadata": {"name": "manual"}, "spec": {
            "capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "local-path",
            "hostPath": {"path": str(tmp_path / "manual")}}}, None)
        cluster.create("persistentvolumeclaims", claim(storage_class="local-path"))
        await eventually("bound", lambda: phase_of(cluster, "persistentvolumeclaims", "data") == "Bound")
        assert cluster.get("persistentvolumeclaims", "data")["spec"]["volumeName"] == "manual"
        assert cluster.names("persistentvolumes", None) == ["manual"]

    run_cluster(tmp_path, scenario)


# --- Endpoints -----------------------------------------------------------------------------------


def pod(name: str, labels: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": {
        "containers": [{"name": "main", "image": "app:v1", "ports": [{"name": "http", "containerPort": 8080}]}]}}


def test_endpoints_list_ready_and_not_ready_pods_with_resolved_ports(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {
            "selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        cluster.create("pods", pod("web-a", {"app": "web"}))
        cluster.create("pods", pod("web-b", {"app": "web"}))
        cluster.create("pods", pod("other", {"app": "other"}))
        await eventually("pods running", lambda: all(
            p["status"].get("podIP") for p in cluster.items("pods")))
        set_pod_status(cluster.store, "default", "web-b", "running")

        def subsets() -> list[dict]:
            return (cluster.find("endpoints", "web") or {}).get("subsets") or []

        await eventually("endpoints", lambda: subsets() and subsets()[0].get("notReadyAddresses"))
        [subset] = subsets()
        assert [a["targetRef"]["name"] for a in subset["addresses"]] == ["web-a"]
        assert [a["targetRef"]["name"] for a in subset["notReadyAddresses"]] == ["web-b"]
        assert subset["addresses"][0]["ip"] == "127.0.0.1"
        assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        set_pod_status(cluster.store, "default", "web-b", "ready")
        await eventually("both ready", lambda: len(subsets()[0].get("addresses", [])) == 2)
        cluster.edit("pods", "web-a", lambda p: p["metadata"]["labels"].__setitem__("app", "moved"))
        await eventually("relabelled pod leaves", lambda: [a["targetRef"]["name"] for a in
                                                           subsets()[0].get("addresses", [])] == ["web-b"])
        cluster.store.delete("services", "default", "web")
        await eventually("endpoints removed with the service", lambda: cluster.find("endpoints", "web") is None)

    run_cluster(tmp_path, scenario)


def test_service_without_selector_keeps_its_own_endpoints(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("services", {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external"},
                                    "spec": {"ports": [{"port": 5432}]}})
        manual = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external"},
                  "subsets": [{"addresses": [{"ip": "10.0.0.9"}], "ports": [{"port": 5432}]}]}
        cluster.create("endpoints", manual)
        await stays("left alone", lambda: cluster.get("endpoints", "external")["subsets"] == manual["subsets"])

    run_cluster(tmp_path, scenario)


# --- Namespace -----------------------------------------------------------------------------------


def test_deleting_a_namespace_empties_it_then_removes_it(tmp_path: Path) -> None:
    async def scenario(cluster: Cluster) -> None:
        cluster.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}, None)
        cluster.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}},
                       "team")
        cluster.create("pods", pod("worker", {"app": "worker"}), "team")
        await eventually("pod running", lambda: phase_of(cluster, "pods", "worker", "team") == "Running")
        cluster.kubelet.finish_terminations = False
        cluster.store.delete("namespaces", None, "team")
        await eventually("configmap gone", lambda: not cluster.items("configmaps", "team"))
        await stays("namespace waits for its pod", lambda: phase_of(cluster, "namespaces", "team", None)
                    == "Terminating")
        cluster.kubelet.resume_terminations()
        await eventually("namespace gone", lambda: cluster.find("namespaces", "team", None) is None)
        assert not cluster.items("pods", "team")

    run_cluster(tmp_path, scenario)
