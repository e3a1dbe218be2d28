"""Contract: tenants and isolation, parent-visible shared objects (initiators, groups, pools,
templates, placement policies), system capacities, storage nodes and metrics."""

from __future__ import annotations

from typing import Any

IQN = "iqn.1993-08.org.debian:01:tenant-host"


def _tenants(api: Any, *names: str) -> None:
    for n in names:
        api.ok("POST", "/tenants", {"name": n})


def test_tenant_crud(api) -> None:
    """Tenants nest under /root; 409 on a duplicate; get by long or short form; delete rules."""
    t = api.ok("POST", "/tenants", {"name": "OS-abc", "descr": "Project abc"})
    assert (t["path"], t["name"], t["parent_path"]) == ("/root/OS-abc", "OS-abc", "/root")
    assert api.err(409, "POST", "/tenants", {"name": "OS-abc"})["name"] == "ConflictError"
    assert api.ok("GET", "/tenants/root/OS-abc")["descr"] == "Project abc"
    assert api.ok("GET", "/tenants/OS-abc")["path"] == "/root/OS-abc"
    assert api.ok("PUT", "/tenants/root/OS-abc", {"descr": "Changed it"})["descr"] == "Changed it"
    api.err(422, "PUT", "/tenants/root/OS-abc", {"name": "renamed"})
    child = api.ok("POST", "/tenants", {"name": "sub", "parent_path": "/root/OS-abc"})
    assert child["path"] == "/root/OS-abc/sub"
    assert [x["path"] for x in api.ok("GET", "/tenants")] == ["/root", "/root/OS-abc", "/root/OS-abc/sub"]
    api.err(409, "DELETE", "/tenants/root/OS-abc")  # has a subtenant
    api.ok("DELETE", "/tenants/root/OS-abc/sub")
    api.ok("DELETE", "/root/OS-abc")  # the entity path works as a URL too (dfs-sdk .delete())
    api.err(404, "GET", "/tenants/root/OS-abc")
    api.err(400, "DELETE", "/tenants/root")
    e = api.err(422, "POST", "/tenants", {"name": "xyz", "parent_path": "/root/missing"})
    assert "parent_path" in e["message"]


def test_unknown_tenant_header_is_404_and_all_means_root(api, body) -> None:
    """A tenant header naming no tenant is 404; 'all' and a missing header mean /root."""
    assert "does not exist" in api.err(404, "GET", "/app_instances", tenant="/root/ghost")["message"]
    api.ok("POST", "/app_instances", body("root-ai"))
    assert len(api.ok("GET", "/app_instances", tenant="all")) == 1
    r = api.s.get(api.url("/app_instances"), headers={"Auth-Token": api.key}, timeout=5)
    assert r.json()["tenant"] == "/root" and len(r.json()["data"]) == 1


def test_tenants_are_isolated(api, body) -> None:
    """/root/ten-a never sees or changes /root/ten-b's app instances, nor does /root see them."""
    _tenants(api, "ten-a", "ten-b")
    ai = api.ok("POST", "/app_instances", body("shared-name"), tenant="/root/ten-a")
    assert ai["tenant"] == "/root/ten-a"
    other = api.ok("POST", "/app_instances", body("shared-name"), tenant="/root/ten-b")  # same name, other tenant
    assert other["id"] != ai["id"]
    assert [x["id"] for x in api.ok("GET", "/app_instances", tenant="/root/ten-a")] == [ai["id"]]
    for t in ("/root/ten-b", "/root"):
        api.err(404, "GET", ai["path"], tenant=t)
        api.err(404, "PUT", ai["path"], {"descr": "Hijacked"}, tenant=t)
        api.err(404, "DELETE", ai["path"], {"force": True}, tenant=t)
        api.err(404, "GET", "/app_instances/shared-name/storage_instances", tenant="/root")
    api.err(422, "POST", "/app_instances", {"name": "steal", "clone_src": {"path": ai["path"]}}, tenant="/root/ten-b")
    assert api.ok("GET", ai["path"], tenant="/root/ten-a")["descr"] == ""
    api.err(409, "DELETE", "/tenants/root/ten-a")  # holds an app instance


