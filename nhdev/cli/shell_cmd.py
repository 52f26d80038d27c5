"""``nhdev dev terminal | exec | run | debug``: wiring only (logic in ``nhdev.run`` and ``nhdev.debug``)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click

from nhdev.cluster.kubeconfig import ClusterTarget, api_client, resolve_target
from nhdev.cluster.rest import KubeRest
from nhdev.config import ContainerConfig, ServiceConfig, discover_config, load_config
from nhdev.debug.launch import debug_plan, kube_forwarder, start_debugging
from nhdev.devmode.engine import parse_workload_ref
from nhdev.devmode.identity import current_identity
from nhdev.errors import ConfigNotFound, UsageError
from nhdev.run.pods import PodQuery, PodTarget, find_pod, pod_query
from nhdev.run.process import RemoteProcess, wait_for_exit
from nhdev.run.terminal import detect_shell, run_interactive, run_piped, shell_argv
from nhdev.session import control
from nhdev.session.launcher import find_session

EXIT_INTERRUPTED = 130


def pod_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("-c", "--container", default=None,
                     help="Container (default: the dev container, else the config's, else the first)."),
        click.option("--config", "config_path", default=None,
                     help="Dev config file (default: .nhdev/config.yaml or .nocalhost/config.yaml, here or "
                          "above)."),
        click.option("-n", "--namespace", default=None, help="Namespace (default: the context's)."),
        click.option("--context", default=None, help="Kube context (default: current-context)."),
        click.option("--kubeconfig", default=None, help="Kubeconfig file(s) (default: $KUBECONFIG, ~/.kube/config)."),
    ]):
        fn = option(fn)
    return fn


@dataclass(frozen=True)
class Place:
    """Where a command goes: the cluster, how to find the pod, and the dev config if there is one."""

    target: ClusterTarget
    kube: KubeRest
    query: PodQuery
    container: str | None
    container_config: ContainerConfig | None
    config_path: Path | None

    def pod(self, wait: float = 0.0) -> PodTarget:
        configured = self.container_config.name if self.container_config else None
        return find_pod(self.kube, self.query, self.container, configured, wait=wait)

    def local_root(self) -> str:
        """The workspace the dev config belongs to (the directory holding ``.nhdev/``)."""
        if self.config_path is None:
            return str(Path.cwd())
        folder = self.config_path.resolve().parent
        return str(folder.parent if folder.name in (".nhdev", ".nocalhost") else folder)


def _place(workload: str | None, container: str | None, config_path: str | None, namespace: str | None,
           context: str | None, kubeconfig: str | None, *, need_config: bool) -> Place:
    service, path = _service(workload, config_path, required=need_config)
    ref = parse_workload_ref(workload, default_kind=service.service_type if service else None,
                             default_name=service.name if service else None)
    target = resolve_target(kubeconfig, context, namespace)
    kube = KubeRest(api_client(target))
    query = pod_query(kube, target.namespace, ref, current_identity())
    return Place(target, kube, query, container, _container_config(service, container), path)


def _service(workload: str | None, config_path: str | None, *, required: bool
             ) -> tuple[ServiceConfig | None, Path | None]:
    try:
        path = discover_config(Path.cwd(), explicit=config_path)
    except ConfigNotFound:
        if required or config_path:
            raise
        return None, None
    kind, _, name = (workload or "").rpartition("/")
    try:
        return load_config(path).service(name or None, kind or None), path
    except UsageError:
        if required:
            raise
        return None, path  # a terminal into a workload the config does not describe


def _container_config(service: ServiceConfig | None, container: str | None) -> ContainerConfig | None:
    if service is None:
        return None
    try:
        return service.container(container)
    except UsageError:  # -c names a container the config does not describe (the sidecar, say)
        return None


@click.command()
@click.argument("workload", required=False)
@click.option("--shell", default=None, help="Shell to run (default: config dev.shell, else zsh, bash or sh).")
@click.option("--wait", "wait_seconds", type=click.FloatRange(0), default=120.0, show_default=True,
              help="Seconds to wait for a new pod when the pod goes away.")
@pod_options
@click.pass_context
def terminal(ctx: click.Context, workload: str | None, shell: str | None, wait_seconds: float,
             container: str | None, config_path: str | None, namespace: str | None, context: str | None,
             kubeconfig: str | None) -> None:
    """A shell in WORKLOAD's dev container (or its container, outside dev mode); reconnects after pod changes.

    The shell exits with your exit code. Without a terminal on stdin, the shell reads its commands
    from stdin.
    """
    place = _place(workload, container, config_path, namespace, context, kubeconfig, need_config=False)
    pod = place.pod()
    configured = place.container_config.dev.shell if place.container_config else None
    chosen = detect_shell(place.target, pod) if not (shell or configured) else None
    argv = shell_argv(shell or configured or (chosen.path if chosen else "sh"), chosen.has_env if chosen else True)
    if not sys.stdin.isatty():
        ctx.exit(run_piped(place.target, pod, argv, stdin=True))
    click.echo(f"nhdev: {argv[-1]} in {pod} ({place.query.namespace})", err=True)

    def next_pod(waiting: bool) -> PodTarget:
        return place.pod(wait=wait_seconds) if waiting else pod

    ctx.exit(run_interactive(place.target, argv, next_pod, reconnect=True, notice=_notice))


def _notice(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


class _CommandAfterDashes(click.Command):
    """Keeps everything after ``--`` as the command, so its options are not parsed as ours."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            index = args.index("--")
            ctx.meta["nhdev.command"] = args[index + 1:]
            args = args[:index]
        return super().parse_args(ctx, args)


