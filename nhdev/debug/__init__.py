"""Per-language debugging: presets (commands, ports, images), readiness probes, IDE attach configs."""
