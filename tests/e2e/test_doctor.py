"""`nhdev doctor` against the sandbox and against nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

NHDEV = str(Path(sys.executable).parent / "nhdev")


def doctor(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NHDEV, "doctor", *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, **env})


def test_doctor_on_the_sandbox_passes(kubeconfig: Path, tmp_path: Path) -> None:
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    done = doctor("-o", "json", env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert checks["kube access"]["ok"] and "127.0.0.1" in checks["kube access"]["detail"]
    assert checks["permissions"]["ok"]
    assert checks["file watching"]["ok"]


def test_doctor_without_a_cluster_says_what_to_fix(tmp_path: Path) -> None:
    done = doctor(env={"KUBECONFIG": str(tmp_path / "missing")}, cwd=tmp_path)
    assert done.returncode == 1
    assert "✗ kube access: no kubeconfig found" in done.stdout and "fix:" in done.stdout
    assert "Traceback" not in done.stderr


def test_doctor_names_a_missing_namespace(kubeconfig: Path, tmp_path: Path) -> None:
    done = doctor("-n", "no-such-ns", env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path)
    assert done.returncode == 1 and "namespace no-such-ns does not exist" in done.stdout


def test_an_unreachable_cluster_is_named_with_the_root_cause_only(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {}}]\n")
    done = doctor(env={"KUBECONFIG": str(kubeconfig)}, cwd=tmp_path)
    assert done.returncode == 1
    assert f"cannot reach the cluster at http://127.0.0.1:{port}: connection refused\n" in done.stdout, done.stdout
    listing = subprocess.run([NHDEV, "cluster", "workloads"], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path, env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    assert listing.returncode == 1 and "Traceback" not in listing.stderr
    assert listing.stderr.strip().endswith(f"cannot reach the cluster at http://127.0.0.1:{port}: connection refused")
