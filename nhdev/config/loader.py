"""Config file -> :class:`DevConfig`, or a :class:`ConfigError` listing every problem, located.

Steps: read and decode; expand ``${VAR}``; compose YAML into data with node positions; validate
each service with pydantic; run cross-entry checks; read ``envFrom.envFile`` files into ``env``.
Whatever the input, only :class:`UserError` subclasses come out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nhdev.config.checks import check_services
from nhdev.config.dev_config import DevConfig
from nhdev.config.dotenv import parse_dotenv
from nhdev.config.envsubst import expand
from nhdev.config.locate import issues_from_validation, render_path
from nhdev.config.model import ContainerConfig, EnvVar, ServiceConfig
from nhdev.config.source_map import Position
from nhdev.config.yaml_nodes import Loc, LocatedDocument, YamlProblem, compose_located
from nhdev.errors import ConfigError, ConfigIssue, ConfigNotFound

MAX_FILE_BYTES = 1 << 20
_SHAPE = "expected a service mapping (name, serviceType, containers) or a list of them"


def load_config(path: Path | str, env: Mapping[str, str] | None = None) -> DevConfig:
    """Load and validate the dev config at ``path``; ``env`` (default: ``os.environ``) feeds ``${VAR}``."""
    path = Path(path)
    label = _display(path)
    raw = _read(path, label, MAX_FILE_BYTES)
    text = _decode(raw, label)
    return parse_config(text, file=label, base_dir=path.parent, env=env, path=path)


def parse_config(
    text: str,
    *,
    file: str = "<config>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
) -> DevConfig:
    """Validate config text; ``base_dir`` resolves relative ``envFile`` paths (default: cwd)."""
    expansion = expand(text, os.environ if env is None else env)
    issues: list[ConfigIssue] = []
    try:
        document = compose_located(expansion.text, expansion.source_map.position)
    except YamlProblem as problem:
        yaml_issue = _issue(file, expansion.source_map.position(problem.offset), (), problem.message)
        raise ConfigError(_sorted([*_substitution_issues(file, expansion.problems, None), yaml_issue], file)) from None
    services, shape_issues, is_list = _service_entries(document, file)
    issues += shape_issues
    validated: list[ServiceConfig] = []
    for loc, data in services:
        try:
            validated.append(ServiceConfig.model_validate(data, by_alias=True, by_name=False))
        except ValidationError as error:
            issues += issues_from_validation(error, document, loc, ServiceConfig, file)
    issues += [_issue(file, document.position(loc), loc, message) for loc, message in check_services(services)]
    issues = _without_echoes(issues, expansion.problems) + _substitution_issues(file, expansion.problems, document)
    if issues:
        raise ConfigError(_sorted(issues, file))
    with_env = [
        _with_env_files(service, loc, document, file, base_dir or Path.cwd(), issues)
        for service, (loc, _) in zip(validated, services, strict=True)
    ]
    if issues:
        raise ConfigError(_sorted(issues, file))
    return DevConfig(tuple(with_env), path, is_list)


def _service_entries(document: LocatedDocument, file: str) -> tuple[list[tuple[Loc, Any]], list[ConfigIssue], bool]:
    """The services of the document with their paths; issues if the document has another shape."""
    data = document.data
    if isinstance(data, dict):
        for app_key in ("application", "configProperties"):
            if app_key in data:
                where = document.position((app_key,), of_key=True)
                message = (
                    "a Nocalhost application config is not supported "
                    "(expected the service entries of application.services at the top level)"
                )
                return [], [_issue(file, where, (app_key,), message)], False
        return [((), data)], [], False
    if isinstance(data, list):
        entries: list[tuple[Loc, Any]] = [((index,), item) for index, item in enumerate(data) if isinstance(item, dict)]
        issues = [
            _issue(file, document.position((index,)), (index,), f"got {_kind_of(item)} ({_SHAPE})")
            for index, item in enumerate(data)
            if not isinstance(item, dict)
        ]
        if not data:
            issues.append(_issue(file, Position(1, 1), (), f"the list is empty ({_SHAPE})"))
        return entries, issues, True
    what = "an empty file" if data is None else f"got {_kind_of(data)}"
    return [], [_issue(file, document.position(()), (), f"{what} ({_SHAPE})")], False


def _with_env_files(
    service: ServiceConfig, loc: Loc, document: LocatedDocument, file: str, base_dir: Path, issues: list[ConfigIssue]
) -> ServiceConfig:
    """``envFrom.envFile`` variables flattened into ``env``; ``env`` wins (as in Nocalhost).

    Problems with the files are appended to ``issues``.
    """
    containers = []
    for index, container in enumerate(service.containers):
        container_loc = (*loc, "containers", index)
        containers.append(_container_with_env_files(container, container_loc, document, file, base_dir, issues))
    return service.model_copy(update={"containers": containers})


def _container_with_env_files(
    container: ContainerConfig,
    loc: Loc,
    document: LocatedDocument,
    file: str,
    base_dir: Path,
    issues: list[ConfigIssue],
) -> ContainerConfig:
    env_from = container.dev.env_from
    if env_from is None or not env_from.env_file:
        return container
    from_files: dict[str, str] = {}
    for index, env_file in enumerate(env_from.env_file):
        path_loc = (*loc, "dev", "envFrom", "envFile", index, "path")
        from_files |= _read_env_file(base_dir / env_file.path, path_loc, document, file, issues)
    written = {var.name for var in container.dev.env}
    extra = [EnvVar(name=name, value=value) for name, value in from_files.items() if name not in written]
    dev = container.dev.model_copy(update={"env": [*container.dev.env, *extra]})
    return container.model_copy(update={"dev": dev})


def _read_env_file(
    path: Path, loc: Loc, document: LocatedDocument, file: str, issues: list[ConfigIssue]
) -> dict[str, str]:
    label = _display(path)
    try:
        text = _decode(_read(path, label, MAX_FILE_BYTES), label)
    except (ConfigNotFound, ConfigError) as err:
        where = document.position(loc)
        message = f"cannot read env file: {err.message} (expected a dotenv file, relative to the config file)"
        issues.append(_issue(file, where, loc, message))
        return {}
    variables, problems = parse_dotenv(text)
    issues += [ConfigIssue(label, line, 1, "", message) for line, message in problems]
    return variables


def _read(path: Path, label: str, limit: int) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigNotFound(f"{label}: no such file") from None
    except IsADirectoryError:
        raise ConfigNotFound(f"{label}: is a directory, not a config file") from None
    except OSError as err:
        raise ConfigNotFound(f"{label}: cannot read: {err.strerror or err}") from None
    if len(raw) > limit:
        raise ConfigError([ConfigIssue(label, 1, 1, "", f"file larger than {limit} bytes (expected a config file)")])
    return raw


def _decode(raw: bytes, label: str) -> str:
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        before = raw[: err.start].decode(encoding, errors="replace")
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        raise ConfigError([ConfigIssue(label, line, column, "", "not UTF-8 text (expected a YAML file)")]) from None


def _substitution_issues(
    file: str, problems: list[tuple[Position, str]], document: LocatedDocument | None
) -> list[ConfigIssue]:
    """Unset ``${VAR}`` s, each named with the field it was in when the YAML could be read."""
    issues = []
    for where, message in problems:
        loc = _loc_at(document, where) if document else None
        issues.append(_issue(file, where, loc or (), message))
    return issues


def _without_echoes(issues: list[ConfigIssue], problems: list[tuple[Position, str]]) -> list[ConfigIssue]:
    """Drop schema errors about a value that is an unexpanded ``${VAR}``: the unset variable says it."""
    unset_at = {where for where, _ in problems}
    return [issue for issue in issues if Position(issue.line, issue.column) not in unset_at]


def _loc_at(document: LocatedDocument, where: Position) -> Loc | None:
    """The innermost node starting at or before ``where`` on the same line (the scalar holding it)."""
    best: tuple[Position, Loc] | None = None
    for loc, position in document.value_positions.items():
        on_line_before = position.line == where.line and position.column <= where.column
        if on_line_before and (best is None or (position.column, len(loc)) >= (best[0].column, len(best[1]))):
            best = (position, loc)
    return best[1] if best else None


def _issue(file: str, where: Position, loc: Loc, message: str) -> ConfigIssue:
    return ConfigIssue(file, where.line, where.column, render_path(loc), message)


def _sorted(issues: list[ConfigIssue], file: str) -> list[ConfigIssue]:
    """In file order; the config file's issues before those of the env files it names."""
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda issue: (issue.file != file, issue.file, issue.line, issue.column))


def _kind_of(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"the value {value!r:.40}"


def _display(path: Path) -> str:
    """``path`` relative to the working directory when it is below it, as users typed it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
