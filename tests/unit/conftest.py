"""Fixtures for the tunnel tests: session keys and a real local sidecar (see tunnel_harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.tunnel_harness import KeyFiles, LocalSidecar, write_keys


@pytest.fixture()
def keys(tmp_path: Path) -> KeyFiles:
    return write_keys(tmp_path)


@pytest.fixture()
def sidecar(tmp_path: Path, keys: KeyFiles) -> Iterator[LocalSidecar]:
    handle = LocalSidecar(tmp_path, keys).start()
    yield handle
    handle.stop()
