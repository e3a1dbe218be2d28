"""Datera's published Python SDK (dfs_sdk 1.2.27) works against the simulator unchanged.

The SDK logs in with PUT /login, parses GET /api into its endpoint set (strict mode: any
endpoint missing from /api raises before a request is sent), reads /system for the product
version, builds every follow-up URL from the entities' ``path``, pages v2.2 lists by
``metadata`` and switches ``ai.metadata`` to ``int_ecosystem_data`` on product 3.3+.

Only two things are adapted around it, not in it: ``collections.Mapping`` (removed in
Python 3.10) is restored before the import, and its hard-coded ports 7717/7718 are pointed
at the simulator's free ports.
"""

from __future__ import annotations

import collections
import collections.abc
import uuid
from typing import Any

import pytest

for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable", "Callable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from tests.tools import require_module

require_module("dfs_sdk")  # a collection failure naming the install command, never a skip
import dfs_sdk  # noqa: E402
from dfs_sdk import connection as sdk_connection
from dfs_sdk.exceptions import (
    ApiConflictError,
    ApiInvalidRequestError,
    ApiNotFoundError,
    ApiValidationFailedError,
)

from datera_iac.sim import SimServer

IQN = "iqn.1993-08.org.debian:01:sdkhost"


def _api(sim: SimServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, version: str = "v2.2",
         secure: bool = True, tenant: str = "/root") -> Any:
    monkeypatch.setattr(sdk_connection, "REST_PORT", sim.http_port)
    monkeypatch.setattr(sdk_connection, "REST_PORT_HTTPS", sim.https_port)
    return dfs_sdk.get_api(
        sim.host, "admin", "password", version, tenant=tenant, secure=secure,
        verify=str(sim.cert_path) if secure else False,
        schema_loc=str(tmp_path / ".cached-schema"), disable_log=True,
        retry_503_type=None, retry_connection_type=None,
    )


@pytest.fixture
def sdk(sim: SimServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    return _api(sim, tmp_path, monkeypatch)


def _ai_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "create_mode": "openstack",
        "uuid": str(uuid.uuid4()),
        "access_control_mode": "deny_all",
        "storage_instances": [{
            "name": "storage-1",
            "ip_pool": {"path": "/access_network_ip_pools/default"},
            "volumes": [{"name": "volume-1", "size": 1, "replica_count": 3, "snapshot_policies": [],
                         "placement_policy": {"path": "/placement_policies/default"}}],
        }],
    }


def test_login_sequence_over_https(sim: SimServer, sdk: Any) -> None:
    """get_api logs in over HTTPS, reads /api and /system; the product version is ours."""
    assert sdk.context.connection._product_version == "3.3.5.0"
    c = sim.counters()
    assert c["PUT /v2.2/login"] == 1 and c["GET /v2.2/api"] == 1 and c["GET /v2.2/system"] == 1
    assert sdk.healthcheck() is True
    system = sdk.system.get()
    assert system["sw_version"] == "3.3.5.0" and system["total_capacity"] > 0
    assert len(sdk.storage_nodes.list()) == 3


def test_template_override_is_advertised_like_cinder_checks_it(sdk: Any) -> None:
    """Cinder reads /api -> /app_instances create bodyParamSchema for template_override."""
    schema = sdk.context.connection.read_endpoint("/api")
    assert "template_override" in schema["/app_instances"]["create"]["bodyParamSchema"]["properties"]


def test_app_instance_lifecycle(sdk: Any) -> None:
    """Create nested, read by id and through the list, update, snapshot, QoS, delete."""
    ai = sdk.app_instances.create(**_ai_body("OS-sdk-1"))
    assert ai["path"] == f"/app_instances/{ai['id']}"
    assert sdk.app_instances.get(ai["id"])["name"] == "OS-sdk-1"
    found = sdk.app_instances.list(filter="match(name,.*sdk-1.*)")
    assert [a["id"] for a in found] == [ai["id"]]

    si = ai.storage_instances.list()[0]
    assert si.access["iqn"].startswith("iqn.2013-05.com.daterainc") and len(si.access["ips"]) == 2
    vol = si.volumes.list()[0]
    assert vol["placement_policy"]["path"] == "/placement_policies/default"
    assert vol.set(size=2)["size"] == 2
    with pytest.raises(ApiValidationFailedError):
        vol.set(size=1)  # grow-only
    with pytest.raises(ApiNotFoundError):
        vol.performance_policy.get()
    vol.performance_policy.create(total_iops_max=500, total_bandwidth_max=1000)
    assert vol.performance_policy.get()["total_iops_max"] == 500
    with pytest.raises(ApiConflictError):
        vol.performance_policy.create(total_iops_max=1)
    vol.performance_policy.get().delete()  # C29 does GET, then DELETE on the entity

    snap = vol.snapshots.create(uuid="6b1f7e8c-0000-4000-8000-000000000001")
    assert snap.reload()["op_state"] == "available"
    with pytest.raises(ApiInvalidRequestError):
        vol.snapshots.create(uuid="6b1f7e8c-0000-4000-8000-000000000001")
    assert [s["uuid"] for s in vol.snapshots.list()] == ["6b1f7e8c-0000-4000-8000-000000000001"]
    snap.delete()
    assert vol.snapshots.list() == []

    ai.metadata.set(host="node-1", display_name="vol one")  # int_ecosystem_data on 3.3+
    assert ai.metadata.get()["display_name"] == "vol one"

    ai.set(admin_state="offline", force=True)
    ai.delete(force=True)
    assert sdk.app_instances.list() == []