def test_parent_objects_are_visible_but_not_writable_from_children(api, body) -> None:
    """Initiators, groups, pools, templates made in /root serve /root/ten-a; changes stay in the owner."""
    _tenants(api, "ten-a")
    api.ok("POST", "/initiators", {"id": IQN, "name": "parent-host"})
    api.ok("POST", "/initiator_groups", {"name": "parent-group"})
    api.ok("POST", "/app_templates", {"name": "parent-tpl", "storage_templates": [
        {"name": "storage-1", "volume_templates": [{"name": "volume-1", "size": 1}]}]})
    got = api.ok("GET", f"/initiators/{IQN}", tenant="/root/ten-a")
    assert got["tenant"] == "/root"
    assert [i["id"] for i in api.ok("GET", "/initiators", tenant="/root/ten-a")] == [IQN]
    assert api.ok("GET", "/initiator_groups/parent-group", tenant="/root/ten-a")["tenant"] == "/root"
    assert api.ok("GET", "/access_network_ip_pools/default", tenant="/root/ten-a")["tenant"] == "/root"
    api.err(404, "PUT", f"/initiators/{IQN}", {"name": "renamed"}, tenant="/root/ten-a")
    api.err(404, "DELETE", f"/initiators/{IQN}", tenant="/root/ten-a")
    # references from the child resolve to the parent's objects
    ai = api.ok("POST", "/app_instances", {"name": "tpl-child", "app_template": {"path": "/app_templates/parent-tpl"}},
                tenant="/root/ten-a")
    assert ai["app_template"]["resolved_tenant"] == "/root"
    acl = api.ok("PUT", f"{ai['path']}/storage_instances/storage-1/acl_policy",
                 {"initiators": [{"path": f"/initiators/{IQN}"}]}, tenant="/root/ten-a")
    assert acl["initiators"] == [{"path": f"/initiators/{IQN}", "tenant": "/root"}]
    api.err(409, "DELETE", f"/initiators/{IQN}")  # the child's ACL uses it
    # Cinder re-creates the initiator in its own tenant (force on v2.2): allowed, and it shadows
    own = api.ok("POST", "/initiators", {"id": IQN, "name": "child-host", "force": True}, tenant="/root/ten-a")
    assert own["tenant"] == "/root/ten-a"
    assert api.ok("GET", f"/initiators/{IQN}", tenant="/root/ten-a")["name"] == "child-host"
    assert api.ok("GET", f"/initiators/{IQN}")["name"] == "parent-host"
    # objects of a child are not visible from the parent
    api.ok("POST", "/initiators", {"id": "iqn.2001-01.com.child:only", "name": "child-only"}, tenant="/root/ten-a")
    api.err(404, "GET", "/initiators/iqn.2001-01.com.child:only")


def test_initiators_and_groups(api, api21) -> None:
    """Initiator id must be an IQN/EUI; 409 on duplicate; groups manage members by link ops."""
    api.err(422, "POST", "/initiators", {"id": "not-an-iqn", "name": "x-host"})
    api.ok("POST", "/initiators", {"id": IQN, "name": "host-1"})
    api.err(409, "POST", "/initiators", {"id": IQN, "name": "host-1"})
    api21.err(422, "POST", "/initiators", {"id": "eui.0123456789ABCDEF", "name": "eui-host", "force": True})
    api21.ok("POST", "/initiators", {"id": "eui.0123456789ABCDEF", "name": "eui-host"})
    assert api.ok("PUT", f"/initiators/{IQN}", {"name": "host-renamed"})["name"] == "host-renamed"
    g = api.ok("POST", "/initiator_groups", {"name": "group-1", "members": [{"path": f"/initiators/{IQN}"}]})
    assert g["members"] == [{"path": f"/initiators/{IQN}", "tenant": "/root"}]
    api.err(409, "DELETE", f"/initiators/{IQN}")  # member of a group
    g = api.ok("PUT", "/initiator_groups/group-1/members", {"op": "add", "path": "/initiators/eui.0123456789ABCDEF"})
    assert len(g["members"]) == 2
    assert len(api.ok("GET", "/initiator_groups/group-1/members")) == 2
    api.ok("PUT", "/initiator_groups/group-1", {"members": []})
    api.err(422, "PUT", "/initiator_groups/group-1", {"members": [{"path": "/initiators/iqn.2000-01.x:none"}]})
    api.ok("DELETE", "/initiator_groups/group-1")
    api.ok("DELETE", f"/initiators/{IQN}")
    api.err(404, "GET", f"/initiators/{IQN}")


