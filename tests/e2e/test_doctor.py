"""`nhdev doctor` against the sandbox and against nothing."""

from __future__ import annotations

import json
import os
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
