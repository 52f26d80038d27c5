"""Stable short hashes of pod templates, as used in pod-template-hash and controller-revision-hash."""

from __future__ import annotations

import json

# The alphabet Kubernetes uses for generated suffixes: no vowels (no words), no look-alikes.
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def canonical_json(value: object) -> str:
    """``value`` as JSON with sorted keys and without null fields.

    A null field means the same as an absent one to the API (kubectl rollout undo sends
    ``creationTimestamp: null`` in the template it restores), so both must hash alike.
    """
    return json.dumps(_without_nulls(value), sort_keys=True, separators=(",", ":"))


def template_hash(template: dict, collision_count: int = 0) -> str:
    """A short alphanumeric hash of ``template``; ``collision_count`` moves it off a taken name."""
    canonical = canonical_json(template)
    if collision_count:
        canonical += f"#{collision_count}"
    return "".join(SAFE_ALPHABET[ord(digit) % len(SAFE_ALPHABET)] for digit in str(_fnv1a_32(canonical)))


def _fnv1a_32(text: str) -> int:
    value = _FNV_OFFSET
    for byte in text.encode():
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


def _without_nulls(value: object) -> object:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
