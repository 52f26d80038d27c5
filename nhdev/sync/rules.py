"""Which paths sync (and hot reload) ignore: compiled once with pathspec, shared by both.

Two modes, as in ``dev.sync.mode`` (design §5):

- ``pattern``: ``filePattern`` says what is synced (``.`` = everything; other entries are gitignore-
  style patterns, ``./src`` anchored at the root), ``ignoreFilePattern`` what is not; an ignore
  pattern wins over an include, as in Nocalhost's generated ``.nhignore``.
- ``gitIgnore``: every ``.gitignore`` in the tree, each applying to paths below its directory with
  git's precedence (deeper files override shallower ones, the last matching line wins, ``!``
  re-includes). A directory that is ignored hides everything under it, as in git.

In both modes ``.git/`` and sync's own private names are never synced. ``extra`` patterns (hot
reload's own ignore list) are added with ``with_extra_ignores``. Paths are relative POSIX paths;
``ignored(path, is_dir)`` checks the path and each of its parent directories.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pathspec

from nhdev.config.model import Sync
from sidecar.sync_wire import is_private_name

GITIGNORE = ".gitignore"
NEVER_SYNCED = (".git",)  # the directory, or the file a worktree has instead
Mode = Literal["pattern", "gitIgnore"]


def _spec(lines: Iterable[str]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(list(lines))


def _include_line(pattern: str) -> str | None:
    """A ``filePattern`` entry as a gitignore line; None for "everything"."""
    text = pattern.strip()
    if text in (".", "./", "*", "**", "/"):
        return None
    if text.startswith("./"):
        return "/" + text[2:]
    return text


class GitignoreFiles:
    """The compiled ``.gitignore`` files of one tree, shallowest first; shared by derived rules."""

    def __init__(self) -> None:
        self.specs: tuple[tuple[str, pathspec.GitIgnoreSpec], ...] = ()
        self.generation = 0

    def replace(self, found: dict[str, pathspec.GitIgnoreSpec]) -> None:
        # Shallow directories first, so a deeper file's verdict overrides theirs.
        self.specs = tuple(sorted(found.items(), key=lambda item: (item[0].count("/") if item[0] else -1, item[0])))
        self.generation += 1


class IgnoreRules:
    """Thread-safe for readers; ``reload_gitignores`` swaps the compiled state at once."""

    CACHE_LIMIT = 200_000

    def __init__(self, root: Path, mode: Mode, *, include: Iterable[str] = (".",), ignore: Iterable[str] = (),
                 extra: Iterable[str] = (), gitignores: GitignoreFiles | None = None) -> None:
        self.root = root
        self.mode = mode
        self.include_patterns = list(include)
        self.ignore_patterns = list(ignore)
        self.extra_patterns = list(extra)
        include_lines = [_include_line(p) for p in self.include_patterns]
        self._everything = not include_lines or any(line is None for line in include_lines)
        self._include = _spec(line for line in include_lines if line is not None)
        self._fixed_ignore = _spec([*NEVER_SYNCED, *(self.ignore_patterns if mode == "pattern" else []),
                                    *self.extra_patterns])
        self._cache: dict[tuple[str, bool], bool] = {}
        self._cache_generation = -1
        self.gitignores = gitignores or GitignoreFiles()
        if mode == "gitIgnore" and gitignores is None:
            self.reload_gitignores()

    @classmethod
    def from_config(cls, sync: Sync, root: Path, *, extra_ignores: Iterable[str] = ()) -> IgnoreRules:
        return cls(root, sync.mode, include=sync.file_pattern, ignore=sync.ignore_file_pattern, extra=extra_ignores)

    def with_extra_ignores(self, patterns: Iterable[str]) -> IgnoreRules:
        """These rules plus ``patterns`` (hot reload's ignore list); the .gitignore files are shared,
        so a reload through either object applies to both."""
        return IgnoreRules(self.root, self.mode, include=self.include_patterns, ignore=self.ignore_patterns,
                           extra=[*self.extra_patterns, *patterns], gitignores=self.gitignores)

    # ---------------------------------------------------------------- .gitignore files

    def is_rules_file(self, relative: str) -> bool:
        """Whether a change to ``relative`` changes the rules (a ``.gitignore`` in gitIgnore mode)."""
        return self.mode == "gitIgnore" and relative.rsplit("/", 1)[-1] == GITIGNORE

    def reload_gitignores(self) -> None:
        """Read every ``.gitignore`` in the tree again, skipping directories they ignore."""
        found: dict[str, pathspec.GitIgnoreSpec] = {}
        building = IgnoreRules(self.root, self.mode, include=self.include_patterns, ignore=self.ignore_patterns,
                               extra=self.extra_patterns, gitignores=GitignoreFiles())
        pending = [""]
        while pending:
            directory = pending.pop()
            host = self.root / directory if directory else self.root
            spec = _read_gitignore(host / GITIGNORE)
            if spec is not None:
                found[directory] = spec
                building.gitignores.replace(found)
            try:
                children = sorted(p.name for p in host.iterdir() if p.is_dir() and not p.is_symlink())
            except OSError:
                continue
            for name in children:
                relative = f"{directory}/{name}" if directory else name
                if not building.ignored(relative, is_dir=True):
                    pending.append(relative)
        self.gitignores.replace(found)

    # ---------------------------------------------------------------- matching

    def ignored(self, relative: str, *, is_dir: bool = False) -> bool:
        if is_private_name(relative):
            return True
        parts = relative.split("/")
        for depth in range(1, len(parts)):
            if self._matches("/".join(parts[:depth]), True):
                return True
        if not is_dir and not self._everything and not self._include.match_file(relative):
            return True
        return self._matches(relative, is_dir)

    def _matches(self, relative: str, is_dir: bool) -> bool:
        if self._cache_generation != self.gitignores.generation or len(self._cache) > self.CACHE_LIMIT:
            self._cache = {}
            self._cache_generation = self.gitignores.generation
        key = (relative, is_dir)
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = self._cache[key] = self._compute(relative, is_dir)
        return verdict

    def _compute(self, relative: str, is_dir: bool) -> bool:
        if self._fixed_ignore.match_file(relative + "/" if is_dir else relative):
            return True
        verdict = False
        for directory, spec in self.gitignores.specs:
            if directory and not relative.startswith(directory + "/"):
                continue
            below = relative[len(directory) + 1:] if directory else relative
            result = spec.check_file(below + "/" if is_dir else below)
            if result.include is not None:
                verdict = result.include
        return verdict


def _read_gitignore(path: Path) -> pathspec.GitIgnoreSpec | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return _spec(text.splitlines())
