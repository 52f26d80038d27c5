"""Label and field selectors with the apiserver's grammar, semantics and error wording.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``,
``k>N``, ``k<N``, joined by commas. Field selectors: ``f=v``, ``f==v``, ``f!=v`` over the fields
each resource supports (anything else is "field label not supported", as on a real server).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """An unparsable selector; the API answers 400 BadRequest with this message."""


_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _check_key(key: str) -> None:
    name = key
    if "/" in key:
        prefix, name = key.split("/", 1)
        if not prefix or len(prefix) > 253 or not _PREFIX.match(prefix):
            raise SelectorError(
                f'unable to parse requirement: invalid label key "{key}": prefix part a lowercase '
                "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character"
            )
    if not name or len(name) > 63 or not _NAME_PART.match(name):
        raise SelectorError(
            f'unable to parse requirement: invalid label key "{key}": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
            "character"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise SelectorError(
            f'unable to parse requirement: invalid label value: "{value}": a valid label must be an '
            "empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with an alphanumeric character"
        )


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if not present:
            return False
        try:
            number = int(str(value))
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.operator == "gt" else number < bound


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


# Tokens of the label selector language, longest operators first.
_TOKEN = re.compile(r"\s*(==|!=|=|>|<|\(|\)|,|!|[^\s=!<>(),]+)")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only whitespace remained
            break
        tokens.append(match.group(1))
        position = match.end()
    return tokens


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.position += 1
        return token

    def parse(self) -> tuple[Requirement, ...]:
        requirements: list[Requirement] = []
        while self.peek() is not None:
            requirements.append(self.requirement())
            token = self.take()
            if token is None:
                break
            if token != ",":
                raise SelectorError(f"found '{token}', expected: ',' or 'end of string'")
            if self.peek() is None:
                raise SelectorError("found '', expected: identifier after ','")
        return tuple(requirements)

    def requirement(self) -> Requirement:
        token = self.take()
        if token == "!":
            key = self.identifier("!")
            return Requirement(key, "!")
        if token is None or token in "=!<>(),":
            raise SelectorError(f"found '{token or ''}', expected: !, identifier, or 'end of string'")
        _check_key(token)
        operator = self.peek()
        if operator is None or operator == ",":
            return Requirement(token, "exists")
        self.take()
        if operator in ("=", "=="):
            return Requirement(token, "=", (self.single_value(),))
        if operator == "!=":
            return Requirement(token, "!=", (self.single_value(),))
        if operator in ("in", "notin"):
            return Requirement(token, operator, self.value_set(operator))
        if operator in (">", "<"):
            value = self.single_value()
            if not re.fullmatch(r"-?\d+", value):
                raise SelectorError(
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                )
            return Requirement(token, "gt" if operator == ">" else "lt", (value,))
        raise SelectorError(f"found '{operator}', expected: in, notin, =, ==, !=, gt, lt")

    def identifier(self, after: str) -> str:
        token = self.take()
        if token is None or token in "=!<>(),":
            raise SelectorError(f"found '{token or ''}', expected: identifier after '{after}'")
        _check_key(token)
        return token

    def single_value(self) -> str:
        token = self.peek()
        if token is None or token == ",":
            return ""  # "k=" selects the empty value
        if token in "=!<>()":
            raise SelectorError(f"found '{token}', expected: identifier")
        self.take()
        _check_value(token)
        return token

    def value_set(self, operator: str) -> tuple[str, ...]:
        opening = self.take()
        if opening != "(":
            raise SelectorError(f"unable to parse requirement: found '{opening or ''}', expected: '('")
        values: list[str] = []
        expect_value = True
        while True:
            token = self.take()
            if token is None:
                raise SelectorError("found '', expected: ')'")
            if token == ")":
                if expect_value and values:
                    values.append("")
                break
            if token == ",":
                if expect_value:
                    values.append("")
                expect_value = True
                continue
            if not expect_value or token in "=!<>(":
                raise SelectorError(f"found '{token}', expected: ',', or ')'")
            _check_value(token)
            values.append(token)
            expect_value = False
        if not values:
            raise SelectorError(
                "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
            )
        return tuple(values)


def parse_label_selector(text: str | None) -> LabelSelector:
    if not text or not text.strip():
        return LabelSelector(())
    return LabelSelector(_LabelParser(text).parse())


def selector_from_label_selector_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A ``metav1.LabelSelector`` (matchLabels/matchExpressions) as a matcher. None selects nothing."""
    if selector is None:
        return LabelSelector((Requirement("", "in", ()),))
    requirements = [Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        operator = operators.get(expression.get("operator", ""))
        if operator is None:
            raise SelectorError(f"{expression.get('operator')!r} is not a valid label selector operator")
        requirements.append(Requirement(expression["key"], operator, tuple(expression.get("values") or ())))
    return LabelSelector(tuple(requirements))


def label_selector_string(selector: Mapping[str, Any] | None) -> str:
    """The string form the apiserver puts in ``Scale.status.selector``."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression.get("operator")
        values = ",".join(sorted(expression.get("values") or ()))
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(key)
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


# --- field selectors -----------------------------------------------------------------------------

FieldGetter = Callable[[Mapping[str, Any]], str]


def _path_getter(path: str) -> FieldGetter:
    parts = path.split(".")

    def get(obj: Mapping[str, Any]) -> str:
        value: Any = obj
        for part in parts:
            if not isinstance(value, Mapping):
                return ""
            value = value.get(part)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    return get


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_EXTRA_FIELDS: dict[str, tuple[str, ...]] = {
    "pods": ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
             "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "events": ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
               "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
               "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    "namespaces": ("status.phase",),
    "secrets": ("type",),
    "nodes": ("spec.unschedulable",),
    "persistentvolumeclaims": ("status.phase",),
    "persistentvolumes": ("status.phase",),
    "jobs": ("status.successful",),
    "replicasets": ("status.replicas",),
}
_SPECIAL_GETTERS: dict[str, FieldGetter] = {
    "source": lambda obj: str((obj.get("source") or {}).get("component", "")),
}


def supported_fields(resource: str) -> tuple[str, ...]:
    return _COMMON_FIELDS + _EXTRA_FIELDS.get(resource, ())


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negated: bool
    value: str
    getter: FieldGetter

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (self.getter(obj) == self.value) != self.negated


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...]

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(req.matches(obj) for req in self.requirements)

    def exact_name(self) -> str | None:
        """The name when the selector pins ``metadata.name=X`` (lets the store skip a scan)."""
        for req in self.requirements:
            if req.field == "metadata.name" and not req.negated:
                return req.value
        return None


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, escaped = [], False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector: unescaped {char} in value")
        else:
            out.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid trailing escape sequence")
    return "".join(out)


def _split_term(term: str) -> tuple[str, str, str]:
    for operator in ("!=", "==", "="):
        index = _find_unescaped(term, operator)
        if index >= 0:
            return term[:index], operator, term[index + len(operator):]
    raise SelectorError(f"invalid selector: '{term}'; can't understand '{term}'")


def _find_unescaped(text: str, needle: str) -> int:
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text.startswith(needle, index):
            return index
        index += 1
    return -1


def parse_field_selector(text: str | None, resource: str) -> FieldSelector:
    if not text or not text.strip():
        return FieldSelector(())
    allowed = supported_fields(resource)
    requirements = []
    for term in _split_unescaped(text, ","):
        term = term.strip()
        if not term:
            continue
        field, operator, raw_value = _split_term(term)
        field = field.strip()
        if field not in allowed:
            raise SelectorError(f'field label not supported: {field}')
        getter = _SPECIAL_GETTERS.get(field) or _path_getter(field)
        requirements.append(FieldRequirement(field, operator == "!=", _unescape(raw_value), getter))
    return FieldSelector(tuple(requirements))
