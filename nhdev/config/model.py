"""The dev config schema: Nocalhost's ``ServiceConfigV2`` (service -> containers[] -> dev), made strict.

Keys are camelCase in files (the models take them by alias). Every model forbids unknown keys.
A key written with an empty value (``shell: ""``, ``sync: null``, ``build: []`` as ``nhctl config
get`` prints them) means "not set": the default applies. Nocalhost keys that nhdev does not act on
(``priorityClass``, ``dependLabelSelector``, ``hub``, ``install``, ``gitUrl``, ``useDevContainer``,
``persistentVolumeDirs[].waitForFirstConsumer``) are accepted and ignored, so real Nocalhost
configs validate.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from nhdev.config.duration import Duration, duration_seconds
from nhdev.config.kinds import WorkloadKind, kind_choices, normalise_kind
from nhdev.config.ports import Port, PortForward
from nhdev.config.quantity import PositiveQuantity, Quantity

DEFAULT_WORK_DIR = "/home/nhdev-dev"
DEFAULT_CAPACITY = "10Gi"
DEFAULT_HOT_RELOAD_DELAY_MS = 300
LANGUAGES = ("python", "go", "node", "java", "php", "ruby")

Language = Literal["python", "go", "node", "java", "php", "ruby"]
SyncType = Literal["send", "sendReceive"]
SyncMode = Literal["pattern", "gitIgnore"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
PatchType = Literal["strategic", "merge", "json"]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL.pattern}(\.{_DNS_LABEL.pattern})*")


class ConfigModel(BaseModel):
    """Strict base: unknown keys are errors; camelCase keys in files, snake_case in Python."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        frozen=True,
    )

    # Keys whose explicit empty value is reported rather than read as "not set".
    empty_is_a_mistake: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        """``key: null`` / ``key: ""`` / ``key: []`` on an optional key means "use the default"."""
        if not isinstance(data, dict):
            return data
        optional = {
            name
            for field_name, info in cls.model_fields.items()
            if not info.is_required()
            for name in (info.alias or field_name, field_name)
        }
        none_default = {
            name
            for field_name, info in cls.model_fields.items()
            if not info.is_required() and info.default is None
            for name in (info.alias or field_name, field_name)
        }
        return {
            key: value
            for key, value in data.items()
            if not (key in optional and value is None)
            and not (key in none_default and value == "" and key not in cls.empty_is_a_mistake)
        }


def _choice(value: Any, choices: tuple[str, ...], what: str, extra: dict[str, str] | None = None) -> str:
    """Case-insensitive pick from ``choices``, returned in its canonical spelling."""
    table = {choice.lower(): choice for choice in choices} | (extra or {})
    if isinstance(value, str) and value.strip().lower() in table:
        return table[value.strip().lower()]
    raise ValueError(f"{_shown(value)} is not a {what} (expected one of: {', '.join(choices)})")


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:40] + ("..." if len(value) > 40 else ""))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _as_text(value: Any) -> Any:
    """Numbers and booleans written unquoted where text belongs, as Go's YAML reads them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return value


def _check_name(value: str | None, pattern: re.Pattern[str], limit: int, what: str) -> str | None:
    if value is not None and (len(value) > limit or not pattern.fullmatch(value)):
        raise ValueError(
            f"{_shown(value)} is not a valid {what} (expected lower-case letters, digits and '-', "
            f"at most {limit} characters)"
        )
    return value


class ShellCommand(ConfigModel):
    """A command as Nocalhost runs it: list elements joined by spaces, run by ``sh -c``.

    So ``[dlv, --listen, ":2345", "--api-version 2"]`` and ``"go run . && echo done"`` both work.
    """

    words: tuple[str, ...]

    @model_validator(mode="before")
    @classmethod
    def _from_text_or_list(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        words = [value] if isinstance(value, str) else value
        if not isinstance(words, list):
            raise ValueError(f"got {_shown(value)} (expected a command line or a list of words)")
        texts = tuple(_as_text(word) for word in words)
        for index, word in enumerate(texts):
            if not isinstance(word, str):
                raise ValueError(f"word {index} is {_shown(word)} (expected text)")
        if not " ".join(texts).strip():
            raise ValueError("the command is empty (expected a command line or a non-empty list of words)")
        return {"words": texts}

    @model_serializer
    def _as_list(self) -> list[str]:
        return list(self.words)

    def shell_command(self) -> str:
        """The command line: the words joined by spaces."""
        return " ".join(self.words)

    def argv(self, shell: str = "sh") -> list[str]:
        """The argv that runs it in the dev container: ``[shell, "-c", line]``."""
        return [shell, "-c", self.shell_command()]


class Commands(ConfigModel):
    """``dev.command``: build / run / debug / hotReloadRun / hotReloadDebug."""

    build: ShellCommand | None = None
    run: ShellCommand | None = None
    debug: ShellCommand | None = None
    hot_reload_run: ShellCommand | None = None
    hot_reload_debug: ShellCommand | None = None

    # ``run`` is what nhdev starts: an empty one is a mistake, not "unset".
    empty_is_a_mistake: ClassVar[frozenset[str]] = frozenset({"run"})

    @model_validator(mode="before")
    @classmethod
    def _empty_list_means_unset(cls, data: Any) -> Any:
        """``build: []`` (as ``nhctl config get`` prints it) means "not set"."""
        if not isinstance(data, dict):
            return data
        return {key: value for key, value in data.items() if not (key not in cls.empty_is_a_mistake and value == [])}


class DebugSettings(ConfigModel):
    """``dev.debug``: the debugger's port inside the pod and the language (for the IDE attach config)."""

    remote_debug_port: Port | None = None
    language: Language | None = None

    @field_validator("language", mode="before")
    @classmethod
    def _language(cls, value: Any) -> Any:
        return _choice(value, LANGUAGES, "known debug language")


