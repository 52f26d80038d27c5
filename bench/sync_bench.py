"""File sync benchmark: nhdev vs ``rsync -a`` over SSH vs syncthing, all on loopback.

    .venv/bin/python bench/sync_bench.py [--files 10000] [--megabytes 200] [--edits 200] [--rounds 3]
                                         [--dir /dev/shm] [--skip rsync|syncthing]

Measures, for each tool: (1) edit-to-visible latency, p50/p99 over ``--edits`` edits (write a file
locally, time until the destination holds the new content); (2) initial sync of a ``--files`` files,
``--megabytes`` MB tree into an empty destination; (3) a no-change resync of that tree. nhdev runs
through a local ``nhdev-sidecar`` over the session's own ``Tunnel`` (on a loopback TCP connection
instead of a kube port-forward stream); rsync through a private ``sshd`` on a 127.0.0.1 port;
syncthing as Nocalhost/Okteto configure it (two instances, fsWatcherDelayS 1, rescan 300 s, no
discovery or relays). nhdev and rsync take turns, ``--rounds`` times (who goes first alternates),
and the ratios printed are the medians of the rounds' ratios with their spread: on a shared
machine the load changes from minute to minute. ``--dir /dev/shm`` puts the trees on a tmpfs,
which takes the disk (and everyone else's use of it) out of the figures. Missing tools are
installed with apt-get when running as root; a tool that cannot run is skipped with the reason.
Every process started here is stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from nhdev.sync.engine import SyncEngine
from nhdev.sync.rules import IgnoreRules
from nhdev.tunnel import Tunnel

SIDECAR = Path(sys.executable).parent / "nhdev-sidecar"


@dataclass
class Result:
    tool: str
    p50_ms: float | None = None
    p99_ms: float | None = None
    initial_runs: list[float] = field(default_factory=list)
    resync_runs: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def initial_s(self) -> float | None:
        return statistics.median(self.initial_runs) if self.initial_runs else None

    @property
    def resync_s(self) -> float | None:
        return statistics.median(self.resync_runs) if self.resync_runs else None


# ---------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_tree(root: Path, files: int, total_bytes: int) -> None:
    """``files`` files in nested directories, sizes skewed like a repository, ``total_bytes`` in all."""
    rng = random.Random(7)
    weights = [rng.paretovariate(1.2) for _ in range(files)]
    scale = total_bytes / sum(weights)
    for i, weight in enumerate(weights):
        directory = root / f"pkg{i % 40}" / f"mod{i % 9}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"file{i}.src").write_bytes(os.urandom(max(1, int(weight * scale))))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure_edits(edits: int, local: Path, remote: Path, timeout: float = 10.0,
                  between: float = 0.02, after_write: Callable[[], None] | None = None) -> list[float]:
    """Edit one of a few files ``edits`` times; the time until ``remote`` shows each new content."""
    latencies: list[float] = []
    (local / "edits").mkdir(exist_ok=True)
    for i in range(edits):
        name = f"edits/e{i % 5}.txt"
        content = f"edit {i} {time.time_ns()}\n".encode()
        started = time.perf_counter()
        (local / name).write_bytes(content)
        if after_write is not None:
            after_write()
        deadline = started + timeout
        while True:
            with contextlib.suppress(OSError):
                if (remote / name).read_bytes() == content:
                    break
            if time.perf_counter() > deadline:
                raise TimeoutError(f"edit {i} never arrived")
            time.sleep(0.0005)
        latencies.append((time.perf_counter() - started) * 1000)
        time.sleep(between)
    return latencies


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ensure_packages(packages: dict[str, str]) -> str | None:
    """Install missing commands' Debian packages (root only); the reason if that is impossible."""
    missing = [pkg for cmd, pkg in packages.items() if shutil.which(cmd) is None and not Path(cmd).exists()]
    if not missing:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"missing {', '.join(missing)} (install them, or run as root with apt-get)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                                   *missing]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return f"apt-get failed: {done.stderr.strip().splitlines()[-1:]}"
    return None


