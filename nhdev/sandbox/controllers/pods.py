"""Reading pod state the way the controllers need it, and building pods from templates."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

from nhdev.sandbox.controllers.owners import owner_reference
from nhdev.sandbox.events import parse_timestamp, record_event
from nhdev.sandbox.store import AlreadyExistsError, NotFoundError, Store, StoreError

NODE_NAME = "nhdev-sandbox"
TERMINAL_PHASES = ("Succeeded", "Failed")
_PHASE_RANK = {"": 0, "Pending": 0, "Unknown": 1, "Running": 2}


def is_terminating(obj: dict) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def phase(pod: dict) -> str:
    return str((pod.get("status") or {}).get("phase") or "")


def is_active(pod: dict) -> bool:
    """Counts toward a controller's replicas: not being deleted and not finished."""
    return not is_terminating(pod) and phase(pod) not in TERMINAL_PHASES


def ready_condition(pod: dict) -> dict | None:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == "Ready"), None)


def is_ready(pod: dict) -> bool:
    condition = ready_condition(pod)
    return condition is not None and condition.get("status") == "True"


def is_running_and_ready(pod: dict) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def ready_since(pod: dict) -> datetime | None:
    condition = ready_condition(pod)
    if condition is None or condition.get("status") != "True":
        return None
    return parse_timestamp(condition.get("lastTransitionTime"))


def seconds_until_available(pod: dict, min_ready_seconds: int, now: datetime) -> float | None:
    """0 when available, the seconds still to wait when ready but not long enough, None when not ready."""
    if not is_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = ready_since(pod)
    if since is None:
        return 0.0
    remaining = (since + timedelta(seconds=min_ready_seconds) - now).total_seconds()
    return max(remaining, 0.0)


def is_available(pod: dict, min_ready_seconds: int, now: datetime) -> bool:
    return seconds_until_available(pod, min_ready_seconds, now) == 0.0


def next_availability_check(pods: list[dict], min_ready_seconds: int, now: datetime) -> float | None:
    """Seconds until the first ready-but-not-yet-available pod becomes available."""
    waits = [seconds_until_available(p, min_ready_seconds, now) for p in pods]
    pending = [w for w in waits if w is not None and w > 0]
    return min(pending) if pending else None


def deletion_rank(pod: dict) -> tuple:
    """Sort key putting the pods to delete first: unscheduled, pending, not ready, newest."""
    spec = pod.get("spec") or {}
    since = ready_since(pod)
    restarts = sum(int(s.get("restartCount") or 0) for s in (pod.get("status") or {}).get("containerStatuses") or [])
    created = (pod.get("metadata") or {}).get("creationTimestamp") or ""
    return (
        bool(spec.get("nodeName")),
        _PHASE_RANK.get(phase(pod), 0),
        is_ready(pod),
        # Ready for a shorter time goes first: a later timestamp sorts first once negated.
        -(since.timestamp()) if since else 0.0,
        -restarts,
        _descending(created),
    )


def _descending(text: str) -> tuple[int, ...]:
    return tuple(-ord(ch) for ch in text)


def pod_from_template(
    template: dict,
    owner: dict,
    *,
    name: str | None = None,
    generate_name: str | None = None,
    extra_labels: dict[str, str] | None = None,
) -> dict:
    template_meta = template.get("metadata") or {}
    metadata: dict = {
        "namespace": owner["metadata"]["namespace"],
        "labels": {**(template_meta.get("labels") or {}), **(extra_labels or {})},
        "ownerReferences": [owner_reference(owner)],
    }
    if template_meta.get("annotations"):
        metadata["annotations"] = dict(template_meta["annotations"])
    if template_meta.get("finalizers"):
        metadata["finalizers"] = list(template_meta["finalizers"])
    if name:
        metadata["name"] = name
    else:
        metadata["generateName"] = generate_name or f"{owner['metadata']['name']}-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": copy.deepcopy(template.get("spec") or {})}


def create_pod(store: Store, owner: dict, pod: dict, component: str, message: str | None = None) -> dict | None:
    """Create ``pod`` for ``owner`` with a SuccessfulCreate event (FailedCreate, and the error, when
    refused). None when a pod of that exact name already exists: the caller looks again later."""
    try:
        created = store.create("pods", owner["metadata"]["namespace"], pod)
    except AlreadyExistsError:
        if pod["metadata"].get("name"):
            return None
        raise
    except StoreError as exc:
        record_event(store, owner, "FailedCreate", f"Error creating: {exc}", type="Warning", component=component)
        raise
    record_event(store, owner, "SuccessfulCreate", message or f"Created pod: {created['metadata']['name']}",
                 component=component)
    return created


def delete_pod(store: Store, owner: dict, name: str, component: str, message: str | None = None) -> None:
    """Delete ``owner``'s pod ``name`` (gracefully, when it runs) with a SuccessfulDelete event."""
    try:
        store.delete("pods", owner["metadata"]["namespace"], name)
    except NotFoundError:
        return
    record_event(store, owner, "SuccessfulDelete", message or f"Deleted pod: {name}", component=component)
