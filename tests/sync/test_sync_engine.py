"""SyncEngine against a real nhdev-sidecar over real SSH on loopback."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from sidecar.sync_wire import CONFLICT_MARK, FrameReader, encode_data, encode_end, encode_header
from tests.sync.conftest import Running, SyncRig, wait_until
from tests.sync.trees import make_big_file, make_tree, synced, tree_of

pytestmark = pytest.mark.timeout(120)


def test_initial_sync_then_a_restart_sends_and_hashes_nothing(rig: SyncRig) -> None:
    make_tree(rig.local, 5000)
    digest = make_big_file(rig.local / "big.bin")
    engine = rig.engine()
    status = engine.initial_sync()
    assert synced(tree_of(rig.local)) == tree_of(rig.pod)
    assert hashlib.sha256((rig.pod / "big.bin").read_bytes()).hexdigest() == digest
    assert os.readlink(rig.pod / "inside-dir-link") == "pkg 1/ünïcødé-1"
    assert not os.path.lexists(rig.pod / "escaping-absolute")
    assert not os.path.lexists(rig.pod / "pkg 3" / "escaping-relative")
    assert any("escaping-absolute" in w for w in status.warnings)
    assert (rig.pod / "empty" / "e3").is_dir()
    assert os.stat(rig.pod / "pkg 0" / "ünïcødé-0" / "naïve-ñame-0.txt").st_mode & 0o111
    assert status.counters.files_sent == 5001 and status.counters.batches == 1
    engine.close()

    again = rig.engine()  # a session restart: same state directory, same pod
    status = again.initial_sync()
    counters = status.counters
    assert (counters.files_sent, counters.bytes_sent, counters.batches) == (0, 0, 0)
    assert (counters.hashed_files, counters.remote_hashed_files) == (0, 0)
    assert counters.reused_hashes == 5001


def test_edits_renames_deletes_and_directories_propagate(rig: SyncRig) -> None:
    make_tree(rig.local, 200)
    engine = rig.engine()
    engine.initial_sync()
    batches: list[list[str]] = []
    engine.on_batch(batches.append)
    src = rig.local / "pkg 1" / "ünïcødé-1"
    with Running(engine):
        (src / "file 1.py").write_text("edited\n")
        wait_until(lambda: (rig.pod / "pkg 1" / "ünïcødé-1" / "file 1.py").read_text() == "edited\n", what="edit")
        os.rename(src / "file 1.py", src / "renamed 1.py")
        wait_until(lambda: (rig.pod / "pkg 1" / "ünïcødé-1" / "renamed 1.py").exists()
                   and not (rig.pod / "pkg 1" / "ünïcødé-1" / "file 1.py").exists(), what="rename")
        (src / "renamed 1.py").unlink()
        wait_until(lambda: not (rig.pod / "pkg 1" / "ünïcødé-1" / "renamed 1.py").exists(), what="delete")
        (rig.local / "new" / "deep").mkdir(parents=True)
        (rig.local / "new" / "deep" / "f.sh").write_text("#!/bin/sh\n")
        (rig.local / "new" / "deep" / "f.sh").chmod(0o755)
        wait_until(lambda: (rig.pod / "new" / "deep" / "f.sh").exists()
                   and os.stat(rig.pod / "new" / "deep" / "f.sh").st_mode & 0o111, what="mkdir + exec bit")
        (rig.local / "new" / "deep" / "f.sh").unlink()
        (rig.local / "new" / "deep").rmdir()
        wait_until(lambda: not (rig.pod / "new" / "deep").exists(), what="rmdir")
        os.rename(rig.local / "pkg 2", rig.local / "pkg two")
        wait_until(lambda: synced(tree_of(rig.local)) == tree_of(rig.pod), what="directory rename")
    assert ["pkg 1/ünïcødé-1/file 1.py"] in batches
    assert not list(rig.pod.rglob(".nhdev-tmp-*"))


def test_pattern_mode_ignores(rig: SyncRig) -> None:
    (rig.local / "src").mkdir()
    (rig.local / "src" / "a.py").write_text("a")
    (rig.local / "src" / "a.pyc").write_text("compiled")
    (rig.local / "node_modules" / "x").mkdir(parents=True)
    (rig.local / "node_modules" / "x" / "i.js").write_text("x")
    (rig.local / ".git").mkdir()
    (rig.local / ".git" / "HEAD").write_text("ref")
    engine = rig.engine(ignore=["*.pyc", "node_modules"])
    engine.initial_sync()
    assert set(tree_of(rig.pod)) == {"src", "src/a.py"}
    with Running(engine):
        (rig.local / "src" / "b.pyc").write_text("x")
        (rig.local / "node_modules" / "y.js").write_text("y")
        (rig.local / "src" / "b.py").write_text("b")
        wait_until(lambda: (rig.pod / "src" / "b.py").exists(), what="b.py")
        time.sleep(0.1)
    assert set(tree_of(rig.pod)) == {"src", "src/a.py", "src/b.py"}


def test_gitignore_mode_nested_files_and_a_change_without_restart(rig: SyncRig) -> None:
    (rig.local / ".gitignore").write_text("*.log\nbuild/\n")
    (rig.local / "sub" / "secret").mkdir(parents=True)
    (rig.local / "sub" / ".gitignore").write_text("!keep.log\nsecret/\n")
    (rig.local / "sub" / "keep.log").write_text("kept")
    (rig.local / "sub" / "drop.log").write_text("dropped")
    (rig.local / "sub" / "secret" / "s.txt").write_text("s")
    (rig.local / "build").mkdir()
    (rig.local / "build" / "out.o").write_text("o")
    (rig.local / ".git").mkdir()
    (rig.local / ".git" / "config").write_text("[core]")
    engine = rig.engine(mode="gitIgnore")
    engine.initial_sync()
    assert set(tree_of(rig.pod)) == {".gitignore", "sub", "sub/.gitignore", "sub/keep.log"}
    with Running(engine):
        (rig.local / "sub" / ".gitignore").write_text("!keep.log\n")  # secret/ is synced from now on
        wait_until(lambda: (rig.pod / "sub" / "secret" / "s.txt").exists(), what="un-ignored dir")
        (rig.local / "sub" / "secret" / "new.log").write_text("ignored by the root .gitignore")
        (rig.local / "sub" / "secret" / "new.txt").write_text("synced")
        wait_until(lambda: (rig.pod / "sub" / "secret" / "new.txt").exists(), what="new file")
    assert not (rig.pod / "sub" / "secret" / "new.log").exists()
    assert not (rig.pod / "build").exists() and not (rig.pod / ".git").exists()


def test_send_keeps_pod_only_files_unless_prune(rig: SyncRig) -> None:
    (rig.local / "a.txt").write_text("a")
    rig.pod.mkdir(parents=True)
    (rig.pod / "generated.txt").write_text("made in the pod")
    rig.engine().initial_sync()
    assert (rig.pod / "generated.txt").exists() and (rig.pod / "a.txt").exists()
    rig.engine(prune=True, state="pruning").initial_sync()
    assert not (rig.pod / "generated.txt").exists() and (rig.pod / "a.txt").exists()


def test_send_receive_round_trip_and_delete_protection(rig: SyncRig) -> None:
    (rig.local / "shared.txt").write_text("v1")
    (rig.local / "victim.txt").write_text("keep me")
    engine = rig.engine(direction="sendReceive")
    engine.initial_sync()
    with Running(engine):
        (rig.pod / "from-pod.txt").write_text("generated")
        wait_until(lambda: (rig.local / "from-pod.txt").exists(), what="pod file comes back")
        assert (rig.local / "from-pod.txt").read_text() == "generated"
        (rig.pod / "shared.txt").write_text("v2 from the pod")
        wait_until(lambda: (rig.local / "shared.txt").read_text() == "v2 from the pod", what="pod edit comes back")
        (rig.pod / "go mod").mkdir()
        (rig.pod / "go mod" / "sum").write_text("tidy")
        wait_until(lambda: (rig.local / "go mod" / "sum").exists(), what="pod mkdir comes back")
        (rig.pod / "victim.txt").unlink()
        # Delete protection: the local file stays, and is restored in the pod.
        wait_until(lambda: (rig.pod / "victim.txt").exists(), what="restored in the pod")
        assert (rig.local / "victim.txt").read_text() == "keep me"
        (rig.local / "shared.txt").write_text("v3 local")
        wait_until(lambda: (rig.pod / "shared.txt").read_text() == "v3 local", what="local edit goes")
        wait_until(lambda: tree_of(rig.local) == tree_of(rig.pod), what="trees equal")
    assert engine.status().counters.conflicts == 0


def test_send_receive_without_delete_protection_deletes_locally(rig: SyncRig) -> None:
    (rig.local / "doomed.txt").write_text("x")
    engine = rig.engine(direction="sendReceive", delete_protection=False)
    engine.initial_sync()
    with Running(engine):
        (rig.pod / "doomed.txt").unlink()
        wait_until(lambda: not (rig.local / "doomed.txt").exists(), what="pod deletion applied here")


def test_a_conflict_keeps_both_versions(rig: SyncRig) -> None:
    (rig.local / "both.txt").write_text("base")
    engine = rig.engine(direction="sendReceive")
    engine.initial_sync()
    engine.close()
    (rig.local / "both.txt").write_text("local change")  # both sides change while the session is down
    (rig.pod / "both.txt").write_text("pod change")
    status = rig.engine(direction="sendReceive").initial_sync()
    assert (rig.local / "both.txt").read_text() == "local change"
    assert (rig.pod / "both.txt").read_text() == "local change"
    aside = [p for p in rig.local.iterdir() if CONFLICT_MARK in p.name]
    assert len(aside) == 1 and aside[0].name.startswith("both.txt.nhdev-conflict-")
    assert aside[0].read_text() == "pod change"
    assert (rig.pod / aside[0].name).read_text() == "pod change"
    assert status.counters.conflicts == 1 and any("conflict" in w for w in status.warnings)


def test_a_live_conflict_keeps_both_versions(rig: SyncRig) -> None:
    (rig.local / "hot.txt").write_text("base")
    engine = rig.engine(direction="sendReceive")
    engine.initial_sync()
    rig.link.drop(hold=True)
    with Running(engine):
        wait_until(lambda: engine.status().state == "paused", what="paused")
        (rig.local / "hot.txt").write_text("local while down")
        (rig.pod / "hot.txt").write_text("pod while down")
        rig.link.restore()
        wait_until(lambda: any(CONFLICT_MARK in p.name for p in rig.pod.iterdir())
                   and any(CONFLICT_MARK in p.name for p in rig.local.iterdir()), what="conflict copies")
        wait_until(lambda: tree_of(rig.local) == tree_of(rig.pod), what="trees equal")
    assert (rig.pod / "hot.txt").read_text() == "local while down"
    copies = [p.read_text() for p in rig.local.iterdir() if CONFLICT_MARK in p.name]
    assert copies == ["pod while down"]


def test_a_killed_transfer_leaves_no_partial_file_and_completes_after_reconnect(rig: SyncRig) -> None:
    engine = rig.engine()
    engine.initial_sync()
    dropped = threading.Event()

    def drop_mid_transfer() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            partial = [p for p in rig.pod.glob(".nhdev-tmp-big.bin-*") if p.stat().st_size > 20 * 1024 * 1024]
            if partial:
                rig.link.drop(hold=True)
                dropped.set()
                return
            time.sleep(0.002)

    with Running(engine):
        watcher = threading.Thread(target=drop_mid_transfer, daemon=True)
        watcher.start()
        digest = make_big_file(rig.local / "big.bin")
        assert dropped.wait(60), "the transfer was never caught in flight"
        time.sleep(0.3)
        assert not (rig.pod / "big.bin").exists()
        assert engine.status().state == "paused"
        rig.link.restore()
        wait_until(lambda: (rig.pod / "big.bin").exists(), timeout=60, what="transfer after reconnect")
        assert hashlib.sha256((rig.pod / "big.bin").read_bytes()).hexdigest() == digest
        assert engine.status().counters.resumes >= 1


def test_the_sidecar_refuses_paths_and_links_that_escape(rig: SyncRig) -> None:
    transport = rig.link.transport()
    channel = transport.open_session()
    channel.exec_command("nhdev-sidecar sync-apply /app")
    content = b"escaped"
    frames = b""
    for path in ("../outside.txt", "/abs.txt", "a/../../x.txt", ".nhdev-sync-index"):
        frames += encode_header({"op": "file", "path": path, "mode": 0o644, "mtime_ns": 0})
        frames += encode_data(content) + encode_end({"sha256": hashlib.sha256(content).hexdigest()})
    frames += encode_header({"op": "symlink", "path": "l1", "target": "../../etc"})
    frames += encode_header({"op": "symlink", "path": "l2", "target": "/etc"})
    frames += encode_header({"op": "delete", "path": ".."})
    frames += encode_header({"op": "file", "path": "ok.txt", "mode": 0o644, "mtime_ns": 0})
    frames += encode_data(content) + encode_end({"sha256": "0" * 64})  # wrong digest: never renamed in
    frames += encode_header({"op": "commit", "batch": 1})
    channel.sendall(frames)
    reader = FrameReader(channel.makefile("rb"))
    responses = []
    while "commit" not in (header := reader.header() or {"commit": None}):
        responses.append(header)
    channel.close()
    assert len(responses) == 8 and all("error" in r for r in responses)
    assert header == {"commit": 1, "applied": 0, "failed": 8}
    # The command saves its index as it ends (through a temporary name): wait for that, then look.
    wait_until(lambda: not list(rig.pod.glob(".nhdev-tmp-index-*")), what="the index saved")
    assert os.listdir(rig.sidecar.root) == ["app"] and set(os.listdir(rig.pod)) <= {".nhdev-sync-index"}
    assert not (rig.tmp / "outside.txt").exists() and not (rig.sidecar.root / "outside.txt").exists()
