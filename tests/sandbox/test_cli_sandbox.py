"""`nhdev sandbox ...` through the real console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.sandbox.contract import alive, descendants, kubectl, needs_kubectl, wait_for

NHDEV = str(Path(sys.executable).parent / "nhdev")

pytestmark = pytest.mark.skipif(not shutil.which("bwrap"), reason="bubblewrap not installed")


def nhdev(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    env.pop("KUBECONFIG", None)
    env.pop("NHDEV_SANDBOX_DIR", None)
    proc = subprocess.run([NHDEV, *args], capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"nhdev {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@needs_kubectl
def test_up_status_kubeconfig_down_leaves_no_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    other = {"apiVersion": "v1", "kind": "Config", "current-context": "work",
             "clusters": [{"name": "work", "cluster": {"server": "https://127.0.0.9:6443"}}],
             "users": [{"name": "work", "user": {}}],
             "contexts": [{"name": "work", "context": {"cluster": "work", "user": "work"}}]}
    (home / ".kube" / "config").write_text(yaml.safe_dump(other))

    up = json.loads(nhdev("sandbox", "up", "--merge-kubeconfig", "--output", "json", home=home).stdout)
    assert up["started"] is True and up["url"].startswith("http://127.0.0.1:")
    state_dir = home / ".nhdev" / "sandbox"
    assert Path(up["kubeconfig"]) == state_dir / "kubeconfig"
    try:
        again = nhdev("sandbox", "up", home=home).stdout
        assert "already running" in again and str(up["pid"]) in again

        status = json.loads(nhdev("sandbox", "status", "-o", "json", home=home).stdout)
        assert status["running"] and status["healthy"] and status["pid"] == up["pid"]
        path = nhdev("sandbox", "kubeconfig", "--path", home=home).stdout.strip()
        assert path == up["kubeconfig"]
        assert "nhdev-sandbox" in nhdev("sandbox", "kubeconfig", home=home).stdout

        merged = yaml.safe_load((home / ".kube" / "config").read_text())
        assert merged["current-context"] == "work"
        assert {c["name"] for c in merged["contexts"]} == {"work", "nhdev-sandbox"}
        assert list((home / ".kube").glob("config.nhdev-backup-*")), "the old kubeconfig is kept"

        # a pod with processes, so `down` has something to stop
        marker = uuid.uuid4().hex
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
               "spec": {"restartPolicy": "Never", "containers": [
                   {"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                    "env": [{"name": "MARK", "value": marker}]}]}}
        kubectl(Path(path), "apply", "-f", "-", input=json.dumps(pod))
        kubectl(Path(path), "wait", "--for=condition=Ready", "pod/sleeper", "--timeout=30s")
        tree = descendants(up["pid"])
        assert tree, "the server should have pod processes below it"
    finally:
        down = nhdev("sandbox", "down", home=home)
    assert "stopped" in down.stdout
    assert not alive(up["pid"])
    wait_for("every pod process gone", lambda: not [p for p in tree if alive(p)], timeout=10)
    assert "not running" in nhdev("sandbox", "status", home=home).stdout
    assert "not running" in nhdev("sandbox", "down", home=home).stdout


def test_kubeconfig_when_not_running_is_a_clear_error(tmp_path: Path) -> None:
    proc = nhdev("sandbox", "kubeconfig", "--state-dir", str(tmp_path / "none"), home=tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: sandbox not running")
    assert "Traceback" not in proc.stderr


def test_images_add_list_remove(tmp_path: Path) -> None:
    sd = str(tmp_path / "state")
    listed = nhdev("sandbox", "images", "--state-dir", sd, home=tmp_path).stdout.split()
    assert any(name.startswith("python") for name in listed)
    nhdev("sandbox", "images", "--state-dir", sd, "add", "registry.example/team/app:1.2", home=tmp_path)
    assert "registry.example/team/app:1.2" in nhdev("sandbox", "images", "--state-dir", sd, home=tmp_path).stdout
    nhdev("sandbox", "images", "--state-dir", sd, "remove", "registry.example/team/app:1.2", home=tmp_path)
    assert "registry.example/team/app:1.2" not in nhdev(
        "sandbox", "images", "--state-dir", sd, home=tmp_path).stdout
