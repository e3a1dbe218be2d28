"""Input handling and plan-time diffs of the Tenant, Volume and Snapshot kinds (no DSP).

Everything here runs before any API call: a bad declaration must fail with an InputError
naming the kind, the resource, the field and the fix.
"""

from __future__ import annotations

import attrs
import pytest

from datera_iac.errors import InputError
from datera_iac.resources import KINDS
from datera_iac.resources._util import normalize_tenant, split_id
from datera_iac.resources.base import REPLACE, SENSITIVE
from datera_iac.resources.volume import VolumeSpec, carry_unknown

VOLUME = KINDS["Volume"]
TENANT = KINDS["Tenant"]
SNAPSHOT = KINDS["Snapshot"]


def vol(**kw):
    data = {"name": "vol-a", "size": 10}
    data.update(kw)
    return VOLUME.spec_from(data, resource="r1")


def test_registered_under_every_name():
    """Each kind answers to its short name, Pulumi token and Terraform type."""
    for short, token, tf in [
        ("Tenant", "datera:index:Tenant", "datera_tenant"),
        ("Volume", "datera:index:Volume", "datera_volume"),
        ("Snapshot", "datera:index:Snapshot", "datera_snapshot"),
    ]:
        assert KINDS[short] is KINDS[token] is KINDS[tf]


def test_field_metadata():
    """Sources, tenant and snapshot parents force replacement; secrets are sensitive and
    hidden from repr; name and size change in place."""
    f = attrs.fields_dict(VolumeSpec)
    assert {n for n, a in f.items() if a.metadata[REPLACE]} == {
        "tenant", "clone_of", "snapshot_id", "template", "source_image",
        "source_image_checksum"}
    assert {n for n, a in f.items() if a.metadata[SENSITIVE]} == {
        "chap_secret", "chap_initiator_secret"}
    spec = vol(chap_user="user1", chap_secret="s3cret-s3cret")
    assert "s3cret" not in repr(spec)


def test_normalizes_forms():
    """'10' is 10 GiB; a tenant x and /root/x are one value; DF: prefixes are optional and
    snapshot policies are sorted by name."""
    a = vol(size="10", tenant="team-a", extra_specs={"replica_count": 2, "total_iops_max": "100"},
            snapshot_policies=["weekly:1week:4", "daily:1day:7"])
    b = vol(size=10, tenant="/root/team-a/", extra_specs={"DF:total_iops_max": 100,
                                                           "DF:replica_count": "2"},
            snapshot_policies=["daily:1day:7", "weekly:1week:4"])
    assert a == b
    assert a.tenant == "/root/team-a"
    assert a.extra_specs == {"DF:replica_count": "2", "DF:total_iops_max": "100"}
    assert VOLUME.diff(a, b).changed is False


BAD_VOLUMES = [
    ({"size": 0}, "size", "1..32768"),
    ({"size": 40000}, "size", "1..32768"),
    ({"size": 10.5}, "size", "whole number"),
    ({"size": True}, "size", "whole number"),
    ({"size": "ten"}, "size", "whole number"),
    ({"name": "v"}, "name", "3-64"),
    ({"name": "bad name!"}, "name", "3-64"),
    ({"extra_specs": {"DF:nope": 1}}, "extra_specs.DF:nope", "known keys"),
    ({"extra_specs": {"qos:total_iops_max": 1}}, "extra_specs.qos:total_iops_max", "DF:"),
    ({"extra_specs": {"replica_count": 0}}, "extra_specs.replica_count", "1..5"),
    ({"extra_specs": {"replica_count": 6}}, "extra_specs.replica_count", "1..5"),
    ({"extra_specs": {"total_iops_max": -1}}, "extra_specs.total_iops_max", "integer"),
    ({"extra_specs": {"placement_mode": "fast"}}, "extra_specs.placement_mode", "hybrid"),
    ({"tenant": "/root/a b"}, "tenant", "tenant name"),
    ({"tenant": "/root//"}, None, None),  # '/root//' is /root: allowed
    ({"tenant": "ab"}, "tenant", "tenant name"),
    ({"snapshot_policies": ["daily:2day:7"]}, "snapshot_policies[0]", "interval"),
    ({"snapshot_policies": ["daily:1day:0"]}, "snapshot_policies[0]", "1..256"),
    ({"snapshot_policies": ["daily"]}, "snapshot_policies[0]", "name:interval:retention"),
    ({"snapshot_policies": ["daily:1day:7", "daily:1week:2"]}, "snapshot_policies[1]",
     "distinct"),
    ({"chap_secret": "abcdefghijklm"}, "chap_user", "chap_user"),
    ({"chap_user": "user1", "chap_secret": "short"}, "chap_secret", "12-16"),
    ({"chap_user": "u", "chap_secret": "abcdefghijklm"}, "chap_user", "3-64"),
    ({"chap_user": "user1", "chap_secret": "abcdefghijklm", "chap_initiator_user": "init1",
      "chap_initiator_secret": "abcdefghijklm"}, "chap_initiator_secret", "different"),
    ({"chap_initiator_user": "init1", "chap_initiator_secret": "abcdefghijklm"},
     "chap_initiator_user", "chap_user"),
    ({"clone_of": "/root/abc", "template": "tmpl-1"}, "template", "one of"),
    ({"clone_of": ""}, "clone_of", "id output"),
    ({"metadata": {"volume_type": "x"}}, "metadata.volume_type", "volume_type field"),
    ({"metadata": {"a": {"b": 1}}}, "metadata.a", "flatten"),
    ({"sise": 3}, "sise", "known fields"),
]


