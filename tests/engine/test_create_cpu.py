"""The short cuts taken on the create path for CPU (issue #4) give exactly what the slow
paths give: the observed VolumeSpec built without re-validation, the remembered volume
policy, the fixed-salt digest of a declaration without
secrets and the UUID text made without a UUID object."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from datera_iac import cinder
from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.engine import apply as apply_mod
from datera_iac.engine.state import PLAIN_SALT, hash_secret, secret_matches
from datera_iac.resources import KINDS
from datera_iac.resources import volume as volume_mod
from datera_iac.resources.base import Context, Observed, Timeouts

VOLUME = KINDS["Volume"]
SECRET = "abcdefghijklm"
OTHER_SECRET = "mlkjihgfedcba"


@pytest.fixture
def ctx(sim: Any) -> Iterator[Context]:
    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": "password"})
    c = Context(client=DspClient(cfg), config=cfg,
                timeouts=Timeouts(create=20, update=20, delete=20, read=20))
    yield c
    c.client.close()


def test_observed_spec_equals_the_validating_constructor(ctx, monkeypatch):
    """Every volume read (creates, reads, bulk reads) of varied live shapes - CHAP and
    mutual CHAP, QoS, replicas, placement, snapshot schedules out of order, metadata,
    volume type, another tenant - builds the same VolumeSpec both ways."""
    built: list[tuple[Any, Any]] = []
    fast = volume_mod._observed_spec

    def both(**kw: Any) -> Any:
        spec = fast(**kw)
        built.append((spec, volume_mod.VolumeSpec(**kw)))
        return spec

    monkeypatch.setattr(volume_mod, "_observed_spec", both)
    ctx.client.ensure_tenant("/root/other")
    specs = [
        {"name": "plain", "size": 1},
        {"name": "rich", "size": 12, "volume_type": "gold", "metadata": {"team": "a", "n": 3},
         "extra_specs": {"replica_count": 2, "total_iops_max": 500, "read_bandwidth_max": 70,
                         "placement_mode": "all_flash"},
         "chap_user": "user1", "chap_secret": SECRET,
         "snapshot_policies": ["weekly:1week:4", "daily:1day:7"]},
        {"name": "mutual", "size": 3, "tenant": "other", "chap_user": "tuser",
         "chap_secret": SECRET, "chap_initiator_user": "iuser",
         "chap_initiator_secret": OTHER_SECRET},
    ]
    made = [VOLUME.create(ctx, VOLUME.spec_from(s, resource=s["name"])) for s in specs]
    # a schedule added out of band lands last in the DSP's list: the read sorts it
    ctx.client.post(f"{made[1].outputs.volume_path}/snapshot_policies",
                    {"name": "aaa", "interval": "1hour", "retention_count": 2})
    for obs in made:
        VOLUME.read(ctx, obs.id)
    VOLUME.read_many(ctx, [o.id for o in made])
    assert len(built) >= 2 * len(specs)
    for fast_spec, slow_spec in built:
        assert fast_spec == slow_spec
        assert type(fast_spec) is volume_mod.VolumeSpec
        assert VOLUME.spec_to(fast_spec) == VOLUME.spec_to(slow_spec)
    rich = [f for f, _ in built if f.name == "rich"]
    assert rich[0].metadata == {"team": "a", "n": "3"} and rich[0].volume_type == "gold"
    assert rich[0].snapshot_policies == ["daily:1day:7", "weekly:1week:4"]
    assert rich[-1].snapshot_policies == ["aaa:1hour:2", "daily:1day:7", "weekly:1week:4"]


def test_observed_defaults_cover_every_other_field():
    """A field added to VolumeSpec must be set by _observed_spec: its keyword arguments
    plus the defaults it copies are exactly the class's fields."""
    given = set(volume_mod._observed_spec.__code__.co_varnames[
        :volume_mod._observed_spec.__code__.co_kwonlyargcount])
    defaults = {n for n, _ in volume_mod._OBSERVED_DEFAULTS}
    assert given | defaults == {f.name for f in attrs.fields(volume_mod.VolumeSpec)}
    assert not given & defaults