class HotReload(ConfigModel):
    """``dev.hotReload``: ``true``/``false`` (Nocalhost) or nhdev's ``{enabled, ignore, delayMs}``."""

    enabled: bool = False
    ignore: list[str] = Field(default_factory=list)
    delay_ms: int = Field(default=DEFAULT_HOT_RELOAD_DELAY_MS, ge=0, le=600_000)

    @model_validator(mode="before")
    @classmethod
    def _from_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, dict):
            return value
        raise ValueError(f"{_shown(value)} is not a hot-reload setting (expected true, false or a mapping)")


class Sync(ConfigModel):
    """``dev.sync``: direction, ignore mode and patterns, delete protection."""

    type: SyncType = "send"
    mode: SyncMode = "pattern"
    file_pattern: list[str] = Field(default_factory=lambda: ["."])
    ignore_file_pattern: list[str] = Field(default_factory=list)
    delete_protection: bool = True

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        return _choice(value, ("send", "sendReceive"), "known sync type", {"sendonly": "send", "": "send"})

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        return _choice(value, ("pattern", "gitIgnore"), "known sync mode")


class EnvVar(ConfigModel):
    """One ``env`` entry; numbers and booleans written unquoted are taken as text."""

    name: str = Field(description="expected the variable's name")
    value: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name or "=" in name:
            raise ValueError(f"{_shown(name)} is not a variable name (expected non-empty, without '=')")
        return name

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        return _as_text(value)


class EnvFile(ConfigModel):
    """A dotenv file, relative to the config file, read into ``env`` when the config is loaded."""

    path: str = Field(description="expected a dotenv file path, relative to the config file")


class EnvFrom(ConfigModel):
    env_file: list[EnvFile] = Field(default_factory=list)


class PersistentVolumeDir(ConfigModel):
    """A directory of the dev container kept on a PersistentVolumeClaim across sessions."""

    path: str = Field(description="expected an absolute path in the dev container")
    capacity: PositiveQuantity = DEFAULT_CAPACITY
    wait_for_first_consumer: bool = False

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        return _absolute_path(path)