@pytest.mark.parametrize(("extra", "field", "fix"), BAD_VOLUMES)
def test_bad_volume_input(extra, field, fix):
    """Every bad value raises InputError naming kind, resource, field and a fix."""
    if field is None:
        vol(**extra)
        return
    with pytest.raises(InputError) as e:
        vol(**extra)
    err = e.value
    assert (err.kind, err.resource, err.field) == ("Volume", "r1", field)
    assert err.fix and fix in (err.fix + err.reason)


def test_shrink_is_a_plan_error():
    """A smaller size fails in diff, naming the volume, the field and the fix."""
    with pytest.raises(InputError) as e:
        VOLUME.diff(vol(size=20), vol(size=10))
    assert (e.value.kind, e.value.field, e.value.resource) == ("Volume", "size", "vol-a")
    assert "only grow" in e.value.fix
    # a volume re-created anyway (new tenant) may be smaller
    d = VOLUME.diff(vol(size=20, tenant="team-a"), vol(size=10, tenant="team-b"))
    assert d.replaces == ("tenant",) and "size" in d.fields and d.reason == "tenant changed"


def test_replica_decrease_is_an_error_unless_replacement_allowed():
    """Lowering DF:replica_count is refused in place; replace_on_retype turns it into a
    delete-first replacement (the name stays unique)."""
    old = vol(extra_specs={"replica_count": 3})
    with pytest.raises(InputError) as e:
        VOLUME.diff(old, vol(extra_specs={"replica_count": 2}))
    assert e.value.field == "extra_specs.DF:replica_count"
    assert "replace_on_retype" in e.value.fix
    d = VOLUME.diff(old, vol(extra_specs={"replica_count": 2}, replace_on_retype=True))
    assert d.replaces == ("extra_specs",) and d.delete_before_replace
    assert "replica_count" in d.reason


def test_in_place_changes():
    """Rename, extend, QoS, placement, ip_pool and replica increase are in-place updates."""
    old = vol(extra_specs={"replica_count": 2, "total_iops_max": 100})
    new = vol(name="vol-b", size=20, extra_specs={
        "replica_count": 3, "total_iops_max": 500, "placement_mode": "all_flash",
        "ip_pool": "pool-2"})
    d = VOLUME.diff(old, new)
    assert set(d.fields) == {"name", "size", "extra_specs"} and not d.replace


def test_template_change_replaces():
    """Another DF:template (or template source) needs a new volume."""
    d = VOLUME.diff(vol(extra_specs={"template": "tmpl-a"}),
                    vol(extra_specs={"template": "tmpl-b"}))
    assert d.replace and "template" in d.reason
    d = VOLUME.diff(vol(template="tmpl-a"), vol(template="tmpl-b"))
    assert d.replaces == ("template",)


