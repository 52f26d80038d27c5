"""``nhdev dev ...`` (start, end, reset, status, list) and ``nhdev cleanup``: wiring only."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from nhdev.cluster.kubeconfig import ClusterTarget, api_client, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.config import discover_config, load_config
from nhdev.devmode.engine import DevModeEngine, EndResult, WorkloadRef, parse_workload_ref
from nhdev.devmode.identity import current_identity, new_session_id
from nhdev.devmode.inventory import list_dev_mode, plan_cleanup, workload_status
from nhdev.devmode.spec import dev_spec
from nhdev.errors import ConfigNotFound, UsageError
from nhdev.session.launcher import find_session, spawn_session, stop_session, wait_until_connected
from nhdev.session.state import SessionSpec

CONNECT_WAIT = 30.0  # how long `dev start` waits for the session's tunnel before returning anyway


def cluster_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed([
        click.option("-n", "--namespace", default=None, help="Namespace (default: the context's)."),
        click.option("--context", default=None, help="Kube context (default: current-context)."),
        click.option("--kubeconfig", default=None, help="Kubeconfig file(s) (default: $KUBECONFIG, ~/.kube/config)."),
        click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
                     help="Text for people, or json: one JSON document on stdout (progress goes to stderr)."),
    ]):
        fn = option(fn)
    return fn


def _engine(kubeconfig: str | None, context: str | None, namespace: str | None, output: str
            ) -> tuple[DevModeEngine, KubeRest]:
    target = resolve_target(kubeconfig, context, namespace)
    kube = KubeRest(api_client(target))

    def progress(message: str) -> None:  # on stderr in both formats: an IDE shows it while it waits
        click.echo(f"  · {message}", err=True)

    return DevModeEngine(kube, target.namespace, current_identity(), progress=progress), kube


def _emit(output: str, data: dict[str, Any] | list[Any], text: str) -> None:
    click.echo(json.dumps(data, indent=2) if output == "json" else text)


@click.group()
def dev() -> None:
    """Dev mode: swap a workload for a dev container (replace) or run a private copy (duplicate).

    WORKLOAD is NAME or KIND/NAME (deployment, statefulset, daemonset, job, cronjob, pod, or their
    kubectl short forms); without it, the dev config's name and serviceType are used.
    """


@dev.command()
@click.argument("workload", required=False)
@click.option("--mode", type=click.Choice(["replace", "duplicate"]), default="replace", show_default=True,
              help="replace: the workload itself runs the dev container (one developer at a time); "
                   "duplicate: a private copy that no Service selects, the original keeps serving.")
@click.option("--container", "-c", default=None, help="Container to develop in (default: config, or the only one).")
@click.option("--image", default=None, help="Dev image (overrides dev.image of the config).")
@click.option("--config", "config_path", default=None,
              help="Dev config file (default: .nhdev/config.yaml or .nocalhost/config.yaml, here or above).")
@click.option("--timeout", type=click.FloatRange(1), default=300.0, show_default=True,
              help="Seconds to wait for the dev pod.")
@click.option("--no-session", is_flag=True, help="Do not start the background session (tunnel, forwards).")
@click.option("--foreground", is_flag=True, help="Run the session in this terminal with live status, until Ctrl-C.")
@cluster_options
def start(workload: str | None, mode: str, container: str | None, image: str | None, config_path: str | None,
          timeout: float, no_session: bool, foreground: bool, namespace: str | None, context: str | None,
          kubeconfig: str | None, output: str) -> None:
    """Put WORKLOAD (NAME or KIND/NAME) into dev mode and wait for its dev pod, then start its session.

    The session runs in the background: one tunnel to the pod's sidecar, file sync of the project
    (the directory holding .nhdev/) into workDir, and every portForward entry of the config. Run
    again, it resumes your own dev mode; someone else's is refused (use --mode duplicate).
    """
    if no_session and foreground:
        raise UsageError("--foreground and --no-session exclude each other")
    service = _service(config_path, workload, image)
    ref = parse_workload_ref(workload, default_kind=service.service_type if service else None,
                             default_name=service.name if service else None)
    container_config = service.container(container) if service else None
    if container_config is None:
        from nhdev.config import ContainerConfig

        container_config = ContainerConfig(name=container)
    spec = dev_spec(container_config, container_name=container, image=image)
    ttl = service.duplicate.ttl_seconds() if service else None
    engine, _ = _engine(kubeconfig, context, namespace, output)
    engine_target = resolve_target(kubeconfig, context, namespace)
    if output == "text":
        click.echo(f"starting {mode} dev mode for {ref} in {engine.namespace} as {engine.identity}", err=True)
    result = engine.start(ref, spec, mode=mode, session_id=new_session_id(), timeout=timeout, ttl_seconds=ttl)
    verb = "already in dev mode" if result.resumed else "in dev mode"
    text = (f"{ref} {verb} ({result.mode}) in {result.seconds:.1f}s: pod {result.pod}, container "
            f"{result.dev_container}\n  terminal: nhdev dev terminal {ref}\n  end:      nhdev dev end {ref}")
    if no_session:
        _emit(output, result.to_json(), text)
        return
    session_spec = SessionSpec(
        kubeconfig=engine_target.kubeconfig, context=engine_target.context, namespace=result.namespace,
        workload=str(ref), session_id=result.session, dev_container=result.dev_container,
        forwards=[f.text() for f in container_config.dev.port_forward], config_path=_config_file(config_path),
        service=service.name if service else None, container=container_config.name,
        local_root=str(Path.cwd()), mode=result.mode)
    if foreground:
        click.echo(text, err=True)
        _run_foreground(session_spec)
        return
    running = spawn_session(session_spec)
    status = wait_until_connected(running, CONNECT_WAIT)
    _emit(output, {**result.to_json(), "localSession": status}, "\n".join([text, *_session_lines(status)]))


def _config_file(config_path: str | None) -> str | None:
    try:
        return str(discover_config(Path.cwd(), explicit=config_path))
    except ConfigNotFound:
        return None


def _run_foreground(spec: SessionSpec) -> None:
    """The session in this process: status lines as things change, until Ctrl-C or `dev end`."""
    import threading

    from nhdev.session.launcher import paths_of
    from nhdev.session.process import Session, install_stop_signals

    existing = find_session(spec.context, spec.namespace, spec.workload)
    if existing is not None:
        stop_session(existing)
    stopping = threading.Event()
    install_stop_signals(stopping)
    session = Session(spec, paths_of(spec), on_event=lambda event: _print_event(session, event))
    session.run(stopping)
    click.echo("session stopped", err=True)


def _print_event(session: Any, event: dict[str, Any]) -> None:
    if event.get("event") != "tunnel":
        click.echo(f"  · {event.get('event')}: {json.dumps(event)}", err=True)
        return
    state, reason = event["state"], event.get("reason")
    click.echo(f"  · tunnel {state}" + (f" to pod {event.get('pod')}" if state == "connected" else "")
               + (f": {reason}" if reason else ""), err=True)
    if state == "connected" and event.get("generation") == 1:
        for line in _session_lines(session.status())[1:]:
            click.echo(line, err=True)


def _session_lines(status: dict[str, Any]) -> list[str]:
    tunnel = status["tunnel"]
    lines = [f"  session:  pid {status['pid']}, tunnel {tunnel['state']}"
             + (f" to pod {status['pod']}" if tunnel["state"] == "connected" else "")
             + (f" ({tunnel['reason']})" if tunnel.get("reason") and tunnel["state"] != "connected" else "")]
    for forward in status["forwards"]:
        arrow = "->" if forward["kind"] == "local" else "<-"
        where = "pod " + forward["remote"]
        live = f", {forward['connections']} live" if forward["connections"] else ""
        error = f"  ! {forward['error']}" if forward.get("error") else ""
        lines.append(f"  forward:  {forward['local']} {arrow} {where}{live}{error}")
    lines += [f"  ! forward {error}" for error in status.get("forwardErrors", [])]
    return lines


def _stop_local_session(target: ClusterTarget, ref: WorkloadRef, output: str) -> None:
    """`dev end` and `dev reset` stop this machine's session first, so nothing holds the old pod."""
    running = find_session(target.context, target.namespace, str(ref))
    if running is None:
        return
    stop_session(running)
    if output == "text":
        click.echo(f"  · stopped the session (pid {running.pid})", err=True)


