"""Random operations on both sides while the link is down, then a reconnect: the trees end identical
and every version either side last wrote survives (in place, or as a conflict copy beside it)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.sync_wire import CONFLICT_MARK
from tests.sync.conftest import Running, SyncRig, wait_until
from tests.sync.trees import tree_of

pytestmark = pytest.mark.timeout(120)

NAMES = ["a.txt", "b.txt", "dir/c.txt", "dir/sub/d.txt"]
Operation = tuple[str, str, str | None]  # side, name, content (None: delete)

operations = st.lists(st.tuples(st.sampled_from(["local", "pod"]), st.sampled_from(NAMES),
                                st.one_of(st.none(), st.text("xyz", min_size=1, max_size=6))), max_size=12)
initial = st.dictionaries(st.sampled_from(NAMES), st.text("abc", min_size=1, max_size=4))
_examples = itertools.count()


def apply(root: Path, name: str, content: str | None) -> None:
    path = root / name
    if content is None:
        path.unlink(missing_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def contents_of(root: Path, name: str) -> set[str]:
    """The text at ``name`` and in its conflict copies."""
    path = root / name
    found = {p.read_text() for p in path.parent.glob(path.name + CONFLICT_MARK + "*")}
    if path.is_file():
        found.add(path.read_text())
    return found


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=initial, ops=operations)
def test_random_operations_converge_without_losing_content(rig: SyncRig, start: dict[str, str],
                                                           ops: list[Operation]) -> None:
    number = next(_examples)
    local = rig.tmp / f"local-{number}"
    local.mkdir()
    pod = rig.sidecar.root / f"ex{number}"
    for name, content in start.items():
        apply(local, name, content)
    # Each example syncs its own pair of directories through the same sidecar.
    engine = rig.engine(direction="sendReceive", state=f"state-{number}", local=local, remote_root=f"/ex{number}")
    engine.initial_sync()
    last: dict[tuple[str, str], str | None] = {}
    with Running(engine):
        rig.link.drop(hold=True)
        wait_until(lambda: engine.status().state == "paused", what="paused")
        for side, name, content in ops:
            apply(local if side == "local" else pod, name, content)
            last[(side, name)] = content
        rig.link.restore()
        wait_until(lambda: engine.status().state == "idle" and tree_of(local) == tree_of(pod), timeout=20,
                   what="convergence")
    for (side, name), content in last.items():
        if content is not None:
            assert content in contents_of(local, name), f"{side}'s last version of {name} was lost"
    for name in NAMES:  # a local change wins in place
        if last.get(("local", name)) is not None:
            assert (local / name).read_text() == last[("local", name)]
