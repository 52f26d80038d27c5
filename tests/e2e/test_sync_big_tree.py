"""Sync of a big tree on the sandbox, through what a session uses: a dev pod's real sidecar, reached by
a ``Tunnel`` over a kube port-forward stream (``open_pod_port``), checked from inside the pod by exec.

- 5,000 files in nested dirs with unicode and space names, empty dirs, exec bits, symlinks (the ones
  inside the root kept, the escaping ones refused) and a 200 MB file arrive equal (sha256 per file);
- a session restart on the unchanged tree sends nothing and hashes nothing (counters, not time);
- the port-forward stream cut in the middle of a 200 MB file: the pod never shows the file under its
  real name until it is complete, and the sync completes by itself after the tunnel reconnects.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nhdev.cluster.exec import run_in_pod
from nhdev.cluster.portforward import open_pod_port
from nhdev.config.model import Sync
from nhdev.devmode import names
from nhdev.sync.engine import SyncEngine
from nhdev.sync.protocol import LinkLost
from nhdev.sync.rules import IgnoreRules
from nhdev.sync.status import SyncProgress
from nhdev.tunnel import Tunnel
from tests.e2e.devpod import WORK_DIR, DevPod, start_dev_pod
from tests.sync.conftest import Running, wait_until
from tests.sync.trees import BIG, TREE_OF_SCRIPT, make_big_file, make_tree, parse_tree, synced, tree_of

pytestmark = pytest.mark.timeout(300)

# Run in the pod: report every size the real name ever shows, until it shows ``size`` bytes.
OBSERVER = """
import os, sys, time
path, size, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = set()
deadline = time.monotonic() + 240
while time.monotonic() < deadline:
    try:
        now = os.stat(path).st_size
    except FileNotFoundError:
        now = None
    if now is not None and now not in seen:
        seen.add(now)
        with open(log, "a") as f:
            f.write(f"{now}\\n")
    if now == size:
        break
    time.sleep(0.002)
with open(log, "a") as f:
    f.write("done\\n")
