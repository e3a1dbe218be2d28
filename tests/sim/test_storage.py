"""Contract: storage instances, ACLs, CHAP, volumes, QoS, snapshots, snapshot policies,
clones, templates and metadata — the documented fields, states and rules."""

from __future__ import annotations

from typing import Any

SI = "storage_instances/storage-1"
VOL = f"{SI}/volumes/volume-1"
IQN = "iqn.1993-08.org.debian:01:host-a"


def _ai(api: Any, body: Any, name: str = "app-1", **kw: Any) -> dict[str, Any]:
    return api.ok("POST", "/app_instances", body(name, **kw))


def _offline(api: Any, ai: dict[str, Any]) -> None:
    api.ok("PUT", ai["path"], {"admin_state": "offline", "force": True})


# ---------------------------------------------------------------------------- storage instances

def test_storage_instance_crud(api, body) -> None:
    """POST/GET/list/PUT/DELETE on storage instances; online SI delete needs force."""
    ai = _ai(api, body)
    si = api.ok("POST", f"{ai['path']}/storage_instances", {
        "name": "storage-2", "volumes": [{"name": "data", "size": 3}]})
    assert si["path"] == f"{ai['path']}/storage_instances/storage-2" and si["volumes"][0]["size"] == 3
    assert [s["name"] for s in api.ok("GET", f"{ai['path']}/storage_instances")] == ["storage-1", "storage-2"]
    assert api.err(409, "POST", f"{ai['path']}/storage_instances", {"name": "storage-2"})["name"] == "ConflictError"
    api.err(409, "DELETE", si["path"])
    api.ok("DELETE", si["path"], {"force": True})
    api.err(404, "GET", si["path"])


def test_si_follows_ai_admin_state(api, body) -> None:
    """Offlining the AI offlines its SIs (op_state unavailable); onlining brings them back."""
    ai = _ai(api, body)
    _offline(api, ai)
    si = api.ok("GET", f"{ai['path']}/{SI}")
    assert (si["admin_state"], si["op_state"]) == ("offline", "unavailable")
    api.ok("PUT", ai["path"], {"admin_state": "online"})
    si = api.ok("GET", f"{ai['path']}/{SI}")
    assert (si["admin_state"], si["op_state"]) == ("online", "available")


def test_ip_pool_change_needs_offline(api, body) -> None:
    """Changing ip_pool on an online SI is 409; offline it works and moves the portals."""
    api.ok("POST", "/access_network_ip_pools", {"name": "pool-b", "network_paths": [
        {"name": "net-b", "start_ip": "10.9.0.20", "netmask": 24, "range": 6}]})
    ai = _ai(api, body)
    new = {"ip_pool": {"path": "/access_network_ip_pools/pool-b"}}
    api.err(409, "PUT", f"{ai['path']}/{SI}", new)
    _offline(api, ai)
    si = api.ok("PUT", f"{ai['path']}/{SI}", new)
    assert si["ip_pool"]["path"] == "/access_network_ip_pools/pool-b"
    assert si["access"]["ips"] == ["10.9.0.20", "10.9.0.21"]
    e = api.err(422, "PUT", f"{ai['path']}/{SI}", {"ip_pool": {"path": "/access_network_ip_pools/nope"}})
    assert "ip_pool" in e["message"]


def test_acl_policy_put_and_links(api, body) -> None:
    """PUT replaces the lists; {op, path} adds/removes; unknown initiators are 422."""
    api.ok("POST", "/initiators", {"id": IQN, "name": "host-a"})
    api.ok("POST", "/initiator_groups", {"name": "group-a", "members": [{"path": f"/initiators/{IQN}"}]})
    ai = _ai(api, body)
    acl_path = f"{ai['path']}/{SI}/acl_policy"
    acl = api.ok("PUT", acl_path, {"initiators": [{"path": f"/initiators/{IQN}"}]})
    assert [i["path"] for i in acl["initiators"]] == [f"/initiators/{IQN}"] and acl["initiator_groups"] == []
    acl = api.ok("PUT", f"{acl_path}/initiator_groups", {"op": "add", "path": "/initiator_groups/group-a"})
    assert [g["path"] for g in acl["initiator_groups"]] == ["/initiator_groups/group-a"]
    assert [i["path"] for i in api.ok("GET", f"{acl_path}/initiators")] == [f"/initiators/{IQN}"]
    acl = api.ok("PUT", f"{acl_path}/initiators", {"op": "remove", "path": f"/initiators/{IQN}"})
    assert acl["initiators"] == []
    api.err(404, "PUT", f"{acl_path}/initiators", {"op": "remove", "path": f"/initiators/{IQN}"})
    api.err(422, "PUT", acl_path, {"initiators": [{"path": "/initiators/iqn.2000-01.com.none:x"}]})
    api.err(422, "PUT", acl_path, {"initiators": [{"path": f"/initiators/{IQN}", "tenant": "/root"}]})
    api.err(422, "PUT", f"{acl_path}/initiators", {"op": "swap", "path": f"/initiators/{IQN}"})
    # a referenced group cannot be deleted
    api.err(409, "DELETE", "/initiator_groups/group-a")


