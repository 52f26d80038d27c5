"""``nhdev dev debug`` on a Go app in dev mode, attached at the protocol level as VS Code's Go extension does.

The Go preset runs ``dlv debug --headless --accept-multiclient``: a JSON-RPC server that also
answers DAP, to which an IDE attaches with ``"mode": "remote"``. The dev config comes from a
local workspace (dev mode is started from it, so its image and env are what the pod gets); the
sources are put into the pod's workDir by exec, as sync will. The DAP client sends the published
launch configuration as its ``attach`` arguments, sets a breakpoint by its *local* path, and an
HTTP request through a port-forward stops there.

The last test takes ``examples/go-http`` as it is: ``nhdev dev start`` (session, sync, port
forwards), then ``nhdev dev debug`` through the session, whose tunnel carries the debugger.

The sandbox's dev images are stand-ins running on the host's file system, so ``go`` and ``dlv``
come from the host (Debian packages ``golang-go`` and ``delve``, which ``make deps`` installs as
root); without them the tests are skipped. The pod has no network: the apps have no dependencies
(and ``GOPROXY=off`` in the first config makes any attempt to fetch one fail rather than hang).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from nhdev.cluster.kubeconfig import api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.config import load_config
from nhdev.debug.presets import PRESETS
from nhdev.devmode.spec import dev_spec
from nhdev.sandbox.images import HOST_PATH
from nhdev.session import control
from nhdev.session.registry import paths_for, session_key
from tests.dapclient import DapClient, InBackground
from tests.e2e.devpod import (
    LIST_PROCESSES,
    WORK_DIR,
    DevPod,
    forwarded_port,
    kill,
    read_line,
    start_cli,
    start_dev_pod,
    try_get,
)
from tests.e2e.workspace import NHDEV, cli_env, nhdev, web_config, write_project
from tests.sandbox.contract import wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "go-http"

MISSING = [tool for tool in ("go", "dlv") if shutil.which(tool, path=HOST_PATH) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"{' and '.join(MISSING)} not installed on the host, where the sandbox's dev-go "
                          "stand-in finds its tools (Debian packages golang-go and delve: `make deps` as root, "
                          "or `sudo apt-get install golang-go delve`)")

APP = '''\
// A greeter whose handler has a local variable worth looking at.
package main

import (
	"fmt"
	"log"
	"net/http"
	"strings"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		greeting := "hello from " + strings.Trim(r.URL.Path, "/")
		fmt.Fprint(w, greeting) // BREAK
	})
	log.Print("serving on 8080")
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", nil))
}
'''
BREAK_LINE = next(i for i, line in enumerate(APP.splitlines(), 1) if "// BREAK" in line)
GO_MOD = "module example.com/nhdev/greeter\n\ngo 1.19\n"  # no requirements: nothing to fetch
BROKEN = "package main\n\nfunc main() {\n\tundefinedGreeter()\n}\n"

PRESET = PRESETS["go"]
# The preset's own command, on the pod's loopback only (dlv then admits the same uid only: the
# sandbox forwards ports as the uid its pods run as).
DEBUG_COMMAND = PRESET.debug.replace("--listen=:", "--listen=127.0.0.1:")
assert "--listen=127.0.0.1:" in DEBUG_COMMAND and DEBUG_COMMAND.endswith(" ."), PRESET.debug
CONFIG = web_config(image=PRESET.dev_image, dev=f'''\
      workDir: {WORK_DIR}
      command:
        run: [go, run, .]
        debug:
          - {json.dumps(DEBUG_COMMAND)}
      debug:
        language: go
        remoteDebugPort: {PRESET.debug_port}
      # What the dev-go image sets itself (the sandbox's stand-in has no image ENV), with the
      # caches in the container's own /tmp; nothing may be fetched.
      env:
        - {{name: HOME, value: {WORK_DIR}}}
        - {{name: GOPATH, value: /tmp/go}}
        - {{name: GOCACHE, value: /tmp/go-build}}
        - {{name: GOFLAGS, value: -mod=mod}}
        - {{name: GOPROXY, value: "off"}}
        - {{name: CGO_ENABLED, value: "0"}}
''')
APP_CONTAINER = {"name": "app", "image": "golang:1.22-bookworm", "command": ["sleep", "3600"]}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("go-workspace"), CONFIG,
                         {"main.go": APP, "go.mod": GO_MOD, "broken/main.go": BROKEN})


@pytest.fixture(scope="module")
def dev_pod(kubeconfig: Path, workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevPod]:
    """Deployment ``web`` in dev mode from the workspace's config; its sources in the workDir."""
    spec = dev_spec(load_config(workspace / ".nhdev" / "config.yaml").service().container())
    with start_dev_pod(kubeconfig, tmp_path_factory.mktemp("go-devmode"), prefix="go", container=APP_CONTAINER,
                       spec=spec) as pod:
        for name in ("main.go", "go.mod", "broken/main.go"):
            pod.sh(f"mkdir -p \"$(dirname {WORK_DIR}/{name})\" && cat > {WORK_DIR}/{name}",
                   stdin=(workspace / name).read_bytes())
        yield pod


