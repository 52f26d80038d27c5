"""Start, find and stop the sandbox server process.

The server runs detached (its own session) so it outlives the ``nhdev sandbox up`` that started
it. What is needed to find it again is in ``STATE/server.json``; it is only ever stopped by the
PID recorded there, and only after checking that this PID still is a sandbox server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from nhdev.errors import SandboxError, UsageError
from nhdev.sandbox.kubeconfig import sandbox_kubeconfig, write_kubeconfig

RUNTIMES = ("bwrap", "process", "podman")
SERVER_MODULE = "nhdev.sandbox.server"


def default_state_dir() -> Path:
    env = os.environ.get("NHDEV_SANDBOX_DIR")
    return Path(env).expanduser() if env else Path.home() / ".nhdev" / "sandbox"


@dataclass(frozen=True)
class ServerRecord:
    """What ``STATE/server.json`` says about a started server."""

    pid: int
    port: int
    runtime: str
    state_dir: str
    started_at: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> Path:
        return Path(self.state_dir) / "kubeconfig"


def record_path(state_dir: Path) -> Path:
    return state_dir / "server.json"


def log_path(state_dir: Path) -> Path:
    return state_dir / "server.log"


def read_record(state_dir: Path) -> ServerRecord | None:
    try:
        data = json.loads(record_path(state_dir).read_text())
        return ServerRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def _is_sandbox_server(pid: int, state_dir: Path) -> bool:
    """True when ``pid`` is alive and is the sandbox server of ``state_dir`` (not a recycled PID)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in argv]
    if SERVER_MODULE not in args:
        return False
    try:
        given = Path(args[args.index("--state-dir") + 1]).resolve()
    except (ValueError, IndexError):
        return False
    return given == state_dir.resolve()


def api_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def running_server(state_dir: Path) -> ServerRecord | None:
    """The server of ``state_dir`` if its process is alive, else None (stale records are ignored)."""
    rec = read_record(state_dir)
    if rec is None or not _is_sandbox_server(rec.pid, state_dir):
        return None
    return rec


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_runtime() -> str:
    return "bwrap" if sys.platform.startswith("linux") and _have("bwrap") and _have("nsenter") else "process"


def _have(cmd: str) -> bool:
    from shutil import which

    return which(cmd) is not None


def start(
    state_dir: Path,
    *,
    port: int | None = None,
    runtime: str | None = None,
    timeout: float = 30.0,
    extra_env: dict[str, str] | None = None,
) -> tuple[ServerRecord, bool]:
    """Start the server in the background unless it runs already. Returns (record, started_now)."""
    state_dir = state_dir.expanduser().resolve()
    existing = running_server(state_dir)
    if existing is not None:
        return existing, False
    runtime = runtime or default_runtime()
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown sandbox runtime {runtime!r}", hint=f"choose one of {', '.join(RUNTIMES)}")
    if runtime == "bwrap" and not (_have("bwrap") and _have("nsenter")):
        raise UsageError(
            "runtime 'bwrap' needs bubblewrap and nsenter",
            hint="install them (apt-get install bubblewrap util-linux) or use --runtime process",
        )
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", SERVER_MODULE, "--state-dir", str(state_dir)]
    argv += ["--port", str(port), "--runtime", runtime]
    env = {**os.environ, **(extra_env or {})}
    with open(log_path(state_dir), "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    rec = ServerRecord(
        pid=proc.pid, port=port, runtime=runtime, state_dir=str(state_dir), started_at=time.time()
    )
    _wait_until_up(proc, rec, timeout)
    _write_record(state_dir, rec)
    write_kubeconfig(rec.kubeconfig, sandbox_kubeconfig(rec.url))
    return rec, True


def _wait_until_up(proc: subprocess.Popen[bytes], rec: ServerRecord, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SandboxError(
                f"the sandbox server exited with code {proc.returncode} while starting",
                hint=f"see {log_path(Path(rec.state_dir))}",
            )
        if api_answers(rec.url, timeout=0.5):
            return
        time.sleep(0.05)
    _terminate(proc.pid, grace=5.0)
    raise SandboxError(
        f"the sandbox API did not answer on {rec.url} within {timeout:.0f}s",
        hint=f"see {log_path(Path(rec.state_dir))}",
    )


def _write_record(state_dir: Path, rec: ServerRecord) -> None:
    tmp = record_path(state_dir).with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(rec), indent=2))
    tmp.replace(record_path(state_dir))


def stop(state_dir: Path, *, grace: float = 30.0) -> ServerRecord | None:
    """Stop the server of ``state_dir`` (SIGTERM, then SIGKILL after ``grace``). None if none ran."""
    state_dir = state_dir.expanduser().resolve()
    rec = running_server(state_dir)
    if rec is None:
        record_path(state_dir).unlink(missing_ok=True)
        return None
    _terminate(rec.pid, grace=grace)
    record_path(state_dir).unlink(missing_ok=True)
    return rec


def _terminate(pid: int, *, grace: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while _alive(pid):
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    # The server is our child only in the process that started it; reap it there, else poll /proc.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