def test_duplicate_acl_entries_collapse(api, body) -> None:
    """Cinder appends its IQN without a duplicate check: the ACL keeps one entry."""
    api.ok("POST", "/initiators", {"id": IQN, "name": "host-a"})
    ai = _ai(api, body)
    p = f"/initiators/{IQN}"
    acl = api.ok("PUT", f"{ai['path']}/{SI}/acl_policy", {"initiators": [{"path": p}, {"path": p}]})
    assert len(acl["initiators"]) == 1


def test_chap_and_mutual_chap_hide_secrets(api, body) -> None:
    """auth chap needs target credentials, mchap initiator ones too; passwords are hidden."""
    ai = _ai(api, body)
    auth_path = f"{ai['path']}/{SI}/auth"
    api.err(422, "PUT", auth_path, {"type": "chap", "target_user_name": "tuser"})
    api.err(422, "PUT", auth_path, {"type": "chap", "target_user_name": "tuser", "target_pswd": "short"})
    a = api.ok("PUT", auth_path, {"type": "chap", "target_user_name": "tuser", "target_pswd": "target-secret1"})
    assert a == {"path": auth_path, "type": "chap", "initiator_user_name": "", "initiator_pswd": "(hidden)",
                 "target_user_name": "tuser", "target_pswd": "(hidden)"}
    api.err(422, "PUT", auth_path, {"type": "mchap"})
    a = api.ok("PUT", auth_path, {"type": "mchap", "initiator_user_name": "iuser",
                                  "initiator_pswd": "init-secret12"})
    assert (a["type"], a["initiator_user_name"], a["target_user_name"]) == ("mchap", "iuser", "tuser")
    full = api.req("GET", ai["path"]).text
    assert "target-secret1" not in full and "init-secret12" not in full
    assert api.ok("PUT", auth_path, {"type": "none"})["target_user_name"] == ""


def test_access_control_mode_only_tightens(api, body) -> None:
    """access_control_mode can go allow_all -> deny_all, never back."""
    ai = _ai(api, body, access_control_mode="allow_all")
    # the nested SI inherits the AI's mode
    assert api.ok("GET", f"{ai['path']}/{SI}")["access_control_mode"] == "allow_all"
    api.ok("PUT", f"{ai['path']}/{SI}", {"access_control_mode": "deny_all"})
    api.err(422, "PUT", f"{ai['path']}/{SI}", {"access_control_mode": "allow_all"})


# ---------------------------------------------------------------------------- volumes

def test_volume_size_and_replicas_only_grow(api, body) -> None:
    """size 1..32768 grows only; replica_count 1..5 increases only; both 422 otherwise."""
    ai = _ai(api, body, size=10, replicas=2)
    vp = f"{ai['path']}/{VOL}"
    assert api.ok("PUT", vp, {"size": 20})["size"] == 20
    e = api.err(422, "PUT", vp, {"size": 19})
    assert e["name"] == "ValidationFailedError" and "grow" in e["message"]
    api.err(422, "PUT", vp, {"size": 32769})
    assert api.ok("PUT", vp, {"replica_count": 3})["replica_count"] == 3
    assert "increased" in api.err(422, "PUT", vp, {"replica_count": 2})["message"]
    api.err(422, "PUT", vp, {"replica_count": 6})
    api.err(422, "POST", "/app_instances", body("zero", size=0))
    api.err(422, "POST", "/app_instances", body("huge", size=40000))


