"""``nhdev dev terminal`` driven in a real pty: prompt, workDir, resize, exit code, reconnect."""

from __future__ import annotations

import pexpect

from nhdev.cluster.rest import kind_named
from tests.e2e.devpod import WORK_DIR, DevPod, dev_pod_fixture  # noqa: F401  (the fixture)

PROMPT = r"[#$] "


def spawn(dev_pod: DevPod, *args: str, rows: int = 24, cols: int = 80) -> pexpect.spawn:
    argv = dev_pod.argv("dev", "terminal", "web", *args)
    return pexpect.spawn(argv[0], argv[1:], env=dev_pod.env(TERM="xterm"), dimensions=(rows, cols), timeout=20)


def test_shell_prompt_work_dir_resize_and_exit_code(dev_pod: DevPod) -> None:
    dev_pod.sh(f"echo synced > {WORK_DIR}/hello.txt")  # as sync would have put it there
    shell = spawn(dev_pod)
    shell.expect(PROMPT)
    shell.sendline("pwd; cat hello.txt")
    shell.expect(f"{WORK_DIR}\r\nsynced\r\n")
    shell.sendline("stty size")
    shell.expect("24 80")
    shell.setwinsize(40, 132)  # SIGWINCH to nhdev, which sends a resize
    shell.sendline("sleep 0.3; stty size")
    shell.expect("40 132")
    shell.sendline("exit 3")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 3


def test_shell_detection_and_configured_shell(dev_pod: DevPod) -> None:
    shell = spawn(dev_pod, "--shell", "sh")
    shell.expect(PROMPT)
    shell.sendline("echo $0")
    shell.expect(r"\r\nsh\r\n")
    shell.sendline("exit 0")
    shell.expect(pexpect.EOF)
    detected = dev_pod.cli("dev", "terminal", "web", stdin="echo $0\n")  # no TTY: piped, non-interactive
    assert detected.returncode == 0 and detected.stdout.strip().rsplit("/", 1)[-1] in ("zsh", "bash")


def test_shell_reconnects_to_the_new_pod_when_its_pod_is_deleted(dev_pod: DevPod) -> None:
    old = dev_pod.pod()
    shell = spawn(dev_pod)
    shell.expect(PROMPT)
    shell.sendline("echo POD=$HOSTNAME")
    shell.expect(f"POD={old}\r\n")
    dev_pod.kube.delete(kind_named("pod"), dev_pod.namespace, old)
    shell.expect(f"pod/{old} container app went away; reconnecting")
    shell.expect(PROMPT)
    shell.sendline("echo POD=$HOSTNAME")
    shell.expect(r"POD=(web-\S+)\r\n")
    assert shell.match.group(1).decode() != old
    shell.sendline("exit")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0