@click.command("exec", cls=_CommandAfterDashes)
@click.argument("words", nargs=-1, metavar="[WORKLOAD] -- COMMAND [ARGS]...")
@click.option("-i", "--stdin", "interactive", is_flag=True, help="Pass stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a TTY (needs a terminal on stdin).")
@pod_options
@click.pass_context
def exec_(ctx: click.Context, words: tuple[str, ...], interactive: bool, tty: bool, container: str | None,
          config_path: str | None, namespace: str | None, context: str | None, kubeconfig: str | None) -> None:
    """Run one command in WORKLOAD's dev container and exit with its exit code.

    Everything after -- is the command, passed as is (no shell): nhdev dev exec -- ls -la. Outside
    dev mode it runs in the workload's container.
    """
    workload, argv = _split_command(words, ctx.meta.get("nhdev.command"))
    place = _place(workload, container, config_path, namespace, context, kubeconfig, need_config=False)
    pod = place.pod()
    if tty:
        if not sys.stdin.isatty():
            raise UsageError("-t needs a terminal on stdin", hint="drop -t to pipe input with -i")
        ctx.exit(run_interactive(place.target, argv, lambda _waiting: pod, reconnect=False, notice=_notice))
    ctx.exit(run_piped(place.target, pod, argv, stdin=interactive))


def _split_command(words: tuple[str, ...], after_dashes: list[str] | None) -> tuple[str | None, list[str]]:
    if after_dashes is not None:
        if len(words) > 1:
            raise UsageError(f"one WORKLOAD before --, got: {' '.join(words)}")
        command, workload = list(after_dashes), (words[0] if words else None)
    else:
        workload, command = (words[0] if words else None), list(words[1:])
    if not command:
        raise UsageError("no command to run", hint="nhdev dev exec [WORKLOAD] -- CMD [ARGS...]")
    return workload, command


@click.command()
@click.argument("workload", required=False)
@pod_options
@click.pass_context
def run(ctx: click.Context, workload: str | None, container: str | None, config_path: str | None,
        namespace: str | None, context: str | None, kubeconfig: str | None) -> None:
    """Run dev.command.run in the dev container until it exits or Ctrl-C (which stops all of it).

    With a session running (nhdev dev start), the session runs it and hot reload restarts it when
    synced files change; its output streams here. One run per container: a run left behind by an
    earlier session is stopped first.
    """
    place = _place(workload, container, config_path, namespace, context, kubeconfig, need_config=True)
    assert place.container_config is not None
    command = place.container_config.dev.command.run
    if command is None:
        raise UsageError("no dev.command.run in the dev config", hint="add e.g. `run: [python, app.py]`")
    session = _session_socket(place)
    if session is not None:  # the session owns it: hot reload restarts it, `dev end` stops it
        ctx.exit(_run_in_session(session, command.shell_command()))
    pod = place.pod()
    click.echo(f"nhdev: running `{command.shell_command()}` in {pod}", err=True)
    process = RemoteProcess.start(place.target, pod.namespace, pod.pod, pod.container, command.shell_command(),
                                  workdir=place.container_config.dev.work_dir, role="run", on_output=_print_line)
    ctx.exit(_until_exit_or_interrupt(process, "run"))


