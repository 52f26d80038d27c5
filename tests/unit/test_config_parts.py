"""The small pieces of the config package: discovery, quantities, durations, dotenv, envsubst, presets."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from nhdev.config import discover_config, parse_config, parse_quantity
from nhdev.config.dotenv import parse_dotenv
from nhdev.config.duration import duration_seconds
from nhdev.config.envsubst import expand
from nhdev.config.render import render_starter_config
from nhdev.config.starter import parse_workload
from nhdev.debug.presets import PRESETS, preset_for
from nhdev.errors import ConfigNotFound, UsageError


def make(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("name: app\n")
    return path


class TestDiscovery:
    def test_nhdev_location_wins_over_nocalhost(self, tmp_path: Path) -> None:
        make(tmp_path / ".nocalhost" / "config.yaml")
        nhdev = make(tmp_path / ".nhdev" / "config.yaml")
        assert discover_config(tmp_path) == nhdev.resolve()

    def test_nocalhost_location_is_a_fallback_found_from_a_subdirectory(self, tmp_path: Path) -> None:
        nocalhost = make(tmp_path / ".nocalhost" / "config.yaml")
        (tmp_path / "a" / "b").mkdir(parents=True)
        assert discover_config(tmp_path / "a" / "b") == nocalhost.resolve()

    def test_explicit_file_or_directory(self, tmp_path: Path) -> None:
        other = make(tmp_path / "other.yaml")
        nhdev = make(tmp_path / "proj" / ".nhdev" / "config.yaml")
        assert discover_config(explicit=other) == other
        assert discover_config(explicit=tmp_path / "proj") == nhdev

    def test_not_found(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigNotFound):
            discover_config(explicit=tmp_path / "missing.yaml")
        with pytest.raises(ConfigNotFound, match="no dev config"):
            discover_config(explicit=tmp_path)


@pytest.mark.parametrize(
    ("text", "value"),
    [("5Gi", Decimal(5 * 2**30)), ("500m", Decimal("0.5")), ("2", Decimal(2)), ("1.5", Decimal("1.5")),
     ("1e3", Decimal(1000)), ("128974848", Decimal(128974848)), ("129M", Decimal(129_000_000))],
)  # fmt: skip
def test_parse_quantity(text: str, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(("text", "seconds"), [("8h", 28800), ("90m", 5400), ("1h30m", 5400), ("2d", 172800)])
def test_durations(text: str, seconds: int) -> None:
    assert duration_seconds(text) == seconds


def test_dotenv() -> None:
    variables, problems = parse_dotenv("# c\nA=1\nexport B=\"x\\ny\"\nC='$raw'\nD = v # note\n=bad\n")
    assert variables == {"A": "1", "B": "x\ny", "C": "$raw", "D": "v"}
    assert problems == [(6, "'=bad' is not a variable (expected KEY=VALUE)")]


class TestEnvsubst:
    def test_forms(self) -> None:
        env = {"A": "a", "EMPTY": ""}
        assert expand("${A} ${B:-b} ${EMPTY:-e} ${EMPTY} $A $${A} ${A-x}", env).text == "a b e  $A ${A} ${A-x}"

    def test_unset_is_reported_at_its_place_and_left_as_written(self) -> None:
        expansion = expand("x: 1\ny: pre-${NOPE}\n", {})
        assert expansion.text == "x: 1\ny: pre-${NOPE}\n"
        assert [(where.line, where.column) for where, _ in expansion.problems] == [(2, 8)]

    def test_positions_map_back_through_substitutions(self) -> None:
        expansion = expand("a: ${LONG}\nb: c\n", {"LONG": "x" * 50})
        offset_of_b = expansion.text.index("b:")
        position = expansion.source_map.position(offset_of_b)
        assert (position.line, position.column) == (2, 1)
        inside = expansion.source_map.position(expansion.text.index("x") + 10)
        assert (inside.line, inside.column) == (1, 4)

    def test_comments_are_left_alone(self) -> None:
        assert expand("# ${A}\nk: v # ${A}\nq: 'a # ${A}'\n", {"A": "1"}).text == "# ${A}\nk: v # ${A}\nq: 'a # 1'\n"


def test_presets_have_the_documented_ports() -> None:
    assert {language: preset.debug_port for language, preset in PRESETS.items()} == {
        "python": 5678, "go": 2345, "node": 9229, "java": 5005
    }  # fmt: skip
    assert "--listen=:2345" in preset_for("Go").debug
    assert "address=*:5005" in preset_for("java").debug
    with pytest.raises(UsageError, match="python, go, node, java"):
        preset_for("cobol")


@pytest.mark.parametrize("language", sorted(PRESETS))
def test_starter_config_validates_and_carries_the_preset(language: str) -> None:
    preset = PRESETS[language]
    service = parse_config(render_starter_config("deployment", "shop", preset), env={}).service("shop")
    dev = service.container().dev
    assert dev.image == preset.dev_image
    assert dev.debug.remote_debug_port == preset.debug_port and dev.debug.language == language
    assert dev.command.debug is not None and dev.command.debug.shell_command() == preset.debug
    assert dev.sync.mode == "gitIgnore"
    assert [v.path for v in dev.persistent_volume_dirs] == [cache.path for cache in preset.cache_dirs]


@pytest.mark.parametrize("text", ["shop", "deployment/", "replicaset/shop", "deployment/Shop", "/shop"])
def test_bad_workload_arguments(text: str) -> None:
    with pytest.raises(UsageError):
        parse_workload(text)


def test_workload_argument_forms() -> None:
    assert parse_workload("deploy/shop") == ("deployment", "shop")
    assert parse_workload("StatefulSet/db-0") == ("statefulset", "db-0")