def test_acl_auth_and_initiators(sdk: Any) -> None:
    """Initiator and group create/list/delete, ACL add/remove links, CHAP auth hidden."""
    ini = sdk.initiators.create(id=IQN, name="OpenStack-12345678")
    assert sdk.initiators.get(IQN)["name"] == "OpenStack-12345678"
    group = sdk.initiator_groups.create(name="IG-sdk", members=[{"path": ini["path"]}])
    assert [m["path"] for m in group["members"]] == [f"/initiators/{IQN}"]

    ai = sdk.app_instances.create(**_ai_body("OS-sdk-acl"))
    si = ai.storage_instances.list()[0]
    si.acl_policy.initiators.add(ini)
    si.acl_policy.initiator_groups.add(group)
    acl = si.acl_policy.get()
    assert [i["path"] for i in acl["initiators"]] == [ini["path"]]
    si.acl_policy.initiators.remove(ini)
    si.acl_policy.set(initiators=[], initiator_groups=[])
    assert si.acl_policy.get()["initiator_groups"] == []

    auth = si.auth.set(type="chap", target_user_name="tuser", target_pswd="secret-secret1")
    assert auth["type"] == "chap" and auth["target_pswd"] == "(hidden)"
    assert si.reload()["auth"]["target_user_name"] == "tuser"

    ai.set(admin_state="offline", force=True)
    ai.delete()
    sdk.initiator_groups.get("IG-sdk").delete()
    sdk.initiators.get(IQN).delete()
    assert sdk.initiators.list() == []


def test_tenants_pools_templates_placement(sim: SimServer, sdk: Any, tmp_path: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Tenant create/get/delete by entity path; objects made in a tenant stay there."""
    t = sdk.tenants.create(name="OS-abc")
    assert t["path"] == "/root/OS-abc"
    scoped = _api(sim, tmp_path, monkeypatch, tenant="/root/OS-abc")
    ai = scoped.app_instances.create(**_ai_body("in-tenant"))
    assert ai["tenant"] == "/root/OS-abc"
    assert sdk.app_instances.list() == []  # not visible from /root
    assert [p["name"] for p in scoped.access_network_ip_pools.list()] == ["default"]  # inherited

    pool = sdk.access_network_ip_pools.create(
        name="pool-b", network_paths=[{"name": "net-1", "start_ip": "10.1.0.10", "netmask": 24, "range": 8}])
    assert sdk.access_network_ip_pools.get("pool-b")["network_paths"][0]["start_ip"] == "10.1.0.10"
    tpl = sdk.app_templates.create(name="gold", storage_templates=[{
        "name": "storage-1", "volume_templates": [{"name": "volume-1", "size": 4, "replica_count": 2}]}])
    from_tpl = sdk.app_instances.create(
        name="from-gold", app_template={"path": tpl["path"]},
        template_override={"storage_instances": {"storage-1": {"volumes": {"volume-1": {"size": "6"}}}}})
    assert from_tpl["storage_instances"][0]["volumes"][0]["size"] == 6
    assert {p["name"] for p in sdk.placement_policies.list()} >= {"default"}
    from_tpl.set(admin_state="offline", force=True)
    from_tpl.delete()
    tpl.delete()
    pool.delete()

    ai.set(admin_state="offline", force=True)
    ai.delete()
    sdk.tenants.get("root/OS-abc").delete()
    assert [x["path"] for x in sdk.tenants.list()] == ["/root"]


def test_v21_over_http_with_legacy_metadata(make_sim: Any, tmp_path: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """v2.1 over plain HTTP against a 3.2 product: /metadata, placement_mode, no paging."""
    old = make_sim(sw_version="3.2.1.0")
    api = _api(old, tmp_path, monkeypatch, version="v2.1", secure=False)
    body = _ai_body("OS-old")
    vol = body["storage_instances"][0]["volumes"][0]
    vol.pop("placement_policy")
    vol["placement_mode"] = "hybrid"
    ai = api.app_instances.create(**body)
    ai.metadata.set(type="cached_image")
    assert ai.metadata.get()["type"] == "cached_image"
    assert old.counters()["PUT /v2.1/app_instances/:id/metadata"] == 1
    for i in range(3):
        api.app_instances.create(name=f"more-{i}")
    assert len(api.app_instances.list()) == 4


def test_sdk_relogs_in_after_key_expiry(sim: SimServer, sdk: Any) -> None:
    """An expired key is a 401 with the SDK's message; it logs in again and retries once."""
    sdk.app_instances.list()
    before = sim.counters()["PUT /v2.2/login"]
    sim.set_faults(expire_keys=True)
    assert sdk.app_instances.list() == []
    assert sim.counters()["PUT /v2.2/login"] == before + 1
    tail = [(e["method"], e["template"], e["status"]) for e in sim.request_log()[-4:]]
    assert tail == [("GET", "/v2.2/app_instances", 401), ("PUT", "/v2.2/login", 200),
                    ("GET", "/v2.2/system", 200), ("GET", "/v2.2/app_instances", 200)]


def test_sdk_pages_v22_lists(sim: SimServer, sdk: Any, api: Any) -> None:
    """More than one page (100) of initiators comes back whole through SDK paging."""
    for i in range(105):  # made over a keep-alive session: the SDK opens a connection per call
        api.ok("POST", "/initiators", {"id": f"iqn.2004-10.com.example:host{i:03d}", "name": f"host{i:03d}"})
    got = sdk.initiators.list()
    assert sorted(i["name"] for i in got) == [f"host{i:03d}" for i in range(105)]
    pages = [e for e in sim.request_log() if e["template"] == "/v2.2/initiators" and e["method"] == "GET"]
    assert len(pages) == 2
