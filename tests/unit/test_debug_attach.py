"""Attach information and VS Code launch configurations per language; the debug plan from a config."""

from __future__ import annotations

import json

import pytest

from nhdev.config import DevSettings, parse_config
from nhdev.debug.attach import attach_info
from nhdev.debug.launch import debug_plan, guess_language
from nhdev.errors import UsageError


def test_python_launch_config_connects_and_maps_paths() -> None:
    info = attach_info("python", "127.0.0.1", 41234, "/home/me/app", "/home/nhdev-dev")
    config = info.launch_config
    assert config["type"] == "debugpy" and config["request"] == "attach"
    assert config["connect"] == {"host": "127.0.0.1", "port": 41234}
    assert config["pathMappings"] == [{"localRoot": "/home/me/app", "remoteRoot": "/home/nhdev-dev"}]
    data = json.loads(json.dumps(info.to_json()))
    assert data["pathMappings"] == config["pathMappings"] and data["port"] == 41234 and data["language"] == "python"


def test_go_node_java_launch_configs() -> None:
    go = attach_info("go", "127.0.0.1", 1, "/l", "/r").launch_config
    assert (go["type"], go["mode"], go["host"], go["port"]) == ("go", "remote", "127.0.0.1", 1)
    assert go["substitutePath"] == [{"from": "/l", "to": "/r"}]
    node = attach_info("node", "127.0.0.1", 2, "/l", "/r").launch_config
    assert (node["type"], node["address"], node["port"], node["localRoot"], node["remoteRoot"]) == (
        "node", "127.0.0.1", 2, "/l", "/r")
    java = attach_info("java", "127.0.0.1", 3, "/l", "/r")
    assert java.launch_config == {"name": "nhdev: attach (java)", "type": "java", "request": "attach",
                                  "hostName": "127.0.0.1", "port": 3}
    assert java.path_mappings == ()


def test_unknown_language_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no attach configuration for language 'ruby'"):
        attach_info("ruby", "127.0.0.1", 1, "/l", "/r")


def dev_settings(dev: str) -> DevSettings:
    text = f"name: web\ncontainers:\n  - name: app\n    dev:\n{dev}"
    return parse_config(text, file="config.yaml", env={}).service("web").container("app").dev


def test_plan_from_the_config_joins_the_command_words() -> None:
    dev = dev_settings("      command:\n        debug: [python, -m, debugpy, --listen, '0.0.0.0:5678', app.py]\n"
                       "      debug: {remoteDebugPort: 5679}\n      workDir: /src\n")
    plan = debug_plan(dev)
    assert (plan.language, plan.command, plan.remote_port, plan.work_dir) == (
        "python", "python -m debugpy --listen 0.0.0.0:5678 app.py", 5679, "/src")


def test_plan_falls_back_to_the_language_preset() -> None:
    plan = debug_plan(dev_settings("      debug: {language: go}\n"))
    assert plan.command.startswith("dlv debug --headless") and plan.remote_port == 2345


def test_plan_without_language_or_command_says_what_to_set() -> None:
    with pytest.raises(UsageError, match=r"set dev\.debug\.language"):
        debug_plan(dev_settings("      shell: bash\n"))
    with pytest.raises(UsageError, match=r"set dev\.command\.debug and dev\.debug\.remoteDebugPort"):
        debug_plan(dev_settings("      debug: {language: ruby}\n"))


def test_language_guessed_from_the_debugger_in_the_command() -> None:
    assert guess_language("dlv dap --listen=:2345") == "go"
    assert guess_language("node --inspect=0.0.0.0:9229 index.js") == "node"
    assert guess_language("java -agentlib:jdwp=transport=dt_socket,server=y") == "java"
    assert guess_language("make run") is None