def _service(config_path: str | None, workload: str | None, image: str | None) -> Any:
    try:
        path = discover_config(Path.cwd(), explicit=config_path)
    except ConfigNotFound:
        if config_path or not image:
            raise
        return None
    name = (workload or "").rpartition("/")[2] or None
    kind = (workload or "").rpartition("/")[0] or None
    return load_config(path).service(name, kind)


def _end_text(result: EndResult) -> str:
    lines = [f"{result.workload} {'restored' if result.restored else 'left as it was'} ({result.mode})"]
    lines += [f"  deleted {d}" for d in result.deleted]
    lines += [f"  ! {d.render()}" for d in result.drifts]
    return "\n".join(lines)


def _ref(workload: str | None, config_path: str | None) -> WorkloadRef:
    if workload and "/" in workload:
        return parse_workload_ref(workload)
    try:
        service = load_config(discover_config(Path.cwd(), explicit=config_path)).service(workload, None)
    except ConfigNotFound:
        return parse_workload_ref(workload)
    return parse_workload_ref(workload, default_kind=service.service_type, default_name=service.name)


@dev.command()
@click.argument("workload", required=False)
@click.option("--force", is_flag=True, help="End a session that someone else started.")
@click.option("--session", "session_id", default=None, help="Which duplicate to end (default: yours).")
@click.option("--config", "config_path", default=None,
              help="Dev config file (default: .nhdev/config.yaml or .nocalhost/config.yaml, here or above).")
