"""schema.json and the SDK classes are derived from the core and up to date with it.

The core (attrs fields and their metadata) is the one definition; these tests fail when a
kind changed and ``python -m datera_iac.pulumi.gen`` was not re-run, or when the derivation
dropped or bent a fact about a field."""

from __future__ import annotations

import inspect
import json

import attrs
import pulumi
import pytest

import datera_iac.pulumi as sdk
from datera_iac.config import DateraConfig
from datera_iac.fields import ALIASES, aliases_of
from datera_iac.pulumi import gen
from datera_iac.pulumi._derive import RESERVED
from datera_iac.pulumi.provider import registered_kinds
from datera_iac.resources.base import DOC, REPLACE, SENSITIVE, camel

KINDS = registered_kinds()
#: The kinds the brief requires; any kind registered later is covered the same way.
REQUIRED = {"datera:index:NodeAttachment", "datera:index:Snapshot", "datera:index:Tenant",
            "datera:index:Volume", "datera:index:VolumeType"}
TOKENS = sorted(KINDS)


def _pname(kind, field):
    name = camel(field)
    return camel(f"{kind.name[0].lower()}{kind.name[1:]}_{field}") if name in RESERVED else name


def test_generated_files_are_current():
    """``gen --check`` finds nothing stale: schema.json and _sdk.py match the core."""
    assert gen.main(["--check"]) == 0, "run: python -m datera_iac.pulumi.gen"


def test_schema_resources_follow_the_kinds():
    """Every Spec field is an input (camelCase) with the core's doc, secret and replace
    flags; each former name of a field (``ALIASES``) is an optional deprecated input with
    the field's secret flag; every Outputs field is an output; nothing else is there."""
    schema = json.loads(gen.SCHEMA_PATH.read_text())
    assert sorted(schema["resources"]) == TOKENS and REQUIRED <= set(TOKENS)
    for token, kind in KINDS.items():
        res = schema["resources"][token]
        fields = attrs.fields(kind.Spec)
        former = {camel(a): f for f in fields for a in f.metadata.get(ALIASES, ())}
        assert set(res["inputProperties"]) == {_pname(kind, f.name) for f in fields} | set(former)
        for name, f in former.items():
            prop = res["inputProperties"][name]
            assert _pname(kind, f.name) in prop["deprecationMessage"], (token, name)
            assert prop.get("secret", False) == bool(f.metadata[SENSITIVE])
            assert name not in res["requiredInputs"]
        for f in fields:
            prop = res["inputProperties"][_pname(kind, f.name)]
            assert prop["description"] == f.metadata[DOC]
            assert prop.get("secret", False) == bool(f.metadata[SENSITIVE]), (token, f.name)
            assert prop.get("willReplaceOnChanges", False) == bool(f.metadata[REPLACE])
            required = f.default is attrs.NOTHING and f.name != "name"
            assert (_pname(kind, f.name) in res["requiredInputs"]) == required
        outs = {_pname(kind, f.name) for f in attrs.fields(kind.Outputs)}
        assert set(res["properties"]) == outs | set(res["inputProperties"])


def test_schema_config_is_datera_config():
    """The provider configuration is DateraConfig's fields; secrets are secret."""
    schema = json.loads(gen.SCHEMA_PATH.read_text())
    variables = schema["config"]["variables"]
    assert set(variables) == {camel(f.name) for f in attrs.fields(DateraConfig)}
    assert variables["sanPassword"]["secret"] and variables["chapPassword"]["secret"]
    assert "sanPassword" not in schema["provider"]["properties"]  # never echoed as output
    assert variables["datera503Timeout"]["default"] == 120
    assert "deprecationMessage" in variables["dateraApiPort"]


@pytest.mark.parametrize("token", TOKENS)
def test_sdk_class_per_kind(token):
    """Each kind has a CustomResource class with its token, typed keyword arguments named
    after the core's fields (and their former names), and a documented getter per
    property."""
    kind = KINDS[token]
    cls = getattr(sdk, kind.name)
    assert issubclass(cls, pulumi.CustomResource)
    assert f"'{token}'" in inspect.getsource(cls.__init__)
    params = inspect.signature(cls.__init__).parameters
    fields = [f.name for f in attrs.fields(kind.Spec)] + list(aliases_of(kind.Spec))
    assert set(params) - {"__self__", "resource_name", "opts", "__props__"} == set(fields)
    for f in attrs.fields(kind.Spec):
        assert params[f.name].kind is inspect.Parameter.KEYWORD_ONLY
        getter = getattr(cls, f.name)
        assert getter.__doc__.strip() == f.metadata[DOC]
    args_cls = getattr(sdk, f"{kind.name}Args")
    assert set(inspect.signature(args_cls.__init__).parameters) - {"__self__"} == set(fields)


def test_provider_class_takes_the_configuration():
    """Provider(...) takes every DateraConfig option by its cinder.conf name."""
    params = inspect.signature(sdk.Provider.__init__).parameters
    assert {f.name for f in attrs.fields(DateraConfig)} <= set(params)


def test_repository_pulumi_yaml_uses_our_tokens_and_names():
    """The demo stack (Pulumi.yaml) names only types and camelCase properties the provider
    accepts, and reads only outputs the schema has."""
    import re
    from pathlib import Path

    import yaml

    stack = yaml.safe_load((Path(__file__).resolve().parents[2] / "Pulumi.yaml").read_text())
    schema = json.loads(gen.SCHEMA_PATH.read_text())
    types = {}
    for name, res in stack["resources"].items():
        spec = schema["resources"].get(res["type"])
        assert spec is not None, f"{name}: unknown type {res['type']}"
        types[name] = spec
        unknown = set(res.get("properties") or {}) - set(spec["inputProperties"])
        assert not unknown, f"{name}: properties the provider does not take: {unknown}"
    refs = re.findall(r"\$\{(\w+)\.(\w+)\}", json.dumps(stack))
    for res, prop in refs:
        if res in types:
            assert prop in ("id", "urn") or prop in types[res]["properties"], f"{res}.{prop}"
