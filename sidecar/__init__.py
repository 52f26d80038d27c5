"""The nhdev sidecar: a small SSH server that runs beside the dev container in the dev pod.

It serves one thing, the session tunnel (design §4): SFTP confined to the sync root, local
forwards to loopback inside the pod, reverse forwards, and nhdev's own exec commands. It depends
on paramiko and the standard library only, so its image stays small; nothing here imports nhdev.
"""

# The image installs this package without nhdev's distribution metadata, so the version lives
# here; tests check that it matches pyproject.toml.
__version__ = "0.1.0"