@cluster_options
def end(workload: str | None, force: bool, session_id: str | None, config_path: str | None,
        namespace: str | None, context: str | None, kubeconfig: str | None, output: str) -> None:
    """End dev mode: stop this machine's session, then restore WORKLOAD from the backup kept on the
    cluster (replace), or delete your copy (duplicate).

    Changes others made meanwhile to fields nhdev did not set are kept, and reported.
    """
    engine, _ = _engine(kubeconfig, context, namespace, output)
    ref = _ref(workload, config_path)
    _stop_local_session(resolve_target(kubeconfig, context, namespace), ref, output)
    result = engine.end(ref, force=force, session_id=session_id)
    _emit(output, result.to_json(), _end_text(result))


@dev.command()
@click.argument("workload")
@click.option("--force", is_flag=True, help="Also when someone else holds the workload.")
@cluster_options
def reset(workload: str, force: bool, namespace: str | None, context: str | None, kubeconfig: str | None,
          output: str) -> None:
    """Undo whatever nhdev left on WORKLOAD, even a half-done start, from the cluster alone.

    Needs no local state and no dev config: for after a crash, or on another machine.
    """
    engine, kube = _engine(kubeconfig, context, namespace, output)
    ref = parse_workload_ref(workload)
    live = kube.try_get(ref.kind, engine.namespace, ref.name)
    from nhdev.devmode.engine import owner_of

    owner = owner_of(live) if live else None
    if owner and owner.get("identity") != engine.identity and not force:
        raise UsageError(f"{ref} is in dev mode by {owner.get('identity')}", hint="add --force to reset it anyway")
    _stop_local_session(resolve_target(kubeconfig, context, namespace), ref, output)
    result = engine.reset(ref)
    _emit(output, result.to_json(), _end_text(result))


