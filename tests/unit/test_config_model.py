"""The schema: every field, its default, its normalisation; the good configs validate."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from nhdev.config import DevConfig, ServiceConfig, load_config, parse_config
from nhdev.config.model import DEFAULT_WORK_DIR, ShellCommand
from nhdev.errors import ConfigError, UsageError

GOOD = Path(__file__).parent / "configs" / "good"


def parse(data: Any, env: dict[str, str] | None = None) -> DevConfig:
    return parse_config(yaml.safe_dump(data, sort_keys=False), env=env or {})


def dev_of(dev: dict[str, Any]) -> Any:
    return parse({"name": "app", "containers": [{"name": "app", "dev": dev}]}).service().container().dev


def only_issue(data: Any) -> tuple[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse(data)
    assert len(caught.value.issues) == 1, caught.value.render()
    issue = caught.value.issues[0]
    return issue.path, issue.message


def test_nocalhost_golang_example_validates_unchanged() -> None:
    service = load_config(GOOD / "nocalhost-golang.yaml", env={}).service("app-samples", "deployment")
    assert service.service_type == "deployment"
    dev = service.container("app-samples").dev
    assert dev.image == "nocalhost-docker.pkg.coding.net/nocalhost/dev-images/golang:1.16"
    assert dev.shell == "zsh"
    assert dev.work_dir == "/home/nocalhost-dev"
    assert dev.storage_class == "local-path"
    assert dev.resources is not None and dev.resources.limits is not None
    assert (dev.resources.limits.cpu, dev.resources.limits.memory) == ("2", "4096Mi")
    assert [(v.path, v.capacity) for v in dev.persistent_volume_dirs] == [("/go", "5Gi")]
    assert dev.command.run is not None and dev.command.run.argv() == ["sh", "-c", "go run main.go grpc"]
    assert dev.command.debug is not None
    assert dev.command.debug.shell_command() == (
        "dlv --headless --log --listen :5200 --api-version 2 --accept-multiclient debug ./main.go -- grpc"
    )
    assert (dev.debug.language, dev.debug.remote_debug_port) == ("go", 5200)
    assert dev.hot_reload.enabled is True
    assert (dev.sync.type, dev.sync.mode, dev.sync.delete_protection) == ("send", "gitIgnore", True)
    assert dev.env_dict() == {"foo": "bar"}
    assert [(pf.local, pf.remote, pf.reverse) for pf in dev.port_forward] == [(3200, 4200, False)]


def test_nhctl_dump_with_empty_values_and_nocalhost_only_keys_validates() -> None:
    dev = load_config(GOOD / "nhctl-dump.yaml", env={}).service("api-server").container().dev
    assert dev.shell is None and dev.storage_class is None and dev.resources is None
    assert dev.command.build is None and dev.command.hot_reload_run is None
    assert dev.command.debug is not None and dev.command.debug.words[3] == ":2345"
    assert dev.sync.delete_protection is True
    assert [pf.text() for pf in dev.port_forward] == ["8080:8080"]


def test_every_field_with_non_default_values(tmp_path: Path) -> None:
    shutil.copy(GOOD / "full.yaml", tmp_path)
    shutil.copy(GOOD / "full.env", tmp_path)
    config = load_config(tmp_path / "full.yaml", env={"NHDEV_TEST_IMAGE_TAG": "from-environment"})
    assert config.is_list
    web = config.service("web", "sts")
    assert web.service_type == "statefulset"
    assert web.duplicate.ttl == "1h30m" and web.duplicate.ttl_seconds() == 5400
    dev = web.container("web").dev
    assert dev.image_pull_policy == "Always"
    assert (dev.shell, dev.work_dir, dev.storage_class, dev.dev_container_name) == ("bash", "/work", "fast", "web-dev")
    assert dev.resources is not None and dev.resources.requests is not None
    assert (dev.resources.requests.cpu, dev.resources.requests.memory) == ("500m", "1e9")
    assert [(v.path, v.capacity, v.wait_for_first_consumer) for v in dev.persistent_volume_dirs] == [
        ("/root/.cache/pip", "10Gi", False),
        ("/data", "1.5Gi", True),
    ]
    commands = dev.command
    assert commands.build is not None and commands.build.argv() == ["sh", "-c", "pip install -r requirements.txt"]
    assert commands.run is not None and commands.run.shell_command() == "python app.py --port 8000"
    assert commands.hot_reload_run is not None and commands.hot_reload_debug is not None
    assert (dev.debug.language, dev.debug.remote_debug_port) == ("python", 5678)
    assert (dev.hot_reload.enabled, dev.hot_reload.ignore, dev.hot_reload.delay_ms) == (True, ["*.log"], 50)
    assert dev.sync.type == "sendReceive" and dev.sync.delete_protection is False
    assert (dev.sync.file_pattern, dev.sync.ignore_file_pattern) == (["src", "app.py"], ["*.pyc"])
    assert dev.env_dict() == {
        "DEBUG": "1",  # env wins over the env file
        "PORT": "8000",
        "FROM_ENV": "from-environment",
        "API_URL": "http://api:8080",
        "QUOTED": "a b",
        "PLAIN": "x",
    }
    assert [pf.text() for pf in dev.port_forward] == ["8000:8000", ":5432", "6379:6379", "9000:9000", "R:9003:9003"]
    assert dev.port_forward[4].reverse and (dev.port_forward[4].remote, dev.port_forward[4].local) == (9003, 9003)
    assert dev.sidecar_image == "ghcr.io/nhdev/sidecar:1"
    assert [(p.type, type(p.patch)) for p in dev.patches] == [("merge", str), ("strategic", dict)]
    assert web.container("worker").dev.hot_reload.enabled is False
    assert config.service("jobs", "cronjob").containers == []


def test_defaults() -> None:
    service = parse({"name": "app"}).service()
    assert service.service_type is None and service.containers == []
    assert service.duplicate.ttl is None and service.duplicate.ttl_seconds() is None
    container = service.container()
    assert container.name is None
    dev = container.dev
    assert dev.image is None and dev.shell is None and dev.storage_class is None
    assert dev.image_pull_policy == "IfNotPresent"
    assert dev.work_dir == DEFAULT_WORK_DIR == "/home/nhdev-dev"
    assert dev.dev_container_name is None  # keep the original container's name
    assert dev.resources is None and dev.persistent_volume_dirs == []
    assert dev.command.run is None and dev.command.debug is None and dev.command.build is None
    assert dev.debug.language is None and dev.debug.remote_debug_port is None
    assert (dev.hot_reload.enabled, dev.hot_reload.ignore, dev.hot_reload.delay_ms) == (False, [], 300)
    assert (dev.sync.type, dev.sync.mode, dev.sync.file_pattern) == ("send", "pattern", ["."])
    assert dev.sync.ignore_file_pattern == [] and dev.sync.delete_protection is True
    assert dev.env == [] and dev.env_from is None and dev.port_forward == [] and dev.patches == []
    assert dev.sidecar_image is None


def test_capacity_defaults_to_10gi() -> None:
    assert dev_of({"persistentVolumeDirs": [{"path": "/data"}]}).persistent_volume_dirs[0].capacity == "10Gi"


def test_delete_protection_defaults_to_true_even_with_a_sync_block() -> None:
    assert dev_of({"sync": {"type": "sendReceive"}}).sync.delete_protection is True


@pytest.mark.parametrize(
    ("written", "normalised"),
    [("send", "send"), ("SEND", "send"), ("sendonly", "send"), ("", "send"), ("sendReceive", "sendReceive"),
     ("sendreceive", "sendReceive"), ("SendReceive", "sendReceive")],
)  # fmt: skip
def test_sync_type_forms(written: str, normalised: str) -> None:
    assert dev_of({"sync": {"type": written}}).sync.type == normalised


@pytest.mark.parametrize(("written", "normalised"), [("pattern", "pattern"), ("GITIGNORE", "gitIgnore")])
def test_sync_mode_forms(written: str, normalised: str) -> None:
    assert dev_of({"sync": {"mode": written}}).sync.mode == normalised


@pytest.mark.parametrize(
    ("written", "kind"),
    [("deployment", "deployment"), ("Deployments", "deployment"), ("deploy", "deployment"),
     ("deployment.apps", "deployment"), ("sts", "statefulset"), ("StatefulSet", "statefulset"),
     ("ds", "daemonset"), ("jobs", "job"), ("cj", "cronjob"), ("CronJob", "cronjob"), ("po", "pod"),
     ("pods", "pod")],
)  # fmt: skip
def test_service_type_forms(written: str, kind: str) -> None:
    assert parse({"name": "app", "serviceType": written}).service().service_type == kind


@pytest.mark.parametrize("policy", ["Always", "IfNotPresent", "Never", "never"])
def test_image_pull_policies(policy: str) -> None:
    assert dev_of({"imagePullPolicy": policy}).image_pull_policy.lower() == policy.lower()


@pytest.mark.parametrize("language", ["python", "go", "node", "java", "php", "ruby", "Go"])
def test_debug_languages(language: str) -> None:
    assert dev_of({"debug": {"language": language}}).debug.language == language.lower()


def test_unknown_language_lists_the_choices() -> None:
    path, message = only_issue({"containers": [{"dev": {"debug": {"language": "cobol"}}}]})
    assert path == "containers[0].dev.debug.language"
    assert "python, go, node, java, php, ruby" in message


@pytest.mark.parametrize(
    ("entry", "local", "remote", "reverse"),
    [("3200:4200", 3200, 4200, False), (":8080", None, 8080, False), ("9000", 9000, 9000, False),
     (5432, 5432, 5432, False), ("R:9003:9004", 9004, 9003, True), ("30:80", 30, 80, False)],
)  # fmt: skip
def test_port_forward_forms(entry: Any, local: int | None, remote: int, reverse: bool) -> None:
    forward = dev_of({"portForward": [entry]}).port_forward[0]
    assert (forward.local, forward.remote, forward.reverse) == (local, remote, reverse)


def test_unquoted_base60_looking_port_pair_is_read_as_text() -> None:
    # YAML 1.1 reads 30:40 as the number 1840; a port pair is meant.
    config = parse_config("containers:\n  - dev:\n      portForward:\n        - 30:40\n", env={})
    assert config.service().container().dev.port_forward[0].text() == "30:40"


@pytest.mark.parametrize("entry", ["80:abc", "0:80", "80:65536", "-1", "a:b:c", "1:2:3", "", True, 1.5])
def test_bad_port_forwards(entry: Any) -> None:
    path, message = only_issue({"containers": [{"dev": {"portForward": [entry]}}]})
    assert path == "containers[0].dev.portForward[0]"
    assert "LOCAL:REMOTE" in message


@pytest.mark.parametrize("quantity", ["5Gi", "500m", "2", "1.5", "1e3", 2, 0.5, "100Ki", "1E", ".5"])
def test_quantities(quantity: Any) -> None:
    assert dev_of({"resources": {"limits": {"cpu": quantity}}}).resources.limits.cpu == str(quantity)


@pytest.mark.parametrize("quantity", ["5Gb", "5 Gi", "Gi", "1.2.3", "-1", "five", True])
def test_bad_quantities(quantity: Any) -> None:
    path, message = only_issue({"containers": [{"dev": {"resources": {"requests": {"memory": quantity}}}}]})
    assert path == "containers[0].dev.resources.requests.memory"
    assert "expected" in message


def test_capacity_must_be_positive() -> None:
    path, _ = only_issue({"containers": [{"dev": {"persistentVolumeDirs": [{"path": "/d", "capacity": "0"}]}}]})
    assert path == "containers[0].dev.persistentVolumeDirs[0].capacity"


def test_command_list_words_are_joined_and_run_by_sh() -> None:
    command = dev_of({"command": {"run": ["go run main.go grpc", "&&", "echo", "done"]}}).command.run
    assert command.shell_command() == "go run main.go grpc && echo done"
    assert command.argv() == ["sh", "-c", "go run main.go grpc && echo done"]
    assert command.argv("bash") == ["bash", "-c", "go run main.go grpc && echo done"]


def test_command_as_plain_string_and_numbers_as_words() -> None:
    dev = dev_of({"command": {"run": "python app.py", "debug": ["dlv", "--listen", 2345]}})
    assert dev.command.run.words == ("python app.py",)
    assert dev.command.debug.shell_command() == "dlv --listen 2345"


@pytest.mark.parametrize("run", [[], "", "   ", ["", " "]])
def test_empty_run_command_is_an_error(run: Any) -> None:
    path, message = only_issue({"containers": [{"dev": {"command": {"run": run}}}]})
    assert (path, "empty") == ("containers[0].dev.command.run", "empty" if "empty" in message else message)


def test_shell_command_model_round_trips_as_a_list() -> None:
    assert ShellCommand.model_validate("make run").model_dump() == ["make run"]


def test_hot_reload_bool_or_object() -> None:
    assert dev_of({"hotReload": True}).hot_reload.enabled is True
    hot = dev_of({"hotReload": {"enabled": True, "ignore": ["dist/"], "delayMs": 10}}).hot_reload
    assert (hot.enabled, hot.ignore, hot.delay_ms) == (True, ["dist/"], 10)
    path, _ = only_issue({"containers": [{"dev": {"hotReload": "sometimes"}}]})
    assert path == "containers[0].dev.hotReload"


def test_duplicate_container_names_are_rejected() -> None:
    path, message = only_issue({"containers": [{"name": "a"}, {"name": "a"}]})
    assert path == "containers[1].name" and "twice" in message


def test_unknown_key_suggests_the_near_miss() -> None:
    path, message = only_issue({"containers": [{"dev": {"imagePulPolicy": "Always"}}]})
    assert path == "containers[0].dev.imagePulPolicy"
    assert "did you mean 'imagePullPolicy'?" in message


def test_snake_case_keys_are_not_the_file_format() -> None:
    path, message = only_issue({"containers": [{"dev": {"work_dir": "/x"}}]})
    assert path == "containers[0].dev.work_dir" and "did you mean 'workDir'?" in message


def test_unknown_key_without_near_miss_lists_allowed_keys() -> None:
    _, message = only_issue({"name": "app", "zzz": 1})
    assert "expected one of: name, serviceType, containers" in message


def test_all_errors_of_a_file_are_reported() -> None:
    with pytest.raises(ConfigError) as caught:
        parse({"name": "App!", "serviceType": "thing", "containers": [{"dev": {"workDir": "rel", "shel": "x"}}]})
    assert [issue.path for issue in caught.value.issues] == [
        "name", "serviceType", "containers[0].dev.workDir", "containers[0].dev.shel"
    ]  # fmt: skip


def test_nocalhost_only_keys_are_accepted() -> None:
    data = {
        "name": "app", "priorityClass": "high", "dependLabelSelector": {"pods": ["app=db"], "tcp": ["db:5432"]},
        "containers": [{"name": "app", "hub": {"image": "golang"},
                        "install": {"env": [{"name": "A", "value": "1"}], "portForward": ["80:80"]},
                        "dev": {"gitUrl": "https://x/y.git", "useDevContainer": True}}],
    }  # fmt: skip
    assert parse(data).service().priority_class == "high"


def test_env_values_written_unquoted_are_text() -> None:
    assert dev_of({"env": [{"name": "N", "value": 3}, {"name": "B", "value": False}]}).env_dict() == {
        "N": "3",
        "B": "false",
    }


def test_variables_are_expanded_from_the_injected_environment() -> None:
    text = "name: ${APP}\ncontainers:\n  - dev:\n      image: ${IMAGE:-python:3.12}\n      shell: ${SHELL_:-}\n"
    service = parse_config(text, env={"APP": "web"}).service()
    assert service.name == "web"
    assert service.container().dev.image == "python:3.12"
    assert service.container().dev.shell is None


def test_unset_variable_is_located_with_its_field() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("name: app\ncontainers:\n  - dev:\n      image: repo/x:${TAG}\n", env={}, file="c.yaml")
    assert caught.value.render() == (
        "c.yaml:4:21: containers[0].dev.image: ${TAG} is not set "
        "(expected it in the environment, or write ${TAG:-default})"
    )


def test_positions_after_a_multiline_substitution_point_at_the_file_as_written() -> None:
    text = "name: ${NAME}\ncontainers:\n  - dev:\n      workDir: relative\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={"NAME": "a-much-longer-name-than-the-placeholder"})
    issue = caught.value.issues[0]
    assert (issue.line, issue.column, issue.path) == (4, 16, "containers[0].dev.workDir")


def test_commented_out_variables_are_not_expanded() -> None:
    assert parse_config("# image: ${NOT_SET}\nname: app  # ${ALSO_NOT_SET}\n", env={}).service().name == "app"


def test_escaped_placeholder_is_kept_literally() -> None:
    dev = parse_config("containers:\n  - dev:\n      command:\n        run: echo $${HOME}\n", env={})
    assert dev.service().container().dev.command.run.shell_command() == "echo ${HOME}"


def test_yaml_merge_keys_and_anchors_work() -> None:
    text = (
        "- name: a\n  containers: &containers\n    - dev: &dev\n        image: x\n        shell: zsh\n"
        "- name: b\n  containers:\n    - dev:\n        <<: *dev\n        shell: bash\n"
    )
    config = parse_config(text, env={})
    assert config.service("a").container().dev.shell == "zsh"
    assert (config.service("b").container().dev.image, config.service("b").container().dev.shell) == ("x", "bash")


def test_missing_env_file_and_bad_env_line_are_located(tmp_path: Path) -> None:
    (tmp_path / "bad.env").write_text("OK=1\nnot a variable\n")
    text = (
        "containers:\n  - dev:\n      envFrom:\n        envFile:\n"
        "          - path: bad.env\n          - path: gone.env\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={}, base_dir=tmp_path, file="c.yaml")
    rendered = [issue.render() for issue in caught.value.issues]
    assert rendered[0].startswith("c.yaml:6:19: containers[0].dev.envFrom.envFile[1].path: cannot read env file")
    assert rendered[1].endswith("bad.env:2:1: 'not a variable' is not a variable (expected KEY=VALUE)")


class TestServiceLookup:
    config = parse_config(
        "- name: api\n  serviceType: deployment\n  containers: [{name: main}, {name: side}]\n"
        "- name: db\n  serviceType: statefulset\n",
        env={},
    )

    def test_by_name_and_kind(self) -> None:
        assert self.config.service("api", "deploy").name == "api"
        assert self.config.service("db").service_type == "statefulset"

    def test_wrong_kind_or_name_is_a_usage_error_listing_services(self) -> None:
        with pytest.raises(UsageError) as caught:
            self.config.service("db", "deployment")
        assert caught.value.exit_code == 2
        assert caught.value.hint == "configured: deployment/api, statefulset/db"
        with pytest.raises(UsageError):
            self.config.service("nope")

    def test_no_name_with_several_services_asks_which(self) -> None:
        with pytest.raises(UsageError, match="2 services"):
            self.config.service()

    def test_bad_kind(self) -> None:
        with pytest.raises(UsageError, match="not a workload kind"):
            self.config.service("api", "replicaset")

    def test_containers(self) -> None:
        api = self.config.service("api")
        assert api.container().name == "main"
        assert api.container("side").name == "side"
        with pytest.raises(UsageError, match="'other'"):
            api.container("other")

    def test_single_unnamed_service_matches_any_workload(self) -> None:
        service = parse_config("containers: [{dev: {image: x}}]\n", env={}).service("web", "sts")
        assert (service.name, service.service_type) == ("web", "statefulset")
        assert service.container("anything").name == "anything"
        assert service.container("anything").dev.image == "x"

    def test_single_named_service_matches_only_its_workload(self) -> None:
        config = parse_config("name: api\nserviceType: deployment\n", env={})
        with pytest.raises(UsageError):
            config.service("web")
        with pytest.raises(UsageError):
            config.service("api", "statefulset")


def test_show_data_keeps_the_file_shape_and_camel_case() -> None:
    single = parse({"name": "app", "containers": [{"dev": {"hotReload": True}}]}).to_data()
    assert isinstance(single, dict)
    assert single["containers"][0]["dev"]["hotReload"] == {"enabled": True, "ignore": [], "delayMs": 300}
    assert "priorityClass" not in single and "gitUrl" not in single["containers"][0]["dev"]
    assert ServiceConfig.model_validate(single) is not None  # what `show` prints loads again
    assert isinstance(parse([{"name": "app"}]).to_data(), list)