@pytest.mark.parametrize("options", [
    {},
    {"datera_volume_type_defaults": "replica_count:2,iops_per_gb:100"},
    {"datera_debug_replica_count_override": True},
])
@pytest.mark.parametrize("specs,typed", [
    ({}, False),
    ({"replica_count": 2, "total_iops_max": 500}, True),
    ({"DF:placement_mode": "all_flash", "iops_per_gb": 10}, True),
])
def test_resolved_policy_cache_matches_fresh_resolution(options, specs, typed):
    cfg = DateraConfig.from_mapping({"endpoint": "http://127.0.0.1:9", "san_login": "a",
                                     "san_password": "b", **options})
    cinder._POLICIES.clear()
    fresh = cinder.resolve_policy(specs, config=cfg, typed=typed)
    again = cinder.resolve_policy(specs, config=cfg, typed=typed)
    assert again is fresh  # remembered
    cinder._POLICIES.clear()
    assert cinder.resolve_policy(specs, config=cfg, typed=typed) == fresh


def test_policy_cache_keys_on_config_and_typed():
    plain = DateraConfig.from_mapping({"endpoint": "http://127.0.0.1:9", "san_login": "a",
                                       "san_password": "b"})
    two = DateraConfig.from_mapping({"endpoint": "http://127.0.0.1:9", "san_login": "a",
                                     "san_password": "b",
                                     "datera_volume_type_defaults": "replica_count:2"})
    one = DateraConfig.from_mapping({"endpoint": "http://127.0.0.1:9", "san_login": "a",
                                     "san_password": "b",
                                     "datera_debug_replica_count_override": True})
    got = [cinder.resolve_policy({}, config=c).replica_count for c in (plain, two, one, plain)]
    assert got == [3, 2, 1, 3]
    qos = {"total_iops_max": 500}
    assert cinder.resolve_policy(qos, config=plain, typed=True).performance_policy(1)
    assert not cinder.resolve_policy(qos, config=plain, typed=False).performance_policy(1)


def test_inputs_digest_salted_only_with_a_secret():
    kind = VOLUME
    plain = {"name": "vol-a", "size": 1}
    secret = {"name": "vol-a", "size": 1, "chap_user": "u", "chap_secret": SECRET}
    assert not apply_mod._holds_secret(kind, plain)
    assert apply_mod._holds_secret(kind, secret)
    assert apply_mod._holds_secret(kind, ["not", "a", "mapping"])
    obs = Observed(id="/root/x", spec=kind.spec_from(plain), outputs=kind.Outputs(
        **{f.name: None for f in attrs.fields(kind.Outputs)}))
    a = apply_mod.state_entry(kind, "v", obs, None, None, [], inputs=plain)
    b = apply_mod.state_entry(kind, "v", obs, None, None, [], inputs=plain)
    assert a.inputs_digest == b.inputs_digest == hash_secret(plain, PLAIN_SALT)
    assert secret_matches(a.inputs_digest, plain)
    assert not secret_matches(a.inputs_digest, {"name": "vol-a", "size": 2})
    c = apply_mod.state_entry(kind, "v", obs, None, None, [], inputs=secret)
    d = apply_mod.state_entry(kind, "v", obs, None, None, [], inputs=secret)
    assert c.inputs_digest != d.inputs_digest  # random salts: equal secrets look different
    assert PLAIN_SALT not in c.inputs_digest.split("$")[1]
    assert secret_matches(c.inputs_digest, secret) and SECRET not in c.inputs_digest


def test_uuid4_text_is_a_version_4_uuid():
    """The create token, in the form a Volume sends it as its app_instance uuid."""
    from datera_iac.resources.base import new_create_token, token_uuid

    seen = set()
    for _ in range(2000):
        text = token_uuid(new_create_token())
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 4 and u.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 2000
