"""Entities and the converter: the reference samples structure; tolerant of new/null fields."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import cattrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datera_iac.dsp import (
    AppInstance,
    PerformancePolicy,
    Ref,
    Snapshot,
    StorageInstance,
    System,
    Volume,
    from_api,
    make_converter,
    to_api,
)

SAMPLES = Path("/work/shared/reference/dsp-v2.1-samples")
AI_SAMPLE = {
    "tenant": "/root", "path": "/app_instances/1e52", "id": "1e52", "name": "OS-9b02",
    "health": "ok", "descr": "", "admin_state": "online", "create_mode": "openstack",
    "app_template": {"path": "", "resolved_path": "", "resolved_tenant": ""},
    "snapshots": [], "snapshot_policies": [], "brand_new_field": {"x": 1},
    "storage_instances": [{
        "path": "/app_instances/1e52/storage_instances/storage-1", "name": "storage-1",
        "op_state": "available", "access_control_mode": "deny_all",
        "acl_policy": {"path": "p", "initiators": [{"path": "/initiators/iqn.x"}],
                       "initiator_groups": []},
        "ip_pool": {"path": "/access_network_ip_pools/default"},
        "access": {"path": "a", "ips": ["172.28.41.63", "172.29.41.29"],
                   "iqn": "iqn.2013-05.com.daterainc:tc:01:sn:3bbb080aab7d9abc"},
        "auth": {"path": "u", "type": "chap", "target_user_name": "tu", "target_pswd": "s3cr3t"},
        "volumes": [{"path": "v", "name": "volume-1", "size": 500, "replica_count": 3,
                     "performance_policy": {"total_iops_max": 100},
                     "snapshots": [{"path": "s", "timestamp": "1446076293.118600738",
                                    "uuid": "u1", "op_state": "available"}]}],
    }],
}


def test_structures_app_instance():
    """A nested AI structures into typed entities; unknown keys are ignored."""
    ai = from_api(AI_SAMPLE, AppInstance)
    si = ai.storage_instances[0]
    vol = si.volumes[0]
    assert (ai.id, ai.name, si.name, vol.name, vol.size) == ("1e52", "OS-9b02", "storage-1", "volume-1", 500)
    assert si.access.ips == ["172.28.41.63", "172.29.41.29"]
    assert si.acl_policy.initiators[0].path == "/initiators/iqn.x"
    assert vol.performance_policy == PerformancePolicy(total_iops_max=100)
    assert vol.snapshots[0].timestamp == "1446076293.118600738"
    assert "s3cr3t" not in repr(si.auth)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="reference samples not present")
def test_reference_samples():
    """The v2.1 reference list dumps structure without error."""
    ais = json.loads((SAMPLES / "ai_list.json").read_text())["data"]
    assert [from_api(a, AppInstance).name for a in ais][:2] == ["test-app-1", "test-app-2"]
    for name in ("vol_list_0.json", "vol_list_1.json", "vol_list_2.json"):
        for v in json.loads((SAMPLES / name).read_text())["data"]:
            assert from_api(v, Volume).name


def test_null_and_stringly_values_are_tolerated():
    """null for a list takes the default; numbers sent as strings and vice versa convert."""
    vol = from_api({"path": "/v", "size": "5", "snapshots": None, "capacity_in_use": "1.5"}, Volume)
    assert (vol.size, vol.snapshots, vol.capacity_in_use) == (5, [], 1.5)
    assert from_api({"timestamp": 1446076293.5}, Snapshot).timestamp == "1446076293.5"
    assert from_api({"sw_version": "3.3.5.0", "total_capacity": 2**40}, System).total_capacity == 2**40


def test_bare_path_references():
    """A reference given as a bare path string (legacy shape) reads as Ref(path=...)."""
    si = from_api({"name": "storage-1", "ip_pool": "/access_network_ip_pools/default",
                   "active_storage_nodes": ["/storage_nodes/1"]}, StorageInstance)
    assert si.ip_pool == Ref(path="/access_network_ip_pools/default")
    assert si.active_storage_nodes == [Ref(path="/storage_nodes/1")]


def test_type_errors_carry_the_path():
    """An impossible value raises a cattrs error whose path names the field."""
    with pytest.raises(cattrs.ClassValidationError) as e:
        from_api({"size": "big"}, Volume)
    assert cattrs.transform_error(e.value) == ["invalid value for type, expected int | float @ $.size"]


def test_forbid_extra_keys_variant():
    """make_converter(forbid_extra_keys=True) rejects unknown keys (for user-facing data)."""
    with pytest.raises(cattrs.ClassValidationError):
        make_converter(forbid_extra_keys=True).structure({"nme": "x"}, Volume)


def test_to_api_drops_none():
    """to_api leaves None fields and empty paths out of request bodies."""
    body = to_api(Volume(name="volume-1", size=3, replica_count=2,
                         performance_policy=PerformancePolicy(total_iops_max=5)))
    assert body["performance_policy"]["total_iops_max"] == 5
    assert "path" not in body and "uuid" not in body


@settings(deadline=None)  # no timing flakes on a loaded CI machine
@given(st.builds(PerformancePolicy, **{
    f.name: st.integers(0, 10**7) for f in attrs.fields(PerformancePolicy) if f.name != "path"
}))
def test_round_trip(policy):
    """Unstructure then structure gives the same entity."""
    assert from_api(to_api(policy), PerformancePolicy) == policy
