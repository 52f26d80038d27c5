"""From a pod's container spec to what the runtime starts: argv, environment, mounts, identity.

Kubernetes semantics: ``envFrom`` first, then ``env`` in order, each value expanded against the
variables defined before it; ``$(VAR)`` in command and args expanded against the result (``$$`` is
a literal ``$``, an undefined ``$(VAR)`` stays as written). ``command`` replaces the image's
entrypoint; the sandbox's images run on the host root and have no entrypoint, so a container
needs ``command``, or ``args`` (run as the command).

Security: the pod's ``securityContext`` under the container's, as the kubelet merges them
(:func:`security_context`), and the kubelet's ``runAsNonRoot`` check against the image's user
(:func:`verify_run_as_non_root`): a container that would run as root is refused with the
kubelet's own message (``CreateContainerConfigError``).
"""

from __future__ import annotations

import base64
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from nhdev.sandbox.runtime import ContainerConfig, Mount, SecurityContext
from nhdev.sandbox.volumes import VolumeError, VolumeSource, container_mounts, field_value

if TYPE_CHECKING:
    from nhdev.sandbox.store import Store

NODE_CPU = 2
NODE_MEMORY = 8 * 1024**3
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIXES = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024**2,
             "Gi": 1024**3, "Ti": 1024**4}


class ContainerConfigError(Exception):
    """The container cannot be configured yet (CreateContainerConfigError): a missing key, ..."""


class NoEntrypoint(ContainerConfigError):
    """Neither command nor args: the sandbox's host-root images have no entrypoint."""


