"""`nhdev demo`, the first quick-start command, end to end on its own sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sandbox.contract import alive

NHDEV = str(Path(sys.executable).parent / "nhdev")


@pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap not installed")
def test_demo_shows_a_live_edit_and_cleans_up(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NHDEV_")}
    env.update(HOME=str(tmp_path / "home"), NHDEV_SANDBOX_DIR=str(tmp_path / "sandbox"))
    done = subprocess.run([NHDEV, "demo"], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in ("sandbox cluster up", "replace dev mode", "edited app.py locally", "the original is back",
                 "duplicate mode", "kept answering", "cleaned up", "demo done"):
        assert line in out, out
    assert "Hello again, edited on your machine" in out
    assert out.count("Hello from nhdev's Python example") >= 3, "before, in dev mode, and restored"
    assert not processes_mentioning(str(tmp_path)), "the demo leaves no process behind"


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
