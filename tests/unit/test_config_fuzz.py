"""Whatever the input, the loader raises nothing but a UserError."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nhdev.config import load_config, parse_config
from nhdev.errors import UserError

KEYS = [
    "name", "serviceType", "containers", "dev", "image", "imagePullPolicy", "shell", "workDir", "storageClass",
    "devContainerName", "resources", "limits", "requests", "cpu", "memory", "persistentVolumeDirs", "path",
    "capacity", "command", "build", "run", "debug", "hotReloadRun", "remoteDebugPort", "language", "hotReload",
    "enabled", "ignore", "delayMs", "sync", "type", "mode", "filePattern", "ignoreFilePattern", "deleteProtection",
    "env", "value", "envFrom", "envFile", "portForward", "sidecarImage", "patches", "patch", "duplicate", "ttl",
    "hub", "install", "priorityClass", "dependLabelSelector", "<<",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["80:abc", "5Gi", "5Gb", "send", "gitIgnore", "R:1:2", ":0", "${X}", "${X:-y}", "", "/a"])
)
documents = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=40,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_SUCH_DIR = Path("/nonexistent-nhdev-fuzz")  # envFile paths in random documents never resolve


def load_or_user_error(text: str) -> None:
    try:
        parse_config(text, env={"X": "1"}, base_dir=NO_SUCH_DIR)
    except UserError as error:
        assert error.render()


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text: str) -> None:
    load_or_user_error(text)


@FUZZ
@given(st.text(alphabet=":-[]{}&*!|>'\"#%@`,?\n\t ${}abcn0123456789", max_size=200))
def test_yaml_punctuation_soup(text: str) -> None:
    load_or_user_error(text)


@FUZZ
@given(documents)
def test_structured_documents(document: Any) -> None:
    load_or_user_error(yaml.safe_dump(document, sort_keys=False))


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS), documents, max_size=6))
def test_documents_shaped_like_a_service(dev: dict[str, Any]) -> None:
    service = {"name": "app", "containers": [{"name": "app", "dev": dev}]}
    load_or_user_error(yaml.safe_dump(service, sort_keys=False))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_in_a_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.yaml"
        path.write_bytes(data)
        with contextlib.suppress(UserError):
            load_config(path, env={})


NASTY = {
    "deep-flow": "[" * 5000 + "]" * 5000,
    "deep-block": "".join(f"{' ' * i}a:\n" for i in range(300)),
    "deep-mapping": "{a: " * 3000 + "1" + "}" * 3000,
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
              f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8)),
    "recursive-alias": "a: &a [*a]\n",
    "python-object": "!!python/object/apply:os.system ['echo pwned']\n",
    "python-name": "name: !!python/name:os.system\n",
    "custom-tag": "name: !Ref app\n",
    "huge-int": "name: app\ncontainers: [{dev: {debug: {remoteDebugPort: " + "9" * 6000 + "}}}]\n",
    "huge-float": "containers: [{dev: {resources: {limits: {cpu: 1.0e999999}}}}]\n",
    "huge-exponent": "containers: [{dev: {resources: {limits: {cpu: 1e999999999}}}}]\n",
    "binary-tag": "name: !!binary AAAA\n",
    "bad-binary": "name: !!binary '%%%'\n",
    "bad-timestamp": "name: !!timestamp 2020-99-99\n",
    "set": "!!set {a, b}\n",
    "omap": "!!omap [a: 1]\n",
    "nul": "name: a\x00b\n",
    "bom": "\ufeffname: app\n",
    "complex-key": "? [a, b]\n: c\n",
    "merge-scalar": "<<: 1\n",
    "two-documents": "name: a\n---\nname: b\n",
    "include": "name: ${_INCLUDE_:- ./x.yaml | nindent 2}\n",
    "surrogate-escape": 'name: "\\ud800"\n',
    "null-key": "~: 1\n",
    "bool-key": "true: 1\n",
    "int-key": "containers: [{1: x}]\n",
}  # fmt: skip


@pytest.mark.parametrize("text", NASTY.values(), ids=NASTY.keys())
def test_nasty_documents(text: str) -> None:
    load_or_user_error(text)
