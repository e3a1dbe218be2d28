"""How stored objects look on the wire.

The store keeps plain JSON-able dicts (so persistence is a JSON dump per top-level object)
holding only what the simulator decides: names, sizes, states, *ready-at* times, real CHAP
secrets. These functions render them into the API's entities: canonical ``path`` on every
entity (the dfs-sdk builds every follow-up URL from it), ``tenant`` on top-level objects,
timed states (``op_state``) computed from the clock, and passwords shown as "(hidden)".
"""

from __future__ import annotations

import ipaddress
from typing import Any

from datera_iac.secrets import DSP_HIDDEN

HIDDEN = DSP_HIDDEN
GIB = 1024**3


def ai_path(ai: dict[str, Any]) -> str:
    return f"/app_instances/{ai['id']}"


def si_path(ai: dict[str, Any], si: dict[str, Any]) -> str:
    return f"{ai_path(ai)}/storage_instances/{si['name']}"


def vol_path(ai: dict[str, Any], si: dict[str, Any], vol: dict[str, Any]) -> str:
    return f"{si_path(ai, si)}/volumes/{vol['name']}"


def ref(path: str, tenant: str) -> dict[str, str]:
    """A resolved reference as the DSP renders one (``ip_pool``, ``app_template``...)."""
    return {"path": path, "resolved_path": path, "resolved_tenant": tenant}


def snapshot(parent_path: str, snap: dict[str, Any], now: float, tenant: str) -> dict[str, Any]:
    ts = snap["timestamp"]
    return {
        "path": f"{parent_path}/snapshots/{ts}",
        "timestamp": ts,
        "utc_ts": ts,
        "uuid": snap.get("uuid") or "",
        "op_state": "available" if now >= snap["ready_at"] else "unavailable",
        "type": snap.get("type", "local"),
        "local": True,
        "remote_providers": [],
        "ts_version": 1,
        "tenant": tenant,
    }


def snapshot_policy(parent_path: str, pol: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": f"{parent_path}/snapshot_policies/{pol['name']}",
        "name": pol["name"],
        "interval": pol["interval"],
        "retention_count": pol["retention_count"],
        "start_time": pol.get("start_time", ""),
    }


def performance_policy(vpath: str, pol: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"path": f"{vpath}/performance_policy"}
    out.update(pol)
    return out


def volume(
    ai: dict[str, Any],
    si: dict[str, Any],
    vol: dict[str, Any],
    *,
    now: float,
    tenant: str,
    version: str,
    node_paths: list[dict[str, str]],
) -> dict[str, Any]:
    vp = vol_path(ai, si, vol)
    out: dict[str, Any] = {
        "path": vp,
        "name": vol["name"],
        "replica_count": vol["replica_count"],
        "uuid": vol["uuid"],
        "size": vol["size"],
        "capacity_in_use": 0,
        "snapshot_policies": [snapshot_policy(vp, p) for p in vol["snapshot_policies"].values()],
        "snapshots": [snapshot(vp, s, now, tenant) for s in vol["snapshots"].values()],
        "placement_mode": vol["placement_mode"],
        "op_state": "available",
        "op_status": "none",
        "availability_state": "available",
        "restore_point": vol.get("restore_point", ""),
        "active_storage_nodes": node_paths[: vol["replica_count"]],
        "health": "ok",
        "deployment_state": "deployed",
    }
    if vol.get("performance_policy") is not None:
        out["performance_policy"] = performance_policy(vp, vol["performance_policy"])
    if version != "v2.1":
        pp = vol.get("placement_policy")
        out["placement_policy"] = ref(pp["path"], pp["tenant"]) if pp else ref("", "")
        out["storage_pool"] = [dict(p) for p in vol.get("storage_pool", [])]
        out["effective_size"] = vol["size"]
        out["logical_size"] = 0
        out["physical_size"] = 0
        out["exclusive_size"] = 0
    return out


def auth(spath: str, a: dict[str, Any], *, reveal: bool = False) -> dict[str, Any]:
    """CHAP settings; secrets are "(hidden)" unless ``reveal`` (data-plane hook only)."""
    return {
        "path": f"{spath}/auth",
        "type": a.get("type", "none"),
        "initiator_user_name": a.get("initiator_user_name", ""),
        "initiator_pswd": a.get("initiator_pswd", "") if reveal else HIDDEN,
        "target_user_name": a.get("target_user_name", ""),
        "target_pswd": a.get("target_pswd", "") if reveal else HIDDEN,
    }