def test_volume_crud_placement_and_v21_shape(api, api21, body) -> None:
    """Volume POST/PUT/DELETE; placement_policy (v2.2 only) resolves; v2.1 hides it."""
    ai = _ai(api, body)
    vols = f"{ai['path']}/{SI}/volumes"
    v = api.ok("POST", vols, {"name": "extra", "size": 2, "placement_policy": {"path": "/placement_policies/all-flash"}})
    assert v["placement_policy"]["resolved_path"] == "/placement_policies/all-flash"
    api.err(422, "POST", vols, {"name": "bad-pp", "size": 2, "placement_policy": {"path": "/placement_policies/nope"}})
    api21.err(422, "POST", vols, {"name": "v21", "size": 2, "placement_policy": {"path": "/placement_policies/default"}})
    assert "placement_policy" not in api21.ok("GET", f"{vols}/extra")
    v = api.ok("PUT", f"{vols}/extra", {"placement_mode": "all_flash"})
    assert v["placement_mode"] == "all_flash"
    api.err(409, "DELETE", f"{vols}/extra")  # SI online
    _offline(api, ai)
    api.ok("DELETE", f"{vols}/extra")
    assert [x["name"] for x in api.ok("GET", vols)] == ["volume-1"]


def test_performance_policy_singleton(api, body) -> None:
    """GET 404 when absent, POST creates, POST again 409, PUT merges, DELETE removes."""
    ai = _ai(api, body)
    pp = f"{ai['path']}/{VOL}/performance_policy"
    assert api.err(404, "GET", pp)["name"] == "NotFoundError"
    created = api.ok("POST", pp, {"total_iops_max": 1000, "read_bandwidth_max": 2048})
    assert created == {"path": pp, "total_iops_max": 1000, "read_bandwidth_max": 2048}
    api.err(409, "POST", pp, {"total_iops_max": 1})
    assert api.ok("PUT", pp, {"write_iops_max": 10})["write_iops_max"] == 10
    assert api.ok("GET", f"{ai['path']}/{VOL}")["performance_policy"]["total_iops_max"] == 1000
    api.err(422, "PUT", pp, {"total_iops_max": -1})
    api.err(422, "PUT", pp, {"total_bandwidth_max": 10240001})
    api.ok("DELETE", pp)
    api.err(404, "DELETE", pp)
    assert "performance_policy" not in api.ok("GET", f"{ai['path']}/{VOL}")


def test_nested_performance_policy_on_create(api) -> None:
    """A volume created with a performance_policy shows it inline."""
    b = {"name": "qos", "storage_instances": [{"name": "storage-1", "volumes": [
        {"name": "volume-1", "size": 1, "performance_policy": {"total_iops_max": 77}}]}]}
    ai = api.ok("POST", "/app_instances", b)
    assert ai["storage_instances"][0]["volumes"][0]["performance_policy"]["total_iops_max"] == 77


# ---------------------------------------------------------------------------- snapshots

def test_volume_snapshots(api, body) -> None:
    """Keys are "secs.nanos" strings, listed on the volume; duplicate uuid is 400 code 15."""
    ai = _ai(api, body)
    sp = f"{ai['path']}/{VOL}/snapshots"
    s1 = api.ok("POST", sp, {"uuid": "0b9f5a6e-0000-4000-8000-000000000001"})
    assert s1["path"] == f"{sp}/{s1['timestamp']}" and s1["utc_ts"] == s1["timestamp"]
    secs, frac = s1["timestamp"].split(".")
    assert len(secs) >= 10 and len(frac) == 9 and s1["op_state"] == "available"
    e = api.err(400, "POST", sp, {"uuid": "0b9f5a6e-0000-4000-8000-000000000001"})
    assert (e["name"], e["code"]) == ("InvalidRequestError", 15)
    s2 = api.ok("POST", sp, {})
    assert s2["timestamp"] > s1["timestamp"]
    vol = api.ok("GET", f"{ai['path']}/{VOL}")
    assert [s["timestamp"] for s in vol["snapshots"]] == [s1["timestamp"], s2["timestamp"]]
    assert api.ok("GET", s1["path"])["uuid"] == "0b9f5a6e-0000-4000-8000-000000000001"
    api.err(422, "DELETE", s1["path"], {"force": True})  # the schema takes no body here
    api.ok("DELETE", s1["path"])
    api.err(404, "GET", s1["path"])


def test_ai_snapshots_and_restore(api, body) -> None:
    """AI snapshots cover every volume; restore_point needs the AI offline."""
    ai = _ai(api, body)
    snap = api.ok("POST", f"{ai['path']}/snapshots", {"uuid": "1c9f5a6e-0000-4000-8000-000000000002"})
    assert snap["path"] == f"{ai['path']}/snapshots/{snap['timestamp']}"
    assert [s["timestamp"] for s in api.ok("GET", f"{ai['path']}/snapshots")] == [snap["timestamp"]]
    api.err(409, "PUT", ai["path"], {"restore_point": snap["timestamp"]})
    api.err(422, "PUT", ai["path"], {"restore_point": "123.456"})
    _offline(api, ai)
    assert api.ok("PUT", ai["path"], {"restore_point": snap["timestamp"]})["restore_point"] == snap["timestamp"]
    api.ok("DELETE", snap["path"])


