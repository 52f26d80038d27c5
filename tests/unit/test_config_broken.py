"""The corpus of broken configs: each file states, in its first line, every issue expected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from nhdev.cli import cli
from nhdev.config import load_config
from nhdev.errors import ConfigError

BROKEN = Path(__file__).parent / "configs" / "broken"
CORPUS = sorted(BROKEN.glob("*.yaml"))
_RENDERED = re.compile(r"^[^:]+:\d+:\d+: (?:\S+: )?.+$")


def expected_issues(path: Path) -> list[tuple[int, int, str]]:
    """``# expect: 7:11 containers[0].dev.portForward[0]; 9:3 -`` -> [(7, 11, "..."), (9, 3, "-")]."""
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith("# expect: "), f"{path.name} lacks its '# expect:' line"
    issues = []
    for entry in first_line.removeprefix("# expect: ").split("; "):
        position, field_path = entry.split(" ", 1)
        line, column = position.split(":")
        issues.append((int(line), int(column), field_path))
    return issues


def test_corpus_has_at_least_25_configs() -> None:
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.stem)
def test_broken_config_reports_every_issue_at_its_node(path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})

    found = [(issue.line, issue.column, issue.path or "-") for issue in caught.value.issues]
    assert found == expected_issues(path)
    assert caught.value.exit_code == 2
    for issue in caught.value.issues:
        assert issue.file.endswith(path.name)
        assert re.search(r"\(expected |\(did you mean |\(it belongs under |invalid YAML", issue.message), issue
        assert _RENDERED.match(issue.render()), issue.render()


@pytest.mark.parametrize("path", CORPUS, ids=lambda path: path.stem)
def test_broken_config_exits_2_through_the_cli(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NHDEV_DEBUG", raising=False)
    monkeypatch.delenv("NHDEV_TEST_SURELY_UNSET", raising=False)  # unset-variable.yaml relies on it
    monkeypatch.chdir(path.parent)
    result = CliRunner().invoke(cli, ["config", "validate", path.name])
    assert result.exit_code == 2, result.output
    first = expected_issues(path)[0]
    assert result.stderr.startswith(f"error: {path.name}:{first[0]}:{first[1]}: ")
    assert len(result.stderr.splitlines()) >= len(expected_issues(path))
    assert "Traceback" not in result.stderr
