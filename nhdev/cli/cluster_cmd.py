"""``nhdev cluster contexts | namespaces | workloads``: what an IDE lists (wiring only)."""

from __future__ import annotations

import json
from typing import Any

import click

from nhdev.cli.dev_cmd import cluster_options
from nhdev.cluster.kubeconfig import api_client, list_contexts, resolve_target
from nhdev.cluster.rest import KubeRest, kind_named
from nhdev.devmode.identity import current_identity
from nhdev.devmode.inventory import list_workloads


def _emit(output: str, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, indent=2) if output == "json" else text)


@click.group()
def cluster() -> None:
    """What is there: kube contexts, namespaces, and workloads with their dev state."""


@cluster.command()
@click.option("--kubeconfig", default=None, help="Kubeconfig file(s) (default: $KUBECONFIG, ~/.kube/config).")
@click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
              help="Text for people, or json: the contexts and the current one.")
def contexts(kubeconfig: str | None, output: str) -> None:
    """The kubeconfig's contexts; the current one is marked with *."""
    found = list_contexts(kubeconfig).to_json()
    rows = [f"{'*' if c['name'] == found['current'] else ' '} {c['name']:<32} {c['cluster'] or '-':<24} "
            f"{c['namespace']}" for c in found["contexts"]]
    header = f"  {'NAME':<32} {'CLUSTER':<24} NAMESPACE"
    _emit(output, found, "\n".join([header, *rows]))


@cluster.command()
@cluster_options
def namespaces(namespace: str | None, context: str | None, kubeconfig: str | None, output: str) -> None:
    """The cluster's namespaces (needs permission to list them)."""
    target = resolve_target(kubeconfig, context, namespace)
    kube = KubeRest(api_client(target))
    names = sorted(ns["metadata"]["name"] for ns in kube.list(kind_named("namespace"), None))
    _emit(output, {"context": target.context, "namespace": target.namespace, "namespaces": names},
          "\n".join(f"{'*' if n == target.namespace else ' '} {n}" for n in names))


@cluster.command()
@cluster_options
def workloads(namespace: str | None, context: str | None, kubeconfig: str | None, output: str) -> None:
    """The namespace's workloads with their dev state: who holds which in replace mode, whose duplicates run."""
    target = resolve_target(kubeconfig, context, namespace)
    identity = current_identity()
    rows = list_workloads(KubeRest(api_client(target)), target.namespace, identity)
    lines = [f"{target.context} / {target.namespace} (you are {identity})"]
    for row in rows:
        dev = ", ".join(f"{d['mode']} by {'you' if d['mine'] else d['identity']}" for d in row["dev"])
        lines.append(f"  {row['workload']:<40} {row['status']:<20} {dev}")
    _emit(output, {"context": target.context, "namespace": target.namespace, "identity": identity,
                   "workloads": rows}, "\n".join(lines if rows else [*lines, "  no workloads"]))
