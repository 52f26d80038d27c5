"""Kubernetes resource quantities (``500m``, ``2``, ``1.5``, ``5Gi``, ``1e3``), as the API server reads them."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?[0-9]+))?"
)
_MULTIPLIERS = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal("1e3"),
    "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18"),
}  # fmt: skip
_EXPECTED = 'expected a Kubernetes quantity such as "500m", "2", "1.5", "512Mi" or "5Gi"'


def parse_quantity(text: str) -> Decimal:
    """The numeric value of a quantity (``"5Gi"`` -> 5368709120); ValueError if it is not one."""
    match = _QUANTITY.fullmatch(text.strip())
    if match is None or len(text) > 64:
        raise ValueError(f"{text!r} is not a quantity ({_EXPECTED}; units: Ki Mi Gi Ti, m k M G T)")
    try:
        value = Decimal(match.group("number"))
        if match.group("suffix"):
            return value * _MULTIPLIERS[match.group("suffix")]
        if match.group("exponent"):
            return value.scaleb(int(match.group("exponent")))
    except (ArithmeticError, ValueError):
        raise ValueError(f"{text!r} is out of range ({_EXPECTED})") from None
    return value


def _as_quantity_text(value: Any) -> str:
    """Accept numbers as YAML reads them (``cpu: 2``, ``cpu: 0.5``) and keep the text form."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{_EXPECTED}")
    text = value.strip() if isinstance(value, str) else repr(value)
    if parse_quantity(text) < 0:
        raise ValueError(f"{text!r} is negative (expected zero or more)")
    return text


def _positive(text: str) -> str:
    if parse_quantity(text) <= 0:
        raise ValueError(f'{text!r} is not positive (expected a size such as "5Gi")')
    return text


Quantity = Annotated[str, BeforeValidator(_as_quantity_text)]
"""A non-negative quantity, kept as written (``"500m"``)."""

PositiveQuantity = Annotated[str, BeforeValidator(_positive), BeforeValidator(_as_quantity_text)]
"""A quantity above zero (volume capacities)."""
