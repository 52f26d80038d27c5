"""``nhdev doctor``: checks that dev mode can work from here, and says what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nhdev.cluster.kubeconfig import ClusterTarget, resolve_target
from nhdev.doctor import run_checks
from nhdev.errors import UserError


@click.command()
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
@click.option("--context", default=None, help="Kube context (default: current-context).")
@click.option("--kubeconfig", default=None, help="Kubeconfig file(s) (default: $KUBECONFIG, ~/.kube/config).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
              help="Text for people, or json: a list of checks with name, ok, detail and fix.")
def doctor(namespace: str | None, context: str | None, kubeconfig: str | None, output: str) -> None:
    """Check kube access, permissions and file watching; print what to fix.

    Permissions are checked in the namespace with one access review per verb that dev mode needs
    (docs/rbac.yaml is a Role that grants them). Changes nothing. Exit code 1 when a check fails.
    """
    target: ClusterTarget | None = None
    problem = ""
    try:
        target = resolve_target(kubeconfig, context, namespace)
    except UserError as err:
        problem = err.message
    checks = run_checks(target, Path.cwd(), problem)
    if output == "json":
        click.echo(json.dumps([c.to_json() for c in checks], indent=2))
    else:
        for c in checks:
            mark = "-" if c.skipped else ("✓" if c.ok else "✗")
            click.echo(f"{mark} {c.name}: {c.detail}")
            if c.fix and not c.ok:
                click.echo(f"    fix: {c.fix}")
    if not all(c.ok for c in checks):
        raise click.exceptions.Exit(1)
