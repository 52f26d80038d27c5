"""The embedded local cluster: a Kubernetes API server, controllers and real pods on this machine.

Never imports the engine packages (devmode, session, sync, tunnel).
"""
