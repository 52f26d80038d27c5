"""``nhdev dev sync``: the session's sync state, or one full sync on demand."""

from __future__ import annotations

import json
import threading
from typing import Any

import click
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn

from nhdev.cli.dev_cmd import _ref, cluster_options
from nhdev.cluster.kubeconfig import resolve_target
from nhdev.errors import UsageError, UserError
from nhdev.session import control
from nhdev.session.launcher import find_session
from nhdev.session.registry import paths_for, session_key
from nhdev.session.state import SessionSpec
from nhdev.session.sync_service import dev_settings, project_root


@click.command("sync")
@click.argument("workload", required=False)
@click.option("--once", is_flag=True, help="Do one full sync now and exit (a session need not run).")
@click.option("--status", "show_status", is_flag=True, help="Show the running session's sync state.")
@click.option("--prune", is_flag=True, help="With --once: also delete files that exist only in the pod.")
@click.option("--config", "config_path", default=None,
              help="Dev config file (default: .nhdev/config.yaml or .nocalhost/config.yaml, here or above).")
@cluster_options
def sync(workload: str | None, once: bool, show_status: bool, prune: bool, config_path: str | None,
         namespace: str | None, context: str | None, kubeconfig: str | None, output: str) -> None:
    """Sync the local tree with the dev container's workDir (the session does it continuously)."""
    if once == show_status:
        raise UsageError("give exactly one of --once and --status")
    target = resolve_target(kubeconfig, context, namespace)
    ref = str(_ref(workload, config_path))
    if show_status:
        _show_status(target.context, target.namespace, ref, output)
        return
    spec_file = paths_for(session_key(target.context, target.namespace, ref)).spec_file
    if not spec_file.exists():
        raise UsageError(f"no dev session of {ref} in {target.namespace} on this machine",
                         hint=f"start one with `nhdev dev start {ref}`")
    status = _sync_once(SessionSpec.read(spec_file), prune, output)
    _emit_status(status, output)


def _show_status(context: str, namespace: str, workload: str, output: str) -> None:
    running = find_session(context, namespace, workload)
    if running is None:
        raise UserError(f"no session runs for {workload} in {namespace}", hint="`nhdev dev start` starts one")
    try:
        reply = control.request(running.paths.control, {"op": "sync-status"})
    except control.ControlError as err:
        raise UserError(f"the session of {workload} does not sync (no dev config?): {err.message}") from None
    _emit_status(reply["sync"], output)


def _emit_status(status: dict[str, Any], output: str) -> None:
    if output == "json":
        click.echo(json.dumps(status, indent=2))
        return
    line = f"sync {status.get('state')}: {status.get('files_in_sync', 0)} files in sync, " \
           f"{status.get('pending', 0)} pending"
    if status.get("last_error"):
        line += f", last error: {status['last_error']}"
    click.echo(line)
    for warning in status.get("warnings") or []:
        click.echo(f"  ! {warning}")


def _sync_once(spec: SessionSpec, prune: bool, output: str) -> dict[str, Any]:
    """One initial sync over a tunnel of its own (a running session keeps syncing meanwhile)."""
    from nhdev.cluster.portforward import open_pod_port
    from nhdev.devmode import names
    from nhdev.session.process import DevPods, session_keys_dir
    from nhdev.sync.engine import SyncEngine
    from nhdev.sync.rules import IgnoreRules
    from nhdev.tunnel import Tunnel

    settings = dev_settings(spec)
    if settings is None:
        raise UsageError(f"the session of {spec.workload} has no dev config, so nothing to sync")
    pods = DevPods(spec)
    keys = session_keys_dir(spec.session_id)
    tunnel = Tunnel(lambda: open_pod_port(spec.target, spec.namespace, pods.resolve(), names.SIDECAR_PORT),
                    keys / "client_key", (keys / "host_key.pub").read_text().strip())
    tunnel.start()
    try:
        if not tunnel.wait_connected(30):
            raise UserError(f"could not reach the sidecar of {spec.workload}: {tunnel.state.reason}")
        root = project_root(spec)
        engine = SyncEngine(tunnel, root, "/", IgnoreRules.from_config(settings.sync, root),
                            direction=settings.sync.type, delete_protection=settings.sync.delete_protection,
                            state_dir=paths_for(session_key(spec.context, spec.namespace, spec.workload)).dir
                            / "sync-once", prune=prune)
        try:
            return _with_progress(engine, output)
        finally:
            engine.close()
    finally:
        tunnel.stop()


def _with_progress(engine: Any, output: str) -> dict[str, Any]:
    if output == "json":
        return dict(engine.initial_sync().to_json())
    lock = threading.Lock()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), DownloadColumn(),
                  transient=True) as bar:
        task = bar.add_task("comparing", total=None)

        def show(p: Any) -> None:
            with lock:
                bar.update(task, description=p.phase, completed=p.bytes_done, total=p.bytes_total or None)

        return dict(engine.initial_sync(progress=show).to_json())