"""


@dataclass
class Pod:
    dev: DevPod
    keys: Path

    def run(self, *argv: str, timeout: float = 60) -> str:
        result = run_in_pod(self.dev.target, self.dev.namespace, self.dev.pod(), "app", list(argv), timeout=timeout)
        assert result.code == 0, result
        return result.out

    def sh(self, script: str, *args: str) -> str:
        return self.run("sh", "-c", script, "sh", *args)

    def python(self, source: str, *args: str, timeout: float = 60) -> str:
        return self.run("python3", "-c", source, *args, timeout=timeout)

    def tree(self, remote_root: str) -> dict[str, tuple[str, int, str]]:
        return parse_tree(self.python(TREE_OF_SCRIPT, f"{WORK_DIR}{remote_root}", timeout=120))

    def tunnel(self) -> Tunnel:
        """A tunnel as the session makes it: each (re)connect opens a stream to the current pod."""

        def connect() -> socket.socket:
            try:
                pod = self.dev.pod()
            except AssertionError as exc:
                raise OSError(str(exc)) from exc
            return open_pod_port(self.dev.target, self.dev.namespace, pod, names.SIDECAR_PORT, timeout=5)

        tunnel = Tunnel(connect, self.keys / "client_key", (self.keys / "host_key.pub").read_text().strip(),
                        keepalive=1.0, max_backoff=1.0).start()
        assert tunnel.wait_connected(20), tunnel.state
        return tunnel


@pytest.fixture(scope="module")
def pod(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pod]:
    state = tmp_path_factory.mktemp("bigtree")
    with start_dev_pod(kubeconfig, state) as dev:
        yield Pod(dev, state / "state" / dev.session)


def engine_for(link: Tunnel, local: Path, remote_root: str, state: Path) -> SyncEngine:
    sync = Sync.model_validate({"type": "send", "mode": "pattern"})
    return SyncEngine(link, local, remote_root, IgnoreRules.from_config(sync, local), state_dir=state)


def cut_stream(tunnel: Tunnel) -> None:
    """Kill the kube port-forward stream under the SSH connection (what a dropped network does)."""
    sock = tunnel.transport().sock.sock  # type: ignore[attr-defined]
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def test_a_5000_file_tree_and_a_200_mb_file_then_a_restart_sends_and_hashes_nothing(
        pod: Pod, tmp_path: Path) -> None:
    local = tmp_path / "local"
    make_tree(local, 5000)
    digest = make_big_file(local / "big.bin")
    tunnel = pod.tunnel()
    try:
        engine = engine_for(tunnel, local, "/big", tmp_path / "state")
        began = time.monotonic()
        status = engine.initial_sync()
        print(f"initial sync of 5,001 files / 200 MB through the tunnel: {time.monotonic() - began:.1f}s")
        engine.close()
    finally:
        tunnel.stop()
    assert status.counters.files_sent == 5001 and status.counters.batches == 1
    assert any("escaping-absolute" in w for w in status.warnings)
    assert any("escaping-relative" in w for w in status.warnings)

    in_pod = pod.tree("/big")
    assert in_pod == synced(tree_of(local))  # every file's sha256, mode and kind; links; empty dirs
    assert in_pod["big.bin"] == ("file", 0o644, digest)
    assert in_pod["inside-dir-link"] == ("symlink", 0, "pkg 1/ünïcødé-1")
    assert in_pod["pkg 0/ünïcødé-0/naïve-ñame-0.txt"][1] == 0o755
    assert in_pod["empty/e3"][0] == "dir"
    assert "escaping-absolute" not in in_pod and "pkg 3/escaping-relative" not in in_pod

    tunnel = pod.tunnel()  # a session restart: a new connection, the same state directory, the same pod
    try:
        again = engine_for(tunnel, local, "/big", tmp_path / "state")
        counters = again.initial_sync().counters
        again.close()
    finally:
        tunnel.stop()
    assert (counters.files_sent, counters.bytes_sent, counters.batches) == (0, 0, 0)
    assert (counters.hashed_files, counters.hashed_bytes, counters.remote_hashed_files) == (0, 0, 0)
    assert counters.reused_hashes == 5001 and counters.full_compares == 1


def test_a_cut_stream_mid_transfer_leaves_no_partial_file_and_the_sync_completes(pod: Pod, tmp_path: Path) -> None:
    local = tmp_path / "local"
    (local / "src").mkdir(parents=True)
    (local / "src" / "app.py").write_text("print('small')\n")
    digest = make_big_file(local / "big.bin")
    real_name = f"{WORK_DIR}/cut/big.bin"
    pod.sh(f"rm -rf {WORK_DIR}/cut /tmp/observed && mkdir -p {WORK_DIR}/cut")
    pod.sh('setsid nohup python3 -c "$1" "$2" "$3" "$4" >/dev/null 2>&1 </dev/null &', OBSERVER, real_name,
           str(BIG), "/tmp/observed")

    tunnel = pod.tunnel()
    cut = threading.Event()
    generation = tunnel.generation

    def progress(state: SyncProgress) -> None:
        if state.phase == "sending" and state.bytes_done > 60 * 1024 * 1024 and not cut.is_set():
            cut.set()
            cut_stream(tunnel)

    engine = engine_for(tunnel, local, "/cut", tmp_path / "state")
    try:
        with pytest.raises(LinkLost):
            engine.initial_sync(progress)
        assert cut.is_set(), "the stream was never cut in the middle of the file"
        assert "MISSING" in pod.sh(f"test -e {real_name} && echo PRESENT || echo MISSING")
        with Running(engine):  # what the session does: run() pauses, then compares again after reconnect
            wait_until(lambda: tunnel.generation > generation, timeout=30, what="the tunnel reconnects")
            wait_until(lambda: engine.status().counters.files_sent >= 2 and engine.status().state == "idle",
                       timeout=180, what="the sync completes after reconnect")
        status = engine.status()
        engine.close()
    finally:
        tunnel.stop()
    assert status.counters.resumes + status.counters.full_compares >= 1
    in_pod = pod.tree("/cut")
    assert in_pod["big.bin"] == ("file", 0o644, digest)
    assert in_pod == tree_of(local)
    wait_until(lambda: "done" in pod.sh("cat /tmp/observed 2>/dev/null || true"), timeout=30, what="observer")
    sizes = pod.sh("cat /tmp/observed").split()
    assert sizes == [str(BIG), "done"], f"the real name showed sizes {sizes[:-1]}"
    assert not pod.sh(f"find {WORK_DIR}/cut -name '.nhdev-tmp-*'").strip(), "a temporary file was left behind"
