"""Fuzzed specs through every entry point that takes user input, counted on the simulator.

Hypothesis generates property mappings for every kind - real field names (plus unknown
ones), values of every type, and hostile strings (shell metacharacters, ``..``, newlines,
NUL, huge, unicode) - and feeds them to:

* the Python API: ``kind.spec_from`` (what engine programs and every adapter call);
* YAML stack files: written to disk and run through ``Workspace.preview`` on the simulator;
* the Terraform provider: ``ValidateResourceConfig`` and ``PlanResourceChange`` of the real
  servicer, in-process (a real Terraform would cost a process per example);
* the Pulumi provider: ``Check`` of the real ``DateraProvider``, in-process.

Pass: no traceback (only InputError/StackError, a Terraform error diagnostic that is not an
"internal error", a Pulumi CheckFailure or INVALID_ARGUMENT - never INTERNAL), and 0 API
calls on the simulator for input that was refused. One read is part of planning: Terraform's
plan of a valid Volume create from a source (clone_of / snapshot_id) reads that source
(``Kind.check_plan``; docs/engine.md, Data safety; issue #16 case 9c), counted apart; a
source no DSP object can be named is refused by validation, unread. CI runs 150 examples
per front end; the slow variant 2,500 each (10,000 in all).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datera_iac.resources  # noqa: F401 - registers the kinds
from datera_iac.errors import InputError
from datera_iac.resources.base import KINDS

KIND_NAMES = ["Tenant", "VolumeType", "Volume", "Snapshot", "NodeAttachment"]
FAST, FULL = 150, 2500

HOSTILE = [
    "", " ", "a; rm -rf /", "$(reboot)", "`id`", "x|nc 1.2.3.4 80", "../../etc/passwd", "..",
    "vol\nname", "vol\rname", "a\x00b", "%2e%2e%2f", "/root/other-tenant", "/root/../root",
    "iqn.2013-05.com.daterainc:x;ls", "10.0.0.1:3260&&id", "-oProxyCommand=id", "--help",
    "名前", "a" * 300, "${team.id}", "$${x}", "{{7*7}}", "' OR 1=1 --", "\\\\server\\share",
    "/dev/sda", "/mnt/../../root", "chap-secret-1234", "1e309", "NaN", "-1", "0", "3.5",
    "vol-a", "team-a", "gold", "/root/team-a", "iqn.1993-08.org.debian:01:abc", "ext4",
]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.integers(-5, 40000),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40), st.sampled_from(HOSTILE),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12)), scalars,
                                   max_size=3))


def _fields(kind: str) -> list[str]:
    return [f.name for f in attrs.fields(KINDS[kind].Spec)]


#: a valid spec per kind: half of the examples start from it and change a few fields, so
#: the accepting path (and values just past each limit) is exercised, not only refusals
BASE: dict[str, dict[str, Any]] = {
    "Tenant": {"name": "team-a"},
    "VolumeType": {"name": "gold", "replica_count": 3},
    "Volume": {"name": "vol-a", "size": 1},
    "Snapshot": {"volume_id": "/root/team-a/0d5a3a0c-7e0e-4f5a-9d0f-2c1d3b4a5e6f"},
    "NodeAttachment": {"volume_id": "/root/team-a/0d5a3a0c-7e0e-4f5a-9d0f-2c1d3b4a5e6f",
                       "initiator_iqn": "iqn.1993-08.org.debian:01:abc"},
}


def props(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    names = st.sampled_from(_fields(kind) + ["bogus", "id", "size_gb"])
    anything = st.dictionaries(names, values, max_size=7)
    near_valid = st.dictionaries(st.sampled_from(_fields(kind)), values, max_size=2).map(
        lambda d: {**BASE[kind], **d})
    return st.one_of(anything, near_valid, st.just(dict(BASE[kind])))


kind_and_props = st.sampled_from(KIND_NAMES).flatmap(lambda k: st.tuples(st.just(k), props(k)))


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def calls(sim) -> int:
    return sum(sim.counters().values())


def since(sim, start: dict[str, int]) -> dict[str, int]:
    """Requests by route since the counters were ``start``."""
    return {k: v - start.get(k, 0) for k, v in sim.counters().items() if v != start.get(k, 0)}


#: the requests of a plan-time read of a create's source: the source's app_instance, after
#: the client's first-contact version probe and login
SOURCE_READ = {"GET /api_versions", "PUT /v2.2/login", "GET /v2.2/app_instances/:id"}


def _run(test: Any, n: int) -> None:
    settings(max_examples=n, deadline=None, derandomize=False,
             suppress_health_check=list(HealthCheck))(test)()


# ---- the Python API ------------------------------------------------------------------------


def _python_api(sim, figure, n: int) -> None:
    seen = {"ok": 0, "refused": 0}
    before = calls(sim)

    @given(kind_and_props)
    def check(kp: tuple[str, dict[str, Any]]) -> None:
        kind, data = kp
        try:
            KINDS[kind].spec_from(data, resource="fz")
        except InputError as e:
            assert e.kind == kind and e.fix, e  # names the kind and says what to do
            seen["refused"] += 1
        else:
            seen["ok"] += 1

    _run(check, n)
    figure("fuzz_specs", front_end="python", examples=sum(seen.values()), tracebacks=0,
           api_calls=calls(sim) - before, **seen)
    assert calls(sim) == before


def test_fuzz_python_api(sim, figure):
    _python_api(sim, figure, FAST)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_fuzz_python_api_full(sim, figure):
    _python_api(sim, figure, FULL)


# ---- YAML stack files ----------------------------------------------------------------------


def _yaml_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def _yaml(sim, tmp_path, figure, n: int, engine_env: None) -> None:
    from datera_iac.engine.core import Workspace
    from datera_iac.engine.model import StackError

    seen = {"ok": 0, "refused": 0, "plan_errors": 0}
    refused_calls = [0]
    f = tmp_path / "Pulumi.yaml"

    @given(st.lists(kind_and_props, min_size=1, max_size=3), st.booleans())
    def check(resources: list[tuple[str, dict[str, Any]]], garble: bool) -> None:
        doc = {"name": "fz", "runtime": "yaml", "resources": {
            f"r{i}": {"type": KINDS[k].token,
                      "properties": {camel(p): _yaml_value(v) for p, v in data.items()}}
            for i, (k, data) in enumerate(resources)}}
        text = yaml.safe_dump(doc, allow_unicode=True)
        if garble:  # broken YAML too: a stray tab, a cut document
            text = text.replace("  ", "\t", 1)[: max(1, len(text) * 2 // 3)]
        f.write_text(text)
        ws = Workspace(stack_file=f, endpoint=sim.http_url, embedded=False)
        before = calls(sim)
        try:
            plan = ws.preview()
        except (StackError, InputError) as e:
            assert "Traceback" not in str(e)
            seen["refused"] += 1
            refused_calls[0] += calls(sim) - before
        else:
            if plan.errors:
                seen["plan_errors"] += 1
            else:
                seen["ok"] += 1
        finally:
            ws.close()

    _run(check, n)
    figure("fuzz_specs", front_end="yaml", examples=sum(seen.values()), tracebacks=0,
           api_calls_for_refused=refused_calls[0], **seen)
    assert refused_calls[0] == 0


def test_fuzz_yaml_stacks(sim, tmp_path, figure, engine_env):
    _yaml(sim, tmp_path, figure, FAST, engine_env)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_fuzz_yaml_stacks_full(sim, tmp_path, figure, engine_env):
    _yaml(sim, tmp_path, figure, FULL, engine_env)


# ---- the Terraform provider ----------------------------------------------------------------


class _TfPlan:
    """The real Terraform servicer, in-process, on the simulator: ``run(kind, data)`` sends
    ``ValidateResourceConfig`` and a create's ``PlanResourceChange`` and returns their error
    diagnostics and the requests each one made."""

    def __init__(self, sim) -> None:
        from tf.gen import tfplugin_pb2 as pb

        from datera_iac_tf.provider import DateraProvider
        from datera_iac_tf.servicer import Servicer

        app = DateraProvider()
        app.configure({"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"})
        self.pb, self.sim, self.svc = pb, sim, Servicer(app)
        schema = self.svc.GetProviderSchema(pb.GetProviderSchema.Request(), None)
        self.attr_names = {t: [a.name for a in s.block.attributes]
                           for t, s in schema.resource_schemas.items()}

    def run(self, kind: str, data: dict[str, Any]) -> tuple[list[Any], list[Any], dict[str, int],
                                                             dict[str, int]] | None:
        """(validate errors, plan errors, validate requests, plan requests); None when
        ``data`` is not encodable as msgpack (Terraform could not send it either)."""
        from tf.utils import to_dynamic_value

        pb, t = self.pb, KINDS[kind].tf_type
        config = {a: None for a in self.attr_names[t]}
        config.update({k: v for k, v in data.items() if k in config})
        try:
            dv = to_dynamic_value(config)
        except (OverflowError, TypeError, ValueError):
            return None
        start = dict(self.sim.counters())
        v = self.svc.ValidateResourceConfig(
            pb.ValidateResourceConfig.Request(type_name=t, config=dv), None)
        validate_reqs = since(self.sim, start)
        start = dict(self.sim.counters())
        p = self.svc.PlanResourceChange(pb.PlanResourceChange.Request(
            type_name=t, prior_state=to_dynamic_value(None), proposed_new_state=dv, config=dv), None)
        plan_reqs = since(self.sim, start)
        errors = [[d for d in r.diagnostics if d.severity == pb.Diagnostic.ERROR] for r in (v, p)]
        return errors[0], errors[1], validate_reqs, plan_reqs


def source_read_only(kind: str, data: dict[str, Any], valid: bool, made: dict[str, int]) -> bool:
    """The one read planning a create may make: a valid Volume with a source (clone_of /
    snapshot_id) reads that source's app_instance (``Kind.check_plan``; docs/engine.md, Data
    safety; issue #16 case 9c: a clone below its source's live size is refused before any
    write), logging in on first contact."""
    source = valid and kind == "Volume" and bool(data.get("clone_of") or data.get("snapshot_id"))
    return not made or (source and set(made) <= SOURCE_READ
                        and made.get("GET /v2.2/app_instances/:id") == 1)


def _terraform(sim, figure, n: int) -> None:
    tf = _TfPlan(sim)
    seen = {"ok": 0, "refused": 0}
    internal: list[str] = []
    stray: list[str] = []  # examples that made requests other than the plan-time source read
    stray_requests, source_reads = [0], [0]

    @given(kind_and_props)
    def check(kp: tuple[str, dict[str, Any]]) -> None:
        kind, data = kp
        got = tf.run(kind, data)
        if got is None:
            return
        v_errs, p_errs, validate_reqs, plan_reqs = got
        if validate_reqs:
            stray.append(f"ValidateResourceConfig {kind} {data!r}: {validate_reqs}")
            stray_requests[0] += sum(validate_reqs.values())
        if not source_read_only(kind, data, not v_errs, plan_reqs):
            stray.append(f"PlanResourceChange {kind} {data!r}: {plan_reqs}")
            stray_requests[0] += sum(plan_reqs.values())
        elif plan_reqs:
            source_reads[0] += 1
        for d in v_errs + p_errs:
            text = f"{d.summary}\n{d.detail}"
            if "internal error" in text or "Traceback" in text:
                internal.append(f"{kind} {data!r}: {text}")
        seen["refused" if v_errs or p_errs else "ok"] += 1

    _run(check, n)
    figure("fuzz_specs", front_end="terraform", examples=sum(seen.values()),
           tracebacks=len(internal), api_calls=stray_requests[0], source_reads=source_reads[0],
           **seen)
    assert not internal, "\n".join(internal[:5])
    # validation never talks to the DSP, planning only to read a valid create's source
    assert not stray, "\n".join(stray[:5])


_TS = "1446076293.118600738"


@pytest.mark.terraform
@pytest.mark.parametrize(("field", "value", "reads"), [
    # found by test_fuzz_terraform_servicer_full: each was read (GET) before it was refused
    ("clone_of", "\x11;\xf6t\xfb\U00031a05\U00056164", 0),
    ("clone_of", str([94, "\x02\xbf)", "vol\nname"]), 0),  # a list, stringified by cattrs
    ("clone_of", "a b", 0),
    ("clone_of", "/root/team-a/vol a", 0),
    ("snapshot_id", f"/root/team-a/vol a/{_TS}", 0),
    ("snapshot_id", f"n\u00e4me/{_TS}", 0),
    # a source that can exist is read, once: the plan-time check of case 9c
    ("clone_of", "vol-a", 1),
    ("clone_of", "/root/0d5a3a0c-7e0e-4f5a-9d0f-2c1d3b4a5e6f", 1),
    ("snapshot_id", f"vol-a/{_TS}", 1),
])
def test_terraform_plan_reads_a_source_only_when_it_can_exist(sim, field, value, reads):
    """A create's source that no DSP object can be named (not an app_instance id nor a name
    the DSP accepts) is refused by validation with the field named, before any request; one
    that can exist is read once at plan, and refused because it does not."""
    v_errs, p_errs, validate_reqs, plan_reqs = _TfPlan(sim).run(
        "Volume", {"name": "vol-a", "size": 1, field: value})
    assert validate_reqs == {}
    assert plan_reqs.get("GET /v2.2/app_instances/:id", 0) == reads, plan_reqs
    assert source_read_only("Volume", {field: value}, not v_errs, plan_reqs), plan_reqs
    if reads:
        assert not v_errs and "does not exist" in p_errs[0].detail, (v_errs, p_errs)
    else:
        assert v_errs and f"Volume field '{field}'" in v_errs[0].detail, v_errs
        assert "neither an app_instance id nor a volume name" in v_errs[0].detail, v_errs[0]


@pytest.mark.terraform
def test_fuzz_terraform_servicer(sim, figure):
    _terraform(sim, figure, FAST)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.terraform
def test_fuzz_terraform_servicer_full(sim, figure):
    _terraform(sim, figure, FULL)


# ---- the Pulumi provider -------------------------------------------------------------------


class _Aborted(Exception):
    def __init__(self, code: Any, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class _Ctx:
    """The part of grpc.ServicerContext the provider uses."""

    def abort(self, code: Any, details: str) -> None:
        raise _Aborted(code, details)


def _pulumi(sim, figure, n: int) -> None:
    import grpc
    from pulumi.runtime.proto import provider_pb2 as pb

    from datera_iac.pulumi._codec import Secret
    from datera_iac.pulumi.provider import DateraProvider
    from datera_iac.pulumi.testing import struct, urn

    prov = DateraProvider()
    prov.Configure(pb.ConfigureRequest(args=struct({
        "endpoint": sim.http_url, "sanLogin": "admin", "sanPassword": Secret("password")}),
        acceptSecrets=True), _Ctx())
    seen = {"ok": 0, "refused": 0}
    internal: list[str] = []
    before = calls(sim)

    @given(kind_and_props)
    def check(kp: tuple[str, dict[str, Any]]) -> None:
        kind, data = kp
        news = {camel(k): (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in data.items()}
        try:
            req = pb.CheckRequest(urn=urn(KINDS[kind].token, "fz"), olds=struct({}), news=struct(news))
        except (OverflowError, TypeError, ValueError):
            return  # not encodable as a protobuf Struct: the engine could not send it either
        try:
            resp = prov.Check(req, _Ctx())
        except _Aborted as e:
            if e.code == grpc.StatusCode.INTERNAL or "Traceback" in e.details:
                internal.append(f"{kind} {news!r}: {e.details}")
            seen["refused"] += 1
            return
        seen["refused" if resp.failures else "ok"] += 1
        for fl in resp.failures:
            assert fl.reason and "Traceback" not in fl.reason

    _run(check, n)
    figure("fuzz_specs", front_end="pulumi", examples=sum(seen.values()),
           tracebacks=len(internal), api_calls=calls(sim) - before, **seen)
    assert not internal, "\n".join(internal[:5])
    assert calls(sim) == before  # Check never talks to the DSP


def test_fuzz_pulumi_check(sim, figure):
    _pulumi(sim, figure, FAST)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_fuzz_pulumi_check_full(sim, figure):
    _pulumi(sim, figure, FULL)
