"""Pod status as the kubelet computes it: container states, phase, conditions, scheduling fit.

Pure functions and small records, kept apart from the kubelet's process handling so that the
rules (which the real kubelet and scheduler define) can be read and tested on their own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from nhdev.sandbox.runtime import ContainerConfig, ContainerProcess

DEFAULT_NODE_LABELS = {
    "kubernetes.io/hostname": "nhdev-sandbox",
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
}
_NOT_HELPFUL = " preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."


def timestamp(epoch: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if epoch is None else epoch))


@dataclass
class ContainerRecord:
    """The kubelet's view of one container of a pod (init or app) across its restarts."""

    name: str
    image: str
    init: bool = False
    restart_count: int = 0
    state: dict = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    container_id: str | None = None
    process: ContainerProcess | None = None
    config: ContainerConfig | None = None
    ever_ran: bool = False
    replace: bool = False  # its spec changed: restart it whatever the restart policy

    @property
    def running(self) -> bool:
        return "running" in self.state

    def resume_from(self, stored: dict) -> None:
        """Continues the counts of a status written by an earlier server run."""
        state, last = stored.get("state") or {}, stored.get("lastState") or {}
        if not (state.get("running") or state.get("terminated") or last.get("terminated")):
            return
        # The next start counts one more restart: its instance gets a log file of its own.
        self.restart_count = int(stored.get("restartCount") or 0)
        self.ever_ran = True
        if "running" in state:
            self.last_state = {"terminated": {
                "exitCode": 255, "reason": "Unknown", "message": "the sandbox server stopped",
                "startedAt": state["running"].get("startedAt"), "finishedAt": timestamp(),
                "containerID": stored.get("containerID")}}
        else:
            self.last_state = {"terminated": state["terminated"]} if "terminated" in state else dict(last)

    def status(self) -> dict:
        status: dict[str, Any] = {
            "name": self.name, "image": self.image, "imageID": self.image, "ready": self.ready,
            "restartCount": self.restart_count, "started": self.started, "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


def terminated_state(exit_code: int, started_at: str | None, container_id: str | None,
                     reason: str | None = None, message: str | None = None) -> dict:
    terminated: dict[str, Any] = {"exitCode": exit_code,
                                  "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                                  "startedAt": started_at, "finishedAt": timestamp()}
    if message:
        terminated["message"] = message
    if container_id:
        terminated["containerID"] = container_id
    return {"terminated": terminated}


def pod_phase(restart_policy: str, init: list[ContainerRecord], app: list[ContainerRecord],
              initialized: bool, init_failed: bool) -> str:
    """The kubelet's getPhase."""
    if init_failed:
        return "Failed"
    if not initialized:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for record in app:
        if record.running:
            running += 1
        elif "terminated" in record.state:
            stopped += 1
            succeeded += record.state["terminated"]["exitCode"] == 0
        elif record.last_state.get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Failed" if restart_policy == "Never" else "Running"


class PodConditions:
    """Pod conditions keeping their lastTransitionTime until their status actually changes."""

    ORDER = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")

    def __init__(self, stored: list[dict] | None = None) -> None:
        self._conditions: dict[str, dict] = {c["type"]: dict(c) for c in stored or [] if "type" in c}

    def set(self, type_: str, ok: bool, reason: str | None = None, message: str | None = None) -> None:
        status = "True" if ok else "False"
        previous = self._conditions.get(type_)
        changed_at = previous["lastTransitionTime"] if previous and previous["status"] == status else timestamp()
        condition = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": changed_at}
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        self._conditions[type_] = condition

    def is_true(self, type_: str) -> bool:
        return (self._conditions.get(type_) or {}).get("status") == "True"

    def to_list(self) -> list[dict]:
        return [self._conditions[t] for t in self.ORDER if t in self._conditions]


def _expression_matches(expression: dict, values: dict[str, str]) -> bool:
    key, operator, wanted = expression["key"], expression["operator"], expression.get("values") or []
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and values[key].isdigit() and wanted and str(wanted[0]).isdigit():
        return int(values[key]) > int(wanted[0]) if operator == "Gt" else int(values[key]) < int(wanted[0])
    return False


def _affinity_matches(spec: dict, node_name: str, labels: dict[str, str]) -> bool:
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if not terms:
        return True
    fields = {"metadata.name": node_name}
    return any(
        all(_expression_matches(e, labels) for e in term.get("matchExpressions") or [])
        and all(_expression_matches(e, fields) for e in term.get("matchFields") or [])
        for term in terms)


def schedule_problem(spec: dict, node_name: str, labels: dict[str, str]) -> str | None:
    """Why the pod does not fit the node (the scheduler's FailedScheduling message), or None."""
    bound_to = spec.get("nodeName")
    if bound_to and bound_to != node_name:
        return f"0/1 nodes are available: 1 node(s) didn't match the requested node name ({bound_to})."
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()) or not _affinity_matches(spec, node_name, labels):
        return "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector." + _NOT_HELPFUL
    return None


def unbound_claims_message(claims: list[str]) -> str:
    return ("0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims "
            f"({', '.join(claims)})." + _NOT_HELPFUL)