def test_declared_attributes_only():
    """A live policy read back explicitly diffs empty against a subset of keys, and QoS as
    iops_per_gb equals the live total_iops_max it produced; an undeclared attribute is
    not a change."""
    live = vol(size=10, extra_specs={"replica_count": 3, "placement_mode": "hybrid",
                                     "ip_pool": "default", "total_iops_max": 1000})
    assert not VOLUME.diff(live, vol(size=10, extra_specs={"total_iops_max": 1000})).changed
    assert not VOLUME.diff(live, vol(size=10, extra_specs={"iops_per_gb": 100})).changed
    assert VOLUME.diff(live, vol(size=10, extra_specs={"iops_per_gb": 50})).fields == (
        "extra_specs",)
    assert not VOLUME.diff(live, vol(size=10)).changed


def test_unknown_is_not_a_change():
    """What the DSP cannot show (sources, metadata in a bulk read) is None in a read, and
    None on either side is not a change; two known values are compared. A declared CHAP
    secret against an unreadable one is the exception: it is reported as a sensitive change
    with old None, for the caller to drop when it matches what it last wrote (the engine's
    salted digest, the providers' stored value), so a changed secret is never ignored."""
    seen = vol(chap_user="user1")
    mine = vol(chap_user="user1", chap_secret="abcdefghijklm", clone_of="/root/vol-x1",
               metadata={"a": "1"}, volume_type="gold")
    d = VOLUME.diff(seen, mine)
    assert [(c.name, c.old, c.sensitive, c.replace) for c in d.changes] == [
        ("chap_secret", None, True, False)]
    assert not VOLUME.diff(seen, attrs.evolve(mine, chap_secret=None)).changed
    d = VOLUME.diff(vol(clone_of="/root/aaa"), vol(clone_of="/root/bbb"))
    assert d.replaces == ("clone_of",)
    assert not VOLUME.diff(vol(clone_of="aaa"), vol(clone_of="/root/aaa")).changed
    d = VOLUME.diff(mine, attrs.evolve(mine, chap_secret="zyxwvutsrqpo"))
    assert d.fields == ("chap_secret",) and d.changes[0].shown() == ("(sensitive)",) * 2
    carried = carry_unknown(seen, mine)
    assert carried.chap_secret == "abcdefghijklm" and carried.clone_of == "/root/vol-x1"


def test_tenant_spec():
    """Tenant names and parents are validated and normalized; the path is parent + name."""
    t = TENANT.spec_from({"name": "team-a", "parent": "ops-1"}, resource="t")
    assert t.parent == "/root/ops-1" and t.path == "/root/ops-1/team-a"
    for data, field in [({"name": "a"}, "name"), ({"name": "team-a", "parent": "/root/a b"},
                                                   "parent"),
                        ({"name": "team-a", "description": "!!"}, "description")]:
        with pytest.raises(InputError) as e:
            TENANT.spec_from(data, resource="t")
        assert (e.value.kind, e.value.field, e.value.resource) == ("Tenant", field, "t")
    assert TENANT.diff(t, attrs.evolve(t, name="team-b")).replaces == ("name",)
    assert not TENANT.diff(t, attrs.evolve(t, description="New text")).replace


def test_snapshot_spec():
    """A snapshot needs a volume id; uuid must be a UUID; a bare and a qualified volume id
    of the same app_instance are the same volume."""
    with pytest.raises(InputError) as e:
        SNAPSHOT.spec_from({"volume_id": ""}, resource="s")
    assert (e.value.kind, e.value.field) == ("Snapshot", "volume_id")
    with pytest.raises(InputError) as e:
        SNAPSHOT.spec_from({"volume_id": "/root/x", "uuid": "nope"}, resource="s")
    assert e.value.field == "uuid"
    a = SNAPSHOT.spec_from({"volume_id": "/root/abc"})
    assert not SNAPSHOT.diff(a, SNAPSHOT.spec_from({"volume_id": "abc"})).changed
    assert SNAPSHOT.diff(a, SNAPSHOT.spec_from({"volume_id": "/root/abd"})).replace


def test_tenant_and_id_helpers():
    """Tenant spellings normalize to one path; ids split into tenant and leaf."""
    assert normalize_tenant("root") == normalize_tenant("/root/") == "/root"
    assert normalize_tenant("root/team-a") == "/root/team-a"
    assert split_id("/root/team-a/abc", None) == ("/root/team-a", "abc")
    assert split_id("abc", "/root") == ("/root", "abc")
    assert split_id("team-a:abc", None) == ("/root/team-a", "abc")
