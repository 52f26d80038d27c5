"""``nhdev sandbox``: the embedded local cluster (up, down, status, kubeconfig, images)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from nhdev.errors import SandboxError, UsageError
from nhdev.sandbox import lifecycle
from nhdev.sandbox.kubeconfig import CONTEXT_NAME, merge_into, sandbox_kubeconfig

if TYPE_CHECKING:
    from nhdev.sandbox.images import ImageList

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the sandbox keeps its state (default ~/.nhdev/sandbox, or $NHDEV_SANDBOX_DIR).",
)
output_option = click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
                             help="Text for people, or json: one JSON document.")


def _state_dir(given: Path | None) -> Path:
    return (given or lifecycle.default_state_dir()).expanduser().resolve()


@click.group()
def sandbox() -> None:
    """The embedded local cluster, for trying nhdev without a cluster."""


@sandbox.command()
@state_dir_option
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="API port on 127.0.0.1 (default: a free one).")
@click.option("--runtime", type=click.Choice(list(lifecycle.RUNTIMES)), default=None,
              help="How pods run: bwrap (namespaces; the default where bubblewrap and nsenter are "
                   "installed), process (plain processes; the default otherwise) or podman (real "
                   "containers from podman's local images).")
@click.option("--merge-kubeconfig", is_flag=True,
              help=f"Also add the {CONTEXT_NAME!r} context to ~/.kube/config (other contexts untouched).")
@output_option
def up(state_dir: Path | None, port: int | None, runtime: str | None, merge_kubeconfig: bool,
       output: str) -> None:
    """Start the sandbox in the background (or report the running one) and print its kubeconfig path."""
    sd = _state_dir(state_dir)
    rec, started = lifecycle.start(sd, port=port, runtime=runtime)
    backup = _merge_user_kubeconfig(rec.url) if merge_kubeconfig else None
    if output == "json":
        click.echo(json.dumps({**_record_json(rec), "started": started}, indent=2))
        return
    verb = "started" if started else "already running"
    click.echo(f"sandbox {verb} at {rec.url} (runtime {rec.runtime}, pid {rec.pid})")
    click.echo(f"kubeconfig: {rec.kubeconfig}")
    if merge_kubeconfig:
        click.echo(f"context {CONTEXT_NAME!r} added to {_user_kubeconfig()}"
                   + (f" (previous file kept as {backup})" if backup else ""))
    click.echo(f"try: kubectl --kubeconfig {rec.kubeconfig} get nodes")


def _user_kubeconfig() -> Path:
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first).expanduser() if first else Path.home() / ".kube" / "config"


def _merge_user_kubeconfig(url: str) -> Path | None:
    target = _user_kubeconfig()
    try:
        return merge_into(target, sandbox_kubeconfig(url))
    except (OSError, ValueError) as err:
        raise SandboxError(f"could not merge into {target}: {err}") from err


@sandbox.command()
@state_dir_option
@output_option
def down(state_dir: Path | None, output: str) -> None:
    """Stop the sandbox and every pod it runs. State is kept for the next `up`."""
    sd = _state_dir(state_dir)
    rec = lifecycle.stop(sd)
    if output == "json":
        click.echo(json.dumps({"stopped": rec is not None, "stateDir": str(sd)}))
    elif rec is None:
        click.echo(f"sandbox not running (state dir {sd})")
    else:
        click.echo(f"sandbox stopped (pid {rec.pid}); state kept in {sd}")


@sandbox.command()
@state_dir_option
@output_option
def status(state_dir: Path | None, output: str) -> None:
    """Whether the sandbox runs: its URL, health, pid, runtime, uptime and kubeconfig."""
    sd = _state_dir(state_dir)
    rec = lifecycle.running_server(sd)
    info: dict[str, object] = {"running": rec is not None, "stateDir": str(sd)}
    if rec is not None:
        info.update(_record_json(rec))
        info["healthy"] = lifecycle.api_answers(rec.url)
        info["uptimeSeconds"] = round(time.time() - rec.started_at, 1)
    if output == "json":
        click.echo(json.dumps(info, indent=2))
    elif rec is None:
        click.echo(f"sandbox not running (state dir {sd}); start it with: nhdev sandbox up")
    else:
        health = "healthy" if info["healthy"] else "NOT ANSWERING"
        click.echo(f"sandbox running at {rec.url}, {health}, pid {rec.pid}, runtime {rec.runtime}, "
                   f"up {info['uptimeSeconds']}s")
        click.echo(f"kubeconfig: {rec.kubeconfig}")


def _record_json(rec: lifecycle.ServerRecord) -> dict[str, object]:
    return {"url": rec.url, "pid": rec.pid, "port": rec.port, "runtime": rec.runtime,
            "stateDir": rec.state_dir, "kubeconfig": str(rec.kubeconfig), "context": CONTEXT_NAME}


@sandbox.command()
@state_dir_option
@click.option("--path", "path_only", is_flag=True, help="Print the file's path instead of its content.")
def kubeconfig(state_dir: Path | None, path_only: bool) -> None:
    """Print the sandbox's kubeconfig (context nhdev-sandbox, namespace default)."""
    sd = _state_dir(state_dir)
    rec = lifecycle.running_server(sd)
    if rec is None:
        raise SandboxError(f"sandbox not running (state dir {sd})", hint="start it with: nhdev sandbox up")
    click.echo(str(rec.kubeconfig) if path_only else rec.kubeconfig.read_text(), nl=path_only)


@sandbox.group(invoke_without_command=True)
@state_dir_option
@click.pass_context
def images(ctx: click.Context, state_dir: Path | None) -> None:
    """List the images the sandbox can run (others fail with ErrImagePull, as on a real cluster)."""
    ctx.obj = {"state_dir": _state_dir(state_dir)}
    if ctx.invoked_subcommand is None:
        for name in _image_list(ctx).list():
            click.echo(name)


def _image_list(ctx: click.Context) -> ImageList:
    from nhdev.sandbox.images import ImageList

    sd: Path = ctx.obj["state_dir"]
    sd.mkdir(parents=True, exist_ok=True)
    return ImageList(sd)


@images.command("add")
@click.argument("name")
@click.pass_context
def images_add(ctx: click.Context, name: str) -> None:
    """Let pods use image NAME (it runs on the host root)."""
    if not name.strip() or any(c.isspace() for c in name):
        raise UsageError(f"invalid image name {name!r}")
    _image_list(ctx).add(name)
    click.echo(f"added {name}")


@images.command("remove")
@click.argument("name")
@click.pass_context
def images_remove(ctx: click.Context, name: str) -> None:
    """Forget image NAME: new pods using it fail with ErrImagePull."""
    _image_list(ctx).remove(name)
    click.echo(f"removed {name}")
