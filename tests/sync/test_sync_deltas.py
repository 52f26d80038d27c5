"""Block deltas: a large file the pod has another version of is sent as the blocks that differ."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sidecar.sync_wire import BLOCK_NUMBER, BLOCK_SIZE, FrameReader, data_prefix, encode_end, encode_header
from tests.sync.conftest import Running, SyncRig, wait_until
from tests.sync.trees import sha256_of

pytestmark = pytest.mark.timeout(120)

MB = 1024 * 1024


def overwrite(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


def test_a_partly_changed_large_file_sends_only_the_changed_blocks(rig: SyncRig) -> None:
    big = rig.local / "data.bin"
    big.write_bytes(os.urandom(20 * MB))
    engine = rig.engine()
    engine.initial_sync()
    before = engine.status().counters
    with Running(engine):
        overwrite(big, 1 * MB + 10, b"x" * 100)
        overwrite(big, 15 * MB, b"y" * 100)
        with big.open("ab") as f:
            f.write(os.urandom(300 * 1024))
        wait_until(lambda: sha256_of(rig.pod / "data.bin") == sha256_of(big), timeout=30, what="the patched file")
    after = engine.status().counters
    assert after.files_patched - before.files_patched >= 1
    # Two changed blocks and the appended 300 KiB (the write may arrive in more than one batch,
    # each sending only its own changes): far from the 20 MB of the whole file.
    assert after.bytes_sent - before.bytes_sent <= 2 * BLOCK_SIZE + 300 * 1024 + 2 * BLOCK_SIZE
    assert not list(rig.pod.glob(".nhdev-tmp-*"))


def test_a_shrunk_file_after_a_restart_is_patched_and_equal(rig: SyncRig) -> None:
    big = rig.local / "db.sqlite"
    big.write_bytes(os.urandom(8 * MB))
    engine = rig.engine()
    engine.initial_sync()
    engine.close()
    os.truncate(big, 5 * MB + 5)
    overwrite(big, 2 * MB, b"changed while no session ran")
    counters = rig.engine().initial_sync().counters
    assert sha256_of(rig.pod / "db.sqlite") == sha256_of(big)
    assert os.path.getsize(rig.pod / "db.sqlite") == 5 * MB + 5
    assert counters.files_patched == 1 and counters.bytes_sent <= 2 * BLOCK_SIZE


def test_a_patch_against_another_base_is_refused_and_the_file_kept(rig: SyncRig) -> None:
    (rig.local / "f.bin").write_bytes(os.urandom(3 * MB))
    rig.engine().initial_sync()
    pod_file = rig.pod / "f.bin"
    original = pod_file.read_bytes()
    # A client that believes the pod's file differs only in block 1; the result cannot match the
    # SHA-256 it announces (it was computed on other content), so nothing may be renamed in.
    claimed = bytearray(os.urandom(3 * MB))
    block = bytes(claimed[BLOCK_SIZE:2 * BLOCK_SIZE])
    frames = encode_header({"op": "patch", "path": "f.bin", "mode": 0o644, "mtime_ns": 0, "size": len(claimed)})
    frames += data_prefix(BLOCK_NUMBER.size + len(block)) + BLOCK_NUMBER.pack(1) + block
    frames += encode_end({"sha256": hashlib.sha256(claimed).hexdigest()})
    frames += encode_header({"op": "commit", "batch": 1})
    channel = rig.link.transport().open_session()
    channel.exec_command("nhdev-sidecar sync-apply /app")
    channel.sendall(frames)
    reader = FrameReader(channel.makefile("rb"))
    responses = []
    while "commit" not in (header := reader.header() or {"commit": None}):
        responses.append(header)
    channel.close()
    assert [r["path"] for r in responses] == ["f.bin"] and responses[0]["stale"]["kind"] == "file"
    assert responses[0]["stale"]["digest"] == hashlib.sha256(original).hexdigest()
    assert pod_file.read_bytes() == original and not list(rig.pod.glob(".nhdev-tmp-*"))
