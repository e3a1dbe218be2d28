"""The provider's cheaper paths answer exactly what the full ones answer (issue 21).

* :func:`datera_iac_tf.servicer._decode` / :func:`~datera_iac_tf.servicer._encode` against
  ``tf``'s ``_decode_state`` / ``_encode_state``: the same values, diagnostics, bytes and
  errors, over a volume's schema and a map with types that convert.
* :class:`datera_iac_tf.adapter.OneUse` (the plan takes the Spec its configuration's
  validation built): equal only for equal msgpack, taken once, errors never kept.
* Whole RPCs against the simulator, through a volume's life (create, no-op refresh and
  plan, drift made on the DSP, a configuration change, a provider configured differently,
  a secret rotation with ``chap_secret_wo``): each response of ValidateResourceConfig,
  UpgradeResourceState, ReadResource and PlanResourceChange is byte for byte the one the
  full path gives (``tf``'s codec and ReadResource, every Spec built again).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tf import types as tft
from tf.gen import tfplugin_pb2 as pb
from tf.provider import EncodeError, ProviderServicer, _decode_state, _encode_state
from tf.schema import Attribute
from tf.types import Unknown
from tf.utils import Diagnostics, read_dynamic_value, to_dynamic_value
from tfharness import SIM_PASSWORD, SIM_USER, servicer_on

import datera_iac_tf.servicer as servicer_mod
from datera_iac_tf.adapter import OneUse
from datera_iac_tf.provider import DateraProvider
from datera_iac_tf.servicer import Servicer, _decode, _encode

V = "datera_volume"
CHAP, CHAP2 = "Chap-S3cret-f01", "Chap-S3cret-f02"
#: ValidateResourceConfig.Request.client_capabilities: write-only attributes allowed
_CAPS = bytes([0x1A, 0x02, 0x10, 0x01])


# ---- the codec ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def volume_attrs() -> dict[str, Any]:
    return Servicer(DateraProvider())._get_res_attrs(V)


def _mixed_attrs() -> dict[str, Any]:
    """Every ``tf`` type, and one that converts on decode and encode (NormalizedJson)."""
    return {n: Attribute(n, t, optional=True) for n, t in {
        "s": tft.String(), "n": tft.Number(), "b": tft.Bool(), "j": tft.NormalizedJson(),
        "l": tft.List(tft.String()), "m": tft.Map(tft.String()), "set": tft.Set(tft.Number()),
    }.items()}


def _volume_value(attrs: dict[str, Any], **values: Any) -> dict[str, Any]:
    base = {n: None for n in attrs}
    base.update(id="/root/t/app_instances/abc", name="v1", size=2, tenant="/root/t",
                portals=["10.0.0.1:3260", "10.0.0.2:3260"], extra_specs={"a": "1"},
                metadata={}, replica_count=3, force_restore=False, snapshot_policies=[])
    base.update(values)
    return base


def _decoded_cases(attrs: dict[str, Any]) -> list[Any]:
    return [
        None,
        {},
        _volume_value(attrs),
        _volume_value(attrs, size=Unknown, portals=Unknown, extra_specs=Unknown, id=Unknown),
        _volume_value(attrs, extra_specs=5, portals="not a list"),  # decode errors
        {**_volume_value(attrs), "not_an_attribute": 1},
        dict(reversed(list(_volume_value(attrs).items()))),
    ]


def _both_decode(attrs: dict[str, Any], value: Any) -> None:
    for wire in (value, to_dynamic_value(value)):
        d1, d2 = Diagnostics(), Diagnostics()
        theirs, ours = _decode_state(d1, attrs, {}, wire), _decode(d2, attrs, {}, wire)
        assert ours == theirs
        if ours[1] is not None:
            assert list(ours[1]) == list(theirs[1])  # the same order
        assert [str(d) for d in d2.diagnostics] == [str(d) for d in d1.diagnostics]


def test_decode_answers_what_tf_answers(volume_attrs):
    for value in _decoded_cases(volume_attrs):
        _both_decode(volume_attrs, value)
    mixed = _mixed_attrs()
    for value in ({"s": "x", "n": 1.5, "b": True, "j": '{"b": 1, "a": [2]}', "l": ["a"],
                   "m": {"k": "v"}, "set": [3, 1]},
                  {"j": "not json", "l": Unknown, "m": None},
                  {"j": None, "m": 3}):
        _both_decode(mixed, value)


def _both_encode(attrs: dict[str, Any], state: Any, old: Any) -> None:
    try:
        theirs: Any = _encode_state(attrs, {}, state, old).SerializeToString()
    except EncodeError as e:
        theirs = ("error", str(e))
    try:
        ours: Any = _encode(attrs, {}, state, old).SerializeToString()
    except EncodeError as e:
        ours = ("error", str(e))
    assert ours == theirs


def test_encode_answers_what_tf_answers(volume_attrs):
    a = volume_attrs
    state = _volume_value(a)
    olds = [None, {}, dict(state), {**state, "size": 2.0, "force_restore": 0},
            {**state, "size": True}, {**state, "portals": ["10.0.0.1:3260"], "name": "v0"},
            {**state, "portals": Unknown, "extra_specs": Unknown, "id": Unknown},
            {k: v for k, v in state.items() if k not in ("portals", "name")}]
    news = [state, None, {**state, "size": 1}, {**state, "size": Unknown, "portals": Unknown},
            {**state, "extra_specs": {"a": "1", "b": "2"}}, {**state, "unknown_key": 1},
            dict(reversed(list(state.items())))]
    for new in news:
        for old in olds:
            _both_encode(a, new, old)
    m = _mixed_attrs()
    mixed = {"s": "x", "n": 1, "b": False, "j": {"a": 1}, "l": ["a"], "m": {"k": "v"},
             "set": [2, 1]}
    for old in (None, {"j": '{"a": 1}', "set": [1, 2], "n": 1.0, "b": 0},
                {"j": '{"a": 2}', "l": ["b"], "m": {"k": "w"}}, {"j": Unknown, "l": Unknown}):
        _both_encode(m, mixed, old)
    _both_encode(m, {"j": object()}, None)  # an encode error, worded as tf words it


# ---- OneUse -----------------------------------------------------------------------------------

def test_one_use_gives_a_kept_answer_once():
    memo, calls = OneUse(), []

    def compute(config: Any) -> Any:
        calls.append(dict(config))
        return {"spec": config.get("size")}

    kept = memo.get({"name": "a", "size": 1}, True, compute)
    assert memo.get({"name": "a", "size": 1}, False, compute) is kept and len(calls) == 1
    again = memo.get({"name": "a", "size": 1}, False, compute)  # taken: built again
    assert again == kept and again is not kept and len(calls) == 2
    # equal as msgpack only: 1, 1.0, True and "1" are four configurations; so are two orders
    memo.get({"size": 1}, True, compute)
    for other in ({"size": 1.0}, {"size": True}, {"size": "1"}, {"size": None}):
        memo.get(other, False, compute)
    assert len(calls) == 7
    memo.get({"a": 1, "b": 2}, True, compute)
    memo.get({"b": 2, "a": 1}, False, compute)
    assert len(calls) == 9
    # unknowns are part of the key
    memo.get({"size": Unknown}, True, compute)
    memo.get({"size": Unknown}, False, compute)
    assert len(calls) == 10
    memo.get({"size": None}, False, compute)
    assert len(calls) == 11


def test_one_use_keeps_no_error_and_no_more_than_its_size():
    memo = OneUse()

    def fail(config: Any) -> Any:
        raise ValueError("bad")

    with pytest.raises(ValueError):
        memo.get({"x": 1}, True, fail)
    with pytest.raises(ValueError):
        memo.get({"x": 1}, False, fail)
    n = [0]

    def count(config: Any) -> int:
        n[0] += 1
        return n[0]

    for i in range(OneUse.size + 10):
        memo.get({"i": i}, True, count)
    assert len(memo._kept) == OneUse.size
    assert memo.get({"i": 0}, False, count) == OneUse.size + 11  # the oldest went first
    assert memo.get({"i": OneUse.size + 9}, False, count) == OneUse.size + 10
    memo.get({"x": object()}, True, count)  # no msgpack form: not kept
    assert len(memo._kept) == OneUse.size - 1


# ---- whole RPCs, fast and full --------------------------------------------------------------


def _full_read(self: Servicer, request: Any) -> tuple[Any, Any]:
    response = ProviderServicer.ReadResource(self, request, None)
    has = bool(response.new_state.msgpack or response.new_state.json)
    return response, (read_dynamic_value(response.new_state) if has else None)


class Both:
    """Sends each RPC twice to one servicer, by the full path then by the fast one, and
    asserts the two responses are the same bytes."""

    def __init__(self, svc: Servicer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.svc, self.mp = svc, monkeypatch
        self.compared = 0

    def _full(self) -> None:
        self.mp.setattr(servicer_mod, "_decode", _decode_state)
        self.mp.setattr(servicer_mod, "_encode", _encode_state)
        self.mp.setattr(Servicer, "_read", _full_read)
        self.mp.setattr(OneUse, "get", lambda memo, config, keep, compute: compute(config))

    def __call__(self, rpc: str, request: Any) -> Any:
        with self.mp.context() as mp:
            self.mp, outer = mp, self.mp
            try:
                self._full()
                full = getattr(self.svc, rpc)(request, None)
            finally:
                self.mp = outer
        fast = getattr(self.svc, rpc)(request, None)
        assert fast.SerializeToString(deterministic=True) == full.SerializeToString(
            deterministic=True), rpc
        self.compared += 1
        return fast


def _cfg(svc: Servicer, **values: Any) -> dict[str, Any]:
    return {**{n: None for n in svc._get_res_attrs(V)}, **values}


def _proposed(prior: dict | None, config: dict) -> dict:
    """Terraform's proposed new state: the configuration, with the prior value where the
    configuration leaves an optional+computed attribute null (and computed ones kept)."""
    if prior is None:
        return config
    return {k: (prior.get(k) if v is None else v) for k, v in config.items()}


def _walk(both: Both, prior: dict | None, prior_private: bytes, config: dict
          ) -> tuple[Any, bytes, Any]:
    """What Terraform's plan sends for one instance: validate, upgrade and read the stored
    state, plan. Returns the refreshed state, its private state and the plan's answer. Each
    walk is a new command: the refresh lists the DSP again."""
    both.svc.app.listings.forget()
    # another instance's configuration is validated in between, as with Terraform's
    # parallelism: the plan must take its own configuration's Spec
    for cfg in (config, {**config, "name": "decoy", "size": 9}):
        both("ValidateResourceConfig", pb.ValidateResourceConfig.Request.FromString(
            pb.ValidateResourceConfig.Request(type_name=V, config=to_dynamic_value(cfg))
            .SerializeToString() + _CAPS))
    state, private = prior, prior_private
    if prior is not None:
        up = both("UpgradeResourceState", pb.UpgradeResourceState.Request(
            type_name=V, version=0, raw_state=pb.RawState(json=json.dumps(prior).encode())))
        read = both("ReadResource", pb.ReadResource.Request(
            type_name=V, current_state=up.upgraded_state, private=prior_private))
        assert not list(read.diagnostics), list(read.diagnostics)
        state = read_dynamic_value(read.new_state) if read.new_state.msgpack else None
        private = read.private
    plan = both("PlanResourceChange", pb.PlanResourceChange.Request(
        type_name=V, prior_state=to_dynamic_value(state),
        proposed_new_state=to_dynamic_value(_proposed(state, config)),
        config=to_dynamic_value(config), prior_private=private))
    return (state, private, plan)


def _apply(svc: Servicer, prior: dict | None, private: bytes, plan: Any,
           config: dict) -> tuple[dict, bytes]:
    assert not list(plan.diagnostics), list(plan.diagnostics)
    resp = svc.ApplyResourceChange(pb.ApplyResourceChange.Request(
        type_name=V, prior_state=to_dynamic_value(prior), planned_state=plan.planned_state,
        config=to_dynamic_value(config), planned_private=plan.planned_private), None)
    assert not [d for d in resp.diagnostics if d.severity == pb.Diagnostic.ERROR], list(
        resp.diagnostics)
    return read_dynamic_value(resp.new_state), resp.private


def test_rpcs_answer_the_same_through_a_volumes_life(sim, dsp, monkeypatch):
    svc = servicer_on(sim)
    svc.app.client.ensure_tenant("/root/fast")
    both = Both(svc, monkeypatch)
    config = _cfg(svc, name="fast-1", size=1, tenant="fast", extra_specs={"DF:round_robin": "true"},
                  metadata={"team": "x"}, timeouts={"read": "2m"})
    _, _, plan = _walk(both, None, b"", config)  # create
    state, private = _apply(svc, None, b"", plan, config)

    state, private, plan = _walk(both, state, private, config)  # no-op
    assert not plan.requires_replace and read_dynamic_value(plan.planned_state) == state

    client, _ = dsp  # drift on the DSP: grown and renamed out of band
    (ai,) = [a for a in client.list("/app_instances", tenant="/root/fast")]
    client.put(ai["storage_instances"][0]["volumes"][0]["path"], {"size": 3}, tenant="/root/fast")
    client.put(f"/app_instances/{ai['id']}", {"name": "renamed-out-of-band"}, tenant="/root/fast")
    drifted, private, plan = _walk(both, state, private, config)
    assert drifted["name"] == "renamed-out-of-band" and plan.planned_state != state

    grown = {**config, "size": 4}  # a configuration change, applied
    state, private, plan = _walk(both, drifted, private, grown)
    state, private = _apply(svc, drifted, private, plan, grown)
    _walk(both, state, private, grown)
    _walk(both, state, private, {**grown, "name": "fast-1b", "timeouts": None})  # replace

    other = DateraProvider()  # the provider configured differently
    other.configure({"endpoint": sim.http_url, "san_login": SIM_USER,
                     "san_password": SIM_PASSWORD, "request_timeout": 7,
                     "datera_debug_replica_count_override": True})
    _walk(Both(Servicer(other), monkeypatch), state, private, grown)
    assert both.compared >= 20


def test_rpcs_answer_the_same_through_a_secret_rotation(sim, monkeypatch):
    svc = servicer_on(sim)
    both = Both(svc, monkeypatch)
    config = _cfg(svc, name="fast-chap", size=1, chap_user="chapuser", chap_secret_wo=CHAP,
                  chap_secret_wo_version=1)
    _, _, plan = _walk(both, None, b"", config)
    state, private = _apply(svc, None, b"", plan, config)
    stored = {**config, "chap_secret_wo": None}  # Terraform's state never holds it
    state, private, plan = _walk(both, state, private, config)
    assert read_dynamic_value(plan.planned_state) == state and state["chap_secret_wo"] is None
    rotated = {**config, "chap_secret_wo": CHAP2, "chap_secret_wo_version": 2}
    state, private, plan = _walk(both, state, private, rotated)
    assert read_dynamic_value(plan.planned_state)["chap_secret_wo_version"] == 2
    state, private = _apply(svc, state, private, plan, rotated)
    _walk(both, state, private, rotated)
    assert stored["chap_secret_wo"] is None and both.compared >= 10
