"""Exec streams and remote processes on the sandbox: exit codes, stdin, bytes, errors, no orphans."""

from __future__ import annotations

import threading
import time

import pytest

from nhdev.cluster.exec import open_exec, run_in_pod
from nhdev.errors import NotFound
from nhdev.run.process import RemoteProcess, list_processes
from tests.e2e.devpod import DevPod, dev_pod_fixture  # noqa: F401  (the fixture)
from tests.sandbox.contract import wait_for


def test_exec_passes_exit_code_and_keeps_stdout_and_stderr_apart(dev_pod: DevPod) -> None:
    done = dev_pod.cli("dev", "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 4")
    assert (done.returncode, done.stdout, done.stderr) == (4, "out\n", "err\n")


def test_exec_dash_i_pipes_stdin_and_runs_in_the_work_dir(dev_pod: DevPod) -> None:
    done = dev_pod.cli("dev", "exec", "web", "-i", "--", "sh", "-c", "pwd; tr a-z A-Z", stdin="hello\nworld\n")
    assert (done.returncode, done.stdout) == (0, "/home/nhdev-dev\nHELLO\nWORLD\n")


def test_exec_errors_name_the_pod_or_container_in_one_line(dev_pod: DevPod) -> None:
    missing = dev_pod.cli("dev", "exec", "web", "-c", "nope", "--", "true")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: container nope not found in pod web-") and "app" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert dev_pod.cli("dev", "exec", "--", "true").returncode == 2  # no workload, no config
    with pytest.raises(NotFound, match=f"pod gone not found in namespace {dev_pod.namespace}"):
        run_in_pod(dev_pod.target, dev_pod.namespace, "gone", "app", ["true"])


def test_run_in_pod_is_binary_safe_both_ways(dev_pod: DevPod) -> None:
    payload = bytes(range(256)) * 8192  # 2 MiB, every byte value, invalid UTF-8 included
    result = run_in_pod(dev_pod.target, dev_pod.namespace, dev_pod.pod(), "app", ["cat"], stdin_data=payload)
    assert result.code == 0 and result.stdout == payload


def test_exec_session_tty_resize_and_stdin_close(dev_pod: DevPod) -> None:
    with open_exec(dev_pod.target, dev_pod.namespace, dev_pod.pod(), "app", ["sh", "-c", "cat; stty size"],
                   stdin=True, tty=True) as session:
        session.resize(77, 11)
        time.sleep(0.2)
        session.write(b"line\n")
        session.close_stdin()
        output = b""
        while (chunk := session.read(10)) is not None:
            output += chunk[1]
        assert session.exit_code() == 0
    assert b"line" in output and b"11 77" in output


def test_remote_process_streams_output_and_stop_leaves_no_orphans(dev_pod: DevPod) -> None:
    lines: list[tuple[str, str]] = []
    got_ready = threading.Event()

    def collect(line: str, stream: str) -> None:
        lines.append((line, stream))
        if line == "ready":
            got_ready.set()

    # A child in the background, one that leaves the group with setsid, and one ignoring SIGTERM.
    command = ("sleep 300 & setsid sleep 301 & sh -c 'trap \"\" TERM; sleep 302' & "
               "echo ready; echo oops >&2; while true; do sleep 0.1; done")
    process = RemoteProcess.start(dev_pod.target, dev_pod.namespace, dev_pod.pod(), "app", command,
                                  role="test", on_output=collect)
    assert process.pgid and process.running
    assert got_ready.wait(10)
    wait_for("the command's processes", lambda: len(process.processes()) >= 5, timeout=10)
    started = time.monotonic()
    process.stop(grace=1)
    assert time.monotonic() - started < 8
    assert not process.running
    assert process.processes() == []
    assert not [p for p in list_processes(dev_pod.target, dev_pod.namespace, dev_pod.pod(), "app", "NHDEV_ROLE=test")]
    assert not [p for p in _all_processes(dev_pod) if "sleep 30" in p], "no stray sleep left in the container"
    assert ("ready", "stdout") in lines and ("oops", "stderr") in lines


def test_remote_process_exit_code_and_a_stale_run_of_the_same_role_is_replaced(dev_pod: DevPod) -> None:
    done = RemoteProcess.start(dev_pod.target, dev_pod.namespace, dev_pod.pod(), "app", "exit 7")
    assert done.wait(10) == 7
    first = RemoteProcess.start(dev_pod.target, dev_pod.namespace, dev_pod.pod(), "app", "sleep 303", role="again")
    second = RemoteProcess.start(dev_pod.target, dev_pod.namespace, dev_pod.pod(), "app", "sleep 304", role="again")
    assert first.wait(10) is not None, "the earlier run of the role was killed"
    assert second.running
    second.stop(grace=1)
    assert not [p for p in _all_processes(dev_pod) if "sleep 30" in p]


def _all_processes(dev_pod: DevPod) -> list[str]:
    """Every process in the dev container (``ps`` from /proc: the image may have no ps)."""
    out = dev_pod.sh("for d in /proc/[0-9]*; do echo \"${d#/proc/} $(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\"; done")
    return [line for line in out.splitlines() if line.strip()]
