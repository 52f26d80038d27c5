"""Pydantic validation errors -> located :class:`ConfigIssue` s (file:line:col, field path, what is wrong).

Every pydantic ``loc`` is a path into the data we built from YAML nodes, so it maps straight back
to a node: a bad value is reported at the value, an unknown key at the key, a missing key at the
mapping that lacks it.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Iterable
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from nhdev.config.yaml_nodes import Loc, LocatedDocument
from nhdev.errors import ConfigIssue

_EXPECTED_BY_TYPE = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def render_path(loc: Loc) -> str:
    """``("containers", 0, "dev", "portForward", 1)`` -> ``containers[0].dev.portForward[1]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def issues_from_validation(
    error: ValidationError, document: LocatedDocument, prefix: Loc, root: type[BaseModel], file: str
) -> list[ConfigIssue]:
    """One issue per pydantic error of ``root`` validated at ``prefix`` of ``document``."""
    return [_issue(detail, document, prefix, root, file) for detail in error.errors(include_url=False)]


def _issue(
    detail: ErrorDetails, document: LocatedDocument, prefix: Loc, root: type[BaseModel], file: str
) -> ConfigIssue:
    loc: Loc = tuple(detail["loc"])  # the schema has no unions, so every entry is a key or an index
    full = (*prefix, *loc)
    kind = detail["type"]
    if kind == "extra_forbidden":
        position = document.position(full, of_key=True)
        message = "unknown key" + _suggestion(root, loc)
    elif kind == "missing":
        position = document.position(full[:-1])
        message = f"missing ({_expected_for_missing(root, loc)})"
    else:
        position = document.position(full)
        message = _value_message(detail)
    return ConfigIssue(file, position.line, position.column, render_path(full), message)


def _value_message(detail: ErrorDetails) -> str:
    kind = detail["type"]
    if kind == "value_error":
        return str((detail.get("ctx") or {}).get("error", detail["msg"]))
    if kind == "literal_error":
        return f"got {_shown(detail['input'])} (expected one of: {(detail.get('ctx') or {}).get('expected')})"
    bounds = detail.get("ctx") or {}
    if kind in ("greater_than_equal", "less_than_equal"):
        limit = f"at least {bounds.get('ge')}" if kind == "greater_than_equal" else f"at most {bounds.get('le')}"
        return f"got {_shown(detail['input'])} (expected {limit})"
    if kind in _EXPECTED_BY_TYPE:
        return f"got {_shown(detail['input'])} (expected {_EXPECTED_BY_TYPE[kind]})"
    return f"got {_shown(detail['input'])} ({detail['msg'][:1].lower()}{detail['msg'][1:]})"


def _shown(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:40] + "...")
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _expected_for_missing(root: type[BaseModel], loc: Loc) -> str:
    model = model_at(root, loc[:-1])
    field = model.model_fields.get(_field_name(model, str(loc[-1])) or "") if model else None
    description = field.description if field else None
    return description or "expected this key"


def _suggestion(root: type[BaseModel], loc: Loc) -> str:
    """``(did you mean 'image'?)`` for a near miss; else where the key belongs, or what is allowed."""
    key = str(loc[-1])
    model = model_at(root, loc[:-1])
    if model is None:
        return ""
    allowed = [info.alias or name for name, info in model.model_fields.items()]
    by_case = {name.lower(): name for name in allowed}
    close = [by_case[key.lower()]] if key.lower() in by_case else []
    close = close or difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    home = _where_key_belongs(model, key)
    if home:
        return f" (it belongs under {home})"
    return f" (expected one of: {', '.join(allowed)})"


def _where_key_belongs(model: type[BaseModel], key: str, depth: int = 3) -> str | None:
    """The relative path of a nested model that has ``key`` (``image`` at container level -> ``dev``)."""
    if depth == 0:
        return None
    for name, info in model.model_fields.items():
        child, in_list = _model_in(info.annotation)
        if child is None:
            continue
        step = (info.alias or name) + ("[]" if in_list else "")
        if any((field.alias or field_name) == key for field_name, field in child.model_fields.items()):
            return step
        deeper = _where_key_belongs(child, key, depth - 1)
        if deeper:
            return f"{step}.{deeper}"
    return None


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` under ``root``."""
    current: Any = root
    for part in loc:
        if isinstance(part, int):
            continue  # list items: _model_in already looked through the list
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        name = _field_name(current, part)
        if name is None:
            return None
        current, _ = _model_in(current.model_fields[name].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_name(model: type[BaseModel], key: str) -> str | None:
    for name, info in model.model_fields.items():
        if key in (info.alias, name):
            return name
    return None


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model inside ``X | None``, ``list[X]``, ``Annotated[X, ...]``; and whether it was a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    in_list = origin in (list, tuple)
    if origin in (Union, types.UnionType) or in_list or origin is not None:
        for arg in _args(annotation):
            model, nested_list = _model_in(arg)
            if model is not None:
                return model, in_list or nested_list
    return None, False


def _args(annotation: Any) -> Iterable[Any]:
    return (arg for arg in get_args(annotation) if arg is not type(None))
