"""The dev-mode engine: start, end and reset, with every effect recorded on the cluster first.

Order of a replace start (design §3): lock (owner annotation, written with the object's
resourceVersion) -> backup Secret -> keys Secret and cache PVCs -> HPAs pinned -> workload
written -> wait for the dev pod. ``end`` and ``reset`` need nothing but the cluster: the backup
Secret says what to restore, the labels say what to delete. ``NHDEV_FAULT=<step>`` kills the
process with SIGKILL right after that step, so tests can prove every crash point recoverable.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nhdev.cluster.rest import Kind, KubeRest, Obj, kind_named
from nhdev.cluster.waiting import PodProgress, wait_for_ready_pod
from nhdev.devmode import names
from nhdev.devmode.identity import now_rfc3339
from nhdev.devmode.keys import SessionKeys, generate_session_keys
from nhdev.devmode.plan import (
    GENERATED_KINDS,
    IN_PLACE_KINDS,
    Backup,
    DevSpec,
    Drift,
    PlanError,
    Session,
    cache_claim,
    cache_claim_selector,
    get_path,
    hpa_targets,
    pinned_hpa,
    plan_duplicate,
    plan_generated_deployment,
    plan_neutralise,
    plan_replace_in_place,
    plan_replace_pod,
    plan_restore,
    pod_template_path,
    strip_server_fields,
    target_container,
)
from nhdev.errors import ClusterError, Conflict, NotFound, UsageError, UserError

SECRETS, PVCS, HPAS = kind_named("secret"), kind_named("pvc"), kind_named("hpa")
DEPLOYMENTS, PODS = kind_named("deployment"), kind_named("pod")
DEV_KINDS = (*IN_PLACE_KINDS, *GENERATED_KINDS, "Pod")
FAULT_STEPS = ("lock", "backup", "keys", "volumes", "hpa", "workload", "recorded")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class WorkloadRef:
    kind: Kind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.kind.lower()}/{self.name}"


def parse_workload_ref(text: str | None, *, default_kind: str | None = None, default_name: str | None = None
                       ) -> WorkloadRef:
    """``NAME`` or ``KIND/NAME`` as kubectl spells them; defaults from the dev config."""
    kind_text, _, name = (text or "").rpartition("/")
    kind_text = kind_text or default_kind or "deployment"
    name = name or default_name or ""
    if not name:
        raise UsageError("which workload? give WORKLOAD (NAME or KIND/NAME) or set `name` in the dev config")
    try:
        kind = kind_named(kind_text)
    except KeyError:
        raise UsageError(f"unknown workload kind {kind_text!r}",
                         hint="kinds: deployment, statefulset, daemonset, job, cronjob, pod") from None
    if kind.kind not in DEV_KINDS:
        raise UsageError(f"{kind.kind} cannot enter dev mode", hint=f"kinds: {', '.join(DEV_KINDS)}")
    return WorkloadRef(kind, name)


@dataclass
class StartResult:
    workload: str
    namespace: str
    mode: str
    session: str
    identity: str
    pod: str
    dev_container: str
    target: str  # the object running the dev pod: the workload itself, a generated or duplicate one
    seconds: float
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "namespace": self.namespace, "mode": self.mode,
                "session": self.session, "identity": self.identity, "pod": self.pod,
                "devContainer": self.dev_container, "target": self.target, "seconds": self.seconds,
                "resumed": self.resumed}


@dataclass
class EndResult:
    workload: str
    namespace: str
    mode: str
    restored: bool
    deleted: list[str] = field(default_factory=list)
    drifts: list[Drift] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "namespace": self.namespace, "mode": self.mode,
                "restored": self.restored, "deleted": self.deleted,
                "drifts": [d.__dict__ for d in self.drifts]}


def _fault(step: str) -> None:
    if os.environ.get("NHDEV_FAULT") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def owner_of(obj: Obj) -> dict[str, Any] | None:
    raw = (obj.get("metadata", {}).get("annotations") or {}).get(names.OWNER)
    if not raw:
        return None
    try:
        owner: dict[str, Any] = json.loads(raw)
        return owner
    except ValueError:
        return {"identity": raw}


class DevModeEngine:
    """Dev mode for one namespace, as one identity."""

    def __init__(self, kube: KubeRest, namespace: str, identity: str, *, progress: Progress = lambda _: None,
                 state_dir: Path | None = None) -> None:
        self.kube = kube
        self.namespace = namespace
        self.identity = identity
        self.progress = progress
        self.state_dir = state_dir or Path.home() / ".nhdev" / "sessions"

    # ------------------------------------------------------------------ start

    def start(self, ref: WorkloadRef, spec: DevSpec, *, mode: str, session_id: str, timeout: float,
              ttl_seconds: int | None = None) -> StartResult:
        began = time.monotonic()
        live = self.kube.get(ref.kind, self.namespace, ref.name)
        session = Session(id=session_id, identity=self.identity, started_at=now_rfc3339(), mode=mode)
        if mode != "duplicate":
            resumed = self._resume(ref, live, timeout, began)
            if resumed is not None:
                return resumed
        # Before anything is written: a refusal or a typo in the container name changes nothing.
        if mode != "duplicate":
            self._refuse_half_patched(ref, live)
        self._check_target(ref, self._duplicate_source(ref, live) if mode == "duplicate" else live, spec)
        try:
            if mode == "duplicate":
                target, selector, dev_name = self._start_duplicate(ref, live, spec, session, ttl_seconds)
            else:
                target, selector, dev_name = self._start_replace(ref, live, spec, session)
            pod = self._wait(selector, timeout)
        except UserError as err:
            self._roll_back(ref, session, mode, err)
            raise
        return StartResult(workload=str(ref), namespace=self.namespace, mode=mode, session=session.id,
                           identity=self.identity, pod=pod["metadata"]["name"], dev_container=dev_name,
                           target=target, seconds=round(time.monotonic() - began, 3))

    def _roll_back(self, ref: WorkloadRef, session: Session, mode: str, err: UserError) -> None:
        """A failed start leaves nothing behind: on a shared cluster a broken dev pod is an outage."""
        if mode != "duplicate":
            live = self.kube.try_get(ref.kind, self.namespace, ref.name)
            held_by = (owner_of(live) or {}).get("session") if live else None
            if held_by != session.id:
                return  # the lock is not ours (never taken, or someone else's): nothing of ours to undo
        self.progress(f"dev mode could not start; undoing what this start changed on {ref}")
        try:
            if mode == "duplicate":
                self._end_duplicates(ref, self._my_duplicates(ref, session.id))
                self._delete_labelled(SECRETS, f"{names.ROLE}=keys,{names.SESSION}={session.id}",
                                      EndResult(str(ref), self.namespace, mode, False))
            else:
                self.reset(ref)
        except UserError as undo:
            err.hint = f"{err.hint + '; ' if err.hint else ''}undo failed too ({undo.message}): " \
                       f"run `nhdev dev reset {ref}`"

    def _resume(self, ref: WorkloadRef, live: Obj, timeout: float, began: float) -> StartResult | None:
        owner = owner_of(live)
        if owner is None:
            return None
        if owner.get("identity") != self.identity:
            raise Conflict(f"{ref} in {self.namespace} is in dev mode by {owner.get('identity')} "
                           f"since {owner.get('since')}",
                           hint="use --mode duplicate for your own copy, or `nhdev dev reset --force` "
                                "if that session is abandoned")
        session = str(owner.get("session", ""))
        backup = self._read_backup(ref)
        if backup is None or backup.dev_applied is None:
            raise Conflict(f"{ref} was left half-started by session {session}",
                           hint=f"run `nhdev dev reset {ref}` and start again")
        self.progress(f"{ref} is already in dev mode (session {session}); waiting for its pod")
        target = self._dev_target_name(ref, backup)
        pod = self._wait(f"{names.SESSION}={session}", timeout)
        return StartResult(workload=str(ref), namespace=self.namespace, mode=owner.get("mode", "replace"),
                           session=session, identity=self.identity, pod=pod["metadata"]["name"],
                           dev_container=_dev_container(pod), target=target,
                           seconds=round(time.monotonic() - began, 3), resumed=True)

    def _start_replace(self, ref: WorkloadRef, live: Obj, spec: DevSpec, session: Session
                       ) -> tuple[str, str, str]:
        backup_name = names.backup_secret_name(ref.kind.kind, ref.name)
        self.progress(f"taking the dev-mode lock on {ref}")
        locked = self._lock(ref, live, session, backup_name)
        _fault("lock")
        hpas = [h for h in self.kube.list(HPAS, self.namespace) if hpa_targets(h, ref.kind.kind, ref.name)]
        backup = Backup(kind=ref.kind.kind, name=ref.name, original=strip_server_fields(live),
                        hpas=tuple({"name": h["metadata"]["name"], "minReplicas": h["spec"].get("minReplicas"),
                                    "maxReplicas": h["spec"]["maxReplicas"]} for h in hpas),
                        session=session.id, identity=session.identity)
        self.progress(f"saving {ref} in secret/{backup_name}")
        self._write_backup(backup)
        _fault("backup")
        keys_name = self._create_keys(ref, session)
        _fault("keys")
        claims = self._ensure_cache_claims(ref.kind.kind, ref.name, spec)
        _fault("volumes")
        for hpa in hpas:
            self.progress(f"pinning hpa/{hpa['metadata']['name']} to 1 replica")
            self._update(HPAS, hpa, pinned_hpa)
        _fault("hpa")
        applied, target = self._write_dev_workload(ref, locked, spec, session, claims, keys_name, backup_name)
        applied = self._apply_patches(target, spec, applied)
        _fault("workload")
        self._write_backup(Backup(**{**backup.__dict__, "dev_applied": strip_server_fields(applied),
                                     "created": (target,) if target != str(ref) else ()}))
        _fault("recorded")
        dev_name = spec.dev_container_name or spec.container or _first_container(live, ref)
        return target, f"{names.SESSION}={session.id}", dev_name

    def _apply_patches(self, target: str, spec: DevSpec, applied: Obj) -> Obj:
        kind_text, _, name = target.partition("/")
        for number, patch in enumerate(spec.patches, 1):
            self.progress(f"applying patch {number} of the dev config ({patch.patch_type}) to {target}")
            try:
                applied = self.kube.patch(kind_named(kind_text), self.namespace, name, patch.body, patch.patch_type)
            except ClusterError as err:
                raise ClusterError(f"patch {number} of the dev config failed on {target}: {err.message}") from None
        return applied

    def _refuse_half_patched(self, ref: WorkloadRef, live: Obj) -> None:
        text = json.dumps(live.get("spec", {}))
        if names.SIDECAR_CONTAINER in text or self._read_backup(ref) is not None:
            raise Conflict(f"{ref} in {self.namespace} still carries changes from an earlier dev session",
                           hint=f"run `nhdev dev reset {ref}` first")

    def _duplicate_source(self, ref: WorkloadRef, live: Obj) -> Obj:
        """What a duplicate copies: the workload as it is, not its dev-mode form."""
        backup = self._read_backup(ref)
        if backup is None or not owner_of(live):
            return live
        return {**backup.original, "metadata": {**backup.original["metadata"], "namespace": self.namespace}}

    def _check_target(self, ref: WorkloadRef, source: Obj, spec: DevSpec) -> None:
        """The container to develop exists and is not already a dev container."""
        try:
            target_container(get_path(source, (*pod_template_path(ref.kind.kind), "spec")), spec.container)
        except PlanError as err:
            raise UsageError(f"{ref}: {err}") from None

    def _lock(self, ref: WorkloadRef, live: Obj, session: Session, backup_name: str) -> Obj:
        def with_owner(current: Obj) -> Obj:
            owner = owner_of(current)
            if owner is not None:
                raise Conflict(f"{ref} in {self.namespace} was just taken by {owner.get('identity')}; "
                               "try again later or use --mode duplicate")
            annotations = current["metadata"].setdefault("annotations", {})
            annotations.update({names.OWNER: session.owner_annotation(), names.BACKUP: backup_name,
                                names.MODE: session.mode})
            return current

        return self._update(ref.kind, live, with_owner)

    def _update(self, kind: Kind, current: Obj, change: Callable[[Obj], Obj]) -> Obj:
        """Write ``change(current)`` conditionally; on a conflict re-read and re-apply.

        Controllers update status (and with it the resourceVersion) at any time, so a conflict
        usually means nothing; ``change`` decides from the fresh object whether it still applies.
        """
        for _ in range(10):
            try:
                return self.kube.replace(change(current))
            except Conflict:
                current = self.kube.get(kind, self.namespace, current["metadata"]["name"])
        raise Conflict(f"{kind.kind.lower()}/{current['metadata']['name']} in {self.namespace} keeps changing; "
                       "try again")

    def _held_by(self, ref: WorkloadRef, session: Session) -> Callable[[Obj], None]:
        def check(current: Obj) -> None:
            owner = owner_of(current) or {}
            if owner.get("session") != session.id:
                raise Conflict(f"{ref} in {self.namespace} is no longer held by this session "
                               f"(owner now: {owner.get('identity', 'nobody')})")
        return check

    def _write_dev_workload(self, ref: WorkloadRef, locked: Obj, spec: DevSpec, session: Session,
                            claims: dict[str, str], keys_name: str, backup_name: str) -> tuple[Obj, str]:
        kind = ref.kind.kind
        try:
            held = self._held_by(ref, session)

            def to_dev(current: Obj) -> Obj:
                held(current)
                return plan_replace_in_place(current, spec, session, claims, keys_name, backup_name)

            def to_neutral(current: Obj) -> Obj:
                held(current)
                return plan_neutralise(current, session, backup_name)

            if kind in IN_PLACE_KINDS:
                self.progress(f"switching {ref} to the dev image")
                return self._update(ref.kind, locked, to_dev), str(ref)
            if kind in GENERATED_KINDS:
                gen = plan_generated_deployment(locked, spec, session, claims, keys_name)
                self.progress(f"creating deployment/{gen['metadata']['name']} for the dev pod")
                self._create_or_replace(gen)
                self.progress(f"neutralising {ref} while it is in dev mode")
                return self._update(ref.kind, locked, to_neutral), f"deployment/{gen['metadata']['name']}"
            dev_pod = plan_replace_pod(locked, spec, session, claims, keys_name, backup_name)
            self.progress(f"re-creating {ref} with the dev image")
            self.kube.delete(PODS, self.namespace, ref.name, grace_seconds=5)
            self._wait_gone(PODS, ref.name)
            return self.kube.create(dev_pod), str(ref)
        except PlanError as err:
            raise UsageError(f"{ref}: {err}") from None

    def _start_duplicate(self, ref: WorkloadRef, live: Obj, spec: DevSpec, session: Session,
                         ttl_seconds: int | None) -> tuple[str, str, str]:
        source = self._duplicate_source(ref, live)
        keys_name = self._create_keys(ref, session)
        owner_key = f"{ref.name}-{names.short_hash(self.identity, 6)}"
        claims = self._ensure_cache_claims(ref.kind.kind, owner_key, spec)
        expires = None
        if ttl_seconds:
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + ttl_seconds))
        try:
            dup = plan_duplicate(source, spec, session, claims, keys_name, expires)
        except PlanError as err:
            raise UsageError(f"{ref}: {err}") from None
        dup["metadata"]["labels"][names.WORKLOAD_NAME] = ref.name
        self.progress(f"creating {dup['kind'].lower()}/{dup['metadata']['name']}, a private copy of {ref}")
        self.kube.create(dup)
        dev_name = spec.dev_container_name or spec.container or _first_container(live, ref)
        return f"{dup['kind'].lower()}/{dup['metadata']['name']}", f"{names.SESSION}={session.id}", dev_name

    # ------------------------------------------------------------------ pieces

    def _create_keys(self, ref: WorkloadRef, session: Session) -> str:
        keys = generate_session_keys()
        name = names.keys_secret_name(ref.name, session.id)
        self.kube.create(keys.secret(name, self.namespace, session.id, ref.name))
        self._save_client_key(ref, session, keys)
        return name

    def _save_client_key(self, ref: WorkloadRef, session: Session, keys: SessionKeys) -> None:
        where = self.state_dir / session.id
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = where / "client_key"
        key.write_text(keys.client_private)
        key.chmod(0o600)
        (where / "host_key.pub").write_text(keys.host_public + "\n")
        (where / "session.json").write_text(json.dumps({"workload": str(ref), "namespace": self.namespace,
                                                         "session": session.id, "mode": session.mode}))

    def _ensure_cache_claims(self, kind: str, owner: str, spec: DevSpec) -> dict[str, str]:
        claims: dict[str, str] = {}
        for cache in spec.cache_dirs:
            found = self.kube.list(PVCS, self.namespace, label_selector=cache_claim_selector(kind, owner, cache.path))
            if found:
                claims[cache.path] = found[0]["metadata"]["name"]
                self.progress(f"reusing pvc/{claims[cache.path]} for {cache.path}")
                continue
            claim = cache_claim(self.namespace, kind, owner, cache, spec.storage_class)
            self.progress(f"creating pvc/{claim['metadata']['name']} ({cache.capacity}) for {cache.path}")
            self._create_or_replace(claim, replace=False)
            claims[cache.path] = claim["metadata"]["name"]
        return claims

    def _create_or_replace(self, obj: Obj, *, replace: bool = True) -> Obj:
        try:
            return self.kube.create(obj)
        except Conflict:
            if not replace:
                return obj
            current = self.kube.get(kind_named(obj["kind"]), self.namespace, obj["metadata"]["name"])
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return self.kube.replace(obj)

    def _write_backup(self, backup: Backup) -> None:
        self._create_or_replace(backup.to_secret(self.namespace))

    def _read_backup(self, ref: WorkloadRef) -> Backup | None:
        secret = self.kube.try_get(SECRETS, self.namespace, names.backup_secret_name(ref.kind.kind, ref.name))
        if secret is None:
            return None
        data = secret.get("data", {}).get("backup.json")
        if data is None:
            return None
        return Backup.from_secret_data(base64.b64decode(data).decode())

    def _dev_target_name(self, ref: WorkloadRef, backup: Backup) -> str:
        return backup.created[0] if backup.created else str(ref)

    def _wait(self, selector: str, timeout: float) -> Obj:
        def report(p: PodProgress) -> None:
            self.progress(p.render())

        return wait_for_ready_pod(self.kube, self.namespace, selector, timeout=timeout, on_progress=report)

    def _wait_gone(self, kind: Kind, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.kube.try_get(kind, self.namespace, name) is not None:
            if time.monotonic() > deadline:
                raise ClusterError(f"{kind.kind.lower()}/{name} in {self.namespace} was not deleted in {timeout}s")
            time.sleep(0.1)

    # ------------------------------------------------------------------ end / reset

    def end(self, ref: WorkloadRef, *, force: bool = False, session_id: str | None = None) -> EndResult:
        """Undo dev mode. For a duplicate, ``session_id`` (or this identity's only copy) picks which."""
        live = self.kube.try_get(ref.kind, self.namespace, ref.name)
        mine = self._my_duplicates(ref, session_id)
        owner = owner_of(live) if live else None
        if mine and (owner is None or owner.get("identity") != self.identity or session_id):
            return self._end_duplicates(ref, mine)
        if live is None:
            raise NotFound(f"{ref} not found in namespace {self.namespace}")
        if owner is None:
            raise UsageError(f"{ref} in {self.namespace} is not in dev mode",
                             hint="`nhdev dev list` shows what is")
        if owner.get("identity") != self.identity and not force:
            raise Conflict(f"{ref} is in dev mode by {owner.get('identity')}, not by you ({self.identity})",
                           hint="add --force to end someone else's session")
        return self.reset(ref)

    def reset(self, ref: WorkloadRef) -> EndResult:
        """Undo whatever nhdev left on ``ref``, however far a start got, from the cluster alone."""
        backup = self._read_backup(ref)
        live = self.kube.try_get(ref.kind, self.namespace, ref.name)
        owner = (owner_of(live) if live else None) or {}
        session = backup.session if backup else str(owner.get("session", ""))
        result = EndResult(workload=str(ref), namespace=self.namespace,
                           mode=backup.mode if backup else "replace", restored=False)
        if backup is not None:
            result.drifts = self._restore(ref, backup, result)
            self._unpin_hpas(backup)
        else:
            self._drop_marks(ref, result)
        if session:  # only this session's keys: duplicates of the same workload keep theirs
            self._delete_labelled(SECRETS, f"{names.ROLE}=keys,{names.SESSION}={session}", result)
        if backup is not None:
            self.kube.delete(SECRETS, self.namespace, names.backup_secret_name(ref.kind.kind, ref.name))
            result.deleted.append(f"secret/{names.backup_secret_name(ref.kind.kind, ref.name)}")
        return result

    def _restore(self, ref: WorkloadRef, backup: Backup, result: EndResult) -> list[Drift]:
        kind = ref.kind.kind
        for created in backup.created or (
                (f"deployment/{names.generated_name(ref.name)}",) if kind in GENERATED_KINDS else ()):
            k, _, n = created.partition("/")
            if self.kube.delete(kind_named(k), self.namespace, n) is not None:
                result.deleted.append(created)
        if kind == "Pod":
            self.progress(f"re-creating {ref} from its backup")
            self.kube.delete(PODS, self.namespace, ref.name, grace_seconds=5)
            self._wait_gone(PODS, ref.name)
            original = {**backup.original, "metadata": {**backup.original["metadata"], "namespace": self.namespace}}
            # The scheduler's binding, not the user's intent: let the scheduler place the pod again.
            original["spec"] = {k: v for k, v in original["spec"].items() if k != "nodeName"}
            self.kube.create(original)
            result.restored = True
            return []
        for _ in range(5):  # someone may write between our read and our write: re-plan on conflict
            live = self.kube.try_get(ref.kind, self.namespace, ref.name)
            if live is None:
                self.progress(f"{ref} is gone; re-creating it from its backup")
                self.kube.create({**backup.original,
                                  "metadata": {**backup.original["metadata"], "namespace": self.namespace}})
                result.restored = True
                return []
            restored, drifts = plan_restore(backup, live)
            restored["metadata"]["namespace"] = self.namespace
            self.progress(f"restoring {ref} from its backup")
            try:
                self.kube.replace(restored)
            except Conflict:
                continue
            result.restored = True
            return drifts
        raise Conflict(f"{ref} kept changing while being restored; run `nhdev dev reset {ref}` again")

    def _unpin_hpas(self, backup: Backup) -> None:
        for saved in backup.hpas:
            hpa = self.kube.try_get(HPAS, self.namespace, saved["name"])
            if hpa is None:
                continue

            def restored(current: Obj, saved: dict[str, Any] = saved) -> Obj:
                current.pop("status", None)
                if saved.get("minReplicas") is None:
                    current["spec"].pop("minReplicas", None)
                else:
                    current["spec"]["minReplicas"] = saved["minReplicas"]
                current["spec"]["maxReplicas"] = saved["maxReplicas"]
                return current

            self.progress(f"restoring hpa/{saved['name']}")
            self._update(HPAS, hpa, restored)

    def _drop_marks(self, ref: WorkloadRef, result: EndResult) -> None:
        """No backup: a start that died before saving one changed nothing but the lock annotations."""
        live = self.kube.try_get(ref.kind, self.namespace, ref.name)
        if live is None:
            return
        annotations = live["metadata"].get("annotations") or {}
        ours = [k for k in annotations if k.startswith(names.PREFIX)]
        if not ours:
            return
        if names.SIDECAR_CONTAINER in json.dumps(live.get("spec", {})):
            raise ClusterError(f"{ref} is in dev form but its backup secret is gone; restore it from your "
                               "manifests (kubectl apply) and run `nhdev dev reset` again")

        def unmarked(current: Obj) -> Obj:
            marks = current["metadata"].get("annotations") or {}
            for key in [k for k in marks if k.startswith(names.PREFIX)]:
                del marks[key]
            return current

        self._update(ref.kind, live, unmarked)
        result.restored = True

    def _delete_labelled(self, kind: Kind, selector: str, result: EndResult) -> None:
        for obj in self.kube.list(kind, self.namespace, label_selector=f"{names.MANAGED_BY}=nhdev,{selector}"):
            self.kube.delete(kind, self.namespace, obj["metadata"]["name"])
            result.deleted.append(f"{kind.kind.lower()}/{obj['metadata']['name']}")

    def _my_duplicates(self, ref: WorkloadRef, session_id: str | None) -> list[Obj]:
        found = []
        for kind in (DEPLOYMENTS, kind_named("statefulset")):
            selector = f"{names.ROLE}=duplicate,{names.DUPLICATE_OF}={ref.name}"
            if session_id:
                selector += f",{names.SESSION}={session_id}"
            for obj in self.kube.list(kind, self.namespace, label_selector=selector):
                owner = owner_of(obj) or {}
                if session_id or owner.get("identity") == self.identity:
                    found.append(obj)
        return found

    def _end_duplicates(self, ref: WorkloadRef, copies: list[Obj]) -> EndResult:
        result = EndResult(workload=str(ref), namespace=self.namespace, mode="duplicate", restored=True)
        for obj in copies:
            session = obj["metadata"]["labels"].get(names.SESSION, "")
            self.progress(f"deleting {obj['kind'].lower()}/{obj['metadata']['name']}")
            self.kube.delete(kind_named(obj["kind"]), self.namespace, obj["metadata"]["name"])
            result.deleted.append(f"{obj['kind'].lower()}/{obj['metadata']['name']}")
            self._delete_labelled(SECRETS, f"{names.ROLE}=keys,{names.SESSION}={session}", result)
        return result


def _first_container(live: Obj, ref: WorkloadRef) -> str:
    from nhdev.devmode.plan import get_path, pod_template_path

    template = get_path(live, pod_template_path(ref.kind.kind))
    spec = template["spec"] if "spec" in template and ref.kind.kind != "Pod" else live["spec"]
    return str(spec["containers"][0]["name"])


def _dev_container(pod: Obj) -> str:
    return str((pod["metadata"].get("annotations") or {}).get(names.DEV_CONTAINER, ""))