def test_volume_restore_point(api, body) -> None:
    """A volume restores from its own snapshot only while offline; a failed PUT changes nothing."""
    ai = _ai(api, body, size=4)
    vp = f"{ai['path']}/{VOL}"
    snap = api.ok("POST", f"{vp}/snapshots", {})
    api.err(409, "PUT", vp, {"restore_point": snap["timestamp"]})
    _offline(api, ai)
    api.err(422, "PUT", vp, {"restore_point": snap["timestamp"], "size": 2})  # shrink refused: no restore
    assert api.ok("GET", vp)["restore_point"] == ""
    assert api.ok("PUT", vp, {"restore_point": snap["timestamp"]})["restore_point"] == snap["timestamp"]


def test_snapshot_policies(api, body) -> None:
    """Policies on AI and volume: create, read, update, delete; interval enum checked."""
    ai = _ai(api, body)
    for base in (ai["path"], f"{ai['path']}/{VOL}"):
        pol = api.ok("POST", f"{base}/snapshot_policies", {"name": "daily", "interval": "1day", "retention_count": 7})
        assert pol["path"] == f"{base}/snapshot_policies/daily"
        api.err(409, "POST", f"{base}/snapshot_policies", {"name": "daily", "interval": "1day", "retention_count": 7})
        api.err(422, "POST", f"{base}/snapshot_policies", {"name": "bad", "interval": "2days", "retention_count": 1})
        assert api.ok("PUT", pol["path"], {"retention_count": 3})["retention_count"] == 3
        assert [p["name"] for p in api.ok("GET", f"{base}/snapshot_policies")] == ["daily"]
        api.ok("DELETE", pol["path"])
        api.err(404, "GET", pol["path"])


# ---------------------------------------------------------------------------- clones

def test_clone_from_ai_volume_and_snapshot(api, body) -> None:
    """clone_src / clone_volume_src / clone_snapshot_src copy layout and sizes."""
    src = _ai(api, body, "src", size=8, replicas=2)
    vol_path = f"{src['path']}/{VOL}"
    a = api.ok("POST", "/app_instances", {"name": "c-ai", "clone_src": {"path": src["path"]}})
    assert a["clone_src"] == {"path": src["path"]}
    assert a["storage_instances"][0]["volumes"][0]["size"] == 8
    assert a["storage_instances"][0]["access"]["iqn"] != src["storage_instances"][0]["access"]["iqn"]
    v = api.ok("POST", "/app_instances", {"name": "c-vol", "clone_volume_src": {"path": vol_path}})
    assert v["storage_instances"][0]["volumes"][0]["replica_count"] == 2
    snap = api.ok("POST", f"{vol_path}/snapshots", {})
    api.ok("PUT", vol_path, {"size": 12})  # the snapshot keeps the size it was taken at
    s = api.ok("POST", "/app_instances", {"name": "c-snap", "clone_snapshot_src": {"path": snap["path"]}})
    assert s["storage_instances"][0]["volumes"][0]["size"] == 8
    ai_snap = api.ok("POST", f"{src['path']}/snapshots", {})
    g = api.ok("POST", "/app_instances", {"name": "c-aisnap", "clone_snapshot_src": {"path": ai_snap["path"]}})
    assert g["storage_instances"][0]["volumes"][0]["size"] == 12
    api.err(422, "POST", "/app_instances", {"name": "c-bad", "clone_volume_src": {"path": f"{src['path']}/nope"}})
    api.err(422, "POST", "/app_instances", {"name": "c-two", "clone_src": {"path": src["path"]},
                                            "clone_volume_src": {"path": vol_path}})
    api.err(422, "POST", "/app_instances", {"name": "c-mix", "clone_src": {"path": src["path"]},
                                            "storage_instances": [{"name": "storage-1"}]})


# ---------------------------------------------------------------------------- templates

