"""reconcile: who moved away from the last common version decides; conflicts keep both."""

from __future__ import annotations

from nhdev.sync.index import Entry, Signature
from nhdev.sync.plan import reconcile


def f(digest: str) -> Entry:
    return Entry("file", 1, 0, 0o644, digest)


def sig(digest: str) -> Signature:
    return f(digest).signature


def two_way(local: dict[str, Entry], remote: dict[str, Entry | None], base: dict[str, Signature],
            protect: bool = True) -> dict[str, list[str]]:
    plan = reconcile(set(local) | set(remote), local, remote, base, direction="sendReceive",
                     delete_protection=protect)
    return {k: v for k, v in {"send": plan.send, "fetch": plan.fetch, "delete_remote": plan.delete_remote,
                              "delete_local": plan.delete_local, "conflicts": plan.conflicts}.items() if v}


def test_two_way_attributes_each_difference_to_the_side_that_moved() -> None:
    assert two_way({"p": f("new")}, {"p": f("old")}, {"p": sig("old")}) == {"send": ["p"]}
    assert two_way({"p": f("old")}, {"p": f("new")}, {"p": sig("old")}) == {"fetch": ["p"]}
    assert two_way({"p": f("a")}, {"p": f("b")}, {"p": sig("old")}) == {"conflicts": ["p"]}
    assert two_way({"p": f("a")}, {"p": f("b")}, {}) == {"conflicts": ["p"]}
    assert two_way({}, {"p": f("old")}, {"p": sig("old")}) == {"delete_remote": ["p"]}
    assert two_way({}, {"p": f("changed")}, {"p": sig("old")}) == {"fetch": ["p"]}
    assert two_way({}, {"p": f("new")}, {}) == {"fetch": ["p"]}
    assert two_way({"p": f("x")}, {"p": f("x")}, {}) == {}


def test_delete_protection_restores_instead_of_deleting_here() -> None:
    assert two_way({"p": f("old")}, {}, {"p": sig("old")}) == {"send": ["p"]}
    assert two_way({"p": f("old")}, {}, {"p": sig("old")}, protect=False) == {"delete_local": ["p"]}
    assert two_way({"p": f("changed")}, {}, {"p": sig("old")}, protect=False) == {"send": ["p"]}


def test_one_way_keeps_pod_only_files_unless_pruned_or_deleted_here() -> None:
    local = {"both": f("new")}
    remote = {"both": f("old"), "pod-only": f("gen"), "deleted-here": f("old")}
    base = {"deleted-here": sig("old")}
    plan = reconcile(set(local) | set(remote), local, remote, base, direction="send", delete_protection=True)
    assert (plan.send, plan.delete_remote, plan.forget) == (["both"], ["deleted-here"], ["pod-only"])
    pruned = reconcile(set(local) | set(remote), local, remote, base, direction="send", delete_protection=True,
                       prune=True)
    assert pruned.delete_remote == ["deleted-here", "pod-only"]
