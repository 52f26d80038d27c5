"""`nhdev demo`, the first quick-start command, end to end on its own sandbox; and `nhdev demo --keep`,
whose printed "try next" commands are run here exactly as printed."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.sandbox.contract import alive

NHDEV = str(Path(sys.executable).parent / "nhdev")
pytestmark = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap not installed")


def demo_env(tmp_path: Path) -> dict[str, str]:
    """A home, a sandbox and a temporary directory of the test's own; the rest of the environment
    without nhdev's variables and without the venv on PATH (the hints must say how to get nhdev)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHDEV_") and k != "KUBECONFIG"}
    venv_bin = Path(sys.executable).parent.resolve()
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv_bin]
    (tmp_path / "home").mkdir(exist_ok=True)
    env.update(HOME=str(tmp_path / "home"), NHDEV_SANDBOX_DIR=str(tmp_path / "sandbox"), TMPDIR=str(tmp_path),
               PATH=os.pathsep.join(path))
    return env


def test_demo_shows_a_live_edit_and_cleans_up(tmp_path: Path) -> None:
    done = subprocess.run([NHDEV, "demo"], env=demo_env(tmp_path), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in ("sandbox cluster up", "replace dev mode", "edited app.py locally", "the original is back",
                 "duplicate mode", "kept answering", "cleaned up", "demo done"):
        assert line in out, out
    assert "Hello again, edited on your machine" in out
    assert out.count("Hello from nhdev's Python example") >= 3, "before, in dev mode, and restored"
    assert "Try, in a shell" not in out, "the hints are for --keep, which leaves something to try"
    assert not list(tmp_path.glob("nhdev-demo-*")), "the copy of the example is removed"
    assert not processes_mentioning(str(tmp_path)), "the demo leaves no process behind"


class Shell:
    """Runs the printed hint lines the way a shell would: ``export`` and ``cd`` change the next ones."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = dict(env)
        self.cwd = cwd

    def apply(self, command: str) -> None:
        words = shlex.split(command)
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.env[name] = value.replace("$PATH", self.env.get("PATH", ""))
        elif words[0] == "cd":
            self.cwd = Path(words[1])
        else:
            raise AssertionError(f"not a shell builtin the test knows: {command}")

    def argv(self, command: str) -> list[str]:
        words = shlex.split(command)
        found = shutil.which(words[0], path=self.env["PATH"])
        assert found, f"{words[0]} is not on the PATH the hints set up: {command}"
        return [found, *words[1:]]

    def run(self, command: str, timeout: float = 60) -> str:
        done = subprocess.run(self.argv(command), env=self.env, cwd=self.cwd, capture_output=True, text=True,
                              timeout=timeout)
        assert done.returncode == 0, f"{command}: {done.stdout}{done.stderr}"
        return done.stdout

    def start(self, command: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.argv(command), env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)


def hints(out: str) -> dict[str, str]:
    """The printed "try next" lines, as {first words: command}: ``nhdev dev status`` -> the line."""
    block = out.split("Try, in a shell:\n", 1)[1]
    found = {}
    for line in block.splitlines():
        if not line.startswith("  "):
            break
        command = line.split("  # ", 1)[0].strip()
        key = " ".join(command.split()[:3]) if command.startswith("nhdev ") else command.split()[0]
        if command.startswith("export "):
            key = command.split("=", 1)[0]
        found[key] = command
    return found


def http_get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def test_demo_keep_leaves_dev_mode_and_its_hints_work(tmp_path: Path) -> None:
    env = demo_env(tmp_path)
    shell = Shell(env, tmp_path)
    run = None
    try:
        done = subprocess.run([NHDEV, "demo", "--keep"], env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "kept: greeter in replace dev mode again" in done.stdout and "cleaned up" not in done.stdout
        given = hints(done.stdout)
        for key in ("export PATH", "export KUBECONFIG", "cd", "nhdev dev status", "nhdev dev terminal",
                    "nhdev dev exec", "nhdev dev run", "curl", "nhdev dev debug", "code", "nhdev dev end",
                    "nhdev sandbox down", "rm"):
            assert key in given, f"no {key!r} hint in:\n{done.stdout}"
        for key in ("export PATH", "export KUBECONFIG", "cd"):
            shell.apply(given[key])
        assert (shell.cwd / ".nhdev" / "config.yaml").is_file(), "cd leads to the copy of the example"
        launch = json.loads(re.sub(r"^\s*//.*$", "", (shell.cwd / ".vscode" / "launch.json").read_text(), flags=re.M))
        assert f"F5 on '{launch['configurations'][0]['name']}'" in done.stdout, "the code hint names the entry"

        status = shell.run(given["nhdev dev status"])
        assert re.search(r"replace by \S+ \(you\)", status) and "tunnel connected" in status, status
        assert "app.py" in shell.run(given["nhdev dev exec"])
        terminal = subprocess.run(shell.argv(given["nhdev dev terminal"]), env=shell.env, cwd=shell.cwd, text=True,
                                  input="grep -c GREETING app.py; exit 3\n", capture_output=True, timeout=60)
        assert (terminal.returncode, terminal.stdout.split()) == (3, ["3"]), terminal

        run = shell.start(given["nhdev dev run"])
        url = shlex.split(given["curl"])[1]
        deadline = time.monotonic() + 60
        while (answer := http_get(url)) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer and "Hello from nhdev's Python example" in answer, answer
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 130
        run = None

        attach = json.loads(shell.run(given["nhdev dev debug"], timeout=120))
        assert attach["language"] == "python" and attach["launchConfig"]["type"] == "debugpy"
        assert attach["pathMappings"][0]["localRoot"] == str(shell.cwd)

        assert "restored" in shell.run(given["nhdev dev end"])
        assert "not in dev mode" in shell.run(given["nhdev dev status"])
        assert "sandbox stopped" in shell.run(given["nhdev sandbox down"])
        assert not processes_mentioning(str(tmp_path)), "dev end and sandbox down leave no process behind"
    finally:
        if run is not None:
            run.kill()
        if processes_mentioning(str(tmp_path)):  # a failure above: stop what this test started
            subprocess.run([NHDEV, "sandbox", "down"], env=env, capture_output=True, timeout=60)
            for pid in processes_mentioning(str(tmp_path)):
                os.kill(pid, signal.SIGKILL)


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or environment names ``text`` (sandbox server, session, pods)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or not alive(int(entry)):
            continue
        try:
            blob = Path(f"/proc/{entry}/cmdline").read_bytes() + Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(entry))
    return found
