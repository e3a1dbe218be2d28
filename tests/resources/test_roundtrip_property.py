"""Hypothesis property against the simulator: for generated valid volume declarations,
create -> read (and read_many, and adopt) gives a spec that plans empty against the
declaration, and delete leaves nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datera_iac.resources import KINDS

VOLUME = KINDS["Volume"]

_specs = st.fixed_dictionaries(
    {"name": st.from_regex(r"[a-z][a-z0-9-]{2,20}", fullmatch=True),
     "size": st.integers(1, 2000)},
    optional={
        "extra_specs": st.dictionaries(
            st.sampled_from(["replica_count", "DF:total_iops_max", "read_iops_max",
                             "DF:iops_per_gb", "bandwidth_per_gb", "placement_mode",
                             "round_robin", "DF:write_bandwidth_max"]),
            st.integers(0, 5), max_size=4,
        ).map(lambda d: {k: (max(1, v) if "replica" in k else
                             ["hybrid", "all_flash", "single_flash"][v % 3] if "mode" in k else
                             bool(v % 2) if "robin" in k else v * 100)
                         for k, v in d.items()}),
        "snapshot_policies": st.lists(st.sampled_from(
            ["daily:1day:7", "hourly:1hour:24", "weekly:1week:4"]), max_size=2, unique=True),
        "metadata": st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                                    st.text(st.characters(codec="ascii"), max_size=10),
                                    max_size=3),
        "volume_type": st.sampled_from(["gold", "silver"]),
        "chap": st.booleans(),
    },
)


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_specs)
def test_create_read_plans_empty(ctx, data):
    """Declared -> created -> read/read_many/adopt: no diff (but for a declared CHAP
    secret, which the DSP hides: exactly one sensitive chap_secret change with old None,
    for the caller's digest/stored value to settle); delete: gone."""
    data = dict(data)
    if data.pop("chap", False):
        data.update(chap_user="user_1", chap_secret="abcdefghijklmn")
    s = VOLUME.spec_from(data)
    obs = VOLUME.create(ctx, s)
    try:
        hidden = [("chap_secret", None, True)] if s.chap_secret else []
        for seen in (obs.spec, VOLUME.read(ctx, obs.id).spec,
                     VOLUME.read_many(ctx, [obs.id])[obs.id].spec,
                     VOLUME.adopt(ctx, obs.id).spec):
            d = VOLUME.diff(seen, s)
            assert [(c.name, c.old, c.sensitive) for c in d.changes] == hidden
            assert not d.replace
        assert "abcdefghijklmn" not in repr(obs)
    finally:
        VOLUME.delete(ctx, obs.id)
    assert VOLUME.read(ctx, obs.id) is None
