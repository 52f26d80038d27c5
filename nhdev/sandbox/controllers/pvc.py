"""PersistentVolume binding and reclaiming, with local directories as the storage.

``ClaimBinder`` binds each claim: to a matching existing volume, or to a volume it provisions
(``pvc-<uid>``, a hostPath directory under ``STATE/volumes/``) from the claim's StorageClass,
once a pod uses the claim when the class says ``WaitForFirstConsumer``. ``VolumeReclaimer``
handles volumes whose claim is gone: ``Delete`` removes the volume and its directory, ``Retain``
marks it Released and keeps the data.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
from decimal import Decimal, InvalidOperation
from pathlib import Path

from nhdev.sandbox.controllers.base import Controller, Key, key_of
from nhdev.sandbox.controllers.clock import Clock
from nhdev.sandbox.controllers.pods import NODE_NAME, is_terminating, phase
from nhdev.sandbox.events import record_event
from nhdev.sandbox.store import AlreadyExistsError, NotFoundError, Store

log = logging.getLogger(__name__)

COMPONENT = "persistentvolume-controller"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
FALLBACK_CLASS = "local-path"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
CLAIM_PROTECTION = "kubernetes.io/pvc-protection"
VOLUME_PROTECTION = "kubernetes.io/pv-protection"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIXES: dict[str, int | Decimal] = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": Decimal("0.001"),
}


def parse_quantity(text: str | int | None) -> Decimal:
    """A resource quantity (``1Gi``, ``500M``, ``1.5G``) in base units; 0 when unparsable."""
    match = _QUANTITY.match(str(text or "0").strip())
    if match is None or match.group(2) not in _SUFFIXES:
        return Decimal(0)
    try:
        return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2)])
    except InvalidOperation:
        return Decimal(0)


def requested_storage(claim: dict) -> str:
    return str((((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", "1Gi"))


def claim_names_of_pod(pod: dict) -> list[str]:
    volumes = (pod.get("spec") or {}).get("volumes") or []
    return [v["persistentVolumeClaim"]["claimName"] for v in volumes if (v.get("persistentVolumeClaim") or {}).get(
        "claimName")]


def volume_matches_claim(volume: dict, claim: dict, class_name: str) -> bool:
    """Static binding: a free volume of the claim's class, big enough, with the access modes, not
    promised to another claim. A new volume is still Pending until marked Available: free too."""
    spec = volume.get("spec") or {}
    if (volume.get("status") or {}).get("phase") in ("Bound", "Released", "Failed") or is_terminating(volume):
        return False
    claim_ref = spec.get("claimRef")
    meta = claim["metadata"]
    if claim_ref and (claim_ref.get("name"), claim_ref.get("namespace")) != (meta["name"], meta["namespace"]):
        return False
    if (spec.get("storageClassName") or "") != class_name:
        return False
    wanted_modes = set((claim.get("spec") or {}).get("accessModes") or [])
    if not wanted_modes <= set(spec.get("accessModes") or []):
        return False
    capacity = parse_quantity((spec.get("capacity") or {}).get("storage"))
    return capacity >= parse_quantity(requested_storage(claim))


def claim_reference(claim: dict) -> dict:
    meta = claim["metadata"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
            "name": meta["name"], "uid": meta["uid"], "resourceVersion": meta.get("resourceVersion", "")}


def build_volume(claim: dict, storage_class: dict, path: Path) -> dict:
    spec = claim.get("spec") or {}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{claim['metadata']['uid']}",
            "annotations": {PROVISIONED_BY: storage_class.get("provisioner", "")},
        },
        "spec": {
            "capacity": {"storage": requested_storage(claim)},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "claimRef": claim_reference(claim),
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
            "storageClassName": storage_class["metadata"]["name"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
        },
    }


class _VolumeController(Controller):
    def __init__(self, store: Store, clock: Clock, resync_seconds: float, state_dir: Path) -> None:
        super().__init__(store, clock, resync_seconds)
        self.volumes_dir = Path(state_dir) / "volumes"

    def _claim_in_use(self, namespace: str, claim_name: str) -> bool:
        pods, _ = self.store.list("pods", namespace)
        return any(
            claim_name in claim_names_of_pod(p) and not is_terminating(p) and phase(p) not in ("Succeeded", "Failed")
            for p in pods
        )

    def _set_phase(self, resource: str, namespace: str | None, name: str, phase_: str, message: str = "") -> None:
        def edit(obj: dict) -> None:
            status = obj.setdefault("status", {})
            status["phase"] = phase_
            if message:
                status["message"] = message
            else:
                status.pop("message", None)

        self.store.mutate(resource, namespace, name, edit, subresource="status")


class ClaimBinder(_VolumeController):
    name = "persistentvolume-binder"
    resource = "persistentvolumeclaims"

    def related(self) -> dict:
        return {
            "pods": lambda pod: [(pod["metadata"]["namespace"], c) for c in claim_names_of_pod(pod)],
            "persistentvolumes": self._claims_for_volume,
            "storageclasses": self._pending_claims,
        }

    def _claims_for_volume(self, volume: dict) -> list[Key]:
        """The claim a volume is bound to; a free volume may suit any pending claim."""
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if ref.get("name") and ref.get("namespace"):
            return [(ref["namespace"], ref["name"])]
        return self._pending_claims(volume)

    def _pending_claims(self, _trigger: dict) -> list[Key]:
        claims, _ = self.store.list("persistentvolumeclaims")
        return [key_of(c) for c in claims if not (c.get("spec") or {}).get("volumeName")]

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        claim = self.store.try_get("persistentvolumeclaims", namespace, name)
        if claim is None:
            return None
        if is_terminating(claim):
            self._release_protection(claim)
            return None
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            self._finish_binding(claim, volume_name)
            return None
        class_name = self._class_name(claim)
        volume = next((v for v in self.store.list("persistentvolumes")[0]
                       if volume_matches_claim(v, claim, class_name)), None)
        storage_class = self.store.try_get("storageclasses", None, class_name) if class_name else None
        if volume is None:
            if storage_class is None:
                message = (f'storageclass.storage.k8s.io "{class_name}" not found' if class_name
                           else "no persistent volumes available for this claim and no storage class is set")
                record_event(self.store, claim, "ProvisioningFailed", message, type="Warning", component=COMPONENT)
                return None
            if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer":
                if not self._claim_in_use(namespace, name):
                    record_event(self.store, claim, "WaitForFirstConsumer",
                                 "waiting for first consumer to be created before binding", component=COMPONENT)
                    return None
                self._select_node(claim)
            volume = self._provision(claim, storage_class)
        self._bind(claim, volume)
        return None

    def _class_name(self, claim: dict) -> str:
        """The claim's class; an empty or absent one means the default class."""
        named = (claim.get("spec") or {}).get("storageClassName")
        if named:
            return str(named)
        classes, _ = self.store.list("storageclasses")
        default = next((c for c in classes
                        if (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"), None)
        return str(default["metadata"]["name"]) if default else FALLBACK_CLASS

    def _select_node(self, claim: dict) -> None:
        def annotate(obj: dict) -> None:
            obj["metadata"].setdefault("annotations", {})[SELECTED_NODE] = NODE_NAME

        self.store.mutate("persistentvolumeclaims", claim["metadata"]["namespace"], claim["metadata"]["name"],
                          annotate)

    def _provision(self, claim: dict, storage_class: dict) -> dict:
        path = self.volumes_dir / f"pvc-{claim['metadata']['uid']}"
        path.mkdir(parents=True, exist_ok=True)
        wanted = build_volume(claim, storage_class, path)
        try:
            volume = self.store.create("persistentvolumes", None, wanted)
        except AlreadyExistsError:
            return self.store.get("persistentvolumes", None, wanted["metadata"]["name"])
        record_event(self.store, claim, "ProvisioningSucceeded",
                     f"Successfully provisioned volume {volume['metadata']['name']} using "
                     f"{storage_class['metadata']['name']}", component=COMPONENT)
        return volume

    def _bind(self, claim: dict, volume: dict) -> None:
        reference = claim_reference(claim)
        volume_name = volume["metadata"]["name"]

        def bind_volume(obj: dict) -> None:
            obj["spec"]["claimRef"] = reference
            if PROVISIONED_BY not in (obj["metadata"].get("annotations") or {}):
                obj["metadata"].setdefault("annotations", {})["pv.kubernetes.io/bound-by-controller"] = "yes"

        self.store.mutate("persistentvolumes", None, volume_name, bind_volume)
        self._set_phase("persistentvolumes", None, volume_name, "Bound")
        provisioner = (volume["metadata"].get("annotations") or {}).get(PROVISIONED_BY)

        def bind_claim(obj: dict) -> None:
            obj["spec"]["volumeName"] = volume_name
            annotations = obj["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
            if provisioner:
                annotations["volume.kubernetes.io/storage-provisioner"] = provisioner

        meta = claim["metadata"]
        self.store.mutate("persistentvolumeclaims", meta["namespace"], meta["name"], bind_claim)
        self._finish_binding(claim, volume_name)

    def _finish_binding(self, claim: dict, volume_name: str) -> None:
        meta = claim["metadata"]
        volume = self.store.try_get("persistentvolumes", None, volume_name)
        if volume is None:
            self._set_phase("persistentvolumeclaims", meta["namespace"], meta["name"], "Lost",
                            f"volume {volume_name} is gone")
            return
        volume_spec = volume.get("spec") or {}

        def bound(obj: dict) -> None:
            obj["status"] = {
                **(obj.get("status") or {}),
                "phase": "Bound",
                "accessModes": list(volume_spec.get("accessModes") or []),
                "capacity": dict(volume_spec.get("capacity") or {}),
            }

        self.store.mutate("persistentvolumeclaims", meta["namespace"], meta["name"], bound, subresource="status")

    def _release_protection(self, claim: dict) -> None:
        """A deleted claim still mounted by a pod stays until that pod is gone (the protection finalizer)."""
        meta = claim["metadata"]
        if CLAIM_PROTECTION not in (meta.get("finalizers") or []) or self._claim_in_use(meta["namespace"],
                                                                                        meta["name"]):
            return

        def release(obj: dict) -> None:
            obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != CLAIM_PROTECTION]

        self.store.mutate("persistentvolumeclaims", meta["namespace"], meta["name"], release)


class VolumeReclaimer(_VolumeController):
    name = "persistentvolume-reclaimer"
    resource = "persistentvolumes"

    def related(self) -> dict:
        return {"persistentvolumeclaims": self._volume_of_claim}

    @staticmethod
    def _volume_of_claim(claim: dict) -> list[Key]:
        volume_name = (claim.get("spec") or {}).get("volumeName")
        return [("", volume_name)] if volume_name else []

    def reconcile(self, key: Key) -> float | None:
        _, name = key
        volume = self.store.try_get("persistentvolumes", None, name)
        if volume is None:
            return None
        claim_ref = (volume.get("spec") or {}).get("claimRef")
        claim = self._claim(claim_ref)
        if is_terminating(volume):
            if claim is None:
                self._release_protection(volume)
            return None
        if not claim_ref or not claim_ref.get("uid"):
            self._set_phase("persistentvolumes", None, name, "Available")  # unbound, or pre-bound to a future claim
            return None
        if claim is not None:
            if (volume["metadata"].get("annotations") or {}).get(PROVISIONED_BY):
                self._path(volume).mkdir(parents=True, exist_ok=True)  # e.g. removed by hand while down
            return None
        policy = volume["spec"].get("persistentVolumeReclaimPolicy", "Retain")
        if policy != "Delete":
            self._set_phase("persistentvolumes", None, name, "Released")
            return None
        try:
            self._remove_directory(volume)
        except OSError as exc:
            self._set_phase("persistentvolumes", None, name, "Failed", f"deleting {self._path(volume)}: {exc}")
            record_event(self.store, volume, "VolumeFailedDelete", str(exc), type="Warning", component=COMPONENT)
            return None
        with contextlib.suppress(NotFoundError):
            self.store.delete("persistentvolumes", None, name, preconditions={"uid": volume["metadata"]["uid"]})
        return None

    def _claim(self, claim_ref: dict | None) -> dict | None:
        if not claim_ref or not claim_ref.get("name"):
            return None
        claim = self.store.try_get("persistentvolumeclaims", claim_ref.get("namespace") or "default",
                                   claim_ref["name"])
        if claim is None or (claim_ref.get("uid") and claim["metadata"]["uid"] != claim_ref["uid"]):
            return None
        return claim

    def _path(self, volume: dict) -> Path:
        return Path(((volume.get("spec") or {}).get("hostPath") or {}).get("path", ""))

    def _remove_directory(self, volume: dict) -> None:
        """Remove the volume's directory, but only one this controller made: never a user's hostPath."""
        path = self._path(volume)
        ours = (volume["metadata"].get("annotations") or {}).get(PROVISIONED_BY)
        if ours and path.parent.resolve() == self.volumes_dir.resolve() and path.exists():
            shutil.rmtree(path)

    def _release_protection(self, volume: dict) -> None:
        if VOLUME_PROTECTION not in (volume["metadata"].get("finalizers") or []):
            return

        def release(obj: dict) -> None:
            obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != VOLUME_PROTECTION]

        self.store.mutate("persistentvolumes", None, volume["metadata"]["name"], release)
