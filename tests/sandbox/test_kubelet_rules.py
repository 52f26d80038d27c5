"""The kubelet's rules on their own: expansion, phase, back-off, scheduling fit, log files."""

from __future__ import annotations

from pathlib import Path

import pytest

from nhdev.sandbox.container_config import NoEntrypoint, command_line, expand, quantity
from nhdev.sandbox.kubelet import BACKOFF_CAP, Backoff
from nhdev.sandbox.pod_status import DEFAULT_NODE_LABELS, ContainerRecord, pod_phase, schedule_problem
from nhdev.sandbox.podlogs import ContainerLogWriter, LogOptions, read_entries, render


@pytest.mark.parametrize(("text", "expected"), [
    ("$(A)-$(B)", "1-$(B)"), ("$$(A)", "$(A)"), ("$$", "$"), ("$A $(A", "$A $(A"), ("x$(A)y", "x1y"),
])
def test_expansion(text: str, expected: str) -> None:
    assert expand(text, {"A": "1"}) == expected


def test_command_semantics() -> None:
    assert command_line({"command": ["sh", "-c"], "args": ["echo $(X)"]}, {"X": "y"}) == ["sh", "-c", "echo y"]
    assert command_line({"args": ["echo", "hi"]}, {}) == ["echo", "hi"]
    with pytest.raises(NoEntrypoint, match="set command"):
        command_line({"image": "python"}, {})


def test_quantities() -> None:
    assert quantity("500m") == 0.5 and quantity("1Gi") == 1024**3 and quantity(2) == 2


def _record(state: dict, last: dict | None = None) -> ContainerRecord:
    return ContainerRecord("c", "busybox", state=state, last_state=last or {})


def test_phases() -> None:
    running, ok, failed = {"running": {}}, {"terminated": {"exitCode": 0}}, {"terminated": {"exitCode": 1}}
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    assert pod_phase("Always", [], [_record(running)], True, False) == "Running"
    assert pod_phase("Never", [], [_record(ok), _record(failed)], True, False) == "Failed"
    assert pod_phase("OnFailure", [], [_record(ok)], True, False) == "Succeeded"
    assert pod_phase("OnFailure", [], [_record(failed)], True, False) == "Running"
    assert pod_phase("Always", [], [_record(waiting)], True, False) == "Pending"
    assert pod_phase("Always", [], [_record({"waiting": {"reason": "CrashLoopBackOff"}}, failed)], True,
                     False) == "Running"
    assert pod_phase("Never", [], [_record(running)], False, False) == "Pending"
    assert pod_phase("Never", [], [_record(waiting)], False, True) == "Failed"


def test_backoff_doubles_from_the_second_restart_and_caps() -> None:
    backoff = Backoff(10)
    assert [backoff.after_run(1) for _ in range(8)] == [0, 10, 20, 40, 80, 160, BACKOFF_CAP, BACKOFF_CAP]
    assert backoff.after_run(3600) == 0


def test_scheduling_fit() -> None:
    labels = dict(DEFAULT_NODE_LABELS)
    assert schedule_problem({}, "nhdev-sandbox", labels) is None
    assert schedule_problem({"nodeSelector": {"kubernetes.io/arch": "amd64"}}, "nhdev-sandbox", labels) is None
    assert "node affinity/selector" in (schedule_problem({"nodeSelector": {"x": "y"}}, "nhdev-sandbox", labels) or "")
    assert "node name" in (schedule_problem({"nodeName": "other"}, "nhdev-sandbox", labels) or "")
    affinity = {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "gpu", "operator": "Exists"}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["nhdev-sandbox"]}]}]}}}}
    assert schedule_problem(affinity, "nhdev-sandbox", labels) is None


def test_log_files_keep_streams_fragments_and_tail(tmp_path: Path) -> None:
    writer = ContainerLogWriter(tmp_path / "c" / "0.log")
    writer.write("stdout", b"one\ntw")
    writer.write("stderr", b"err\n")
    writer.write("stdout", b"o\nthree")
    writer.close()
    entries = read_entries(writer.path)
    assert [(e.stream, e.text, e.complete) for e in entries] == [
        ("stdout", b"one", True), ("stderr", b"err", True), ("stdout", b"two", True), ("stdout", b"three", False)]
    assert render(entries, LogOptions()) == b"one\nerr\ntwo\nthree"
    assert render(entries, LogOptions(tail_lines=2)) == b"two\nthree"
    assert render(entries, LogOptions(limit_bytes=5)) == b"one\ne"
    assert render(entries, LogOptions(since_seconds=4e9)) == b""
    stamped = render(entries, LogOptions(timestamps=True, tail_lines=1)).decode()
    assert stamped.endswith("Z three") and stamped[:4].isdigit()