class ResourceList(ConfigModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(ConfigModel):
    limits: ResourceList | None = None
    requests: ResourceList | None = None


class Patch(ConfigModel):
    """A patch applied to the workload after the dev container is in place."""

    patch: Any = Field(description="expected the patch, as JSON/YAML text or a mapping")
    type: PatchType = "strategic"

    @field_validator("patch")
    @classmethod
    def _patch(cls, value: Any) -> Any:
        if (isinstance(value, str) and value.strip()) or (isinstance(value, dict | list) and value):
            return value
        raise ValueError(f"{_shown(value)} is not a patch (expected JSON/YAML text or a mapping)")

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        return _choice(value, ("strategic", "merge", "json"), "known patch type", {"": "strategic"})


class DevSettings(ConfigModel):
    """``containers[].dev`` (Nocalhost's ContainerDevConfig)."""

    image: str | None = None
    image_pull_policy: PullPolicy = "IfNotPresent"
    shell: str | None = None
    work_dir: str = DEFAULT_WORK_DIR
    storage_class: str | None = None
    dev_container_name: str | None = None
    resources: Resources | None = None
    persistent_volume_dirs: list[PersistentVolumeDir] = Field(default_factory=list)
    command: Commands = Field(default_factory=Commands)
    debug: DebugSettings = Field(default_factory=DebugSettings)
    hot_reload: HotReload = Field(default_factory=HotReload)
    sync: Sync = Field(default_factory=Sync)
    env: list[EnvVar] = Field(default_factory=list)
    env_from: EnvFrom | None = None
    port_forward: list[PortForward] = Field(default_factory=list)
    sidecar_image: str | None = None
    patches: list[Patch] = Field(default_factory=list)
    git_url: str | None = None
    use_dev_container: bool = False

    @field_validator("image_pull_policy", mode="before")
    @classmethod
    def _pull_policy(cls, value: Any) -> Any:
        return _choice(value, ("Always", "IfNotPresent", "Never"), "valid image pull policy")

    @field_validator("work_dir")
    @classmethod
    def _work_dir(cls, path: str) -> str:
        return _absolute_path(path)

    @field_validator("dev_container_name")
    @classmethod
    def _container_name(cls, name: str | None) -> str | None:
        return _check_name(name, _DNS_LABEL, 63, "container name")

    def env_dict(self) -> dict[str, str]:
        """``env`` as a mapping (later entries win, as in Kubernetes)."""
        return {var.name: var.value for var in self.env}


class Hub(ConfigModel):
    image: str | None = None


class Install(ConfigModel):
    env: list[EnvVar] = Field(default_factory=list)
    env_from: EnvFrom | None = None
    port_forward: list[PortForward] = Field(default_factory=list)


class ContainerConfig(ConfigModel):
    """``containers[]``: which container to replace, and its dev settings.

    ``name`` None means "the workload's first container".
    """

    name: str | None = None
    dev: DevSettings = Field(default_factory=DevSettings)
    hub: Hub | None = None
    install: Install | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return _check_name(name, _DNS_LABEL, 63, "container name")


class DependLabelSelector(ConfigModel):
    pods: list[str] = Field(default_factory=list)
    jobs: list[str] = Field(default_factory=list)
    tcp: list[str] = Field(default_factory=list)
    http: list[str] = Field(default_factory=list)


class Duplicate(ConfigModel):
    """nhdev's duplicate mode settings. ``ttl`` None: the copy stays until ``dev end``."""

    ttl: Duration | None = None

    def ttl_seconds(self) -> int | None:
        return None if self.ttl is None else duration_seconds(self.ttl)


class ServiceConfig(ConfigModel):
    """One workload's dev config (Nocalhost's ServiceConfigV2).

    ``name`` None: a single-service file that applies to whatever workload is started.
    ``service_type`` None: any kind.
    """

    name: str | None = None
    service_type: WorkloadKind | None = None
    containers: list[ContainerConfig] = Field(default_factory=list)
    duplicate: Duplicate = Field(default_factory=Duplicate)
    priority_class: str | None = None
    depend_label_selector: DependLabelSelector | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        return _check_name(name, _DNS_SUBDOMAIN, 253, "workload name")

    @field_validator("service_type", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        kind = normalise_kind(value) if isinstance(value, str) else None
        if kind is None:
            raise ValueError(f"{_shown(value)} is not a workload kind (expected one of: {kind_choices()})")
        return kind

    def container(self, name: str | None = None) -> ContainerConfig:
        """The config of container ``name``; the first one when None.

        A service that configures no container gets the defaults (for ``name``, if given).
        """
        from nhdev.errors import UsageError

        if not self.containers:
            return ContainerConfig(name=name)
        if name is None:
            return self.containers[0]
        for container in self.containers:
            if container.name == name:
                return container
        for container in self.containers:
            if container.name is None:
                return container.model_copy(update={"name": name})
        configured = ", ".join(c.name or "(unnamed)" for c in self.containers)
        raise UsageError(
            f"container {name!r} is not in the dev config of {self.name or 'this service'}",
            hint=f"configured containers: {configured}",
        )


def _absolute_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError(f"{_shown(path)} is not an absolute path (expected a path starting with '/')")
    return path
