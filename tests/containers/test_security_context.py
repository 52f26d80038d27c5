"""A pod's securityContext as the sandbox's kubelet and podman runtime apply it, without podman:
pod and container levels merged like the kubelet does, its runAsNonRoot check with its messages,
the podman options, and fsGroup on volumes."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from nhdev.sandbox.container_config import (
    ContainerConfigError,
    build_container_config,
    image_uid,
    security_context,
    verify_run_as_non_root,
)
from nhdev.sandbox.runtime import ContainerConfig, SecurityContext
from nhdev.sandbox.runtime.podman import run_args, security_options
from nhdev.sandbox.volumes import prepare_volumes, set_volume_ownership

RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000,
                  "supplementalGroups": [3000], "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}


def pod(pod_context: dict[str, Any] | None = None, container_context: dict[str, Any] | None = None
        ) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "localhost/app:1", "command": ["python3", "app.py"]}
    if container_context is not None:
        container["securityContext"] = container_context
    spec: dict[str, Any] = {"containers": [container]}
    if pod_context is not None:
        spec["securityContext"] = pod_context
    return {"metadata": {"name": "web-1", "namespace": "team", "uid": "u-1"}, "spec": spec}


def effective(p: dict[str, Any]) -> SecurityContext:
    return security_context(p, p["spec"]["containers"][0])


def test_a_restricted_pod_becomes_one_typed_context() -> None:
    assert effective(pod(RESTRICTED_POD, RESTRICTED_CONTAINER)) == SecurityContext(
        run_as_user=1000, run_as_group=1000, run_as_non_root=True, read_only_root_filesystem=True,
        allow_privilege_escalation=False, capabilities_add=("NET_BIND_SERVICE",), capabilities_drop=("ALL",),
        supplemental_groups=(3000,), fs_group=2000)
    assert effective(pod()) == SecurityContext()


def test_the_container_level_wins_and_container_only_fields_never_come_from_the_pod() -> None:
    context = effective(pod({"runAsUser": 1000, "runAsNonRoot": True, "readOnlyRootFilesystem": True},
                            {"runAsUser": 2000, "runAsNonRoot": False}))
    assert (context.run_as_user, context.run_as_non_root) == (2000, False)
    assert not context.read_only_root_filesystem  # not a pod-level field


def test_supplementary_groups_are_the_pods_then_fs_group_once() -> None:
    assert SecurityContext(supplemental_groups=(3000, 2000), fs_group=2000).supplementary_groups() == (3000, 2000)
    assert SecurityContext(fs_group=2000).supplementary_groups() == (2000,)


@pytest.mark.parametrize(("image_user", "uid"), [("", 0), ("0", 0), ("1000", 1000), ("1000:1000", 1000),
                                                 ("nhdev-dev", None), ("app:app", None)])
def test_image_uid(image_user: str, uid: int | None) -> None:
    assert image_uid(image_user) == uid


WHERE = '(pod: "web-1_team(u-1)", container: app)'


@pytest.mark.parametrize(("pod_context", "image_user", "message"), [
    ({"runAsNonRoot": True}, "", f"container has runAsNonRoot and image will run as root {WHERE}"),
    ({"runAsNonRoot": True}, "0:0", f"container has runAsNonRoot and image will run as root {WHERE}"),
    ({"runAsNonRoot": True}, "nhdev-dev",
     f"container has runAsNonRoot and image has non-numeric user (nhdev-dev), cannot verify user is non-root {WHERE}"),
    ({"runAsNonRoot": True, "runAsUser": 0}, "1000", f"container's runAsUser breaks non-root policy {WHERE}"),
    ({"runAsNonRoot": True, "runAsUser": 0}, None, f"container's runAsUser breaks non-root policy {WHERE}"),
])
def test_run_as_non_root_refuses_root_with_the_kubelets_messages(pod_context: dict[str, Any],
                                                                image_user: str | None, message: str) -> None:
    p = pod(pod_context)
    with pytest.raises(ContainerConfigError) as raised:
        verify_run_as_non_root(p, "app", effective(p), image_user)
    assert str(raised.value) == message


@pytest.mark.parametrize(("pod_context", "image_user"), [
    ({"runAsNonRoot": True}, "1000:1000"),
    ({"runAsNonRoot": True, "runAsUser": 1000}, ""),  # runAsUser decides, not the image
    ({"runAsNonRoot": True}, None),  # a stand-in image: its user is unknown
    ({"runAsNonRoot": False}, ""),
    ({}, ""),
])
def test_run_as_non_root_lets_non_root_and_unknown_image_users_run(pod_context: dict[str, Any],
                                                                   image_user: str | None) -> None:
    p = pod(pod_context)
    verify_run_as_non_root(p, "app", effective(p), image_user)


def test_the_config_carries_the_context_and_refuses_a_root_image(tmp_path: Path) -> None:
    p = pod(RESTRICTED_POD, RESTRICTED_CONTAINER)
    config = build_container_config(None, p, p["spec"]["containers"][0], {}, image_user="")  # type: ignore[arg-type]
    assert config.security == effective(p) and config.run_as_user == 1000 and config.run_as_group == 1000
    rooted = pod({"runAsNonRoot": True})
    with pytest.raises(ContainerConfigError, match="image will run as root"):
        build_container_config(None, rooted, rooted["spec"]["containers"][0], {}, image_user="")  # type: ignore[arg-type]


def test_podman_options_of_a_restricted_container() -> None:
    p = pod(RESTRICTED_POD, RESTRICTED_CONTAINER)
    config = ContainerConfig("app", ["python3", "app.py"], {}, security=effective(p), image="img")
    assert security_options(config) == [
        "--user", "1000:1000", "--group-add", "3000", "--group-add", "2000",
        "--read-only", "--read-only-tmpfs=false", "--cap-drop", "ALL", "--cap-add", "NET_BIND_SERVICE",
        "--security-opt", "no-new-privileges"]
    args = run_args("u-1", "img", config)
    assert args.index("--read-only") < args.index("--entrypoint")  # options before the image


def test_podman_options_of_an_unrestricted_container_are_none() -> None:
    assert security_options(ContainerConfig("app", ["sh"], {})) == []
    escalation_allowed = SecurityContext(allow_privilege_escalation=True, privileged=True)
    assert security_options(ContainerConfig("app", ["sh"], {}, security=escalation_allowed)) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's group to any gid needs root")
def test_fs_group_owns_the_volumes_like_set_volume_ownership(tmp_path: Path) -> None:
    p = pod({"fsGroup": 2000})
    p["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}},
                            {"name": "host", "hostPath": {"path": str(tmp_path / "host"), "type": "DirectoryOrCreate"}}]
    volumes = prepare_volumes(None, p, tmp_path / "pod")  # type: ignore[arg-type]
    scratch = volumes["scratch"].path
    info = scratch.stat()
    assert info.st_gid == 2000 and info.st_mode & stat.S_ISGID and stat.S_IMODE(info.st_mode) & 0o070 == 0o070
    assert (tmp_path / "host").stat().st_gid != 2000  # host paths are left alone

    files = tmp_path / "secret"
    files.mkdir()
    (files / "key").write_text("k")
    (files / "key").chmod(0o400)
    set_volume_ownership(files, 2000, read_only=True)
    key = (files / "key").stat()
    assert key.st_gid == 2000 and stat.S_IMODE(key.st_mode) == 0o440