@dev.command()
@click.argument("workload", required=False)
@click.option("--config", "config_path", default=None,
              help="Dev config file (default: .nhdev/config.yaml or .nocalhost/config.yaml, here or above).")
@cluster_options
def status(workload: str | None, config_path: str | None, namespace: str | None, context: str | None,
           kubeconfig: str | None, output: str) -> None:
    """Whether WORKLOAD is in dev mode: mode, owner, since when, its pod and containers ready, and
    this machine's session (tunnel, port forwards)."""
    engine, kube = _engine(kubeconfig, context, namespace, output)
    ref = _ref(workload, config_path)
    info = workload_status(kube, engine.namespace, ref, engine.identity)
    target = resolve_target(kubeconfig, context, namespace)
    running = find_session(target.context, target.namespace, str(ref))
    local = _session_lines(running.status) if running else []
    if running:
        info["localSession"] = running.status
    if not info["sessions"]:
        _emit(output, info, "\n".join([f"{ref} in {engine.namespace}: not in dev mode", *local]))
        return
    lines = [f"{ref} in {engine.namespace}:"]
    for s in info["sessions"]:
        pod = s["pod"] or {}
        ready = sum(pod.get("containers", {}).values())
        lines.append(f"  {s['mode']} by {s['identity']}{' (you)' if s['mine'] else ''} since {s['since']}, "
                     f"pod {pod.get('name', '-')} {pod.get('phase', '')} {ready}/{len(pod.get('containers', {}))}"
                     f" ready" + (f", copy {s['copy']}" if s.get("copy") else ""))
    _emit(output, info, "\n".join([*lines, *local]))


@dev.command("list")
@click.option("--all-namespaces", "-A", is_flag=True, help="Every namespace.")
@cluster_options
def list_(all_namespaces: bool, namespace: str | None, context: str | None, kubeconfig: str | None,
          output: str) -> None:
    """Workloads in dev mode in the namespace (or every namespace), with mode, owner and since when."""
    engine, kube = _engine(kubeconfig, context, namespace, output)
    entries = list_dev_mode(kube, None if all_namespaces else engine.namespace)
    rows = [f"{e.namespace:<16} {e.workload:<32} {e.mode:<10} {e.identity:<24} {e.since}"
            + (f"  {e.copy}" if e.copy else "") for e in entries]
    header = f"{'NAMESPACE':<16} {'WORKLOAD':<32} {'MODE':<10} {'OWNER':<24} SINCE"
    _emit(output, [e.to_json() for e in entries], "\n".join([header, *rows]) if rows else "nothing in dev mode")


@click.command()
@click.option("--pvc", "pvcs", is_flag=True, help="Also delete the cache PVCs of persistentVolumeDirs (their data is "
              "lost).")
@click.option("--dry-run", is_flag=True, help="Only print what would be deleted.")
@cluster_options
def cleanup(pvcs: bool, dry_run: bool, namespace: str | None, context: str | None, kubeconfig: str | None,
            output: str) -> None:
    """Delete what nhdev left behind in the namespace: expired duplicates, keys of sessions that are
    gone, backups of workloads that no longer exist and, with --pvc, cache PVCs; found by nhdev's
    labels only."""
    engine, kube = _engine(kubeconfig, context, namespace, output)
    doomed = plan_cleanup(kube, engine.namespace, pvcs=pvcs)
    names = [f"{o['kind'].lower()}/{o['metadata']['name']}" for o in doomed]
    if not dry_run:
        for obj in doomed:
            kube.delete(kind_named(obj["kind"]), obj["metadata"]["namespace"], obj["metadata"]["name"])
    verb = "would delete" if dry_run else "deleted"
    _emit(output, {"dryRun": dry_run, "objects": names},
          "\n".join(f"{verb} {n}" for n in names) if names else "nothing to clean up")
