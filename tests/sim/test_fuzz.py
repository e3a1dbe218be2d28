"""Fuzzing: malformed bodies, headers, query strings and paths get a JSON 4xx answer —
never a 5xx, never a hang — and leave the store exactly as it was.

Write requests always carry a poison (an unknown trailing field, a non-object, bad JSON,
bad UTF-8, a nesting bomb) so none of them can be legitimately applied; the fields before
the poison are drawn from the endpoint's real body schema with arbitrary values, so the
validator walks them first. The CI variant sends a few hundred requests; the ``slow`` one
thousands.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datera_iac.sim import SimServer
from datera_iac.sim import schema as sch
from datera_iac.sim.routes import ROUTES

IQN = "iqn.1993-08.org.debian:01:fuzz"
# /logout is left out: it legitimately ends the session the fuzzer uses
WRITE_ROUTES = [r for r in ROUTES if r.method in ("POST", "PUT", "DELETE") and r.template != "/logout"]
READ_ROUTES = [r for r in ROUTES if r.method == "GET"]
OPS = {"POST": "create", "PUT": "update", "DELETE": "delete"}

leaf = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
        | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=24))
json_value = st.recursive(
    leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=8,
)
header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=48).map(str.strip)
segment = st.text(alphabet=string.ascii_letters + string.digits + "-_.:%~!$&'()*+,;=@ ", min_size=1, max_size=24)


@pytest.fixture
def world(sim: SimServer, api: Any, body: Any) -> dict[str, Any]:
    """Some real objects so fuzzed paths can reach existing entities."""
    api.ok("POST", "/tenants", {"name": "fuzz-tenant"})
    api.ok("POST", "/initiators", {"id": IQN, "name": "fuzz-host"})
    api.ok("POST", "/initiator_groups", {"name": "fuzz-group"})
    ai = api.ok("POST", "/app_instances", body("fuzz-ai"))
    snap = api.ok("POST", f"{ai['path']}/storage_instances/storage-1/volumes/volume-1/snapshots", {})
    api.ok("POST", "/app_templates", {"name": "fuzz-tpl"})
    return {
        "id": ai["id"], "storage_instance_name": "storage-1", "volume_name": "volume-1",
        "timestamp": snap["timestamp"], "tenant_path": "root/fuzz-tenant", "name": "fuzz-group",
        "pool_name": "default", "path_name": "access-1", "uuid": "x", "metric": "reads",
        "snapshot_policy_name": "none-yet", "app_template_name": "fuzz-tpl",
        "storage_template_name": "nope", "volume_template_name": "nope", "key": api.key,
    }


def _fill(template: str, world: dict[str, Any], junk: list[str], use_real: list[bool]) -> str:
    out = []
    for i, part in enumerate(template.strip("/").split("/")):
        if part.startswith(":"):
            name = part[1:]
            real = use_real[i % len(use_real)] and name in world
            out.append(quote(str(world[name]) if real else junk[i % len(junk)], safe=":"))
        else:
            out.append(part)
    return "/" + "/".join(out)


def _known_fields(template: str, method: str) -> list[str]:
    schema = sch.body_schema("v2.2", template, OPS[method]) or {}
    props = schema.get("properties") if isinstance(schema, dict) else None
    return sorted(props) if isinstance(props, dict) else []


@st.composite
def poisoned_body(draw: Any, fields: list[str]) -> tuple[bytes, str]:
    """(body bytes, content type) that no endpoint may accept."""
    kind = draw(st.sampled_from(["unknown-field", "unknown-field", "unknown-field", "non-object",
                                 "bad-json", "bad-utf8", "bomb", "form"]))
    if kind == "unknown-field":
        obj: dict[str, Any] = {}
        for f in draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields))) if fields else []:
            obj[f] = draw(json_value)
        # unknown to every schema, and a nested value free-form metadata rejects too
        obj["zz_not_a_field_" + draw(st.text(alphabet=string.ascii_lowercase, max_size=5))] = {
            "nested": draw(json_value)}
        return json.dumps(obj, allow_nan=True).encode(), "application/json"
    if kind == "non-object":
        val = draw(st.lists(json_value, max_size=3) | st.text(max_size=10) | st.integers() | st.booleans())
        return json.dumps(val).encode(), "application/json"
    if kind == "bad-json":
        return b"{" + draw(st.binary(max_size=40)).replace(b"}", b""), "application/json"
    if kind == "bad-utf8":
        return b'{"name": "\xff\xfe"}', "application/json"
    if kind == "bomb":
        depth = draw(st.integers(min_value=500, max_value=200_000))
        return b"[" * depth + b"]" * depth, "application/json"
    return b"name=x&password", "application/x-www-form-urlencoded"


def _check(r: requests.Response, *, allow_ok: bool) -> None:
    assert r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:300]}"
    if not allow_ok:
        assert 400 <= r.status_code < 500, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text[:300]}"
    data = r.json()  # always JSON
    if r.status_code >= 400:
        assert {"name", "code", "http", "message"} <= set(data) and data["http"] == r.status_code


def _run(sim: SimServer, world: dict[str, Any], examples: int) -> None:
    session = requests.Session()
    base = f"{sim.http_url}/v2.2"
    before = sim.dump()

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large])
    @given(data=st.data())
    def writes(data: Any) -> None:
        route = data.draw(st.sampled_from(WRITE_ROUTES))
        path = _fill(route.template, world, data.draw(st.lists(segment, min_size=1, max_size=3)),
                     data.draw(st.lists(st.booleans(), min_size=1, max_size=3)))
        raw, ctype = data.draw(poisoned_body(_known_fields(route.schema_key or route.template, route.method)))
        headers = {"Content-Type": ctype, "Auth-Token": data.draw(st.sampled_from([world["key"], world["key"], ""]) | header_text)}
        if data.draw(st.booleans()):
            headers["tenant"] = data.draw(st.sampled_from(["/root", "/root/fuzz-tenant", "all"]) | header_text)
        r = session.request(route.method, base + path, data=raw, headers=headers, timeout=10)
        _check(r, allow_ok=False)

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def reads(data: Any) -> None:
        if data.draw(st.booleans()):
            route = data.draw(st.sampled_from(READ_ROUTES))
            path = _fill(route.template, world, data.draw(st.lists(segment, min_size=1, max_size=3)),
                         data.draw(st.lists(st.booleans(), min_size=1, max_size=3)))
        else:
            path = "/" + "/".join(quote(s) for s in data.draw(st.lists(segment, min_size=1, max_size=5)))
        params = data.draw(st.dictionaries(st.sampled_from(["filter", "limit", "offset", "sort", "x"]),
                                           header_text, max_size=3))
        headers = {"Auth-Token": world["key"]}
        if data.draw(st.booleans()):
            headers["tenant"] = data.draw(header_text)
        version = data.draw(st.sampled_from(["v2.2", "v2.1", "v2.3", "v9"]))
        r = session.get(f"{sim.http_url}/{version}{path}", params=params, headers=headers, timeout=10)
        _check(r, allow_ok=True)

    writes()
    reads()
    assert sim.dump() == before, "a rejected request changed the store"
    assert all(e["status"] < 500 for e in sim.request_log())


def test_fuzz_quick(sim: SimServer, world: dict[str, Any]) -> None:
    """120 malformed requests (CI variant): JSON 4xx only, store unchanged."""
    _run(sim, world, examples=60)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_fuzz_long(sim: SimServer, world: dict[str, Any]) -> None:
    """Thousands of malformed requests: JSON 4xx only, store unchanged."""
    _run(sim, world, examples=2500)


def test_specific_nasty_inputs(sim: SimServer, world: dict[str, Any], api: Any) -> None:
    """Hand-picked cases: huge body, NaN, deep nesting, bad tenant, headers, methods."""
    before = sim.dump()
    url = f"{sim.http_url}/v2.2/app_instances"
    h = {"Auth-Token": world["key"], "Content-Type": "application/json"}
    cases = [
        ("POST", url, b"x" * (2 * 1024 * 1024), h),
        ("POST", url, (b'{"name": "nan-ai", "storage_instances": [{"name": "storage-1", "volumes": '
                       b'[{"name": "volume-1", "size": NaN}]}]}'), h),
        ("POST", url, (b'{"name": "big", "storage_instances": [{"name": "storage-1", "volumes": '
                       b'[{"name": "volume-1", "size": 1e999}]}]}'), h),
        ("POST", url, b'{"name": ' + b"9" * 5000 + b"}", h),
        ("POST", url, b"[" * 100000, h),
        ("POST", url, json.dumps({"name": "ok-name"}).encode(), dict(h, tenant="/root/../../etc")),
        ("POST", url, json.dumps({"name": "ok-name"}).encode(), dict(h, tenant="root/\\x00")),
        ("PATCH", url, b"{}", h),
        ("PUT", f"{sim.http_url}/v2.2/login", b'{"name": ["admin"], "password": {"x": 1}}', h),
        ("PUT", f"{sim.http_url}/v2.2/login", b"name=admin&password=password&password=x&zz=1",
         {"Content-Type": "application/x-www-form-urlencoded"}),
        ("GET", f"{sim.http_url}/v2.2/app_instances/%00%ff", b"", h),
        ("GET", f"{sim.http_url}/v2.2/initiators/" + "a" * 5000, b"", h),
        ("GET", f"{sim.http_url}/v2.2/tenants/root/%2e%2e", b"", h),
    ]
    for method, u, raw, headers in cases:
        r = requests.request(method, u, data=raw, headers=headers, timeout=10)
        assert 400 <= r.status_code < 500, (method, u[:80], raw[:60], r.status_code, r.text[:200])
        assert r.json()["http"] == r.status_code
    assert sim.dump() == before


# ---------------------------------------------------------------------------- schema-valid bodies

def _from_schema(s: Any, depth: int = 0) -> Any:
    """A strategy for values that pass the dump's body schema (so handlers, not the
    validator, get to see them)."""
    if not isinstance(s, dict) or depth > 6:
        return json_value
    if isinstance(s.get("enum"), list):
        return st.sampled_from(s["enum"])
    t = s.get("type")
    types = t if isinstance(t, list) else ([t] if t else [])
    options = []
    for ty in types:
        if ty == "string":
            pat = s.get("pattern")
            lo, hi = s.get("minLength", 0), s.get("maxLength", 24)
            if isinstance(pat, str) and "(?=" not in pat:
                options.append(st.from_regex(pat, fullmatch=True).filter(lambda x, lo=lo, hi=hi: lo <= len(x) <= hi))
            elif s.get("format") == "date-time":
                options.append(st.datetimes().map(lambda d: d.isoformat()))
            elif isinstance(pat, str):  # IQN/EUI: keep to known-good shapes
                options.append(st.sampled_from([IQN, "iqn.2004-10.com.example:h1", "eui.0123456789ABCDEF"]))
            else:
                options.append(st.text(min_size=lo, max_size=hi))
        elif ty in ("integer", "number"):
            lo, hi = s.get("minimum"), s.get("maximum")
            options.append(st.integers(int(lo) if lo is not None else -(2**40), int(hi) if hi is not None else 2**40))
        elif ty == "boolean":
            options.append(st.booleans())
        elif ty == "null":
            options.append(st.none())
        elif ty == "object":
            props = s.get("properties") if isinstance(s.get("properties"), dict) else {}
            req = [k for k in (s.get("required") or []) if k in props]
            opt = {k: _from_schema(v, depth + 1) for k, v in props.items() if k not in req}
            options.append(st.fixed_dictionaries({k: _from_schema(props[k], depth + 1) for k in req},
                                                 optional=opt))
        elif ty == "array":
            options.append(st.lists(_from_schema(s.get("items"), depth + 1), max_size=2))
    return st.one_of(options) if options else json_value


def _run_valid(sim: SimServer, world: dict[str, Any], examples: int) -> None:
    session = requests.Session()
    routes = [r for r in WRITE_ROUTES if r.template not in ("/login",)]
    strategies: dict[tuple[str, str], Any] = {}

    def body_strategy(route: Any) -> Any:
        key = (route.method, route.template)
        if key not in strategies:
            schema = sch.body_schema("v2.2", route.schema_key or route.template, OPS[route.method])
            strategies[key] = _from_schema(schema) if schema else st.just({})
        return strategies[key]
    headers = {"Auth-Token": world["key"], "Content-Type": "application/json"}

    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(data=st.data())
    def valid(data: Any) -> None:
        route = data.draw(st.sampled_from(routes))
        path = _fill(route.template, world, ["junk-name"], [True])
        body = data.draw(body_strategy(route))
        before = sim.dump()
        r = session.request(route.method, f"{sim.http_url}/v2.2{path}", data=json.dumps(body),
                            headers=headers, timeout=10)
        _check(r, allow_ok=True)
        if r.status_code >= 400:  # a refused write changes nothing, not even half of it
            assert sim.dump() == before, f"{route.method} {path} {body!r} -> {r.status_code} changed the store"

    valid()
    for p in ("/system", "/app_instances", "/initiators", "/tenants", "/app_templates"):
        assert session.get(f"{sim.http_url}/v2.2{p}", headers=headers, timeout=10).status_code == 200


def test_schema_valid_bodies_never_break_handlers(sim: SimServer, world: dict[str, Any]) -> None:
    """Bodies that pass each endpoint's schema get 200 or a JSON 4xx, never a 5xx; a refused
    one leaves the store exactly as it was."""
    _run_valid(sim, world, examples=80)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_schema_valid_bodies_long(sim: SimServer, world: dict[str, Any]) -> None:
    """The same, with thousands of bodies."""
    _run_valid(sim, world, examples=2500)