@pytest.fixture
def app_port(dev_pod: DevPod) -> Iterator[int]:
    with forwarded_port(dev_pod, 8080) as port:
        yield port


def test_go_debug_attach_breakpoint_by_local_path_and_no_orphans(dev_pod: DevPod, workspace: Path,
                                                                 app_port: int) -> None:
    # A cold build of net/http without optimizations takes ~10 s on an idle 2-core machine.
    cli = start_cli(dev_pod, workspace, "debug", "web", "--output", "json", "--timeout", "240")
    try:
        line = read_line(cli.stdout, timeout=300)
        assert line, f"nhdev dev debug printed no attach info: {cli.stderr.read()}"  # type: ignore[union-attr]
        info = json.loads(line)
        assert info["language"] == "go" and info["host"] == "127.0.0.1"
        assert info["pathMappings"] == [{"localRoot": str(workspace), "remoteRoot": WORK_DIR}]
        launch = info["launchConfig"]
        assert {k: launch[k] for k in ("type", "request", "mode", "debugAdapter", "host", "port")} == {
            "type": "go", "request": "attach", "mode": "remote", "debugAdapter": "dlv-dap",
            "host": "127.0.0.1", "port": info["port"]}
        assert launch["substitutePath"] == [{"from": str(workspace), "to": WORK_DIR}]
        running = debug_processes(dev_pod)
        assert any("dlv debug" in p for p in running) and any("__debug_bin" in p for p in running), running

        ide = DapClient("127.0.0.1", info["port"])
        local_source = str(workspace / "main.go")
        # VS Code sends the whole launch configuration; the app is halted on start until configurationDone.
        ide.attach("vscode", "go", local_source, BREAK_LINE, **launch)

        request = InBackground(lambda: wait_for(
            "the app answering", lambda: try_get(app_port, "debug", timeout=60), timeout=60))
        thread_id, frame = ide.breakpoint_hit()
        assert (frame["source"]["path"], frame["line"]) == (local_source, BREAK_LINE), frame
        assert ide.local_variable(frame, "greeting")["value"] == '"hello from debug"'
        ide.request("continue", threadId=thread_id)
        assert request.result(30) == "hello from debug"

        # An IDE leaving (Disconnect, not Stop) leaves dlv and the app running for the next one. dlv
        # keeps a leaving client's breakpoints (go-delve/delve#3083): an IDE that does not clear
        # them first leaves the app to stop there with nobody attached. This one clears them.
        ide.request("setBreakpoints", source={"path": local_source}, breakpoints=[])
        ide.request("disconnect", restart=False, terminateDebuggee=False)
        ide.close()
        assert wait_for("the app answering", lambda: try_get(app_port, "again")) == "hello from again"

        cli.send_signal(signal.SIGINT)
        assert cli.wait(30) == 130
        assert debug_processes(dev_pod) == [], "no dlv, build or app process left in the container"
        assert "__debug_bin" not in dev_pod.sh(f"ls -a {WORK_DIR}"), "dlv removes the binary it built"
    finally:
        kill(cli)


def test_go_debug_fails_fast_with_the_compiler_output(dev_pod: DevPod, workspace: Path, tmp_path: Path) -> None:
    shutil.copytree(workspace, tmp_path / "ws")
    config = tmp_path / "ws" / ".nhdev" / "config.yaml"
    config.write_text(CONFIG.replace(f'{DEBUG_COMMAND}"', f'{DEBUG_COMMAND[:-1]}./broken"'))
    done = dev_pod.cli("dev", "debug", "web", "--timeout", "240", cwd=tmp_path / "ws", timeout=300)
    assert done.returncode == 1, done
    assert "exited with code 1 before its debugger listened" in done.stderr
    assert "broken/main.go:4:2: undefined: undefinedGreeter" in done.stderr
    assert debug_processes(dev_pod) == []


