"""The root command group: global options, error rendering, subcommand registration."""

from __future__ import annotations

import sys
from typing import Any

import click

from nhdev import __version__
from nhdev.errors import UserError


class NhdevGroup(click.Group):
    """A click group that renders :class:`UserError` as one line and maps it to its exit code.

    Tracebacks are shown only with ``--debug`` (or ``NHDEV_DEBUG=1``).
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except UserError as err:
            if _debug_requested(ctx):
                raise
            click.echo(f"error: {err.render()}", err=True)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as err:  # a bug: still one line, the traceback only on request
            if _debug_requested(ctx):
                raise
            click.echo(f"error: internal error: {type(err).__name__}: {err} (run with --debug for the traceback; "
                       "please report it)", err=True)
            ctx.exit(1)


def _debug_requested(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return bool(root.params.get("debug")) or "--debug" in sys.argv


@click.group(cls=NhdevGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="nhdev")
@click.option("--debug", is_flag=True, envvar="NHDEV_DEBUG", help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Develop inside a Kubernetes cluster from your own editor.

    Try it on the embedded sandbox cluster: nhdev demo. In your project: nhdev config init, then
    nhdev dev start, nhdev dev terminal / run / debug, and nhdev dev end.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from nhdev.cli import config_cmd, demo_cmd, dev_cmd, sandbox_cmd, shell_cmd

    cli.add_command(config_cmd.config)
    cli.add_command(dev_cmd.dev)
    dev_cmd.dev.add_command(shell_cmd.terminal)
    dev_cmd.dev.add_command(shell_cmd.exec_)
    dev_cmd.dev.add_command(shell_cmd.run)
    dev_cmd.dev.add_command(shell_cmd.debug)
    cli.add_command(dev_cmd.cleanup)
    cli.add_command(sandbox_cmd.sandbox)
    cli.add_command(demo_cmd.demo)
    from nhdev.cli import doctor_cmd, sync_cmd

    cli.add_command(doctor_cmd.doctor)
    dev_cmd.dev.add_command(sync_cmd.sync)
    from nhdev.cli import portforward_cmd

    cli.add_command(portforward_cmd.port_forward)
    from nhdev.cli import cluster_cmd, logs_cmd

    cli.add_command(cluster_cmd.cluster)
    dev_cmd.dev.add_command(logs_cmd.logs)


_register()
