"""record_event(): core/v1 Events, deduplicated, never raising."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nhdev.sandbox import events
from nhdev.sandbox.events import record_event
from nhdev.sandbox.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


def a_pod(store: Store) -> dict:
    return store.create("pods", "default", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
                                            "spec": {"containers": [{"name": "main", "image": "app:v1"}]}})


def test_event_describes_the_involved_object(store: Store) -> None:
    pod = a_pod(store)
    record_event(store, pod, "Pulled", "Successfully pulled image", component="kubelet")
    [event] = store.list("events", "default")[0]
    assert re.fullmatch(r"web\.[0-9a-f]{16}", event["metadata"]["name"])
    assert event["involvedObject"] == {
        "apiVersion": "v1", "kind": "Pod", "namespace": "default", "name": "web",
        "uid": pod["metadata"]["uid"], "resourceVersion": pod["metadata"]["resourceVersion"],
    }
    assert (event["reason"], event["message"], event["type"], event["count"]) == (
        "Pulled", "Successfully pulled image", "Normal", 1)
    assert event["source"]["component"] == "kubelet"
    assert event["firstTimestamp"] == event["lastTimestamp"]


def test_identical_event_bumps_the_count(store: Store) -> None:
    pod = a_pod(store)
    for _ in range(3):
        record_event(store, pod, "BackOff", "Back-off restarting failed container", type="Warning")
    record_event(store, pod, "BackOff", "a different message", type="Warning")
    counts = sorted(e["count"] for e in store.list("events", "default")[0])
    assert counts == [1, 3]


def test_counting_survives_a_restart_of_the_process(tmp_path: Path) -> None:
    first = Store(tmp_path)
    pod = a_pod(first)
    record_event(first, pod, "Started", "Started container main")
    first.close()
    second = Store(tmp_path)
    record_event(second, pod, "Started", "Started container main")
    [event] = second.list("events", "default")[0]
    assert event["count"] == 2


def test_cluster_scoped_objects_get_events_in_default(store: Store) -> None:
    node = store.get("nodes", None, "nhdev-sandbox")
    record_event(store, node, "NodeReady", "Node is ready")
    [event] = store.list("events", "default")[0]
    assert "namespace" not in event["involvedObject"]


def test_an_old_identical_event_is_not_reused(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    pod = a_pod(store)
    record_event(store, pod, "Killing", "Stopping container main")
    monkeypatch.setattr(events, "DEDUP_WINDOW", events.timedelta(seconds=-1))
    record_event(store, pod, "Killing", "Stopping container main")
    assert len(store.list("events", "default")[0]) == 2


def test_recording_never_raises(store: Store) -> None:
    record_event(store, {"kind": "Pod", "metadata": {"name": "x", "namespace": "missing-namespace"}}, "R", "m")
    record_event(store, {}, "R", "m")
    assert store.list("events", "missing-namespace")[0] == []
