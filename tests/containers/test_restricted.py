"""The sidecar and the dev image under a restricted pod's rules, as plain ``podman run``s: non-root,
read-only root file system (writes only to volumes; /tmp only where a volume is mounted, as a
kubelet adds none), every capability dropped, no privilege escalation. The same rules applied by
the sandbox's kubelet from a pod's securityContext: test_restricted_devmode.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from tests.containers.podman_support import DEV_PYTHON_IMAGE, SIDECAR_IMAGE, podman, require_containers

RESTRICTED = ["--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL", "--security-opt", "no-new-privileges",
              "--user", "1000:1000", "--network", "none"]


@pytest.fixture(autouse=True)
def _containers() -> None:
    require_containers()


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"nhdev-restricted-{uuid.uuid4().hex[:10]}"
    yield name
    podman("rm", "--force", "--time", "0", name, check=False)


def key_dir(tmp_path: Path) -> Path:
    """A Secret's worth of keys: a host key and the client's authorized key, readable by uid 1000."""
    keys = tmp_path / "keys"
    keys.mkdir()
    paramiko.ECDSAKey.generate().write_private_key_file(str(keys / "ssh_host_ecdsa_key"))
    client = paramiko.ECDSAKey.generate()
    (keys / "authorized_keys").write_text(f"{client.get_name()} {client.get_base64()}\n")
    for path in [keys, *keys.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return keys


def test_sidecar_serves_ssh_with_a_read_only_root_no_capabilities_and_uid_1000(
        tmp_path: Path, container_name: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    keys = key_dir(tmp_path)
    podman("run", "--detach", "--name", container_name, *RESTRICTED,
           "--mount", f"type=bind,source={work},destination=/home/nhdev-dev",
           "--mount", f"type=bind,source={keys},destination=/var/run/nhdev/keys,ro=true",
           SIDECAR_IMAGE, "--root", "/home/nhdev-dev", "--keys", "/var/run/nhdev/keys",
           "--listen", "127.0.0.1:2222")
    probe = None
    for _ in range(50):
        probe = podman("exec", container_name, "nhdev-sidecar", "probe", "127.0.0.1:2222", check=False)
        if probe.returncode == 0:
            break
    assert probe is not None and probe.returncode == 0, (probe, podman("logs", container_name).stderr)
    status = podman("exec", container_name, "sh", "-c",
                    "id -u; grep CapEff /proc/self/status; touch /opt/x 2>&1 || echo read-only; "
                    "(echo t > /tmp/t) 2>/dev/null || echo tmp-read-only; "
                    "echo w > /home/nhdev-dev/w && echo volume-ok").stdout
    lines = status.splitlines()
    assert lines[0] == "1000"
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert "read-only" in lines[-3] and lines[-2:] == ["tmp-read-only", "volume-ok"]  # it needs no /tmp
    inspected = podman("inspect", "--format", "{{.State.Running}} {{.HostConfig.ReadonlyRootfs}}",
                       container_name).stdout.split()
    assert inspected == ["true", "true"]


def test_dev_image_works_with_a_read_only_root_and_no_capabilities(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o777)
    script = ("cd $HOME && python3 -c 'import debugpy' && git init -q repo && echo ok > repo/f "
              "&& git -C repo add f && echo tmp > /tmp/f && (touch /usr/x 2>/dev/null && echo WRITABLE || true) "
              "&& id -u && pwd")
    # /tmp: the emptyDir dev mode adds to a dev container whose root file system is read-only.
    result = podman("run", "--rm", *RESTRICTED, "--tmpfs", "/tmp:mode=1777",
                    "--mount", f"type=bind,source={work},destination=/home/nhdev-dev",
                    "--entrypoint", "sh", DEV_PYTHON_IMAGE, "-c", script, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000", "/home/nhdev-dev"]
    assert (work / "repo" / "f").stat().st_uid == 1000
