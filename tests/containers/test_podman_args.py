"""The podman runtime's command lines and its image lookup, without running podman."""

from __future__ import annotations

from pathlib import Path

import pytest

from nhdev.sandbox.images import ImageList
from nhdev.sandbox.runtime import ContainerConfig, Mount, RuntimeUnavailable, SecurityContext, make_runtime
from nhdev.sandbox.runtime import podman as podman_runtime
from nhdev.sandbox.runtime.podman import (
    container_env,
    exec_args,
    pod_create_args,
    podman_environment,
    run_args,
    user_option,
)

UID = "0b5c7e4e-1111-2222-3333-444455556666"


def config(**changes: object) -> ContainerConfig:
    values: dict[str, object] = {
        "name": "app", "argv": ["python3", "-m", "http.server", "8080"],
        "env": {"HOSTNAME": "web", "HOME": "/root", "MODE": "dev"}, "image": "ghcr.io/nhdev/dev-python:3.12"}
    values.update(changes)
    return ContainerConfig(**values)  # type: ignore[arg-type]


def test_pod_has_loopback_only_network_and_the_pods_hostname() -> None:
    args = pod_create_args(UID, "web-0")
    assert args[:2] == ["pod", "create"]
    assert args[args.index("--network") + 1] == "none"
    assert args[args.index("--hostname") + 1] == "web-0"
    assert args[args.index("--name") + 1] == f"nhdev-{UID}"
    assert "--replace" in args  # a pod left by a killed server is replaced


def test_run_joins_the_pod_and_never_pulls() -> None:
    args = run_args(UID, "ghcr.io/nhdev/dev-python:3.12", config())
    assert args[args.index("--pod") + 1] == f"nhdev-{UID}"
    assert args[args.index("--name") + 1] == f"nhdev-{UID}-app"
    assert args[args.index("--pull") + 1] == "never"
    assert "--rm" in args and "--sig-proxy=false" in args and "--init" in args
    assert "--network" not in args and "--hostname" not in args  # both come from the pod


def test_command_replaces_the_entrypoint_and_args_follow_the_image() -> None:
    args = run_args(UID, "ghcr.io/nhdev/sidecar:0.1", config(argv=["nhdev-sidecar", "--root", "/w"]))
    entrypoint = args.index("--entrypoint")
    assert args[entrypoint:] == ["--entrypoint", "nhdev-sidecar", "ghcr.io/nhdev/sidecar:0.1", "--root", "/w"]


def test_mounts_are_binds_read_only_when_asked() -> None:
    mounts = [Mount(Path("/state/pods/u/volumes/code"), "/app", read_only=True),
              Mount(Path("/state/pods/u/volumes/work"), "/home/nhdev-dev")]
    args = run_args(UID, "img", config(mounts=mounts))
    values = [args[i + 1] for i, arg in enumerate(args) if arg == "--mount"]
    assert values == ["type=bind,source=/state/pods/u/volumes/code,destination=/app,ro=true",
                      "type=bind,source=/state/pods/u/volumes/work,destination=/home/nhdev-dev"]


def test_environment_and_working_dir() -> None:
    args = run_args(UID, "img", config(working_dir="/home/nhdev-dev"))
    assert args[args.index("--workdir") + 1] == "/home/nhdev-dev"
    values = [args[i + 1] for i, arg in enumerate(args) if arg == "--env"]
    assert values == ["HOSTNAME=web", "MODE=dev"]


def test_the_sandbox_default_home_is_left_to_the_image_but_a_chosen_home_is_kept() -> None:
    assert "HOME" not in container_env(config())
    assert container_env(config(env={"HOME": "/data"})) == {"HOME": "/data"}


@pytest.mark.parametrize(("user", "group", "expected"), [
    (None, None, []), (1000, None, ["--user", "1000"]), (1000, 1000, ["--user", "1000:1000"]),
    (0, 0, ["--user", "0:0"]), (None, 1000, []),
])
def test_user_option(user: int | None, group: int | None, expected: list[str]) -> None:
    assert user_option(config(security=SecurityContext(run_as_user=user, run_as_group=group))) == expected


def test_exec_flags_follow_tty_and_stdin() -> None:
    assert exec_args(UID, "app", ["id"], tty=False, stdin=False) == ["exec", f"nhdev-{UID}-app", "id"]
    assert exec_args(UID, "app", ["sh"], tty=False, stdin=True) == ["exec", "--interactive", f"nhdev-{UID}-app", "sh"]
    assert exec_args(UID, "app", ["bash"], tty=True, stdin=True)[:3] == ["exec", "--interactive", "--tty"]


def test_project_config_files_are_used_unless_the_caller_names_its_own() -> None:
    env = podman_environment({"PATH": "/usr/bin"})
    assert env["CONTAINERS_CONF"].endswith("dev_images/podman/containers.conf")
    assert env["CONTAINERS_REGISTRIES_CONF"].endswith("dev_images/podman/registries.conf")
    mine = podman_environment({"CONTAINERS_CONF": "/etc/mine.conf"})
    assert mine["CONTAINERS_CONF"] == "/etc/mine.conf"


def test_project_containers_conf_carries_the_workarounds() -> None:
    text = (podman_runtime.project_config_dir() / "containers.conf").read_text()
    assert 'runtime = "runc"' in text
    assert 'default_ulimits = ["nofile=1024:1024", "nproc=32768:32768"]' in text
    assert 'netns = "none"' in text and 'pull_policy = "never"' in text


class FakeStore:
    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.asked: list[str] = []

    def exists(self, image: str) -> bool:
        self.asked.append(image)
        return image in self.present

    def user(self, image: str) -> str | None:
        return "1000:1000" if image in self.present else None


def test_image_list_asks_the_local_store_and_gives_real_images_nothing_of_the_host(tmp_path: Path) -> None:
    store = FakeStore({"ghcr.io/nhdev/dev-python:3.12"})
    images = ImageList(tmp_path, local_store=store)
    assert images.known("ghcr.io/nhdev/dev-python:3.12")
    assert not images.known("python:3.12-slim")  # in the default pattern list, but not in the store
    assert not images.known("")
    assert images.environment("ghcr.io/nhdev/dev-python:3.12") == {}
    assert images.mounts("ghcr.io/nhdev/sidecar:0.1") == ()
    assert store.asked == ["ghcr.io/nhdev/dev-python:3.12", "python:3.12-slim"]


def test_image_store_remembers_found_images_and_their_user_only(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"a": "1000:1000", "b": None, "root": ""}
    calls: list[str] = []

    def user(image: str, **_: object) -> str | None:
        calls.append(image)
        return answers[image]

    monkeypatch.setattr(podman_runtime, "image_user", user)
    store = podman_runtime.PodmanImageStore()
    assert store.exists("a") and store.exists("a") and store.user("a") == "1000:1000"
    assert not store.exists("b") and not store.exists("b") and store.user("b") is None
    assert store.exists("root") and store.user("root") == ""  # no USER: root, but the image is there
    assert calls == ["a", "b", "b", "b", "root"]
    images = ImageList(Path("/nonexistent"), local_store=store)
    assert images.user("a") == "1000:1000"
    assert ImageList(Path("/nonexistent")).user("a") is None  # stand-in images: unknown


def test_make_runtime_explains_a_missing_podman(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podman_runtime, "podman_available", lambda: False)
    with pytest.raises(RuntimeUnavailable, match="podman and runc"):
        make_runtime("podman")
