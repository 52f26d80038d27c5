"""``nhdev config``: validate, show and create the dev config."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from nhdev.config import discover_config, load_config
from nhdev.config.starter import write_starter_config
from nhdev.debug.presets import PRESETS
from nhdev.errors import UsageError

_PATH = click.Path(path_type=Path)


@click.group()
def config() -> None:
    """Check, show and create the dev config (.nhdev/config.yaml or .nocalhost/config.yaml)."""


@config.command()
@click.argument("path", required=False, type=_PATH)
def validate(path: Path | None) -> None:
    """Check the dev config; print every problem as FILE:LINE:COL: field: what is wrong.

    PATH is the config file, or a directory holding .nhdev/config.yaml or .nocalhost/config.yaml
    (default: the first found here or in a parent directory). Exit code 2 when there are problems.
    """
    file = discover_config(explicit=path)
    loaded = load_config(file)
    click.echo(f"ok: {_shown(file)}: {loaded.summary()}")


@config.command()
@click.argument("path", required=False, type=_PATH)
@click.option("--config", "config_path", type=_PATH, help="The config file (same as PATH).")
@click.option("--output", "-o", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
              help="Print as YAML (the file format) or JSON.")
def show(path: Path | None, config_path: Path | None, output: str) -> None:
    """Print the effective dev config: defaults filled in, env files merged into env.

    PATH is found as for nhdev config validate.
    """
    if path is not None and config_path is not None and path != config_path:
        raise UsageError("give the config file either as PATH or with --config, not both")
    loaded = load_config(discover_config(explicit=path or config_path))
    data = loaded.to_data()
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


@config.command()
@click.option("--workload", required=True, metavar="KIND/NAME", help="The workload, e.g. deployment/my-app.")
@click.option("--language", required=True, type=click.Choice(list(PRESETS), case_sensitive=False),
              help="The preset: dev image, run and debug commands, debugger port, package caches.")
@click.option("--force", is_flag=True, help="Replace an existing config (a timestamped backup is kept).")
@click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
    help="Project directory (default: the current one).",
)  # fmt: skip
def init(workload: str, language: str, force: bool, directory: Path) -> None:
    """Write a commented starter .nhdev/config.yaml for a workload.

    It refuses to replace an existing file unless --force is given.
    """
    written = write_starter_config(directory, workload, language, force=force)
    if written.backup is not None:
        click.echo(f"kept the previous config as {_shown(written.backup)}")
    click.echo(f"wrote {_shown(written.path)}")


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)
