"""Pod volumes as host directories, and container volumeMounts as runtime mounts.

- emptyDir: ``STATE/pods/<uid>/volumes/<name>`` (mode 0777, shared by the pod's containers);
- configMap, secret, downwardAPI, projected: files written under the same directory (items,
  defaultMode/mode, optional), mounted read-only; rewritten on every sync, so edits of the source
  object reach running pods like on a cluster (files whose content did not change are left alone);
- persistentVolumeClaim: the directory of the PersistentVolume the claim is bound to
  (``spec.hostPath.path`` or ``spec.local.path``);
- hostPath: the path itself, checked or created according to ``type``.

With the pod's ``securityContext.fsGroup``, every volume but hostPath belongs to that group the
way the kubelet's SetVolumeOwnership makes it: group ``fsGroup``, group read (and write, unless the
volume is read-only), directories setgid so new files inherit the group (best effort: the
server needs the right to chown). An emptyDir or a claim whose top directory has it already is
left alone (like ``fsGroupChangePolicy: OnRootMismatch``), so big claims are not walked on every
start.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from nhdev.sandbox.runtime import Mount

if TYPE_CHECKING:
    from nhdev.sandbox.store import Store

DEFAULT_MODE = 0o644
# The sandbox API has no authentication; a projected token is only there for clients that read it.
SANDBOX_TOKEN = "nhdev-sandbox-token"


class VolumeError(Exception):
    """A volume that cannot be set up yet (missing source object, wrong hostPath type, ...)."""


@dataclass(frozen=True)
class VolumeSource:
    path: Path
    read_only: bool = False


def unbound_claims(store: Store, pod: dict) -> list[str]:
    """Names of the pod's PersistentVolumeClaims that are missing or not Bound."""
    namespace = pod["metadata"]["namespace"]
    waiting = []
    for volume in pod["spec"].get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if not claim:
            continue
        pvc = store.try_get("persistentvolumeclaims", namespace, claim)
        if pvc is None or (pvc.get("status") or {}).get("phase") != "Bound" or not pvc["spec"].get("volumeName"):
            waiting.append(claim)
    return waiting


def _decode(data: dict[str, str] | None, binary: bool) -> dict[str, bytes]:
    if binary:
        return {k: base64.b64decode(v) for k, v in (data or {}).items()}
    return {k: str(v).encode() for k, v in (data or {}).items()}


