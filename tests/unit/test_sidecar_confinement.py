"""The sidecar's path confinement: every client path lands inside the root or is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sidecar.confinement import Confinement, PathEscape, lexical_parts

DENIED = "denied"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """A root with links of every kind, and a sibling whose name shares the root's prefix."""
    root = tmp_path / "root"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "a.py").write_text("print('a')\n")
    (tmp_path / "root-evil").mkdir()
    (tmp_path / "root-evil" / "secret").write_text("no\n")
    links = {
        "src/link_in": "../src",  # relative, inside
        "abs_in": str(root / "src"),  # absolute, inside
        "etc_link": "/etc",
        "slash": "/",
        "up": "../..",
        "src/pkg/up3": "../../../root-evil",
        "prefix": "../root-evil",  # /x/root-evil starts with /x/root: a string check would let it in
        "chain1": "chain2",
        "chain2": "src/chain3",
        "src/chain3": "../etc_link",
        "ok1": "ok2",
        "ok2": "src/link_in",
        "dangling": "nowhere",
        "dangling_out": "/nonexistent-outside-root",
        "loop1": "loop2",
        "loop2": "loop1",
    }
    for name, target in links.items():
        os.symlink(target, root / name)
    return root


RESOLVE_CASES = [
    # (client path, follow symlinks, expected path relative to the root, or DENIED)
    ("", True, "."),
    ("/", True, "."),
    (".", True, "."),
    ("..", True, "."),
    ("/..", True, "."),
    ("../../..", True, "."),
    ("src/a.py", True, "src/a.py"),
    ("/src/a.py", True, "src/a.py"),
    ("src/a.py/", True, "src/a.py"),
    ("src//a.py", True, "src/a.py"),
    ("./src/./a.py", True, "src/a.py"),
    ("src/../src/a.py", True, "src/a.py"),
    ("/../../../src/a.py", True, "src/a.py"),
    ("../../etc/passwd", True, "etc/passwd"),  # ROOT/etc/passwd, never the host's
    ("/etc/passwd", True, "etc/passwd"),
    ("src/..\\..\\x", True, "src/..\\..\\x"),  # backslashes are ordinary characters
    ("new/file", True, "new/file"),
    ("src/link_in/a.py", True, "src/a.py"),
    ("abs_in/a.py", True, "src/a.py"),
    ("ok1/a.py", True, "src/a.py"),  # a chain of links that stays inside
    ("dangling", True, "nowhere"),
    ("etc_link", True, DENIED),
    ("etc_link/passwd", True, DENIED),
    ("slash", True, DENIED),
    ("slash/etc/passwd", True, DENIED),
    ("up", True, DENIED),
    ("src/pkg/up3/secret", True, DENIED),
    ("prefix/secret", True, DENIED),
    ("chain1", True, DENIED),  # a chain of links that ends outside
    ("chain1/passwd", True, DENIED),
    ("dangling_out", True, DENIED),
    ("src/a.py\x00.txt", True, DENIED),
    ("\x00", True, DENIED),
    # Without following, the final component is the link itself; its parent is still checked.
    ("etc_link", False, "etc_link"),
    ("etc_link/", False, "etc_link"),
    ("chain1", False, "chain1"),
    ("etc_link/passwd", False, DENIED),
    ("slash/etc", False, DENIED),
    ("src/link_in/a.py", False, "src/a.py"),
    ("..", False, "."),
    ("/../etc_link", False, "etc_link"),
    ("x\x00", False, DENIED),
]


@pytest.mark.parametrize(("client_path", "follow", "expected"), RESOLVE_CASES)
def test_resolve(root: Path, client_path: str, follow: bool, expected: str) -> None:
    confinement = Confinement(root)
    if expected == DENIED:
        with pytest.raises(PathEscape):
            confinement.resolve(client_path, follow_symlinks=follow)
        return
    assert confinement.resolve(client_path, follow_symlinks=follow) == os.path.normpath(root / expected)


def test_refusal_is_permission_denied(root: Path) -> None:
    with pytest.raises(PermissionError) as raised:
        Confinement(root).resolve("etc_link/passwd")
    assert raised.value.errno == 13


def test_a_symlink_loop_stays_inside_and_ends(root: Path) -> None:
    resolved = Confinement(root).resolve("loop1")
    assert Confinement(root).contains(resolved)
    with pytest.raises(OSError):
        Path(resolved).read_text()


def test_a_root_reached_through_a_symlink(root: Path, tmp_path: Path) -> None:
    (tmp_path / "root-link").symlink_to(root)
    confinement = Confinement(tmp_path / "root-link")
    assert confinement.root == str(root)
    assert confinement.resolve("abs_in/a.py") == str(root / "src" / "a.py")
    with pytest.raises(PathEscape):
        confinement.resolve("etc_link")


def test_the_filesystem_root_as_root() -> None:
    assert Confinement("/").resolve("../etc/../etc") == "/etc"


@pytest.mark.parametrize(("client_path", "parts"), [
    ("", []),
    ("/", []),
    ("a/b/", ["a", "b"]),
    ("/a/./b/../c", ["a", "c"]),
    ("../a", ["a"]),
    ("a/../../b", ["b"]),
    ("...", ["..."]),
    ("a/..b", ["a", "..b"]),
])
def test_lexical_parts(client_path: str, parts: list[str]) -> None:
    assert lexical_parts(client_path) == parts


def test_client_view(root: Path) -> None:
    confinement = Confinement(root)
    assert confinement.client_view(str(root)) == "/"
    assert confinement.client_view(str(root / "src" / "a.py")) == "/src/a.py"
    assert confinement.client_view(confinement.resolve("src/link_in/a.py")) == "/src/a.py"


@pytest.mark.parametrize(("link", "target", "allowed"), [
    ("x", "src/a.py", True),
    ("x", "./src/../src", True),
    ("x", "missing-but-inside", True),
    ("src/x", "../src/a.py", True),
    ("src/x", "a.py", True),
    ("x", "ROOT/src", True),  # absolute text that resolves inside
    ("x", "..", False),
    ("src/x", "../../root-evil", False),
    ("x", "/etc", False),
    ("x", "/", False),
    ("x", "etc_link", False),  # through an existing link that leads out
    ("x", "a\x00b", False),
])
def test_check_link_target(root: Path, link: str, target: str, allowed: bool) -> None:
    confinement = Confinement(root)
    target = target.replace("ROOT", str(root))
    link_path = str(root / link)
    if allowed:
        confinement.check_link_target(link_path, target)
    else:
        with pytest.raises(PathEscape):
            confinement.check_link_target(link_path, target)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_check_descriptor(root: Path, tmp_path: Path) -> None:
    confinement = Confinement(root)
    inside = os.open(root / "src" / "a.py", os.O_RDONLY)
    outside = os.open(tmp_path / "root-evil" / "secret", os.O_RDONLY)
    try:
        confinement.check_descriptor(inside, "/src/a.py")
        with pytest.raises(PathEscape):
            confinement.check_descriptor(outside, "/secret")
    finally:
        os.close(inside)
        os.close(outside)
