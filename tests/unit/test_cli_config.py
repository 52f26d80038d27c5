"""``nhdev config`` through the real console script, in subprocesses."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.unit.test_config_broken import CORPUS

NHDEV = str(Path(sys.executable).parent / "nhdev")
GOOD = Path(__file__).parent / "configs" / "good"


def nhdev(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "NHDEV_DEBUG"}
    return subprocess.run([NHDEV, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".nhdev").mkdir()
    shutil.copy(GOOD / "nocalhost-golang.yaml", tmp_path / ".nhdev" / "config.yaml")
    return tmp_path


def test_validate_ok_finds_the_config_itself(project: Path) -> None:
    result = nhdev("config", "validate", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok: .nhdev/config.yaml: 1 service (app-samples: 1 container)"


def test_validate_falls_back_to_the_nocalhost_location_from_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / ".nocalhost").mkdir()
    shutil.copy(GOOD / "nocalhost-golang.yaml", tmp_path / ".nocalhost" / "config.yaml")
    (tmp_path / "src").mkdir()
    result = nhdev("config", "validate", cwd=tmp_path / "src")
    assert result.returncode == 0, result.stderr
    assert "nocalhost/config.yaml: 1 service" in result.stdout


def test_validate_without_a_config_says_how_to_make_one(tmp_path: Path) -> None:
    result = nhdev("config", "validate", cwd=tmp_path)
    assert result.returncode == 2
    assert "no dev config" in result.stderr and "nhdev config init" in result.stderr


def test_validate_prints_every_error_one_per_line_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("name: app\ncontainers:\n  - dev:\n      imagee: x\n      portForward: ['80:abc']\n")
    result = nhdev("config", "validate", "bad.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines == [
        "error: bad.yaml:4:7: containers[0].dev.imagee: unknown key (did you mean 'image'?)",
        "bad.yaml:5:21: containers[0].dev.portForward[0]: '80:abc' is not a port forward "
        '(expected "LOCAL:REMOTE", ":REMOTE", "PORT" or "R:REMOTE:LOCAL", ports 1-65535)',
    ]
    assert "Traceback" not in result.stderr


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [\n")
    assert "Traceback" in nhdev("--debug", "config", "validate", "bad.yaml", cwd=tmp_path).stderr
    assert "Traceback" not in nhdev("config", "validate", "bad.yaml", cwd=tmp_path).stderr


def test_a_broken_config_exits_2_through_the_console_script(tmp_path: Path) -> None:
    # Every corpus file goes through the CLI in-process (test_config_broken); this one as a process.
    result = nhdev("config", "validate", str(CORPUS[0]), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {CORPUS[0]}:")


@pytest.mark.parametrize("output", ["yaml", "json"])
def test_show_prints_the_effective_config(project: Path, output: str) -> None:
    result = nhdev("config", "show", "--output", output, cwd=project)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout) if output == "json" else yaml.safe_load(result.stdout)
    dev = data["containers"][0]["dev"]
    assert dev["workDir"] == "/home/nocalhost-dev"
    assert dev["sync"] == {
        "type": "send", "mode": "gitIgnore", "filePattern": ["."], "ignoreFilePattern": [], "deleteProtection": True
    }  # fmt: skip
    assert dev["hotReload"] == {"enabled": True, "ignore": [], "delayMs": 300}
    assert dev["portForward"] == ["3200:4200"]
    assert dev["imagePullPolicy"] == "IfNotPresent"


def test_show_output_validates_again(project: Path) -> None:
    shown = nhdev("config", "show", "--config", ".nhdev/config.yaml", cwd=project).stdout
    (project / "shown.yaml").write_text(shown)
    assert nhdev("config", "validate", "shown.yaml", cwd=project).returncode == 0


def test_show_rejects_two_different_paths(project: Path) -> None:
    result = nhdev("config", "show", "a.yaml", "--config", "b.yaml", cwd=project)
    assert result.returncode == 2 and "not both" in result.stderr


@pytest.mark.parametrize("language", ["python", "go", "node", "java"])
def test_init_writes_a_config_that_validates(tmp_path: Path, language: str) -> None:
    result = nhdev("config", "init", "--workload", "deploy/shop", "--language", language, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wrote .nhdev/config.yaml"
    validated = nhdev("config", "validate", cwd=tmp_path)
    assert validated.stdout.strip() == "ok: .nhdev/config.yaml: 1 service (shop: 1 container)"


def test_init_refuses_to_overwrite_and_force_keeps_a_backup(tmp_path: Path) -> None:
    nhdev("config", "init", "--workload", "deployment/a", "--language", "go", "--dir", str(tmp_path), cwd=tmp_path)
    config = tmp_path / ".nhdev" / "config.yaml"
    config.write_text("# my edits\nname: a\n")

    refused = nhdev("config", "init", "--workload", "deployment/a", "--language", "python", cwd=tmp_path)
    assert refused.returncode == 2 and "already exists" in refused.stderr and "--force" in refused.stderr
    assert config.read_text() == "# my edits\nname: a\n"

    forced = nhdev("config", "init", "--workload", "deployment/a", "--language", "python", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    backups = list(config.parent.glob("config.yaml.bak-*"))
    assert len(backups) == 1 and backups[0].read_text() == "# my edits\nname: a\n"
    assert "kept the previous config as .nhdev/config.yaml.bak-" in forced.stdout
    assert "debugpy --listen 0.0.0.0:5678" in config.read_text()


def test_init_rejects_a_bad_workload(tmp_path: Path) -> None:
    result = nhdev("config", "init", "--workload", "shop", "--language", "go", cwd=tmp_path)
    assert result.returncode == 2 and "KIND/NAME" in result.stderr
    assert not (tmp_path / ".nhdev").exists()