def write_key(path: Path) -> ed25519.Ed25519PrivateKey:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return key


def public_line(key: ed25519.Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).decode() + " bench\n"


# ---------------------------------------------------------------- nhdev


@contextlib.contextmanager
def sidecar(work: Path) -> Iterator[tuple[int, Path, Path]]:
    keys = work / "keys"
    keys.mkdir()
    (work / "host_key.pub").write_text(public_line(write_key(keys / "ssh_host_ed25519_key")))
    client = write_key(work / "client_key")
    (keys / "authorized_keys").write_text(public_line(client))
    root = work / "pod"
    log = work / "sidecar.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(SIDECAR), "--root", str(root), "--keys", str(keys), "--listen",
                                    "127.0.0.1:0", "--log-level", "info"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            found = re.search(r"listening address=127\.0\.0\.1:(\d+)", log.read_text())
            if found:
                yield int(found.group(1)), work / "client_key", root
                return
            time.sleep(0.05)
        raise RuntimeError(f"sidecar did not start: {log.read_text()}")
    finally:
        stop_process(process)


class NhdevRig:
    """A local sidecar, and the session's own link to it: a ``Tunnel`` (its cipher, window and packet
    sizes), over a loopback TCP connection instead of a kube port-forward stream."""

    def __init__(self, tree: Path, work: Path) -> None:
        self.tree, self.work = tree, work
        self.result = Result("nhdev")
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> NhdevRig:
        port, key, self.pod_root = self._stack.enter_context(sidecar(self.work))
        self.link = Tunnel(lambda: socket.create_connection(("127.0.0.1", port)), key,
                           (self.work / "host_key.pub").read_text().strip()).start()
        self._stack.callback(self.link.stop)
        if not self.link.wait_connected(15):
            raise RuntimeError(f"the tunnel did not connect: {self.link.state}")
        self.local = self.work / "local"
        shutil.copytree(self.tree, self.local, symlinks=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def engine(self, round_: int) -> SyncEngine:
        return SyncEngine(self.link, self.local, f"/app{round_}", IgnoreRules(self.local, "pattern"),
                          state_dir=self.work / f"state{round_}")

    def round(self, round_: int) -> None:
        """An initial sync into an empty directory, then a restart's resync of the unchanged tree."""
        first = self.engine(round_)
        started = time.perf_counter()
        first.initial_sync()
        self.result.initial_runs.append(time.perf_counter() - started)
        first.close()
        again = self.engine(round_)
        started = time.perf_counter()
        counters = again.initial_sync().counters
        self.result.resync_runs.append(time.perf_counter() - started)
        again.close()
        note = (f"resync sent {counters.files_sent} files, hashed {counters.hashed_files} here and "
                f"{counters.remote_hashed_files} in the pod")
        if note not in self.result.notes:
            self.result.notes.append(note)
        if round_ > 0:
            shutil.rmtree(self.pod_root / f"app{round_ - 1}")  # keep one copy on disk, outside the timing

    def latency(self, edits: int, round_: int) -> None:
        engine = self.engine(round_)
        engine.initial_sync()
        stop = threading.Event()
        runner = threading.Thread(target=engine.run, args=(stop,), daemon=True)
        runner.start()
        try:
            latencies = measure_edits(edits, self.local, self.pod_root / f"app{round_}")
        finally:
            stop.set()
            runner.join(10)
            engine.close()
        self.result.p50_ms, self.result.p99_ms = percentile(latencies, 0.5), percentile(latencies, 0.99)


# ---------------------------------------------------------------- rsync over OpenSSH


@contextlib.contextmanager
def sshd(work: Path) -> Iterator[tuple[int, Path]]:
    host_key = work / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    client = write_key(work / "client_key")
    (work / "authorized_keys").write_text(public_line(client))
    port = free_port()
    config = work / "sshd_config"
    config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                      f"AuthorizedKeysFile {work / 'authorized_keys'}\nPidFile {work / 'sshd.pid'}\n"
                      "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\nStrictModes no\n"
                      "KbdInteractiveAuthentication no\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory sshd insists on
    process = subprocess.Popen([shutil.which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                               stdout=subprocess.DEVNULL, stderr=(work / "sshd.log").open("wb"))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield port, work / "client_key"
    finally:
        stop_process(process)


class RsyncRig:
    """``rsync -a`` through a private ``sshd`` on a 127.0.0.1 port."""

    def __init__(self, tree: Path, work: Path) -> None:
        self.tree, self.work = tree, work
        self.result = Result("rsync -a over ssh")
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> RsyncRig:
        port, key = self._stack.enter_context(sshd(self.work))
        self.user = os.environ.get("USER") or "root"
        self.ssh = (f"ssh -p {port} -i {key} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                    "-o LogLevel=ERROR -o BatchMode=yes")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def rsync(self, source: Path, dest: Path) -> float:
        started = time.perf_counter()
        subprocess.run(["rsync", "-a", "-e", self.ssh, f"{source}/", f"{self.user}@127.0.0.1:{dest}/"], check=True)
        return time.perf_counter() - started

    def round(self, round_: int) -> None:
        dest = self.work / f"dest{round_}"
        dest.mkdir()
        self.result.initial_runs.append(self.rsync(self.tree, dest))
        self.result.resync_runs.append(self.rsync(self.tree, dest))
        if round_ > 0:
            shutil.rmtree(self.work / f"dest{round_ - 1}")

    def latency(self, edits: int, round_: int) -> None:
        # rsync has no watcher: the practical floor is one rsync of the tree per save.
        dest = self.work / f"dest{round_}"
        latencies = measure_edits(min(edits, 20), self.tree, dest, after_write=lambda: self.rsync(self.tree, dest),
                                  between=0)
        self.result.p50_ms, self.result.p99_ms = percentile(latencies, 0.5), percentile(latencies, 0.99)
        self.result.notes.append(f"latency = one rsync run per edit, {len(latencies)} edits")
        shutil.rmtree(self.tree / "edits")


def side_by_side(tree: Path, work: Path, edits: int, rounds: int, with_rsync: bool) -> list[Result]:
    """nhdev and rsync in turns, ``rounds`` times (who goes first alternates), then edit latencies:
    the machine's load changes from minute to minute, so each round's ratio compares like with like."""
    rigs: list[NhdevRig | RsyncRig] = [NhdevRig(tree, work / "nhdev")]
    if with_rsync:
        reason = ensure_packages({"rsync": "rsync", "/usr/sbin/sshd": "openssh-server", "ssh": "openssh-client"})
        if reason:
            print(f"rsync skipped: {reason}")
        else:
            rigs.append(RsyncRig(tree, work / "rsync"))
    with contextlib.ExitStack() as stack:
        for rig in rigs:
            rig.work.mkdir()
            stack.enter_context(rig)
        for round_ in range(rounds):
            for rig in rigs if round_ % 2 == 0 else rigs[::-1]:
                os.sync()  # nobody's timing starts with the other's (or the tree's) writes still in flight
                rig.round(round_)
            print("round", round_ + 1, "  ".join(f"{rig.result.tool}: initial {rig.result.initial_runs[-1]:.2f} s, "
                                                 f"resync {rig.result.resync_runs[-1]:.2f} s" for rig in rigs),
                  flush=True)
        for rig in rigs:
            rig.latency(edits, rounds - 1)
    return [rig.result for rig in rigs]


# ---------------------------------------------------------------- syncthing, configured as Nocalhost does


SYNCTHING_CONFIG = """<configuration version="36">
  <folder id="nh-1" label="nh-1" path="{path}" type="{type}" rescanIntervalS="300" fsWatcherEnabled="true"
          fsWatcherDelayS="1" ignorePerms="false" autoNormalize="true">
    <device id="{self_id}"></device><device id="{peer_id}"></device>
    <minDiskFree unit="%">1</minDiskFree><order>random</order><maxConflicts>0</maxConflicts>
    <copiers>0</copiers><hashers>0</hashers><weakHashThresholdPct>25</weakHashThresholdPct>
  </folder>
  <device id="{self_id}" name="self" compression="metadata"><address>dynamic</address></device>
  <device id="{peer_id}" name="peer" compression="metadata"><address>tcp://127.0.0.1:{peer_port}</address></device>
  <gui enabled="true" tls="false"><address>127.0.0.1:{gui_port}</address><apikey>nocalhost</apikey></gui>
  <options>
    <listenAddress>tcp://127.0.0.1:{listen_port}</listenAddress>
    <globalAnnounceEnabled>false</globalAnnounceEnabled><localAnnounceEnabled>false</localAnnounceEnabled>
    <relaysEnabled>false</relaysEnabled><natEnabled>false</natEnabled><urAccepted>-1</urAccepted>
    <autoUpgradeIntervalH>0</autoUpgradeIntervalH><reconnectionIntervalS>1</reconnectionIntervalS>
    <crashReportingEnabled>false</crashReportingEnabled><startBrowser>false</startBrowser>
  </options>
</configuration>
"""


def syncthing_device_id(home: Path) -> str:
    done = subprocess.run(["syncthing", "--home", str(home), "--device-id"], capture_output=True, text=True)
    if done.returncode != 0:
        done = subprocess.run(["syncthing", "serve", "--home", str(home), "--device-id"], capture_output=True,
                              text=True)
    return done.stdout.strip()


def bench_syncthing(tree: Path, work: Path, edits: int, files: int) -> Result:
    result = Result("syncthing (Nocalhost config)")
    reason = ensure_packages({"syncthing": "syncthing"})
    if reason:
        result.notes.append(f"skipped: {reason}")
        return result
    homes = {side: work / f"home-{side}" for side in ("local", "pod")}
    ports = {side: (free_port(), free_port()) for side in homes}
    for home in homes.values():
        done = subprocess.run(["syncthing", "generate", "--home", str(home)], capture_output=True, text=True)
        if done.returncode != 0:
            result.notes.append(f"skipped: syncthing generate failed: {done.stderr.strip()[:200]}")
            return result
    ids = {side: syncthing_device_id(home) for side, home in homes.items()}
    local, remote = work / "local", work / "pod"
    remote.mkdir()
    for side, home in homes.items():
        peer = "pod" if side == "local" else "local"
        (home / "config.xml").write_text(SYNCTHING_CONFIG.format(
            path=local if side == "local" else remote, type="sendonly" if side == "local" else "sendreceive",
            self_id=ids[side], peer_id=ids[peer], peer_port=ports[peer][0], gui_port=ports[side][1],
            listen_port=ports[side][0]))
    shutil.copytree(tree, local, symlinks=True)
    for folder in (local, remote):
        (folder / ".stfolder").mkdir(exist_ok=True)  # syncthing refuses a folder without its marker
    env = {**os.environ, "STNOUPGRADE": "1", "STNODEFAULTFOLDER": "1"}
    processes = []
    started = time.perf_counter()
    try:
        for side, home in homes.items():
            processes.append(subprocess.Popen(
                ["syncthing", "serve", "--home", str(home), "--no-browser", "--no-restart"], env=env,
                stdout=(work / f"{side}.log").open("wb"), stderr=subprocess.STDOUT))
        wait_for_files(remote, files, timeout=float(os.environ.get('NHDEV_BENCH_SYNCTHING_TIMEOUT', 600)))
        result.initial_runs.append(time.perf_counter() - started)
        gui = ports["local"][1]
        started = time.perf_counter()
        rest(gui, "/rest/db/scan?folder=nh-1", post=True)  # a full rescan is syncthing's resync
        wait_idle(gui)
        result.resync_runs.append(time.perf_counter() - started)
        latencies = measure_edits(min(edits, 30), local, remote, timeout=30, between=0.05)
        result.p50_ms, result.p99_ms = percentile(latencies, 0.5), percentile(latencies, 0.99)
        result.notes.append(f"latency over {len(latencies)} edits (each waits out fsWatcherDelayS=1)")
    finally:
        for process in processes:
            stop_process(process)
    return result


def rest(port: int, path: str, *, post: bool = False) -> bytes:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST" if post else "GET",
                                     headers={"X-API-Key": "nocalhost"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return bytes(response.read())


def wait_idle(port: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if b'"state":"idle"' in rest(port, "/rest/db/status?folder=nh-1").replace(b" ", b""):
                return
        time.sleep(0.05)
    raise TimeoutError("syncthing never became idle")


def wait_for_files(root: Path, files: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = sum(1 for p in root.rglob("*.src") if not p.name.startswith(".syncthing"))
        if count >= files:
            return
        time.sleep(0.2)
    raise TimeoutError(f"syncthing synced fewer than {files} files in {timeout:.0f}s")


# ---------------------------------------------------------------- report


def show(results: list[Result]) -> None:
    def cell(value: float | None, unit: str) -> str:
        return "-" if value is None else (f"{value:.1f} {unit}" if unit == "ms" else f"{value:.2f} {unit}")

    print(f"{'tool':32} {'edit p50':>11} {'edit p99':>11} {'initial':>10} {'resync':>10}")
    for r in results:
        print(f"{r.tool:32} {cell(r.p50_ms, 'ms'):>11} {cell(r.p99_ms, 'ms'):>11} {cell(r.initial_s, 's'):>10} "
              f"{cell(r.resync_s, 's'):>10}")
        for note in r.notes:
            print(f"    {note}")
    ours = results[0]
    if len(results) < 2:
        return
    for other in results[1:]:
        for label, mine, theirs in (("edit p50", ours.p50_ms, other.p50_ms), ("edit p99", ours.p99_ms, other.p99_ms)):
            if mine and theirs:
                print(f"nhdev / {other.tool}: {label} {mine / theirs:.2f}x")
        for label, my_runs, their_runs in (("initial", ours.initial_runs, other.initial_runs),
                                           ("resync", ours.resync_runs, other.resync_runs)):
            ratios = [mine / theirs for mine, theirs in zip(my_runs, their_runs, strict=False) if theirs]
            if len(ratios) == 1:
                print(f"nhdev / {other.tool}: {label} {ratios[0]:.2f}x")
            elif ratios:  # run side by side, round by round: the median ratio and the spread
                print(f"nhdev / {other.tool}: {label} {statistics.median(ratios):.2f}x (median of {len(ratios)} "
                      f"rounds; {min(ratios):.2f}x-{max(ratios):.2f}x)")
    print(f"goals: p50 < 50 ms: {ours.p50_ms is not None and ours.p50_ms < 50}; "
          f"p99 < 200 ms: {ours.p99_ms is not None and ours.p99_ms < 200}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3,
                        help="initial syncs and resyncs of nhdev and rsync, in turns (reported: medians)")
    parser.add_argument("--skip", action="append", default=[], choices=["rsync", "syncthing"])
    parser.add_argument("--dir", help="where the trees go (default: the temp directory); a tmpfs such as "
                                      "/dev/shm takes the disk, and other programs' use of it, out of the figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nhdev-sync-bench-", dir=args.dir) as scratch:
        work = Path(scratch)
        tree = work / "tree"
        make_tree(tree, args.files, args.megabytes * 1024 * 1024)
        print(f"tree: {args.files} files, {args.megabytes} MB; cpus: {os.cpu_count()}", flush=True)
        results = side_by_side(tree, work, args.edits, max(1, args.rounds), "rsync" not in args.skip)
        show(results)
        print(flush=True)
        if "syncthing" not in args.skip:
            (work / "syncthing").mkdir()
            try:
                results.append(bench_syncthing(tree, work / "syncthing", args.edits, args.files))
            except Exception as exc:  # one tool failing must not hide the others' numbers
                results.append(Result("syncthing", notes=[f"failed: {type(exc).__name__}: {exc}"]))
            show(results[-1:])
            print(flush=True)
            show(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
