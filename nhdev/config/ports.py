"""Ports and port-forward entries of the dev config.

``portForward`` entries, as Nocalhost reads them: ``"LOCAL:REMOTE"``, ``":REMOTE"`` (any free
local port), ``"PORT"`` or an int (same port on both ends). nhdev adds the reverse form
``"R:REMOTE:LOCAL"``: a port opened inside the pod that reaches a port on the developer's machine.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_serializer, model_validator

MIN_PORT = 1
MAX_PORT = 65535
_FORMS = '"LOCAL:REMOTE", ":REMOTE", "PORT" or "R:REMOTE:LOCAL", ports 1-65535'


def parse_port(value: Any) -> int:
    """A TCP port from an int or a decimal string; ValueError naming the bad value otherwise."""
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= 6:
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not a port (expected an integer {MIN_PORT}-{MAX_PORT})")
    if not MIN_PORT <= value <= MAX_PORT:
        raise ValueError(f"{value} is out of range (expected a port {MIN_PORT}-{MAX_PORT})")
    return value


Port = Annotated[int, BeforeValidator(parse_port)]


class PortForward(BaseModel):
    """One forward. ``local`` None means "any free local port"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    remote: int
    local: int | None
    reverse: bool = False

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            port = _port_in(value, value)
            return {"remote": port, "local": port}
        if not isinstance(value, str):
            raise ValueError(f'expected a string such as "8080:80" ({_FORMS})')
        return _parse_text(value.strip())

    @model_serializer
    def _as_text(self) -> str:
        return self.text()

    def text(self) -> str:
        """The entry as written in a config file."""
        if self.reverse:
            return f"R:{self.remote}:{self.local}"
        return f"{self.local if self.local is not None else ''}:{self.remote}"


def _parse_text(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) == 3 and parts[0] in {"R", "r"}:
        return {"remote": _port_in(parts[1], text), "local": _port_in(parts[2], text), "reverse": True}
    if len(parts) == 2:
        local = None if parts[0] == "" else _port_in(parts[0], text)
        return {"remote": _port_in(parts[1], text), "local": local}
    if len(parts) == 1:
        port = _port_in(parts[0], text)
        return {"remote": port, "local": port}
    raise ValueError(f"{text[:40]!r} is not a port forward (expected {_FORMS})")


def _port_in(part: Any, whole: Any) -> int:
    try:
        return parse_port(part)
    except ValueError:
        shown = whole[:40] if isinstance(whole, str) else whole
        raise ValueError(f"{shown!r} is not a port forward (expected {_FORMS})") from None