def test_ip_pools_and_network_paths(api, body) -> None:
    """The default pool exists and cannot be deleted; pools in use cannot be deleted."""
    d = api.ok("GET", "/access_network_ip_pools/default")
    assert d["path"] == "/access_network_ip_pools/default" and len(d["network_paths"]) == 2
    api.err(400, "DELETE", "/access_network_ip_pools/default")
    p = api.ok("POST", "/access_network_ip_pools", {"name": "pool-2", "descr": "Second pool", "network_paths": [
        {"name": "net-1", "start_ip": "10.5.0.10", "netmask": 24, "range": 8, "vlan": 5, "mtu": 9000}]})
    np_path = "/access_network_ip_pools/pool-2/network_paths/net-1"
    assert p["network_paths"][0]["path"] == np_path
    api.err(422, "POST", "/access_network_ip_pools", {"name": "bad", "network_paths": [
        {"start_ip": "10.5.0.300", "netmask": 24, "range": 8}]})
    api.err(409, "POST", "/access_network_ip_pools", {"name": "pool-2"})
    assert api.ok("PUT", np_path, {"start_ip": "10.5.0.50"})["start_ip"] == "10.5.0.50"
    assert api.ok("GET", np_path)["start_ip"] == "10.5.0.50"
    ai = api.ok("POST", "/app_instances", {"name": "pool-user", "storage_instances": [
        {"name": "storage-1", "ip_pool": {"path": "/access_network_ip_pools/pool-2"}}]})
    assert ai["storage_instances"][0]["access"]["ips"] == ["10.5.0.50", "10.5.0.51"]
    api.err(409, "DELETE", "/access_network_ip_pools/pool-2")
    api.ok("DELETE", ai["path"], {"force": True})
    api.ok("DELETE", "/access_network_ip_pools/pool-2")


def test_placement_policies(api, body) -> None:
    """CRUD; a policy used by a volume cannot be deleted."""
    assert {p["name"] for p in api.ok("GET", "/placement_policies")} == {"default", "all-flash", "hybrid"}
    p = api.ok("POST", "/placement_policies", {"name": "gold-pp", "max": ["all_flash"], "min": ["hybrid"]})
    assert p["path"] == "/placement_policies/gold-pp"
    assert api.ok("PUT", p["path"], {"descr": "Gold placement"})["descr"] == "Gold placement"
    b = body("pp-user")
    b["storage_instances"][0]["volumes"][0]["placement_policy"] = {"path": p["path"]}
    ai = api.ok("POST", "/app_instances", b)
    api.err(409, "DELETE", p["path"])
    api.ok("DELETE", ai["path"], {"force": True})
    api.ok("DELETE", p["path"])


def test_system_capacity_moves_with_volumes(api, body) -> None:
    """available_capacity drops by size x replicas (bytes) on create and comes back on delete."""
    s0 = api.ok("GET", "/system")
    assert s0["sw_version"] == "3.3.5.0" and s0["op_state"] == "running" and s0["uuid"]
    ai = api.ok("POST", "/app_instances", body("cap", size=10, replicas=3))
    s1 = api.ok("GET", "/system")
    used = 10 * 3 * 1024**3
    assert s0["available_capacity"] - s1["available_capacity"] == used
    assert s1["total_provisioned_capacity"] == used and s1["hybrid_provisioned_capacity"] == used
    api.ok("PUT", f"{ai['path']}/storage_instances/storage-1/volumes/volume-1", {"size": 20})
    assert api.ok("GET", "/system")["total_provisioned_capacity"] == 2 * used
    api.ok("DELETE", ai["path"], {"force": True})
    assert api.ok("GET", "/system")["available_capacity"] == s0["available_capacity"]


def test_storage_nodes_and_metrics(api) -> None:
    """Storage nodes list and get; metrics known by /api's enum answer, others 404."""
    nodes = api.ok("GET", "/storage_nodes")
    assert len(nodes) == 3 and all(n["op_state"] == "online" for n in nodes)
    assert api.ok("GET", nodes[0]["path"])["uuid"] == nodes[0]["uuid"]
    api.err(404, "GET", "/storage_nodes/00000000-0000-0000-0000-000000000000")
    assert api.ok("GET", "/metrics/io/iops_read")[0]["metric"] == "iops_read"
    assert api.ok("GET", "/metrics/hw/cpu_usage/latest")[0]["points"]
    api.err(404, "GET", "/metrics/io/bogus")


def test_api_schema_per_version(api, api21) -> None:
    """/api is the unwrapped schema: v2.1 is the real dump; v2.2 adds placement policies."""
    s21 = api21.req("GET", "/api").json()
    s22 = api.req("GET", "/api").json()
    assert s21["version"] == "v2.1" and "/placement_policies" not in s21
    assert s22["version"] == "v2.2" and "/placement_policies" in s22
    assert "/metrics/io/:metric" in s21 and "data" not in s21
