"""What the VS Code extension reads, against the sandbox: `cluster namespaces/workloads` with dev state,
`dev logs`, the session status it finds its control socket in, and the session's `resync` op."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from nhdev.session import control
from tests.e2e.workspace import nhdev, web_config, web_namespace, write_project
from tests.sandbox.contract import wait_for

pytestmark = pytest.mark.timeout(180)

CONFIG = web_config("""\
      workDir: /home/nhdev-dev
""")
GREETING = ["sh", "-c", "echo hello-from-web; echo second-line; exec sleep 3600"]


@pytest.fixture
def namespace(kubeconfig: Path) -> Iterator[str]:
    with web_namespace(kubeconfig, "ide", command=GREETING) as ns:
        yield ns


def test_the_extension_s_view_of_a_namespace_before_and_during_dev_mode(
        namespace: str, kubeconfig: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    project = write_project(tmp_path / "project", CONFIG, {"app.py": "print('hi')\n"})

    def cli(*args: str) -> dict:  # type: ignore[type-arg]
        done = nhdev(*args, "-n", namespace, "-o", "json", cwd=project, home=home, kubeconfig=kubeconfig)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    listed = cli("cluster", "namespaces")
    assert namespace in listed["namespaces"] and listed["namespace"] == namespace
    assert listed["context"] == "nhdev-sandbox"

    before = cli("cluster", "workloads")
    assert before["namespace"] == namespace and before["identity"]
    assert [(w["workload"], w["containers"], w["dev"]) for w in before["workloads"]] == [
        ("deployment/web", ["app"], [])]

    logs = wait_for("the app's log", lambda: (lambda done: done.stdout if "second-line" in done.stdout else None)(
        nhdev("dev", "logs", "deployment/web", "-n", namespace, cwd=tmp_path, home=home, kubeconfig=kubeconfig)))
    assert logs == "hello-from-web\nsecond-line\n"
    tail = nhdev("dev", "logs", "web", "--tail", "1", "-n", namespace, cwd=tmp_path, home=home, kubeconfig=kubeconfig)
    assert tail.stdout == "second-line\n"

    started = cli("dev", "start")
    session = started["localSession"]
    try:
        assert session["mode"] == "replace" and session["projectRoot"] == str(project)
        assert session["configPath"] == str(project / ".nhdev" / "config.yaml")
        socket_path = Path(session["controlSocket"])
        assert socket_path.is_socket() and socket_path.is_relative_to(home / ".nhdev" / "sessions")

        during = cli("cluster", "workloads")
        assert [(w["workload"], [(d["mode"], d["mine"]) for d in w["dev"]]) for w in during["workloads"]] == [
            ("deployment/web", [("replace", True)])]
        status = cli("dev", "status")
        assert status["localSession"]["controlSocket"] == str(socket_path)

        wait_for("sync started", lambda: control.request(socket_path, {"op": "sync-status"})["sync"]["state"]
                 in ("idle", "syncing"), timeout=60)
        compares = control.request(socket_path, {"op": "sync-status"})["sync"]["counters"]["full_compares"]
        assert control.request(socket_path, {"op": "resync"})["ok"] is True
        wait_for("a second full compare", lambda: control.request(socket_path, {"op": "sync-status"})["sync"]
                 ["counters"]["full_compares"] > compares, timeout=30)
    finally:
        ended = nhdev("dev", "end", "-n", namespace, cwd=project, home=home, kubeconfig=kubeconfig)
        assert ended.returncode == 0, ended.stderr