def expand(text: str, variables: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            following = text[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(variables[name] if name in variables else text[i:end + 1])
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


def quantity(value: str | int | float) -> float:
    """A resource quantity ("500m", "1Gi", "2") as a number."""
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIXES:
        raise ContainerConfigError(f"invalid quantity {value!r}")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


def _resource_value(container: dict, ref: dict) -> str:
    resource = ref["resource"]
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    declared = (resources.get(kind) or {}).get(name)
    if declared is None and kind == "requests":
        declared = (resources.get("limits") or {}).get(name)
    if declared is None:
        declared = NODE_CPU if name == "cpu" else NODE_MEMORY
    divisor = quantity(ref.get("divisor") or 1)
    return str(math.ceil(quantity(declared) / divisor))


def _key_ref(store: Store, namespace: str, kind: str, ref: dict) -> str | None:
    resource = "configmaps" if kind == "configmap" else "secrets"
    obj = store.try_get(resource, namespace, ref["name"])
    optional = ref.get("optional", False)
    if obj is None:
        if optional:
            return None
        raise ContainerConfigError(f'{kind} "{ref["name"]}" not found')
    if kind == "configmap":
        data = obj.get("data") or {}
        value = data.get(ref["key"])
    else:
        encoded = (obj.get("data") or {}).get(ref["key"])
        value = base64.b64decode(encoded).decode() if encoded is not None else (obj.get("stringData") or {}).get(
            ref["key"])
    if value is None and not optional:
        raise ContainerConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
    return value


def _env_from(store: Store, namespace: str, source: dict) -> dict[str, str]:
    for kind, key in (("configmap", "configMapRef"), ("secret", "secretRef")):
        if key not in source:
            continue
        ref = source[key]
        obj = store.try_get("configmaps" if kind == "configmap" else "secrets", namespace, ref["name"])
        if obj is None:
            if ref.get("optional"):
                return {}
            raise ContainerConfigError(f'{kind} "{ref["name"]}" not found')
        data = obj.get("data") or {}
        if kind == "secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        prefix = source.get("prefix", "")
        return {prefix + k: str(v) for k, v in data.items()}
    return {}


def resolve_env(store: Store, pod: dict, container: dict) -> dict[str, str]:
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {"HOSTNAME": pod["spec"].get("hostname") or pod["metadata"]["name"], "HOME": "/root"}
    for source in container.get("envFrom") or []:
        env.update(_env_from(store, namespace, source))
    for var in container.get("env") or []:
        if "valueFrom" not in var:
            env[var["name"]] = expand(str(var.get("value", "")), env)
            continue
        source = var["valueFrom"]
        value: str | None
        if "fieldRef" in source:
            try:
                value = field_value(pod, source["fieldRef"]["fieldPath"])
            except VolumeError as exc:
                raise ContainerConfigError(str(exc)) from exc
        elif "resourceFieldRef" in source:
            value = _resource_value(container, source["resourceFieldRef"])
        elif "configMapKeyRef" in source:
            value = _key_ref(store, namespace, "configmap", source["configMapKeyRef"])
        elif "secretKeyRef" in source:
            value = _key_ref(store, namespace, "secret", source["secretKeyRef"])
        else:
            raise ContainerConfigError(f"env {var['name']}: unsupported valueFrom {sorted(source)}")
        if value is not None:
            env[var["name"]] = value
    return env


def command_line(container: dict, env: dict[str, str]) -> list[str]:
    command = [expand(str(part), env) for part in container.get("command") or []]
    args = [expand(str(part), env) for part in container.get("args") or []]
    if not command and not args:
        raise NoEntrypoint(f'image "{container.get("image")}" has no entrypoint; set command')
    return command + args


# Fields a container's securityContext takes from the pod's when it does not set them itself
# (DetermineEffectiveSecurityContext); the others are container-only or pod-only.
_INHERITED_FROM_POD = ("runAsUser", "runAsGroup", "runAsNonRoot")


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def security_context(pod: dict, container: dict) -> SecurityContext:
    """The container's effective security context (see the module docstring)."""
    pod_context = pod["spec"].get("securityContext") or {}
    own = container.get("securityContext") or {}
    merged = {key: own[key] if key in own else pod_context.get(key) for key in _INHERITED_FROM_POD}
    capabilities = own.get("capabilities") or {}
    escalation = own.get("allowPrivilegeEscalation")
    try:
        return SecurityContext(
            run_as_user=_optional_int(merged["runAsUser"]), run_as_group=_optional_int(merged["runAsGroup"]),
            run_as_non_root=bool(merged["runAsNonRoot"]),
            read_only_root_filesystem=bool(own.get("readOnlyRootFilesystem")),
            allow_privilege_escalation=None if escalation is None else bool(escalation),
            privileged=bool(own.get("privileged")),
            capabilities_add=tuple(str(c) for c in capabilities.get("add") or []),
            capabilities_drop=tuple(str(c) for c in capabilities.get("drop") or []),
            supplemental_groups=tuple(int(g) for g in pod_context.get("supplementalGroups") or []),
            fs_group=_optional_int(pod_context.get("fsGroup")))
    except (TypeError, ValueError) as exc:
        raise ContainerConfigError(f"invalid securityContext: {exc}") from exc


def image_uid(image_user: str) -> int | None:
    """The uid an image's ``USER`` names (``1000``, ``1000:1000``); None for a user name; 0 when the
    image names none (it runs as root)."""
    user = image_user.partition(":")[0]
    if not user:
        return 0
    return int(user) if user.isdigit() else None


def verify_run_as_non_root(pod: dict, container_name: str, security: SecurityContext,
                           image_user: str | None) -> None:
    """The kubelet's verifyRunAsNonRoot: ContainerConfigError when ``runAsNonRoot`` is set and the
    container would run as root. ``image_user`` is the image's ``USER`` ("" for none), None when the
    image list cannot tell (the stand-in images): then only an explicit runAsUser is checked."""
    if not security.run_as_non_root:
        return
    meta = pod["metadata"]
    where = f'(pod: "{meta["name"]}_{meta["namespace"]}({meta.get("uid", "")})", container: {container_name})'
    if security.run_as_user is not None:
        if security.run_as_user == 0:
            raise ContainerConfigError(f"container's runAsUser breaks non-root policy {where}")
        return
    if image_user is None:
        return
    uid = image_uid(image_user)
    if uid is None:
        user = image_user.partition(":")[0]
        raise ContainerConfigError(f"container has runAsNonRoot and image has non-numeric user ({user}), "
                                   f"cannot verify user is non-root {where}")
    if uid == 0:
        raise ContainerConfigError(f"container has runAsNonRoot and image will run as root {where}")


def build_container_config(store: Store, pod: dict, container: dict, volumes: dict[str, VolumeSource],
                           image_env: dict[str, str] | None = None,
                           image_mounts: tuple[tuple[Path, str], ...] = (), *,
                           image_user: str | None = None) -> ContainerConfig:
    """Everything the runtime needs for ``container``; ContainerConfigError when it cannot start
    yet or must not (``image_user``: see :func:`verify_run_as_non_root`)."""
    security = security_context(pod, container)
    verify_run_as_non_root(pod, container["name"], security, image_user)
    env = {**(image_env or {}), **resolve_env(store, pod, container)}
    argv = command_line(container, env)
    sub_paths = {}
    for mount in container.get("volumeMounts") or []:
        if mount.get("subPath") or mount.get("subPathExpr"):
            sub_paths[mount["mountPath"]] = mount.get("subPath") or expand(mount["subPathExpr"], env)
    try:
        mounts = container_mounts(container, volumes, sub_paths)
    except (VolumeError, OSError) as exc:
        raise ContainerConfigError(str(exc)) from exc
    taken = {m.target for m in mounts}
    mounts = [Mount(source, target, read_only=True) for source, target in image_mounts
              if target not in taken] + mounts
    return ContainerConfig(
        name=container["name"], argv=argv, env=env, working_dir=container.get("workingDir") or None,
        mounts=mounts, security=security, image=container.get("image", ""))