@pytest.mark.skipif(shutil.which("gcc", path=HOST_PATH) is None,
                    reason="gcc not installed: the example builds with cgo, as in the dev-go image (`make deps` "
                           "as root installs gcc with the go group)")
def test_go_example_debugs_through_the_session(kubeconfig: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/go-http as it is: `dev start` (session, sync, port-forward), `dev debug` through the session."""
    service = load_config(EXAMPLE / ".nhdev" / "config.yaml").service()
    container = service.container()
    kube = KubeRest(api_client(resolve_target(kubeconfig, "nhdev-sandbox")))
    ns = f"go-example-{uuid.uuid4().hex[:8]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    try:
        labels = {"app": service.name}
        production = {**APP_CONTAINER, "name": container.name}  # idle: dev mode replaces it anyway
        kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": service.name, "namespace": ns},
                     "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                              "template": {"metadata": {"labels": labels}, "spec": {"containers": [production]}}}})
        project, home = tmp_path / "project", tmp_path / "home"
        shutil.copytree(EXAMPLE, project)
        started = nhdev("dev", "start", "-n", ns, "-o", "json", cwd=project, home=home, kubeconfig=kubeconfig)
        assert started.returncode == 0, started.stderr
        try:
            _debug_the_example(ns, project, home, kubeconfig, json.loads(started.stdout), monkeypatch)
        finally:
            ended = nhdev("dev", "end", "-n", ns, cwd=project, home=home, kubeconfig=kubeconfig)
        assert ended.returncode == 0, ended.stderr
    finally:
        kube.delete(kind_named("namespace"), None, ns)


def _debug_the_example(ns: str, project: Path, home: Path, kubeconfig: Path, started: dict,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    app_port = int(started["localSession"]["forwards"][0]["local"].rsplit(":", 1)[1])
    monkeypatch.setenv("HOME", str(home))
    socket_path = paths_for(session_key("nhdev-sandbox", ns, "deployment/greeter-go")).control

    def sync_state() -> object:
        try:
            return control.request(socket_path, {"op": "sync-status"}, timeout=30).get("sync", {}).get("state")
        except control.ControlError:
            return None  # the service behind the op is still starting

    wait_for("the initial sync", lambda: sync_state() == "idle", timeout=60)
    # dlv builds first: a cold build of net/http without optimizations takes 10-45 s on 2 shared cores.
    debug = subprocess.run([NHDEV, "dev", "debug", "-n", ns, "-o", "json", "--timeout", "240"], cwd=project,
                           env=cli_env(home, kubeconfig), capture_output=True, text=True, timeout=300)
    assert debug.returncode == 0, debug.stderr
    info = json.loads(debug.stdout)
    work_dir = load_config(project / ".nhdev" / "config.yaml").service().container().dev.work_dir
    assert info["launchConfig"]["substitutePath"] == [{"from": str(project), "to": work_dir}]

    ide = DapClient("127.0.0.1", info["port"])
    source = project / "main.go"
    line = next(i for i, text in enumerate(source.read_text().splitlines(), 1) if "fmt.Fprintf(w" in text)
    ide.attach("vscode", "go", str(source), line, **info["launchConfig"])

    request = InBackground(lambda: wait_for(
        "the example answering", lambda: try_get(app_port, "example", timeout=60), timeout=60))
    thread_id, frame = ide.breakpoint_hit()
    assert (frame["source"]["path"], frame["line"]) == (str(source), line), frame
    request_var = ide.local_variable(frame, "r")
    assert 'Path: "/example"' in request_var["value"], request_var
    ide.request("setBreakpoints", source={"path": str(source)}, breakpoints=[])
    ide.request("continue", threadId=thread_id)
    answer = request.result(30)
    assert answer and answer.startswith("Hello from nhdev's Go example"), answer
    ide.request("disconnect", restart=False, terminateDebuggee=False)
    ide.close()

    stopped_debug = control.request(socket_path, {"op": "stop-debug"}, timeout=60)
    assert stopped_debug.get("ok"), stopped_debug
    listing = nhdev("dev", "exec", "-n", ns, "--", "sh", "-c", LIST_PROCESSES, cwd=project, home=home,
                    kubeconfig=kubeconfig)
    assert listing.returncode == 0, listing.stderr
    assert [p for p in listing.stdout.splitlines() if "dlv" in p or "__debug_bin" in p] == []


def debug_processes(dev_pod: DevPod) -> list[str]:
    """``pid cmdline`` of dlv, its build and the debugged binary in the dev container."""
    return dev_pod.processes("dlv", "__debug_bin")

