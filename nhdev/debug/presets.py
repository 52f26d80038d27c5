"""Per-language debug presets: dev image, run and debug commands, debugger port, caches.

``nhdev config init`` writes them into a new config; the session and the IDE integration read
the port and language from the config, so a user's edits always win over these defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from nhdev.errors import UsageError


@dataclass(frozen=True)
class CacheDir:
    """A package cache worth keeping on a persistent volume across sessions."""

    path: str
    capacity: str


@dataclass(frozen=True)
class DebugPreset:
    """What a typical project in one language needs in the dev container."""

    language: str
    debugger: str
    debug_port: int
    dev_image: str
    run: str
    debug: str
    app_port: int
    cache_dirs: tuple[CacheDir, ...] = ()
    hot_reload: bool = True
    hot_reload_ignore: tuple[str, ...] = field(default_factory=tuple)


PRESETS = MappingProxyType(
    {
        "python": DebugPreset(
            language="python",
            debugger="debugpy",
            debug_port=5678,
            dev_image="ghcr.io/nhdev/dev-python:3.12",
            run="python app.py",
            # Frozen stdlib modules (3.11+) can make debugpy miss breakpoints; it says so on every start.
            debug="python -Xfrozen_modules=off -m debugpy --listen 0.0.0.0:5678 --wait-for-client app.py",
            app_port=8000,
            cache_dirs=(CacheDir("/home/nhdev-dev/.cache/pip", "5Gi"),),
            hot_reload_ignore=("__pycache__/", "*.pyc", ".venv/"),
        ),
        "go": DebugPreset(
            language="go",
            debugger="dlv",
            debug_port=2345,
            dev_image="ghcr.io/nhdev/dev-go:1.22",
            run="go run .",
            debug="dlv debug --headless --listen=:2345 --api-version=2 --accept-multiclient .",
            app_port=8080,
            cache_dirs=(CacheDir("/go/pkg/mod", "10Gi"), CacheDir("/home/nhdev-dev/.cache/go-build", "5Gi")),
            hot_reload_ignore=("*_test.go",),
        ),
        "node": DebugPreset(
            language="node",
            debugger="node-inspector",
            debug_port=9229,
            dev_image="ghcr.io/nhdev/dev-node:20",
            run="node index.js",
            debug="node --inspect=0.0.0.0:9229 index.js",
            app_port=3000,
            cache_dirs=(CacheDir("/home/nhdev-dev/.npm", "5Gi"),),
            hot_reload_ignore=("node_modules/",),
        ),
        "java": DebugPreset(
            language="java",
            debugger="jdwp",
            debug_port=5005,
            dev_image="ghcr.io/nhdev/dev-java:17",
            run="mvn spring-boot:run",
            debug=(
                "mvn spring-boot:run -Dspring-boot.run.jvmArguments="
                '"-agentlib:jdwp=transport=dt_socket,server=y,suspend=n,address=*:5005"'
            ),
            app_port=8080,
            cache_dirs=(CacheDir("/home/nhdev-dev/.m2", "10Gi"),),
            hot_reload=False,  # a JVM restart costs more than it saves; opt in if wanted
            hot_reload_ignore=("target/",),
        ),
    }
)


def preset_for(language: str) -> DebugPreset:
    """The preset of ``language`` (case-insensitive); :class:`UsageError` listing the choices otherwise."""
    preset = PRESETS.get(language.strip().lower())
    if preset is None:
        raise UsageError(f"no preset for language {language!r} (expected one of: {', '.join(PRESETS)})")
    return preset
