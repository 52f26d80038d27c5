"""Label and field selectors: grammar, every operator, apiserver error wording."""

from __future__ import annotations

import pytest

from nhdev.sandbox.selectors import (
    SelectorError,
    label_selector_string,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector_object,
)

LABELS = {"app": "web", "tier": "frontend", "empty": "", "replicas": "3"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=api", False),
        ("app!=api", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("app in (web,api)", True),
        ("app in (api)", False),
        ("missing in (a)", False),
        ("app notin (api,db)", True),
        ("app notin (web)", False),
        ("missing notin (a)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("empty=", True),
        ("empty in (,x)", True),
        ("replicas>2", True),
        ("replicas<2", False),
        ("app=web,tier=frontend", True),
        ("app=web, tier=backend", False),
        (" app = web ", True),
        ("example.com/role=x", False),
    ],
)
def test_label_selector_operators(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector).matches(LABELS) is expected


def test_label_selector_matches_objects_without_labels() -> None:
    assert parse_label_selector("!app").matches(None)
    assert not parse_label_selector("app").matches(None)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("app in web", "found 'web', expected: '('"),
        ("app in ()", "values set can't be empty"),
        ("app in (a", "expected: ')'"),
        ("app=web,", "identifier after ','"),
        ("app=web tier=x", "expected: ',' or 'end of string'"),
        ("-bad=x", 'invalid label key "-bad"'),
        ("app=-bad-", 'invalid label value: "-bad-"'),
        ("replicas>x", "must be an integer"),
        ("!", "identifier after '!'"),
    ],
)
def test_label_selector_errors(selector: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse_label_selector(selector)
    assert message in str(caught.value)


def test_label_selector_object_and_string_form() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "app", "operator": "Exists"},
            {"key": "zone", "operator": "NotIn", "values": ["b"]},
        ],
    }
    assert selector_from_label_selector_object(selector).matches(LABELS)
    assert not selector_from_label_selector_object(selector).matches({**LABELS, "canary": "1"})
    assert not selector_from_label_selector_object(None).matches(LABELS)
    text = label_selector_string(selector)
    assert text == "app=web,tier in (edge,frontend),!canary,app,zone notin (b)"
    assert parse_label_selector(text).matches(LABELS)


POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "nhdev-sandbox", "restartPolicy": "Always"},
    "status": {"phase": "Running"},
}
EVENT = {
    "metadata": {"name": "web-1.abc", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u-1"},
    "reason": "Started",
    "type": "Normal",
    "source": {"component": "kubelet"},
}


@pytest.mark.parametrize(
    ("resource", "obj", "selector", "expected"),
    [
        ("pods", POD, "metadata.name=web-1", True),
        ("pods", POD, "metadata.name==web-1", True),
        ("pods", POD, "metadata.name!=web-1", False),
        ("pods", POD, "metadata.namespace=default,status.phase=Running", True),
        ("pods", POD, "status.phase!=Running", False),
        ("pods", POD, "spec.nodeName=nhdev-sandbox", True),
        ("pods", POD, "spec.nodeName=", False),
        ("pods", {"metadata": {"name": "x"}, "spec": {}}, "spec.nodeName=", True),
        ("events", EVENT, "involvedObject.kind=Pod,involvedObject.name=web-1", True),
        ("events", EVENT, "involvedObject.uid=u-2", False),
        ("events", EVENT, "type=Normal,reason=Started", True),
        ("events", EVENT, "source=kubelet", True),
        ("configmaps", {"metadata": {"name": "a=b"}}, r"metadata.name=a\=b", True),
    ],
)
def test_field_selectors(resource: str, obj: dict, selector: str, expected: bool) -> None:
    assert parse_field_selector(selector, resource).matches(obj) is expected


def test_field_selector_errors_and_exact_name() -> None:
    with pytest.raises(SelectorError, match=r"field label not supported: spec\.nodeName"):
        parse_field_selector("spec.nodeName=x", "configmaps")
    with pytest.raises(SelectorError, match="invalid selector"):
        parse_field_selector("metadata.name", "pods")
    assert parse_field_selector("metadata.name=a,status.phase=Running", "pods").exact_name() == "a"
    assert parse_field_selector("metadata.name!=a", "pods").exact_name() is None
