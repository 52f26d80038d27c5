"""File sync against a real local nhdev-sidecar over real SSH."""
