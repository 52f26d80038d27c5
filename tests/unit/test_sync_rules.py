"""IgnoreRules: pattern and gitIgnore modes, nested .gitignore files, reloads, hot reload's extras."""

from __future__ import annotations

from pathlib import Path

from nhdev.config.model import Sync
from nhdev.sync.rules import IgnoreRules


def test_pattern_mode_includes_and_ignores(tmp_path: Path) -> None:
    rules = IgnoreRules(tmp_path, "pattern", include=["./src", "*.md"], ignore=["*.pyc", "node_modules"])
    assert not rules.ignored("src/app/main.py")
    assert not rules.ignored("docs/readme.md")
    assert rules.ignored("docs/readme.txt")
    assert rules.ignored("src/app/main.pyc")
    assert rules.ignored("src/node_modules/x.md")
    assert not rules.ignored("docs", is_dir=True)  # walked: it may hold included files


def test_everything_by_default_but_git_and_private_names(tmp_path: Path) -> None:
    rules = IgnoreRules.from_config(Sync(), tmp_path)
    assert not rules.ignored("any/thing.txt")
    assert rules.ignored(".git", is_dir=True) and rules.ignored(".git/HEAD") and rules.ignored("sub/.git/config")
    assert rules.ignored(".git")  # a worktree's .git file
    assert rules.ignored(".nhdev-sync-index") and rules.ignored("a/.nhdev-tmp-x.py-1234")


def test_gitignore_mode_nested_files_and_precedence(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("*.log\nbuild/\n# comment\n")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / ".gitignore").write_text("!keep.log\n/only-here.txt\n")
    (tmp_path / "sub" / "deeper" / ".gitignore").write_text("*.txt\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / ".gitignore").write_text("!*\n")  # inside an ignored dir: never read
    rules = IgnoreRules(tmp_path, "gitIgnore", ignore=["*.py"])  # pattern lists do not apply in this mode
    assert rules.ignored("a.log") and rules.ignored("sub/a.log")
    assert not rules.ignored("sub/keep.log")
    assert rules.ignored("sub/only-here.txt") and not rules.ignored("sub/x/only-here.txt")
    assert rules.ignored("sub/deeper/t.txt") and not rules.ignored("t.txt")
    assert rules.ignored("build", is_dir=True) and rules.ignored("build/keep")
    assert not rules.ignored("main.py")
    assert [d for d, _ in rules.gitignores.specs] == ["", "sub", "sub/deeper"]


def test_a_changed_gitignore_applies_after_reload_and_to_derived_rules(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("secret/\n")
    rules = IgnoreRules(tmp_path, "gitIgnore")
    hot_reload = rules.with_extra_ignores(["*.tmp"])
    assert rules.is_rules_file("x/.gitignore") and not rules.is_rules_file("gitignore.txt")
    assert rules.ignored("secret/a") and hot_reload.ignored("secret/a")
    assert hot_reload.ignored("x.tmp") and not rules.ignored("x.tmp")
    (tmp_path / ".gitignore").write_text("*.bak\n")
    rules.reload_gitignores()
    assert not rules.ignored("secret/a") and not hot_reload.ignored("secret/a")
    assert rules.ignored("a.bak") and hot_reload.ignored("a.bak")


def test_pattern_mode_rules_file_changes_are_ordinary_files(tmp_path: Path) -> None:
    rules = IgnoreRules(tmp_path, "pattern")
    assert not rules.is_rules_file(".gitignore") and not rules.ignored(".gitignore")
