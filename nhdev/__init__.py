"""nhdev: develop inside a Kubernetes cluster from your own editor."""

__version__ = "0.1.0"
