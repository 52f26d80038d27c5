"""Where the dev config is: ``--config PATH``, else ``.nhdev/config.yaml``, else ``.nocalhost/config.yaml``."""

from __future__ import annotations

from pathlib import Path

from nhdev.errors import ConfigNotFound

CONFIG_LOCATIONS = (Path(".nhdev") / "config.yaml", Path(".nocalhost") / "config.yaml")
INIT_HINT = "create one with: nhdev config init --workload deployment/NAME --language python"


def discover_config(start: Path | None = None, explicit: Path | str | None = None) -> Path:
    """The config file to use.

    ``explicit`` (``--config``) wins: a file, or a directory holding ``.nhdev/config.yaml`` or
    ``.nocalhost/config.yaml``. Otherwise the locations are tried in ``start`` (default: the
    working directory) and then in each parent directory, nearest first, like git finds its repo.
    """
    if explicit is not None:
        return _explicit(Path(explicit))
    origin = (start or Path.cwd()).resolve()
    for directory in (origin, *origin.parents):
        found = _in_directory(directory)
        if found is not None:
            return found
    wanted = " or ".join(str(location) for location in CONFIG_LOCATIONS)
    raise ConfigNotFound(f"no dev config: no {wanted} in {origin} or its parents", hint=INIT_HINT)


def _explicit(path: Path) -> Path:
    if path.is_dir():
        found = _in_directory(path)
        if found is None:
            raise ConfigNotFound(f"no dev config in directory {path}", hint=INIT_HINT)
        return found
    if not path.exists():
        raise ConfigNotFound(f"{path}: no such file", hint=INIT_HINT)
    return path


def _in_directory(directory: Path) -> Path | None:
    for location in CONFIG_LOCATIONS:
        candidate = directory / location
        if candidate.is_file():
            return candidate
    return None
