"""LocalIndex: hashes reused for unchanged files, racy entries, refresh, refused symlinks."""

from __future__ import annotations

import os
import time
from pathlib import Path

from nhdev.sync.index import Entry, LocalIndex, link_stays_inside
from nhdev.sync.rules import IgnoreRules


def index_for(root: Path, entries: dict[str, Entry] | None = None) -> LocalIndex:
    return LocalIndex(root, IgnoreRules(root, "pattern", ignore=["*.pyc"]), entries)


def test_an_unchanged_tree_is_not_rehashed(tmp_path: Path) -> None:
    for i in range(20):
        (tmp_path / f"d{i % 3}").mkdir(exist_ok=True)
        (tmp_path / f"d{i % 3}" / f"f{i}.py").write_text(str(i))
    (tmp_path / "x.pyc").write_text("ignored")
    first = index_for(tmp_path)
    first.scan()
    first.settle()  # the files were just written: racy until a tick has passed
    assert first.hashed_files >= 20 and "x.pyc" not in first.entries
    again = index_for(tmp_path, LocalIndex.entries_from_json(first.to_json()))
    again.scan()
    assert (again.hashed_files, again.reused) == (0, 20)
    assert set(again.entries) == set(first.entries)


def test_a_rewrite_with_the_same_size_and_mtime_is_still_noticed(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("aaaa")
    index = index_for(tmp_path)
    index.scan()  # hashed at once: the entry is racy and must not be trusted later
    stat = path.stat()
    path.write_text("bbbb")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert index.refresh(["f.txt"]) == ["f.txt"]
    assert index.entries["f.txt"].digest != Entry("file", 0, 0, 0, "").digest


def test_refresh_reports_changes_and_walks_new_directories(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    index = index_for(tmp_path)
    index.scan()
    (tmp_path / "new" / "deep").mkdir(parents=True)
    (tmp_path / "new" / "deep" / "b.txt").write_text("b")
    assert index.refresh(["new"]) == ["new", "new/deep", "new/deep/b.txt"]
    assert index.refresh(["a.txt"]) == []
    (tmp_path / "new" / "deep" / "b.txt").unlink()
    (tmp_path / "new" / "deep").rmdir()
    assert sorted(index.refresh(["new/deep"])) == ["new/deep", "new/deep/b.txt"]
    os.chmod(tmp_path / "a.txt", 0o755)
    assert index.refresh(["a.txt"]) == ["a.txt"]


def test_symlinks_leaving_the_root_are_refused(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    os.symlink("lib", tmp_path / "ok")
    os.symlink("/etc", tmp_path / "abs")
    os.symlink("../../outside", tmp_path / "lib" / "up")
    os.symlink("ok/../lib", tmp_path / "roundabout")
    index = index_for(tmp_path)
    index.scan()
    assert index.entries["ok"].kind == "symlink" and "roundabout" in index.entries
    assert set(index.refused) == {"abs", "lib/up"}
    assert link_stays_inside(tmp_path, "a/b", "../c") and not link_stays_inside(tmp_path, "a", "../c")


def test_settle_waits_out_the_racy_window(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    index = index_for(tmp_path)
    index.scan()
    started = time.monotonic()
    index.settle()
    assert time.monotonic() - started < 1.0
    entry = index.entries["f"]
    assert entry.mtime_ns < entry.hashed_at_ns