def test_app_template_with_override(api) -> None:
    """An AI from a template gets its layout; template_override sizes are strings."""
    tpl = api.ok("POST", "/app_templates", {"name": "gold", "storage_templates": [{
        "name": "storage-1", "volume_templates": [{"name": "volume-1", "size": 5, "replica_count": 2,
                                                    "performance_policy": {"total_iops_max": 300}}]}]})
    assert tpl["storage_templates"][0]["volume_templates"][0]["path"] == \
        "/app_templates/gold/storage_templates/storage-1/volume_templates/volume-1"
    ai = api.ok("POST", "/app_instances", {"name": "t-1", "app_template": {"path": "/app_templates/gold"}})
    assert ai["app_template"]["path"] == "/app_templates/gold"
    v = ai["storage_instances"][0]["volumes"][0]
    assert (v["size"], v["replica_count"], v["performance_policy"]["total_iops_max"]) == (5, 2, 300)
    over = {"storage_instances": {"storage-1": {"volumes": {"volume-1": {"size": "9"}}}}}
    ai2 = api.ok("POST", "/app_instances", {"name": "t-2", "app_template": {"path": "/app_templates/gold"},
                                            "template_override": over})
    assert ai2["storage_instances"][0]["volumes"][0]["size"] == 9
    api.err(422, "POST", "/app_instances", {"name": "t-3", "template_override": over})
    bad = {"storage_instances": {"storage-9": {"volumes": {}}}}
    api.err(422, "POST", "/app_instances", {"name": "t-4", "app_template": {"path": "/app_templates/gold"},
                                            "template_override": bad})
    assert api.ok("GET", "/app_templates/gold/storage_templates/storage-1/volume_templates/volume-1")["size"] == 5
    api.err(409, "DELETE", "/app_templates/gold")  # in use
    copy = api.ok("POST", "/app_templates", {"name": "silver", "copy_from": {"path": "/app_templates/gold"}})
    assert copy["storage_templates"][0]["name"] == "storage-1"
    api.ok("PUT", "/app_templates/silver", {"descr": "Cheaper copy"})
    api.ok("DELETE", "/app_templates/silver")


# ---------------------------------------------------------------------------- metadata

def test_metadata_merges_and_int_ecosystem_data_on_33(api, body) -> None:
    """PUT merges keys (null deletes); 3.3+ also serves int_ecosystem_data with {data: {...}}."""
    ai = _ai(api, body)
    md = f"{ai['path']}/metadata"
    assert api.ok("GET", md) == {}
    api.ok("PUT", md, {"host": "h1", "bootable": "False"})
    assert api.ok("PUT", md, {"display_name": "x", "bootable": None}) == {"host": "h1", "display_name": "x"}
    eco = f"{ai['path']}/int_ecosystem_data"
    assert api.ok("PUT", eco, {"data": {"type": "cached_image"}})["type"] == "cached_image"
    assert api.ok("GET", eco)["host"] == "h1"
    api.err(422, "PUT", eco, {"type": "flat"})  # must be wrapped in data
    api.err(422, "PUT", md, {"blob": "x" * 3000})
    api.err(422, "PUT", md, {"nested": {"a": 1}})


def test_int_ecosystem_data_absent_before_33(make_sim, new_api, body) -> None:
    """Products before 3.3 have no int_ecosystem_data and no placement policies."""
    old = make_sim(sw_version="3.2.1.0")
    api = new_api(base_url=old.http_url)
    ai = _ai(api, body)
    api.err(404, "GET", f"{ai['path']}/int_ecosystem_data")
    api.err(404, "GET", "/placement_policies")
    e = api.err(422, "POST", "/app_instances", {"name": "tpl-old", "app_template": {"path": "/app_templates/x"},
                                                "template_override": {}})
    assert e["message"].startswith("template_override: needs product 3.3.0.0")


def test_group_snapshot_covers_every_member_and_clones_them(api) -> None:
    """An app_instance with several volumes (a consistency group): its snapshot is one
    instant of all of them - a clone from it has every member at the size it had then, even
    after the source grew - and restoring needs the app_instance offline."""
    ai = api.ok("POST", "/app_instances", {"name": "grp", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "data", "size": 2, "replica_count": 1},
                                         {"name": "log", "size": 1, "replica_count": 1}]}]})
    snap = api.ok("POST", f"{ai['path']}/snapshots", {})
    api.ok("PUT", f"{ai['path']}/storage_instances/storage-1/volumes/data", {"size": 5})
    clone = api.ok("POST", "/app_instances", {"name": "grp-clone",
                                               "clone_snapshot_src": {"path": snap["path"]}})
    got = api.ok("GET", clone["path"])
    assert {v["name"]: v["size"] for v in got["storage_instances"][0]["volumes"]} == {
        "data": 2, "log": 1}
    api.err(409, "PUT", ai["path"], {"restore_point": snap["timestamp"]})
    _offline(api, ai)
    assert api.ok("PUT", ai["path"], {"restore_point": snap["timestamp"]})[
        "restore_point"] == snap["timestamp"]
