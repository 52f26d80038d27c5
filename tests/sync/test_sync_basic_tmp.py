from __future__ import annotations
import os, time
from tests.sync.conftest import Running, SyncRig, wait_until


def test_smoke(rig: SyncRig) -> None:
    (rig.local / "a").mkdir()
    (rig.local / "a" / "x.txt").write_text("hello")
    (rig.local / "empty").mkdir()
    os.symlink("a/x.txt", rig.local / "link")
    os.symlink("/etc/passwd", rig.local / "evil")
    engine = rig.engine()
    st = engine.initial_sync()
    print(st)
    assert (rig.pod / "a" / "x.txt").read_text() == "hello"
    assert (rig.pod / "empty").is_dir()
    assert os.readlink(rig.pod / "link") == "a/x.txt"
    assert not os.path.lexists(rig.pod / "evil")
    with Running(engine):
        t = time.monotonic()
        (rig.local / "a" / "x.txt").write_text("bye")
        wait_until(lambda: (rig.pod / "a" / "x.txt").read_text() == "bye")
        print("latency", time.monotonic() - t)
        print(engine.status())