def _object_files(store: Store, namespace: str, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
    """The key -> content map of a ConfigMap or Secret; None when optional and missing."""
    resource = "configmaps" if kind == "configmap" else "secrets"
    obj = store.try_get(resource, namespace, name)
    if obj is None:
        if optional:
            return None
        raise VolumeError(f'{kind} "{name}" not found')
    if kind == "configmap":
        return {**_decode(obj.get("data"), False), **_decode(obj.get("binaryData"), True)}
    return {**_decode(obj.get("data"), True), **_decode(obj.get("stringData"), False)}


def _select_items(kind: str, name: str, files: dict[str, bytes], items: list[dict] | None,
                  default_mode: int, optional: bool) -> dict[str, tuple[bytes, int]]:
    if not items:
        return {key: (content, default_mode) for key, content in files.items()}
    selected = {}
    for item in items:
        if item["key"] not in files:
            if optional:
                continue
            raise VolumeError(f'{kind} "{name}" has no key "{item["key"]}"')
        selected[item["path"]] = (files[item["key"]], item.get("mode", default_mode))
    return selected


def field_value(pod: dict, path: str) -> str:
    """A downward-API fieldRef value (``metadata.labels['k']`` and friends)."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    for prefix, source in (("metadata.labels", meta.get("labels")), ("metadata.annotations", meta.get("annotations"))):
        if path == prefix:
            return "".join(f'{k}="{v}"\n' for k, v in sorted((source or {}).items()))
        if path.startswith(prefix + "["):
            key = path[len(prefix) + 1:-1].strip("'\"")
            return str((source or {}).get(key, ""))
    simple: dict[str, Any] = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP") or "127.0.0.1", "status.hostIP": status.get("hostIP") or "127.0.0.1",
        "status.podIPs": status.get("podIP") or "127.0.0.1", "status.hostIPs": status.get("hostIP") or "127.0.0.1",
    }
    if path not in simple:
        raise VolumeError(f"unsupported fieldRef {path!r}")
    return str(simple[path] or "")


def _downward_files(pod: dict, items: list[dict] | None, default_mode: int) -> dict[str, tuple[bytes, int]]:
    files = {}
    for item in items or []:
        if "fieldRef" not in item:
            raise VolumeError(f"downwardAPI item {item.get('path')!r}: only fieldRef is supported by the sandbox")
        value = field_value(pod, item["fieldRef"]["fieldPath"])
        files[item["path"]] = (value.encode(), item.get("mode", default_mode))
    return files


def _projected_files(store: Store, pod: dict, projected: dict) -> dict[str, tuple[bytes, int]]:
    namespace = pod["metadata"]["namespace"]
    mode = projected.get("defaultMode", DEFAULT_MODE)
    files: dict[str, tuple[bytes, int]] = {}
    for source in projected.get("sources") or []:
        for kind, key in (("configmap", "configMap"), ("secret", "secret")):
            if key in source:
                ref = source[key]
                content = _object_files(store, namespace, kind, ref["name"], ref.get("optional", False))
                if content is not None:
                    files.update(_select_items(kind, ref["name"], content, ref.get("items"), mode,
                                               ref.get("optional", False)))
        if "downwardAPI" in source:
            files.update(_downward_files(pod, source["downwardAPI"].get("items"), mode))
        if "serviceAccountToken" in source:
            files[source["serviceAccountToken"]["path"]] = (SANDBOX_TOKEN.encode(), mode)
    return files


def _safe_relative(path: str) -> PurePosixPath:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise VolumeError(f"path {path!r} must be relative and may not contain '..'")
    return relative


def write_files(directory: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """Makes ``directory`` hold exactly ``files``; unchanged files are not rewritten."""
    directory.mkdir(parents=True, exist_ok=True)
    wanted = {directory / _safe_relative(path) for path in files}
    for existing in sorted(directory.rglob("*"), reverse=True):
        if existing.is_file() and existing not in wanted:
            existing.unlink()
        elif existing.is_dir() and not any(w.is_relative_to(existing) for w in wanted):
            shutil.rmtree(existing)
    for path, (content, mode) in files.items():
        target = directory / _safe_relative(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != content:
            temporary = target.with_name(f".{target.name}.tmp")
            temporary.write_bytes(content)
            os.replace(temporary, target)
        os.chmod(target, mode)


def _host_path(source: dict) -> VolumeSource:
    path, kind = Path(source["path"]), source.get("type") or ""
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate" and not path.exists():
        if not path.parent.is_dir():
            raise VolumeError(f"hostPath {path}: parent directory does not exist")
        path.touch(mode=0o644)
    elif kind == "Directory" and not path.is_dir():
        raise VolumeError(f"hostPath type check failed: {path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise VolumeError(f"hostPath type check failed: {path} is not a file")
    elif kind in ("Socket", "CharDevice", "BlockDevice") and not path.exists():
        raise VolumeError(f"hostPath type check failed: {path} does not exist")
    return VolumeSource(path)


def _claim_path(store: Store, namespace: str, claim: dict) -> VolumeSource:
    name = claim["claimName"]
    pvc = store.try_get("persistentvolumeclaims", namespace, name)
    if pvc is None or not pvc["spec"].get("volumeName"):
        raise VolumeError(f'persistentvolumeclaim "{name}" is not bound')
    pv = store.try_get("persistentvolumes", None, pvc["spec"]["volumeName"])
    if pv is None:
        raise VolumeError(f'persistentvolume "{pvc["spec"]["volumeName"]}" not found')
    spec = pv.get("spec") or {}
    location = (spec.get("hostPath") or {}).get("path") or (spec.get("local") or {}).get("path")
    if not location:
        raise VolumeError(f'persistentvolume "{pv["metadata"]["name"]}" has no hostPath or local path')
    path = Path(location)
    path.mkdir(parents=True, exist_ok=True)
    return VolumeSource(path, read_only=bool(claim.get("readOnly")))


def prepare_volume(store: Store, pod: dict, volume: dict, pod_dir: Path) -> VolumeSource:
    """Sets one volume up on the host (idempotent); raises VolumeError when it cannot yet."""
    namespace, name = pod["metadata"]["namespace"], volume["name"]
    directory = pod_dir / "volumes" / name
    if "emptyDir" in volume:
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)
        return VolumeSource(directory)
    for kind, key, ref_key in (("configmap", "configMap", "name"), ("secret", "secret", "secretName")):
        if key in volume:
            source = volume[key]
            optional = source.get("optional", False)
            content = _object_files(store, namespace, kind, source[ref_key], optional) or {}
            write_files(directory, _select_items(kind, source[ref_key], content, source.get("items"),
                                                 source.get("defaultMode", DEFAULT_MODE), optional))
            return VolumeSource(directory, read_only=True)
    if "downwardAPI" in volume:
        source = volume["downwardAPI"]
        write_files(directory, _downward_files(pod, source.get("items"), source.get("defaultMode", DEFAULT_MODE)))
        return VolumeSource(directory, read_only=True)
    if "projected" in volume:
        write_files(directory, _projected_files(store, pod, volume["projected"]))
        return VolumeSource(directory, read_only=True)
    if "hostPath" in volume:
        return _host_path(volume["hostPath"])
    if "persistentVolumeClaim" in volume:
        return _claim_path(store, namespace, volume["persistentVolumeClaim"])
    kinds = sorted(set(volume) - {"name"})
    raise VolumeError(f"volume {name!r}: type {', '.join(kinds)} is not supported by the sandbox")


_GROUP_RW, _GROUP_RO, _GROUP_X = 0o060, 0o040, 0o010


def _owned_by_group(path: Path, gid: int) -> bool:
    info = path.stat()
    return info.st_gid == gid and bool(info.st_mode & stat.S_ISGID)


def set_volume_ownership(path: Path, gid: int, *, read_only: bool) -> None:
    """The kubelet's SetVolumeOwnership for fsGroup ``gid`` (see the module docstring)."""
    group_bits = _GROUP_RO if read_only else _GROUP_RW
    for entry in [path, *path.rglob("*")]:
        if entry.is_symlink():
            continue
        with contextlib.suppress(PermissionError):
            os.chown(entry, -1, gid)
            mode = stat.S_IMODE(entry.stat().st_mode) | group_bits
            if entry.is_dir():
                mode |= stat.S_ISGID | _GROUP_X
            os.chmod(entry, mode)


def _apply_fs_group(volume: dict, source: VolumeSource, gid: int) -> None:
    if "hostPath" in volume:  # the kubelet leaves host paths alone too
        return
    walked_every_time = not ("emptyDir" in volume or "persistentVolumeClaim" in volume)
    if walked_every_time or not _owned_by_group(source.path, gid):
        set_volume_ownership(source.path, gid, read_only=source.read_only)


def prepare_volumes(store: Store, pod: dict, pod_dir: Path) -> dict[str, VolumeSource]:
    volumes = {}
    fs_group = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    for volume in pod["spec"].get("volumes") or []:
        try:
            volumes[volume["name"]] = prepare_volume(store, pod, volume, pod_dir)
            if fs_group is not None:
                _apply_fs_group(volume, volumes[volume["name"]], int(fs_group))
        except VolumeError as exc:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{volume["name"]}" : {exc}') from exc
        except OSError as exc:
            raise VolumeError(f'MountVolume.SetUp failed for volume "{volume["name"]}" : {exc}') from exc
    return volumes


def container_mounts(container: dict, volumes: dict[str, VolumeSource], sub_paths: dict[str, str]) -> list[Mount]:
    """The runtime mounts of a container's volumeMounts. ``sub_paths`` holds each mount's
    subPath (or its expanded subPathExpr) by mountPath; the sub-directory is created if missing."""
    mounts = []
    for volume_mount in container.get("volumeMounts") or []:
        source = volumes.get(volume_mount["name"])
        if source is None:
            raise VolumeError(f'volume "{volume_mount["name"]}" not found in the pod')
        path = source.path
        sub_path = sub_paths.get(volume_mount["mountPath"])
        if sub_path:
            path = path / _safe_relative(sub_path)
            if not path.exists():
                path.mkdir(parents=True, mode=0o777)
        read_only = bool(volume_mount.get("readOnly")) or source.read_only
        mounts.append(Mount(path, volume_mount["mountPath"], read_only=read_only))
    return mounts