def acl_policy(spath: str, acl: dict[str, Any]) -> dict[str, Any]:
    return {
        "path": f"{spath}/acl_policy",
        "initiators": [dict(i) for i in acl["initiators"]],
        "initiator_groups": [dict(g) for g in acl["initiator_groups"]],
    }


def storage_instance(
    ai: dict[str, Any],
    si: dict[str, Any],
    *,
    now: float,
    tenant: str,
    version: str,
    ips: list[str],
    node_paths: list[dict[str, str]],
    reveal: bool = False,
) -> dict[str, Any]:
    sp = si_path(ai, si)
    online = si["admin_state"] == "online"
    op_state = "available" if online and now >= si["ready_at"] else "unavailable"
    pool = si["ip_pool"]
    return {
        "health": "ok",
        "path": sp,
        "name": si["name"],
        "admin_state": si["admin_state"],
        "op_state": op_state,
        "deployment_state": "deployed" if online else "not_deployed",
        "volumes": [
            volume(ai, si, v, now=now, tenant=tenant, version=version, node_paths=node_paths)
            for v in si["volumes"].values()
        ],
        "access_control_mode": si["access_control_mode"],
        "acl_policy": acl_policy(sp, si["acl"]),
        "ip_pool": ref(pool["path"], pool["tenant"]),
        "access": {"path": f"{sp}/access", "ips": list(ips), "iqn": si["iqn"]},
        "auth": auth(sp, si["auth"], reveal=reveal),
        # initiators logged in to the target (SimServer.log_in; none while offline)
        "active_initiators": [{"path": f"/initiators/{iqn}"} for iqn in si.get("active", [])]
        if online else [],
        "active_storage_nodes": node_paths[:1] if online else [],
        "uuid": si["uuid"],
        "service_configuration": si.get("service_configuration", "iscsi"),
        "causes": [],
    }


def app_instance(
    ai: dict[str, Any],
    *,
    now: float,
    tenant: str,
    version: str,
    si_ips: dict[str, list[str]],
    node_paths: list[dict[str, str]],
    reveal: bool = False,
) -> dict[str, Any]:
    ap = ai_path(ai)
    tpl = ai.get("app_template")
    out: dict[str, Any] = {
        "tenant": tenant,
        "path": ap,
        "name": ai["name"],
        "id": ai["id"],
        "health": "ok",
        "causes": [],
        "app_template": ref(tpl["path"], tpl["tenant"]) if tpl else ref("", ""),
        "descr": ai.get("descr") or "",
        "admin_state": ai["admin_state"],
        "storage_instances": [
            storage_instance(
                ai, si, now=now, tenant=tenant, version=version,
                ips=si_ips.get(si["name"], []), node_paths=node_paths, reveal=reveal,
            )
            for si in ai["storage_instances"].values()
        ],
        "create_mode": ai["create_mode"],
        "uuid": ai["uuid"],
        "access_control_mode": ai["access_control_mode"],
        "snapshots": [snapshot(ap, s, now, tenant) for s in ai["snapshots"].values()],
        "snapshot_policies": [snapshot_policy(ap, p) for p in ai["snapshot_policies"].values()],
        "restore_point": ai.get("restore_point", ""),
        "deployment_state": "deployed",
    }
    if now < ai.get("clone_ready_at", 0):
        out["op_state"] = "cloning"
    if ai.get("clone_src"):
        out["clone_src"] = dict(ai["clone_src"])
    if version != "v2.1":
        out["repair_priority"] = ai.get("repair_priority", "medium")
        out["storage_pool"] = [dict(p) for p in ai.get("storage_pool", [])]
        out["template_override"] = ai.get("template_override") or {}
        out["restore_progress"] = 100 if ai.get("restore_point") else 0
    return out


def pool_ips(pool: dict[str, Any], default_portals: list[str]) -> list[str]:
    """Portal IPs an SI in ``pool`` gets: the configured portals for ``default``; otherwise
    the first address of each network path, padded to two from the first block."""
    if pool["name"] == "default" and not pool.get("network_paths_set"):
        return list(default_portals)
    ips: list[str] = []
    for np in pool.get("network_paths", []):
        if np.get("start_ip"):
            ips.append(np["start_ip"])
    if len(ips) == 1:
        try:
            ips.append(str(ipaddress.ip_address(ips[0]) + 1))
        except ValueError:
            pass
    return ips or list(default_portals)
