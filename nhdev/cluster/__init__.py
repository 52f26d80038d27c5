"""Cluster access: kubeconfig to ApiClient, workload adapters, exec and port-forward streams, waiting.

Knows nothing of dev mode or the CLI.
"""
