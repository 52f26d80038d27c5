"""Hot-reload coalescing: bursts of changes become one restart; the scheduler never overlaps restarts."""

from __future__ import annotations

import threading
import time

from nhdev.run.reload import ReloadDebouncer, ReloadScheduler


def test_a_burst_gives_one_restart_after_it_quietens() -> None:
    debouncer = ReloadDebouncer(200)
    for i, now in enumerate([0.0, 0.05, 0.1, 0.15]):
        debouncer.changed([f"f{i}.py"], now)
        assert debouncer.take_due(now) is None
    assert debouncer.take_due(0.34) is None  # 190 ms after the last change
    assert debouncer.take_due(0.35) == ["f0.py", "f1.py", "f2.py", "f3.py"]
    assert not debouncer.pending and debouncer.take_due(10.0) is None


def test_paths_are_deduplicated_in_first_seen_order() -> None:
    debouncer = ReloadDebouncer(100)
    debouncer.changed(["b.py", "a.py"], 0.0)
    debouncer.changed(["a.py", "c.py", "b.py"], 0.05)
    assert debouncer.take_due(1.0) == ["b.py", "a.py", "c.py"]


def test_an_empty_batch_is_no_change() -> None:
    debouncer = ReloadDebouncer(100)
    debouncer.changed([], 0.0)
    assert not debouncer.pending and debouncer.deadline() is None


def test_a_burst_that_never_quietens_restarts_at_max_wait() -> None:
    debouncer = ReloadDebouncer(100, max_wait_ms=500)
    now = 0.0
    while now < 0.5:
        debouncer.changed(["gen.py"], now)
        assert debouncer.take_due(now) is None
        now = round(now + 0.05, 2)
    assert debouncer.deadline() == 0.5
    assert debouncer.take_due(0.5) == ["gen.py"]


def test_separate_bursts_give_separate_restarts() -> None:
    debouncer = ReloadDebouncer(100)
    debouncer.changed(["a"], 0.0)
    assert debouncer.take_due(0.1) == ["a"]
    debouncer.changed(["b"], 1.0)
    assert debouncer.take_due(1.1) == ["b"]


def test_scheduler_coalesces_and_queues_changes_made_during_a_restart() -> None:
    restarts: list[list[str]] = []
    in_restart = threading.Event()
    release = threading.Event()

    def restart(paths: list[str]) -> None:
        restarts.append(paths)
        if len(restarts) == 1:
            in_restart.set()
            release.wait(5)

    scheduler = ReloadScheduler(ReloadDebouncer(50), restart).start()
    try:
        for name in ("a", "b", "c"):
            scheduler.notify([name])
            time.sleep(0.01)
        assert in_restart.wait(5)
        scheduler.notify(["d"])  # arrives while the first restart runs
        scheduler.notify(["e"])
        time.sleep(0.2)
        assert len(restarts) == 1, "restarts never overlap"
        release.set()
        deadline = time.monotonic() + 5
        while len(restarts) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        assert restarts == [["a", "b", "c"], ["d", "e"]]
        assert scheduler.restarts == 2
    finally:
        release.set()
        scheduler.stop()


def test_discard_forgets_a_pending_burst() -> None:
    from nhdev.run.reload import ReloadDebouncer

    debouncer = ReloadDebouncer(300)
    debouncer.changed(["a.py"], 0.0)
    debouncer.discard()
    assert not debouncer.pending and debouncer.take_due(10.0) is None