@click.command()
@click.argument("workload", required=False)
@click.option("--timeout", type=click.FloatRange(1), default=60.0, show_default=True,
              help="Seconds to wait for the debugger to listen.")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
              help="Text for people, or json: where to attach, the path mappings and a VS Code launch "
                   "configuration.")
@pod_options
@click.pass_context
def debug(ctx: click.Context, workload: str | None, timeout: float, output: str, container: str | None,
          config_path: str | None, namespace: str | None, context: str | None, kubeconfig: str | None) -> None:
    """Run dev.command.debug, forward its debugger to 127.0.0.1 and print how to attach.

    Without dev.command.debug, the preset of debug.language is used (debugpy, dlv, node --inspect,
    JDWP). With a session running (nhdev dev start), the session keeps the debugger and hot reload
    restarts it; without one, the command runs until Ctrl-C, which stops it.
    """
    place = _place(workload, container, config_path, namespace, context, kubeconfig, need_config=True)
    assert place.container_config is not None
    plan = debug_plan(place.container_config.dev)
    session = _session_socket(place)
    if session is not None:  # the session keeps the debugger (and re-attaches it on hot reload)
        info = control.request(session, {"op": "debug", "timeout": timeout}, timeout=timeout + 30)["attach"]
        click.echo(json.dumps(info) if output == "json" else _attach_text(info))
        return
    pod = place.pod()
    click.echo(f"nhdev: debugging `{plan.command}` in {pod}", err=True)
    started = start_debugging(place.target, pod, plan, place.local_root(), forwarder=kube_forwarder(place.target),
                              timeout=timeout, on_output=_print_to_stderr)
    if output == "json":
        click.echo(json.dumps(started.info.to_json()))
    else:
        click.echo(started.info.render())
        click.echo(json.dumps(started.info.launch_config, indent=2))
    sys.stdout.flush()
    try:
        ctx.exit(_until_exit_or_interrupt(started.process, "debug"))
    finally:
        started.forward.close()


def _until_exit_or_interrupt(process: RemoteProcess, what: str) -> int:
    """The command's exit code; on Ctrl-C (or SIGTERM) its whole process group is stopped: 130."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        while (code := wait_for_exit(process, timeout=3600)) is None and process.running:
            pass
        return code if code is not None else 1
    except KeyboardInterrupt:
        click.echo(f"\nnhdev: stopping the {what} command", err=True)
        # A second Ctrl-C must not cut the stop short and leave the group running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        process.stop()
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _session_socket(place: Place) -> Path | None:
    """The control socket of this workload's running session, if one runs on this machine."""
    running = find_session(place.target.context, place.target.namespace, place.query.workload)
    return running.paths.control if running is not None else None


def _run_in_session(socket_path: Path, command: str) -> int:
    """``dev run`` through the session: its output streamed here; Ctrl-C stops it in the session."""
    click.echo(f"nhdev: running `{command}` in the session (hot reload restarts it)", err=True)
    events = control.subscribe(socket_path)
    next(events)  # the current status
    control.request(socket_path, {"op": "run"}, timeout=60)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        for event in events:
            if event.get("event") == "output" and event.get("role") == "run":
                _print_line(str(event.get("line", "")), str(event.get("stream", "stdout")))
            elif event.get("event") == "reload":
                click.echo(f"nhdev: hot reload ({event.get('changed')} changed)", err=True)
            elif event.get("event") == "run" and event.get("state") in ("exited", "stopped"):
                code = event.get("exitCode")
                return int(code) if isinstance(code, int) else 1
        return 1  # the session ended
    except KeyboardInterrupt:
        click.echo("\nnhdev: stopping the run command", err=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        control.request(socket_path, {"op": "stop-run"}, timeout=30)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _attach_text(info: dict[str, Any]) -> str:
    lines = [f"debugger ({info.get('language')}) listening on {info.get('host')}:{info.get('port')}; "
             "the session keeps it running (`nhdev dev end` stops it)"]
    return "\n".join([*lines, json.dumps(info.get("launchConfig") or {}, indent=2)])


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_line(line: str, stream: str) -> None:
    click.echo(line, err=stream == "stderr")


def _print_to_stderr(line: str, _stream: str) -> None:
    click.echo(line, err=True)
