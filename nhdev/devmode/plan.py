"""Pure planning of dev mode: (original object, dev spec, session) -> objects to write.

Nothing here talks to a cluster; the engine reads, calls these functions, and writes what they
return. That keeps every rule of the recipe (design §3) testable on plain dicts.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from nhdev.devmode import names

Obj = dict[str, Any]

# Keeps the dev container alive doing nothing, and exits at once on SIGTERM (no 30 s grace wait).
IDLE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]

IN_PLACE_KINDS = ("Deployment", "StatefulSet")
GENERATED_KINDS = ("DaemonSet", "Job", "CronJob")
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                 "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds")
UNREACHABLE_NODE = "nhdev.unreachable"
# A dev container whose original has a read-only root file system gets an emptyDir at /tmp.
TMP_VOLUME = "nhdev-tmp"
TMP_DIR = "/tmp"
# Container securityContext fields the sidecar takes over from the dev container (restricted pods).
_CARRIED_RESTRICTIONS = ("readOnlyRootFilesystem", "allowPrivilegeEscalation", "seccompProfile")
# Written by controllers, not by users: neither restored nor reported as drift.
SERVER_ANNOTATIONS = ("deployment.kubernetes.io/revision",)


class PlanError(ValueError):
    """The dev spec cannot be applied to this object (e.g. unknown container)."""


@dataclass(frozen=True)
class CacheDir:
    """A ``persistentVolumeDirs`` entry: a directory kept on a PVC across sessions."""

    path: str
    capacity: str = "10Gi"


@dataclass(frozen=True)
class WorkloadPatch:
    """A config ``patches`` entry: applied to the object running the dev pod, after the recipe."""

    patch_type: str  # strategic | merge | json
    body: Any


@dataclass(frozen=True)
class DevSpec:
    """What the dev container should be; built by the engine from the dev config and CLI flags."""

    image: str
    work_dir: str = "/home/nhdev-dev"
    container: str | None = None
    dev_container_name: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    resources: Obj | None = None
    image_pull_policy: str | None = None
    cache_dirs: tuple[CacheDir, ...] = ()
    storage_class: str | None = None
    sidecar_image: str = "ghcr.io/nhdev/sidecar:0.1"
    sidecar_args: tuple[str, ...] = ()
    patches: tuple[WorkloadPatch, ...] = ()


@dataclass(frozen=True)
class Session:
    """Who starts dev mode, and when; recorded in the lock annotation."""

    id: str
    identity: str  # user@host or $NHDEV_IDENTITY
    started_at: str  # RFC 3339
    mode: str = "replace"

    def owner_annotation(self) -> str:
        return json.dumps({"identity": self.identity, "session": self.id, "since": self.started_at,
                           "mode": self.mode}, sort_keys=True)


# ---------------------------------------------------------------- the original, kept for later


def strip_server_fields(obj: Obj) -> Obj:
    """The object as a user would have written it: no status, server fields or nhdev marks."""
    clean = copy.deepcopy(obj)
    clean.pop("status", None)
    meta = clean.get("metadata", {})
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    annotations = meta.get("annotations") or {}
    for key in [k for k in annotations if k.startswith(names.PREFIX) or k in SERVER_ANNOTATIONS]:
        del annotations[key]
    if not annotations:
        meta.pop("annotations", None)
    return clean


def pod_template_path(kind: str) -> tuple[str, ...]:
    if kind == "CronJob":
        return ("spec", "jobTemplate", "spec", "template")
    if kind == "Pod":
        return ()
    return ("spec", "template")


def get_path(obj: Obj, path: tuple[str, ...]) -> Obj:
    node: Any = obj
    for key in path:
        node = node[key]
    return node


# ---------------------------------------------------------------- the dev pod


def target_container(pod_spec: Obj, wanted: str | None) -> int:
    containers = pod_spec.get("containers") or []
    names_ = [c.get("name") for c in containers]
    if names.SIDECAR_CONTAINER in names_:
        raise PlanError("already in dev mode (it has an nhdev-sidecar container); run `nhdev dev reset` first")
    if wanted is None:
        if len(containers) == 1:
            return 0
        raise PlanError(f"several containers ({', '.join(map(str, names_))}): choose one with --container "
                        "or containers[].name in the dev config")
    if wanted not in names_:
        raise PlanError(f"no container {wanted!r} (containers: {', '.join(map(str, names_))})")
    return names_.index(wanted)


def _covered_by(path: str, roots: list[str]) -> str | None:
    """The root among ``roots`` that ``path`` equals or lies under."""
    norm = path.rstrip("/") or "/"
    for root in roots:
        r = root.rstrip("/") or "/"
        if norm == r or norm.startswith(r + "/"):
            return root
    return None


def dev_pod_spec(pod_spec: Obj, spec: DevSpec, claims: dict[str, str], keys_secret: str) -> Obj:
    """The pod spec with its target container turned into the dev container, plus the sidecar.

    ``claims`` maps each cache dir path to the PVC that holds it.
    """
    new = copy.deepcopy(pod_spec)
    index = target_container(new, spec.container)
    original = new["containers"][index]
    volumes: list[Obj] = new.setdefault("volumes", [])
    mounts: list[Obj] = []
    for i, cache in enumerate(spec.cache_dirs):
        vol = f"{names.CACHE_VOLUME_PREFIX}{i}"
        volumes.append({"name": vol, "persistentVolumeClaim": {"claimName": claims[cache.path]}})
        mounts.append({"name": vol, "mountPath": cache.path})
    workdir_mount = _workdir_mount(original, spec, mounts)
    if workdir_mount is None:
        volumes.append({"name": names.WORKDIR_VOLUME, "emptyDir": {}})
        workdir_mount = {"name": names.WORKDIR_VOLUME, "mountPath": spec.work_dir}
        mounts.append(workdir_mount)
    if _read_only_root(original) and not _covered_by(TMP_DIR, [m["mountPath"] for m in
                                                         mounts + list(original.get("volumeMounts") or [])]):
        # A read-only root file system leaves programs nowhere to write their temporary files; the
        # original had none to write, a developer's shell, debugger and tools do.
        volumes.append({"name": TMP_VOLUME, "emptyDir": {}})
        mounts.append({"name": TMP_VOLUME, "mountPath": TMP_DIR})
    # 0444: the sidecar image runs as uid 1000, and only the sidecar mounts this volume.
    volumes.append({"name": names.KEYS_VOLUME, "secret": {"secretName": keys_secret, "defaultMode": 0o444}})
    new["containers"][index] = _dev_container(original, spec, mounts)
    new["containers"].append(_sidecar_container(spec, workdir_mount,
                                                _sidecar_security(new, new["containers"][index])))
    # Shorter grace: the idle dev container exits on TERM; waiting 30 s on end helps no one.
    new["terminationGracePeriodSeconds"] = min(int(new.get("terminationGracePeriodSeconds", 30)), 5)
    return new


def _workdir_mount(original: Obj, spec: DevSpec, new_mounts: list[Obj]) -> Obj | None:
    """The mount that already holds workDir (a cache dir or an existing mount), if any."""
    for mount in new_mounts + list(original.get("volumeMounts") or []):
        if _covered_by(spec.work_dir, [mount["mountPath"]]):
            sub = spec.work_dir[len(mount["mountPath"].rstrip("/")):].strip("/")
            found = {"name": mount["name"], "mountPath": spec.work_dir}
            base = mount.get("subPath", "")
            joined = "/".join(p for p in (base, sub) if p)
            if joined:
                found["subPath"] = joined
            return found
    return None


def _dev_container(original: Obj, spec: DevSpec, extra_mounts: list[Obj]) -> Obj:
    dev = copy.deepcopy(original)
    dev["name"] = spec.dev_container_name or original["name"]
    dev["image"] = spec.image
    dev["command"] = list(IDLE_COMMAND)
    dev.pop("args", None)
    dev["workingDir"] = spec.work_dir
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        dev.pop(probe, None)
    if spec.image_pull_policy:
        dev["imagePullPolicy"] = spec.image_pull_policy
    if spec.resources is not None:
        dev["resources"] = copy.deepcopy(spec.resources)
    env = [e for e in dev.get("env") or [] if e.get("name") not in {k for k, _ in spec.env}]
    env += [{"name": k, "value": v} for k, v in spec.env]
    if env:
        dev["env"] = env
    taken = {m["mountPath"].rstrip("/") for m in extra_mounts}
    kept = [m for m in dev.get("volumeMounts") or [] if m["mountPath"].rstrip("/") not in taken]
    dev["volumeMounts"] = kept + [m for m in extra_mounts if m["mountPath"] not in {k["mountPath"] for k in kept}]
    return dev


def _read_only_root(container: Obj) -> bool:
    return bool((container.get("securityContext") or {}).get("readOnlyRootFilesystem"))


def _sidecar_security(pod_spec: Obj, dev: Obj) -> Obj:
    """The sidecar's securityContext: the dev container's user and group, so files synced by the
    sidecar are the app's own; and the restrictions the dev container runs under, so a pod that
    satisfies a restricted policy (non-root, read-only root, capabilities dropped, no privilege
    escalation, a seccomp profile) still does with the sidecar in it. Added capabilities are not
    copied: the sidecar needs none."""
    own = dev.get("securityContext") or {}
    context = {**(pod_spec.get("securityContext") or {}), **own}
    security = {k: context[k] for k in ("runAsUser", "runAsGroup") if k in context}
    if context.get("runAsNonRoot"):
        security["runAsNonRoot"] = True
    for key in _CARRIED_RESTRICTIONS:
        if key in own:
            security[key] = copy.deepcopy(own[key])
    dropped = (own.get("capabilities") or {}).get("drop")
    if dropped:
        security["capabilities"] = {"drop": list(dropped)}
    return security


def _sidecar_container(spec: DevSpec, workdir_mount: Obj, security: Obj) -> Obj:
    args = ["--root", spec.work_dir, "--keys", names.KEYS_MOUNT,
            "--listen", f"127.0.0.1:{names.SIDECAR_PORT}", *spec.sidecar_args]
    return {
        "name": names.SIDECAR_CONTAINER,
        "image": spec.sidecar_image,
        "command": ["nhdev-sidecar"],
        "args": args,
        "workingDir": spec.work_dir,
        # Ready only once SSH answers: a sidecar that crashes at start must not look ready.
        "readinessProbe": {"exec": {"command": ["nhdev-sidecar", "probe", f"127.0.0.1:{names.SIDECAR_PORT}"]},
                           "periodSeconds": 1, "timeoutSeconds": 5, "failureThreshold": 3},
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [dict(workdir_mount),
                         {"name": names.KEYS_VOLUME, "mountPath": names.KEYS_MOUNT, "readOnly": True}],
        **({"imagePullPolicy": spec.image_pull_policy} if spec.image_pull_policy else {}),
        **({"securityContext": security} if security else {}),
    }


# ---------------------------------------------------------------- objects nhdev creates


def cache_claim(namespace: str, kind: str, workload: str, cache: CacheDir, storage_class: str | None) -> Obj:
    """The PVC for one cache dir; found again by its labels on the next start and reused."""
    claim: Obj = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": names.cache_claim_name(kind, workload, cache.path),
            "namespace": namespace,
            "labels": {names.MANAGED_BY: "nhdev", names.ROLE: "cache", names.WORKLOAD_KIND: kind.lower(),
                       names.WORKLOAD_NAME: workload, names.DIR_HASH: names.short_hash(cache.path, 16)},
            "annotations": {names.DIR: cache.path},
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": cache.capacity}}},
    }
    if storage_class:
        claim["spec"]["storageClassName"] = storage_class
    return claim


def cache_claim_selector(kind: str, workload: str, path: str) -> str:
    return ",".join([f"{names.MANAGED_BY}=nhdev", f"{names.ROLE}=cache", f"{names.WORKLOAD_KIND}={kind.lower()}",
                     f"{names.WORKLOAD_NAME}={workload}", f"{names.DIR_HASH}={names.short_hash(path, 16)}"])


@dataclass(frozen=True)
class Backup:
    """What the backup Secret holds: enough to undo dev mode from the cluster alone."""

    kind: str
    name: str
    original: Obj  # stripped of server fields
    dev_applied: Obj | None = None  # the object as nhdev wrote it (to tell others' changes apart)
    hpas: tuple[Obj, ...] = ()  # [{"name", "minReplicas", "maxReplicas"}]
    session: str = ""
    identity: str = ""
    mode: str = "replace"
    created: tuple[str, ...] = field(default=())  # "kind/name" of objects made for this session

    def to_secret(self, namespace: str) -> Obj:
        payload = {"kind": self.kind, "name": self.name, "original": self.original,
                   "devApplied": self.dev_applied, "hpas": list(self.hpas), "session": self.session,
                   "identity": self.identity, "mode": self.mode, "created": list(self.created)}
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "nhdev.dev/backup",
            "metadata": {
                "name": names.backup_secret_name(self.kind, self.name),
                "namespace": namespace,
                "labels": {names.MANAGED_BY: "nhdev", names.ROLE: "backup", names.SESSION: self.session,
                           names.WORKLOAD_KIND: self.kind.lower(), names.WORKLOAD_NAME: self.name},
            },
            "stringData": {"backup.json": json.dumps(payload, sort_keys=True)},
        }

    @classmethod
    def from_secret_data(cls, text: str) -> Backup:
        data = json.loads(text)
        return cls(kind=data["kind"], name=data["name"], original=data["original"],
                   dev_applied=data.get("devApplied"), hpas=tuple(data.get("hpas") or ()),
                   session=data.get("session", ""), identity=data.get("identity", ""),
                   mode=data.get("mode", "replace"), created=tuple(data.get("created") or ()))


# ---------------------------------------------------------------- replace mode


def plan_replace_in_place(live: Obj, spec: DevSpec, session: Session, claims: dict[str, str],
                          keys_secret: str, backup_secret: str) -> Obj:
    """Deployment/StatefulSet: the workload as it should be written back (PUT with its resourceVersion)."""
    kind = live["kind"]
    if kind not in IN_PLACE_KINDS:
        raise PlanError(f"{kind} is not changed in place")
    new = copy.deepcopy(live)
    new.pop("status", None)
    template = new["spec"]["template"]
    template["spec"] = dev_pod_spec(template["spec"], spec, claims, keys_secret)
    _mark_template(template, spec, session)
    new["spec"]["replicas"] = 1
    if kind == "Deployment":
        new["spec"]["strategy"] = {"type": "Recreate"}
    _mark_owner(new, session, backup_secret)
    return new


def plan_generated_deployment(live: Obj, spec: DevSpec, session: Session, claims: dict[str, str],
                              keys_secret: str) -> Obj:
    """DaemonSet/Job/CronJob: a Deployment running the dev pod beside the neutralised original."""
    kind, name = live["kind"], live["metadata"]["name"]
    template = copy.deepcopy(get_path(live, pod_template_path(kind)))
    pod_spec = template["spec"]
    pod_spec["restartPolicy"] = "Always"
    for key in ("nodeName", "activeDeadlineSeconds"):
        pod_spec.pop(key, None)
    template["spec"] = dev_pod_spec(pod_spec, spec, claims, keys_secret)
    labels = {names.MANAGED_BY: "nhdev", names.ROLE: "generated", names.SESSION: session.id,
              names.WORKLOAD_KIND: kind.lower(), names.WORKLOAD_NAME: name}
    template.setdefault("metadata", {})
    # Job pods carry controller-uid/job-name labels that a Deployment's pods must not.
    pod_labels = {k: v for k, v in (template["metadata"].get("labels") or {}).items()
                  if k not in ("controller-uid", "job-name") and not k.startswith("batch.kubernetes.io/")}
    template["metadata"]["labels"] = {**pod_labels, **labels}
    _mark_template(template, spec, session)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": names.generated_name(name), "namespace": live["metadata"].get("namespace"),
                     "labels": labels},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"},
                 "selector": {"matchLabels": labels}, "template": template},
    }


def plan_neutralise(live: Obj, session: Session, backup_secret: str) -> Obj:
    """The original DaemonSet/Job/CronJob as it should be while its generated Deployment runs."""
    kind = live["kind"]
    new = copy.deepcopy(live)
    new.pop("status", None)
    if kind == "DaemonSet":
        # A node that cannot exist: the DaemonSet's pods go away and none is scheduled.
        new["spec"]["template"]["spec"]["nodeSelector"] = {
            **(new["spec"]["template"]["spec"].get("nodeSelector") or {}),
            "kubernetes.io/hostname": UNREACHABLE_NODE,
        }
    elif kind == "CronJob":
        new["spec"]["suspend"] = True
    elif kind != "Job":  # a Job is left running, as Nocalhost does; its pods finish on their own
        raise PlanError(f"{kind} is not neutralised")
    _mark_owner(new, session, backup_secret)
    return new


def plan_replace_pod(live: Obj, spec: DevSpec, session: Session, claims: dict[str, str], keys_secret: str,
                     backup_secret: str) -> Obj:
    """A bare Pod: the dev pod to create after deleting the original (restored from the backup on end)."""
    if live["metadata"].get("ownerReferences"):
        owner = live["metadata"]["ownerReferences"][0]
        raise PlanError(f"pod {live['metadata']['name']} is owned by {owner['kind']}/{owner['name']}: "
                        f"start dev mode on that {owner['kind'].lower()} instead")
    new = strip_server_fields(live)
    new["spec"] = dev_pod_spec(new["spec"], spec, claims, keys_secret)
    new["spec"].pop("nodeName", None)
    _mark_template(new, spec, session)
    _mark_owner(new, session, backup_secret)
    return new


def _mark_template(template: Obj, spec: DevSpec, session: Session) -> None:
    meta = template.setdefault("metadata", {})
    dev_name = spec.dev_container_name or template["spec"]["containers"][
        target_index_after_plan(template["spec"])]["name"]
    meta.setdefault("annotations", {})[names.DEV_CONTAINER] = dev_name
    meta.setdefault("labels", {})[names.SESSION] = session.id


def target_index_after_plan(pod_spec: Obj) -> int:
    """The dev container in a planned pod spec: the one running the idle command."""
    for i, c in enumerate(pod_spec.get("containers") or []):
        if c.get("command") == IDLE_COMMAND:
            return i
    raise PlanError("no dev container in pod spec")


def _mark_owner(obj: Obj, session: Session, backup_secret: str) -> None:
    annotations = obj["metadata"].setdefault("annotations", {})
    annotations[names.OWNER] = session.owner_annotation()
    annotations[names.BACKUP] = backup_secret
    annotations[names.MODE] = session.mode


# ---------------------------------------------------------------- duplicate mode


def plan_duplicate(source: Obj, spec: DevSpec, session: Session, claims: dict[str, str], keys_secret: str,
                   expires: str | None = None) -> Obj:
    """A private copy running the dev pod; its labels and selector match no Service."""
    kind, name = source["kind"], source["metadata"]["name"]
    if kind in IN_PLACE_KINDS:
        template = copy.deepcopy(source["spec"]["template"])
        template["spec"] = dev_pod_spec(template["spec"], spec, claims, keys_secret)
    else:
        template = plan_generated_deployment(source, spec, session, claims, keys_secret)["spec"]["template"]
    labels = {names.MANAGED_BY: "nhdev", names.ROLE: "duplicate", names.SESSION: session.id,
              names.DUPLICATE_OF: name, names.WORKLOAD_KIND: kind.lower()}
    template.setdefault("metadata", {})["labels"] = dict(labels)
    _mark_template(template, spec, session)
    annotations = {names.OWNER: session.owner_annotation(), names.MODE: "duplicate"}
    if expires:
        annotations[names.EXPIRES] = expires
    dup_kind = kind if kind in IN_PLACE_KINDS else "Deployment"
    copy_obj: Obj = {
        "apiVersion": "apps/v1",
        "kind": dup_kind,
        "metadata": {"name": names.duplicate_name(name, session.id),
                     "namespace": source["metadata"].get("namespace"), "labels": labels,
                     "annotations": annotations},
        "spec": {"replicas": 1, "selector": {"matchLabels": dict(labels)}, "template": template},
    }
    if dup_kind == "Deployment":
        copy_obj["spec"]["strategy"] = {"type": "Recreate"}
    else:  # StatefulSet: keep its serviceName and claim templates, prefixed so data is not shared
        copy_obj["spec"]["serviceName"] = source["spec"].get("serviceName", name)
        if source["spec"].get("volumeClaimTemplates"):
            copy_obj["spec"]["volumeClaimTemplates"] = copy.deepcopy(source["spec"]["volumeClaimTemplates"])
    return copy_obj


# ---------------------------------------------------------------- HPA


def hpa_targets(hpa: Obj, kind: str, name: str) -> bool:
    ref = hpa.get("spec", {}).get("scaleTargetRef", {})
    return bool(ref.get("kind") == kind and ref.get("name") == name)


def pinned_hpa(hpa: Obj) -> Obj:
    new = copy.deepcopy(hpa)
    new.pop("status", None)
    new["spec"]["minReplicas"] = 1
    new["spec"]["maxReplicas"] = 1
    return new


# ---------------------------------------------------------------- restoring


@dataclass(frozen=True)
class Drift:
    """A change someone else made to the workload during the session."""

    path: str
    during: Any  # the value nhdev wrote
    now: Any  # the value found at end
    kept: bool  # True: their change is kept; False: nhdev's original wins (it was a field nhdev set)

    def render(self) -> str:
        verdict = "kept" if self.kept else "overridden by the original"
        return f"{self.path}: changed during the session to {json.dumps(self.now)} ({verdict})"


def plan_restore(backup: Backup, live: Obj) -> tuple[Obj, list[Drift]]:
    """The object to write back on end, and what others changed meanwhile.

    Starts from the original. Changes made by others since nhdev wrote the object (the difference
    between ``backup.dev_applied`` and ``live``) are carried over where they touch fields nhdev did
    not set, and reported either way. The live object's metadata (resourceVersion) is kept so the
    write is a conditional update.
    """
    restored = copy.deepcopy(backup.original)
    restored["metadata"]["resourceVersion"] = live["metadata"].get("resourceVersion")
    drifts: list[Drift] = []
    if backup.dev_applied is not None:
        touched = _paths_nhdev_set(backup.original, backup.dev_applied)
        for path, during, now in _leaf_changes(strip_server_fields(backup.dev_applied),
                                               strip_server_fields(live)):
            if any(path == t or path.startswith(t + "/") or t.startswith(path + "/") for t in touched):
                drifts.append(Drift(path, during, now, kept=False))
            elif _set_path(restored, path, now):
                drifts.append(Drift(path, during, now, kept=True))
            else:
                drifts.append(Drift(path, during, now, kept=False))
    # Labels/annotations others added to the live object stay; nhdev's own go.
    return restored, drifts


def _paths_nhdev_set(original: Obj, dev: Obj) -> list[str]:
    return [p for p, _, _ in _leaf_changes(strip_server_fields(original), strip_server_fields(dev))]


_MISSING = object()


def _leaf_changes(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """(json-pointer, old, new) for every differing leaf (a missing side is None)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(a) | set(b), key=str):
            sub = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            out += _leaf_changes(a.get(key, _MISSING), b.get(key, _MISSING), sub)
        return out
    if isinstance(a, list) and isinstance(b, list):
        # Index-wise: nhdev only appends (sidecar, volumes), so shared indices keep their meaning.
        return [c for i in range(max(len(a), len(b)))
                for c in _leaf_changes(a[i] if i < len(a) else _MISSING, b[i] if i < len(b) else _MISSING,
                                       f"{path}/{i}")]
    if a == b:
        return []
    return [(path, None if a is _MISSING else a, None if b is _MISSING else b)]


def _set_path(obj: Obj, pointer: str, value: Any) -> bool:
    """Set (or delete, for None) the value at a JSON pointer; False if the parent does not exist."""
    keys = [k.replace("~1", "/").replace("~0", "~") for k in pointer.split("/")[1:]]
    node: Any = obj
    for key in keys[:-1]:
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                return False
            node = node[int(key)]
        elif isinstance(node, dict):
            node = node.setdefault(key, {})
        else:
            return False
    last = keys[-1]
    if isinstance(node, dict):
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
        return True
    if isinstance(node, list) and value is not None and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
        return True
    return False
