"""The docs keep up with the code: the command reference is the CLI's own, every command and every
config key is described, and docs/rbac.yaml grants what dev mode does."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, NamedTuple

import click
import kubernetes_validate
import yaml
from pydantic import BaseModel

from nhdev.cli import cli
from nhdev.cli.reference import REGENERATE, render, walk
from nhdev.config.model import ServiceConfig, ShellCommand
from nhdev.doctor import DEV_MODE_PERMISSIONS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CLI_MD = DOCS / "cli.md"
CONFIG_MD = DOCS / "config.md"
RBAC = DOCS / "rbac.yaml"
README = ROOT / "README.md"


# ---------------------------------------------------------------- the command reference

def test_cli_reference_is_current() -> None:
    assert CLI_MD.exists(), f"docs/cli.md is missing: run `{REGENERATE}`"
    assert CLI_MD.read_text() == render(cli), f"docs/cli.md is stale: run `{REGENERATE}`"


def test_every_command_is_in_the_reference_and_in_the_prose() -> None:
    """docs/cli.md has a section per command; README.md or a hand-written page says what each is for."""
    reference = CLI_MD.read_text()
    prose = "\n".join(p.read_text() for p in [README, *sorted(DOCS.glob("*.md"))] if p != CLI_MD)
    missing_sections, unmentioned = [], []
    for entry in walk(cli):
        if f"\n## {entry.name}\n" not in reference:
            missing_sections.append(entry.name)
        if len(entry.path) > 1 and not re.search(r"\s+".join(map(re.escape, entry.path)) + r"(?![\w-])", prose):
            unmentioned.append(entry.name)
    assert not missing_sections, f"not in docs/cli.md: {missing_sections}; run `{REGENERATE}`"
    assert not unmentioned, f"say what these are for in README.md (or a page in docs/): {unmentioned}"


def test_reference_lists_options_with_type_default_and_help() -> None:
    start = CLI_MD.read_text().split("\n## nhdev dev start\n", 1)[1].split("\n## ", 1)[0]
    assert "```\nnhdev dev start [OPTIONS] [WORKLOAD]\n```" in start
    assert "| `--mode` | `replace` \\| `duplicate` | `replace` |" in start
    assert "| `--timeout` | number, at least 1 | `300` |" in start
    assert "Arguments: `WORKLOAD` (optional)." in start


def test_every_option_has_help() -> None:
    bare = [f"{entry.name} {option.opts[-1]}" for entry in walk(cli) for option in entry.command.params
            if isinstance(option, click.Option) and not option.hidden and not (option.help or "").strip()]
    assert not bare, f"options without a help text: {bare}"


# ---------------------------------------------------------------- the config reference

def config_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key a dev config can hold, as dotted camelCase paths (``containers.dev.sync.type``)."""
    keys = []
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        keys.append(path)
        for inner in _models(field.annotation):
            keys += config_keys(inner, path + ".")
    return keys


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [] if annotation is ShellCommand or not _is_mapping_model(annotation) else [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _is_mapping_model(model: type[BaseModel]) -> bool:
    """Models written as a mapping in the file (not PortForward's or ShellCommand's text forms)."""
    return model.__module__ == "nhdev.config.model"


def documented_keys(text: str) -> tuple[set[str], set[str]]:
    """Keys named in the first column of config.md's key tables, with the prefix of their section
    (``## Dev keys (`containers[].dev`)``), and those of rows that say the key is ignored.

    In a cell, ``a.{b,c}`` names a.b and a.c, ``[]`` is dropped, and ``.x`` after ``a.b`` names a.x.
    """
    keys: set[str] = set()
    ignored: set[str] = set()
    prefix = ""
    for line in text.splitlines():
        heading = re.match(r"#+ .*keys(?: \(`([^`]+)`\))?", line)
        if heading:
            prefix = (heading.group(1) or "").replace("[]", "")
            prefix = f"{prefix}." if prefix else ""
            continue
        if not line.startswith("| `"):
            continue
        found: list[str] = []
        for span in re.findall(r"`([^`]+)`", line.split("|")[1]):
            span = span.replace("[]", "")
            if span.startswith(".") and found:
                span = found[-1].rsplit(".", 1)[0] + span
            group = re.fullmatch(r"(.*)\{([^}]*)\}", span)
            found += [group.group(1) + part.strip() for part in group.group(2).split(",")] if group else [span]
        keys |= {prefix + key for key in found}
        if "ignored" in line:
            ignored |= {prefix + key for key in found}
    return keys, ignored


def test_every_config_key_is_in_config_md() -> None:
    """Every leaf key by name; a mapping key counts as described when keys under it are."""
    keys, ignored = documented_keys(CONFIG_MD.read_text())
    missing = [key for key in config_keys(ServiceConfig)
               if key not in keys and not any(k.startswith(f"{key}.") for k in keys)
               and not any(key.startswith(f"{i}.") for i in ignored)]
    assert not missing, f"config keys not described in docs/config.md: {missing}"


# ---------------------------------------------------------------- docs/rbac.yaml

class Permission(NamedTuple):
    verb: str
    group: str
    resource: str  # with its subresource: pods/exec
    namespace: str | None = None


def role_allows(role: dict[str, Any], permission: Permission) -> bool:
    return any((permission.group in rule["apiGroups"] or "*" in rule["apiGroups"])
               and (permission.resource in rule["resources"] or "*" in rule["resources"])
               and (permission.verb in rule["verbs"] or "*" in rule["verbs"])
               and not rule.get("resourceNames")
               for rule in role["rules"])


def rbac_documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d]


def test_rbac_yaml_is_valid_kubernetes() -> None:
    documents = rbac_documents()
    assert [d["kind"] for d in documents] == ["Role", "RoleBinding"]
    for document in documents:
        kubernetes_validate.validate(document, "1.30", strict=True)
    role, binding = documents
    assert binding["roleRef"] == {"kind": "Role", "name": role["metadata"]["name"],
                                  "apiGroup": "rbac.authorization.k8s.io"}
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"]


def test_rbac_role_grants_what_doctor_checks_and_the_streams() -> None:
    role = rbac_documents()[0]
    checked = [Permission(verb, group, resource + (f"/{sub}" if sub else ""))
               for verb, group, resource, sub in DEV_MODE_PERMISSIONS]
    streams = [Permission(verb, "", f"pods/{sub}") for sub in ("exec", "portforward") for verb in ("get", "create")]
    denied = [p for p in [*checked, *streams, Permission("get", "", "pods/log")] if not role_allows(role, p)]
    assert not denied, f"docs/rbac.yaml does not grant: {denied}"
    assert all(rule["apiGroups"] != ["*"] and "*" not in rule["verbs"] for rule in role["rules"]), "no wildcards"


def test_readme_links_the_rbac_role_and_the_reference() -> None:
    readme = README.read_text()
    for target in ("docs/rbac.yaml", "docs/cli.md", "docs/config.md"):
        assert f"]({target})" in readme, f"README.md does not link {target}"
