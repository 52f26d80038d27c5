"""``nhdev dev logs``: a container's log, followed (wiring only; the pod is found as for ``dev terminal``)."""

from __future__ import annotations

import sys

import click

from nhdev.cli.shell_cmd import _place, pod_options


@click.command()
@click.argument("workload", required=False)
@click.option("--follow/--no-follow", "-f", default=False, help="Keep printing as the log grows, until Ctrl-C.")
@click.option("--tail", "tail_lines", type=click.IntRange(0), default=None, help="Only the last N lines.")
@pod_options
def logs(workload: str | None, follow: bool, tail_lines: int | None, container: str | None, config_path: str | None,
         namespace: str | None, context: str | None, kubeconfig: str | None) -> None:
    """The log of WORKLOAD's container (the dev container in dev mode, where run/debug output goes to the session)."""
    place = _place(workload, container, config_path, namespace, context, kubeconfig, need_config=False)
    pod = place.pod()
    click.echo(f"nhdev: logs of {pod} ({place.query.namespace})", err=True)
    out = sys.stdout.buffer
    try:
        for chunk in place.kube.pod_log_stream(pod.namespace, pod.pod, pod.container, tail_lines=tail_lines,
                                               follow=follow):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        pass
