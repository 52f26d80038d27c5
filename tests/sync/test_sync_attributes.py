"""Modes, directory mtimes and Unicode spellings of names, against a real nhdev-sidecar over SSH."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from nhdev.sync.index import LocalIndex
from nhdev.sync.rules import IgnoreRules
from tests.sync.conftest import Running, SyncRig, wait_until
from tests.sync.trees import tree_of

pytestmark = pytest.mark.timeout(120)

MB = 1024 * 1024
NFC = unicodedata.normalize("NFC", "café.py")
NFD = unicodedata.normalize("NFD", "café.py")


def mode_of(path: Path) -> int:
    return os.lstat(path).st_mode & 0o7777


def test_a_mode_only_change_sends_no_content_live_and_after_a_restart(rig: SyncRig) -> None:
    (rig.local / "run.sh").write_bytes(os.urandom(MB))
    engine = rig.engine()
    engine.initial_sync()
    sent = engine.status().counters.bytes_sent
    with Running(engine):
        (rig.local / "run.sh").chmod(0o755)
        wait_until(lambda: mode_of(rig.pod / "run.sh") == 0o755, what="chmod +x in the pod")
    counters = engine.status().counters
    assert (counters.bytes_sent, counters.files_sent, counters.attributes_sent) == (sent, 1, 1)
    engine.close()

    (rig.local / "run.sh").chmod(0o700)  # while no session runs: found by the next compare
    counters = rig.engine().initial_sync().counters
    assert mode_of(rig.pod / "run.sh") == 0o700
    assert (counters.bytes_sent, counters.files_sent, counters.attributes_sent) == (0, 0, 1)
    assert tree_of(rig.local) == tree_of(rig.pod)


def test_a_mode_change_on_content_the_pod_changed_meanwhile_sends_the_content(rig: SyncRig) -> None:
    (rig.local / "tool.sh").write_text("#!/bin/sh\necho v1\n")
    engine = rig.engine()
    engine.initial_sync()
    (rig.pod / "tool.sh").write_text("changed in the pod, unseen by a one-way session\n")
    with Running(engine):
        (rig.local / "tool.sh").chmod(0o755)
        wait_until(lambda: (rig.pod / "tool.sh").read_text() == "#!/bin/sh\necho v1\n"
                   and mode_of(rig.pod / "tool.sh") == 0o755, what="the content and the mode")
    assert engine.status().counters.files_sent == 2


def test_a_mode_change_in_the_pod_comes_back_without_content(rig: SyncRig) -> None:
    (rig.local / "gen.sh").write_bytes(os.urandom(MB))
    engine = rig.engine(direction="sendReceive")
    engine.initial_sync()
    with Running(engine):
        (rig.pod / "gen.sh").chmod(0o750)
        wait_until(lambda: mode_of(rig.local / "gen.sh") == 0o750, what="the pod's chmod here")
    counters = engine.status().counters
    assert (counters.files_fetched, counters.bytes_fetched, counters.attributes_fetched) == (0, 0, 1)


def test_directory_mtimes_follow_initially_and_when_names_come_and_go(rig: SyncRig) -> None:
    (rig.local / "a" / "b").mkdir(parents=True)
    (rig.local / "a" / "b" / "f.txt").write_text("f")
    (rig.local / "a" / "g.txt").write_text("g")
    for i, directory in enumerate(("a", "a/b")):
        os.utime(rig.local / directory, ns=(1_600_000_000_123_456_789 + i, 1_600_000_000_123_456_789 + i))
    engine = rig.engine()
    engine.initial_sync()
    for directory in ("a", "a/b"):
        assert os.stat(rig.pod / directory).st_mtime_ns == os.stat(rig.local / directory).st_mtime_ns
    with Running(engine):
        (rig.local / "a" / "b" / "new.txt").write_text("new")
        wait_until(lambda: (rig.pod / "a" / "b" / "new.txt").exists()
                   and os.stat(rig.pod / "a" / "b").st_mtime_ns == os.stat(rig.local / "a" / "b").st_mtime_ns,
                   what="a/b's mtime after a new name")
        (rig.local / "a" / "g.txt").unlink()
        wait_until(lambda: not (rig.pod / "a" / "g.txt").exists()
                   and os.stat(rig.pod / "a").st_mtime_ns == os.stat(rig.local / "a").st_mtime_ns,
                   what="a's mtime after a deletion")


def test_both_spellings_of_a_name_are_two_files_on_linux(rig: SyncRig) -> None:
    (rig.local / NFC).write_text("composed")
    (rig.local / NFD).write_text("decomposed")
    rig.engine().initial_sync()
    assert sorted(os.listdir(rig.pod)) == sorted([NFC, NFD, ".nhdev-sync-index"])  # bytes as they were
    assert (rig.pod / NFC).read_text() == "composed" and (rig.pod / NFD).read_text() == "decomposed"


def test_an_event_spelled_in_the_other_normalization_is_the_listed_file(rig: SyncRig) -> None:
    """macOS reports names regardless of how the directory stores them: the index keeps one entry."""
    (rig.local / "pkg").mkdir()
    (rig.local / "pkg" / NFD).write_text("v1")
    index = LocalIndex(rig.local, IgnoreRules(rig.local, "pattern"))
    index.scan()
    (rig.local / "pkg" / NFD).write_text("v2, longer")
    assert index.refresh([f"pkg/{NFC}"]) == [f"pkg/{NFD}"]
    assert f"pkg/{NFC}" not in index.entries and index.entries[f"pkg/{NFD}"].size == len("v2, longer")

    engine = rig.engine()
    engine.initial_sync()
    (rig.local / "pkg" / NFD).write_text("v3")
    engine._local_changes({f"pkg/{NFC}"})  # the batch a macOS watcher would make
    assert os.listdir(rig.pod / "pkg") == [NFD] and (rig.pod / "pkg" / NFD).read_text() == "v3"


def test_the_local_spelling_replaces_the_pods_other_spelling_of_a_name(rig: SyncRig) -> None:
    naive_nfc, naive_nfd = unicodedata.normalize("NFC", "naïve.py"), unicodedata.normalize("NFD", "naïve.py")
    (rig.pod / "src").mkdir(parents=True)
    (rig.pod / "src" / NFC).write_text("old, from a Linux checkout in the pod")
    (rig.pod / "src" / naive_nfc).write_text("old too")
    (rig.local / "src").mkdir()
    (rig.local / "src" / NFD).write_text("from a macOS tree")
    engine = rig.engine()
    engine.initial_sync()
    assert sorted(os.listdir(rig.pod / "src")) == sorted([NFD, naive_nfc])  # naïve.py: not here (yet)
    assert (rig.pod / "src" / NFD).read_text() == "from a macOS tree"
    with Running(engine):  # live: a new name whose other spelling the pod has
        (rig.local / "src" / naive_nfd).write_text("new here")
        wait_until(lambda: sorted(os.listdir(rig.pod / "src")) == sorted([NFD, naive_nfd]),
                   what="one spelling of naïve.py in the pod")
    assert (rig.pod / "src" / naive_nfd).read_text() == "new here"
