"""The simulated DSP's state and the rules that govern it.

One :class:`Store` holds every tenant's objects as plain dicts. It is used from the
simulator's single event-loop thread only, so it needs no locks. Every public method takes
the request's resolved tenant path and API version, applies the documented rules (grow-only
sizes, increase-only replica counts, unique names, offline-before-delete...) and returns the
rendered entity or raises a :mod:`datera_iac.sim.errors` error. Nothing is changed when a
method raises: checks come before mutations.

Tenancy: objects live in the tenant that created them. App instances are private to their
tenant. Initiators, initiator groups, IP pools, app templates and placement policies are
also *readable* (and referable) from descendant tenants; they are only changed from their own.

After each request the route layer calls :meth:`Store.flush`, which writes the touched
top-level objects to the journal (SQLite, if configured) and calls the data-plane hook for
storage instances that changed.

Lists are served a page at a time (:class:`datera_iac.sim.query.Rows`): each list route
reads a list of the collection's stored objects in order, kept until the collection's
membership changes (a create or delete: the next list copies the dict's values once), and
renders only the page it returns.
"""

from __future__ import annotations

import copy
import logging
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from datera_iac.sim import entities as ent
from datera_iac.sim.errors import Conflict, InvalidRequest, NotFound, ValidationFailed
from datera_iac.sim.hooks import Dataplane, NullDataplane
from datera_iac.sim.query import Rows

log = logging.getLogger(__name__)

ROOT = "/root"
COLLS = (
    "app_instances",
    "initiators",
    "initiator_groups",
    "access_network_ip_pools",
    "app_templates",
    "placement_policies",
)
TENANT_ROW = "__tenant__"
METADATA_LIMIT = 2048
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
_NS = uuid.UUID("5b0c8a3e-8d7f-4f4e-9a51-6d6174657261")


def version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".") if p.isdigit())


@attrs.define
class StoreOptions:
    """What the operator chooses when starting a simulator."""

    sw_version: str = "3.3.5.0"
    portals: list[str] = attrs.field(factory=lambda: ["127.0.0.1", "127.0.0.2"])
    si_online_delay: float = 0.0
    snapshot_delay: float = 0.0
    clone_delay: float = 0.0
    total_capacity: int = 100 * 1024**4  # bytes
    storage_nodes: int = 3
    name: str = "datera-sim"

    @property
    def is_33(self) -> bool:
        return version_tuple(self.sw_version) >= (3, 3)


Change = tuple[str, str, str, "dict[str, Any] | None"]


class Store:
    """All DSP state, plus the operations the REST routes map onto."""

    def __init__(
        self,
        options: StoreOptions | None = None,
        *,
        dataplane: Dataplane | None = None,
        clock: Callable[[], float] = time.time,
        journal: Any = None,
    ) -> None:
        self.opts = options or StoreOptions()
        self.dataplane: Dataplane = dataplane or NullDataplane()
        self.clock = clock
        self.journal = journal
        self.started = clock()
        # the DSP's identity (GET /system uuid): one per cluster name, so two simulators
        # started with different names are two DSPs to a state
        self.system_uuid = str(uuid.uuid5(_NS, "system" if self.opts.name == "datera-sim"
                                          else f"system:{self.opts.name}"))
        self.node_uuids = [str(uuid.uuid5(_NS, f"node-{i}")) for i in range(self.opts.storage_nodes)]
        self.node_paths = [{"path": f"/storage_nodes/{u}"} for u in self.node_uuids]
        self._last_ts = 0
        self.generation = 0
        self._prov_cache: tuple[int, tuple[int, int]] = (-1, (0, 0))
        self.dirty: set[tuple[str, str, str]] = set()
        self._si_events: dict[tuple[str, str, str], str] = {}
        self.tenants: dict[str, dict[str, Any]] = {}
        self.objs: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self.ai_names: dict[str, dict[str, str]] = {}
        #: ordered lists of stored objects for the list routes (see :meth:`_view`)
        self._views: dict[tuple[str, ...], tuple[tuple[int, int], list[Any]]] = {}
        self._membership: dict[str, int] = {}  # collection -> membership changes so far
        self._layout = 0  # tenant tree changes so far
        loaded = journal.load() if journal is not None else None
        if loaded and ROOT in loaded[0]:
            self._install(*loaded)
            if not isinstance(self.dataplane, NullDataplane):
                # a restart over a data directory: serve the targets of the storage
                # instances that survived it again (their LUN files are kept)
                for t, colls in self.objs.items():
                    for ai in colls["app_instances"].values():
                        for si_name in ai["storage_instances"]:
                            self._si_changed(t, ai, si_name)
                self.flush()
        else:
            self.reset()

    # ------------------------------------------------------------------ state basics

    def _install(self, tenants: dict[str, dict[str, Any]], objs: dict[str, Any]) -> None:
        self._layout += 1
        self.tenants = tenants
        self.objs = {t: {c: dict(objs.get(t, {}).get(c, {})) for c in COLLS} for t in tenants}
        self.ai_names = {
            t: {ai["name"]: ai["id"] for ai in self.objs[t]["app_instances"].values()}
            for t in tenants
        }

    def reset(self) -> None:
        """Empty store: tenant /root, the ``default`` IP pool and placement policy."""
        self.tenants = {}
        self.objs = {}
        self.ai_names = {}
        self._layout += 1
        self._si_events.clear()
        self.generation += 1
        self._add_tenant(ROOT, "root", "", "")
        self._put(ROOT, "access_network_ip_pools", "default", {
            "name": "default", "descr": "Default access network IP pool",
            "network_paths": [
                {"name": f"access-{i + 1}", "start_ip": ip, "netmask": 24, "range": 6,
                 "vlan": 0, "mtu": 1500, "gateway": ""}
                for i, ip in enumerate(self.opts.portals)
            ],
        })
        for name in ("default", "all-flash", "hybrid"):
            self._put(ROOT, "placement_policies", name, {
                "name": name, "descr": f"{name} placement",
                "max": ["all_flash"] if name == "all-flash" else ["hybrid"],
                "min": ["all_flash"] if name == "all-flash" else ["hybrid"],
            })
        if self.journal is not None:
            self.journal.clear()
            self.dirty = {(t, TENANT_ROW, "") for t in self.tenants} | {
                (t, c, k) for t in self.objs for c in COLLS for k in self.objs[t][c]
            }
            self._si_events.clear()
            self.flush()
        self.dirty.clear()

    def _add_tenant(self, path: str, name: str, descr: str, parent: str) -> None:
        self.tenants[path] = {"name": name, "descr": descr, "parent_path": parent}
        self.objs[path] = {c: {} for c in COLLS}
        self.ai_names[path] = {}
        self._layout += 1
        self.dirty.add((path, TENANT_ROW, ""))

    def _put(self, tenant: str, coll: str, key: str, obj: dict[str, Any]) -> None:
        objs = self.objs[tenant][coll]
        if key not in objs:
            self._membership[coll] = self._membership.get(coll, 0) + 1
        objs[key] = obj
        self.touch(tenant, coll, key)

    def _drop(self, tenant: str, coll: str, key: str) -> None:
        if self.objs[tenant][coll].pop(key, None) is not None:
            self._membership[coll] = self._membership.get(coll, 0) + 1
        self.touch(tenant, coll, key)

    def _view(self, key: tuple[str, ...], coll: str, build: Callable[[], list[Any]]) -> list[Any]:
        """``build()``, kept until ``coll``'s membership or the tenant tree changes: the
        ordered rows a list route pages through (its length is the total count)."""
        stamp = (self._layout, self._membership.get(coll, 0))
        hit = self._views.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        rows = build()
        self._views[key] = (stamp, rows)
        return rows

    def _keys(self, tenant: str, coll: str) -> list[str]:
        """The keys of a tenant's own objects of ``coll``, in creation order."""
        return self._view((tenant, coll), coll, lambda: list(self.objs[tenant][coll]))

    def touch(self, tenant: str, coll: str, key: str) -> None:
        """Record that a top-level object changed (persistence, cached totals)."""
        self.dirty.add((tenant, coll, key))
        self.generation += 1

    def flush(self) -> None:
        """Persist what changed and notify the data plane. Called once per request."""
        if self.dirty and self.journal is not None:
            changes: list[Change] = []
            for t, c, k in self.dirty:
                if c == TENANT_ROW:
                    changes.append((t, c, k, self.tenants.get(t)))
                else:
                    changes.append((t, c, k, self.objs.get(t, {}).get(c, {}).get(k)))
            self.journal.write(changes)
        self.dirty.clear()
        if self._si_events and isinstance(self.dataplane, NullDataplane):
            self._si_events = {}  # nobody listens: skip rendering the entities
        if self._si_events:
            events, self._si_events = self._si_events, {}
            for (tenant, ai_id, si_name), what in events.items():
                try:
                    if what == "deleted":
                        self.dataplane.si_deleted(tenant, ai_id, si_name)
                        continue
                    ai = self.objs.get(tenant, {}).get("app_instances", {}).get(ai_id)
                    if ai is None or si_name not in ai["storage_instances"]:
                        continue
                    ai_e = self.render_ai(tenant, ai, "v2.2", reveal=True)
                    si_e = next(s for s in ai_e["storage_instances"] if s["name"] == si_name)
                    self.dataplane.si_changed(tenant, ai_e, si_e)
                except Exception:  # the API state stays authoritative
                    log.exception("data-plane hook failed for %s %s/%s", tenant, ai_id, si_name)

    def _si_changed(self, tenant: str, ai: dict[str, Any], si_name: str) -> None:
        self._si_events[(tenant, ai["id"], si_name)] = "changed"

    def _si_deleted(self, tenant: str, ai: dict[str, Any], si_name: str) -> None:
        self._si_events[(tenant, ai["id"], si_name)] = "deleted"

    def now(self) -> float:
        return self.clock()

    def new_timestamp(self) -> str:
        """A snapshot key: "<secs>.<nanos>", strictly increasing."""
        ns = max(time.time_ns(), int(self.clock() * 1e9), self._last_ts + 1)
        self._last_ts = ns
        return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"

    # ------------------------------------------------------------------ tenants

    def resolve_tenant(self, header: str | None) -> str:
        """Map a ``tenant`` header to an existing tenant path (404 if it does not exist)."""
        t = (header or "").strip()
        if t in ("", "all", "/", "root", ROOT):
            return ROOT
        if not t.startswith("/"):
            t = "/" + t
        if not t.startswith(ROOT + "/") and t != ROOT:
            t = ROOT + t
        t = t.rstrip("/")
        if t not in self.tenants:
            raise NotFound(f"tenant {t} does not exist; create it with POST /tenants")
        return t

    def lineage(self, tenant: str) -> list[str]:
        """``tenant`` and its ancestors, nearest first."""
        out = []
        t: str | None = tenant
        while t:
            out.append(t)
            t = self.tenants[t]["parent_path"] or None
        return out

    def _descendants(self, tenant: str) -> list[str]:
        return [t for t in self.tenants if t == tenant or t.startswith(tenant + "/")]

    def render_tenant(self, path: str) -> dict[str, Any]:
        rec = self.tenants[path]
        subs = [t for t in self.tenants if self.tenants[t]["parent_path"] == path]
        return {
            "path": path,
            "name": rec["name"],
            "descr": rec["descr"] or "",
            "parent_path": rec["parent_path"],
            "subtenants": [{"path": s} for s in sorted(subs)],
            "tenant": path,
            "quota": {},
            "quota_status": {},
        }

    def tenant_key(self, raw: str) -> str:
        """``/tenants/<raw>``: "root/a", "/root/a" or (short form) "a"."""
        t = raw.strip("/")
        path = "/" + t if t == "root" or t.startswith("root/") else f"{ROOT}/{t}"
        if path not in self.tenants:
            raise NotFound(f"tenant {path} does not exist")
        return path

    def list_tenants(self, tenant: str) -> Rows:
        paths = self._view(("tenants", tenant), TENANT_ROW, lambda: sorted(self._descendants(tenant)))
        return Rows(paths, self.render_tenant, {"path": _same, "tenant": _same})

    def create_tenant(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        parent = body.get("parent_path") or tenant
        if not parent.startswith("/"):
            parent = "/" + parent
        if parent not in self.tenants:
            raise ValidationFailed(f"parent tenant {parent} does not exist", field="parent_path")
        if parent != tenant and not parent.startswith(tenant + "/"):
            raise ValidationFailed(
                f"parent tenant {parent} is outside the request's tenant {tenant}",
                field="parent_path",
            )
        path = f"{parent}/{body['name']}"
        if path in self.tenants or body["name"] == "root":
            raise Conflict(f"tenant {path} already exists")
        self._add_tenant(path, body["name"], body.get("descr") or "", parent)
        return self.render_tenant(path)

    def update_tenant(self, tenant: str, raw: str, body: dict[str, Any]) -> dict[str, Any]:
        path = self._own_tenant(tenant, raw)
        if "descr" in body:
            self.tenants[path]["descr"] = body["descr"] or ""
            self.dirty.add((path, TENANT_ROW, ""))
        return self.render_tenant(path)

    def get_tenant(self, tenant: str, raw: str) -> dict[str, Any]:
        return self.render_tenant(self._own_tenant(tenant, raw))

    def _own_tenant(self, tenant: str, raw: str) -> str:
        path = self.tenant_key(raw)
        if path != tenant and not path.startswith(tenant + "/"):
            raise NotFound(f"tenant {path} is not visible from tenant {tenant}")
        return path

    def delete_tenant(self, tenant: str, raw: str) -> dict[str, Any]:
        path = self._own_tenant(tenant, raw)
        if path == ROOT:
            raise InvalidRequest("the root tenant cannot be deleted")
        subs = [t for t in self.tenants if self.tenants[t]["parent_path"] == path]
        if subs:
            raise Conflict(f"tenant {path} has subtenants {subs}; delete them first")
        busy = [c for c in COLLS if self.objs[path][c]]
        if busy:
            raise Conflict(f"tenant {path} still holds {', '.join(busy)}; delete them first")
        out = self.render_tenant(path)
        del self.tenants[path], self.objs[path], self.ai_names[path]
        self._layout += 1
        self.dirty.add((path, TENANT_ROW, ""))
        return out

    # ------------------------------------------------------------------ references

    def _find_inherited(self, tenant: str, coll: str, key: str) -> tuple[str, dict[str, Any]] | None:
        for t in self.lineage(tenant):
            obj = self.objs[t][coll].get(key)
            if obj is not None:
                return t, obj
        return None

    def _ref(self, tenant: str, coll: str, path: str, field: str) -> tuple[str, str]:
        """Resolve a body reference like ``/initiators/<iqn>``: (path, owning tenant)."""
        prefix = f"/{coll}/"
        if not isinstance(path, str) or not path.startswith(prefix) or len(path) == len(prefix):
            raise ValidationFailed(f"{path!r} is not a path under /{coll}", field=field)
        key = path[len(prefix):]
        found = self._find_inherited(tenant, coll, key)
        if found is None:
            raise ValidationFailed(f"{path} does not exist in tenant {tenant}", field=field)
        return path, found[0]

    # ------------------------------------------------------------------ app instances

    def get_ai_obj(self, tenant: str, key: str) -> dict[str, Any]:
        ais = self.objs[tenant]["app_instances"]
        ai = ais.get(key)
        if ai is None:
            aid = self.ai_names[tenant].get(key)
            ai = ais.get(aid) if aid else None
        if ai is None:
            raise NotFound(f"app_instance {key} does not exist in tenant {tenant}")
        return ai

    def _si_ips(self, tenant: str, ai: dict[str, Any]) -> dict[str, list[str]]:
        out = {}
        for si in ai["storage_instances"].values():
            pool_tenant = si["ip_pool"]["tenant"]
            pname = si["ip_pool"]["path"].rsplit("/", 1)[-1]
            pool = self.objs.get(pool_tenant, {}).get("access_network_ip_pools", {}).get(pname)
            out[si["name"]] = ent.pool_ips(pool, self.opts.portals) if pool else []
        return out

    def render_ai(self, tenant: str, ai: dict[str, Any], version: str, *, reveal: bool = False) -> dict[str, Any]:
        return ent.app_instance(
            ai, now=self.now(), tenant=tenant, version=version,
            si_ips=self._si_ips(tenant, ai), node_paths=self.node_paths, reveal=reveal,
        )

    def list_ais(self, tenant: str, version: str) -> Rows:
        ais = self.objs[tenant]["app_instances"]
        names = self.ai_names[tenant]

        def by_name(name: str) -> list[str]:
            aid = names.get(name)
            return [aid] if aid in ais else []

        return Rows(self._keys(tenant, "app_instances"),
                    lambda aid: self.render_ai(tenant, ais[aid], version),
                    {a: _via(ais, get) for a, get in _AI_FIELDS.items()}, {"name": by_name})

    def get_ai(self, tenant: str, key: str, version: str) -> dict[str, Any]:
        return self.render_ai(tenant, self.get_ai_obj(tenant, key), version)

    def create_ai(self, tenant: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        name = body["name"]
        if name in self.ai_names[tenant]:
            raise Conflict(f"app_instance named {name!r} already exists in tenant {tenant}")
        sources = [k for k in ("clone_src", "clone_volume_src", "clone_snapshot_src", "app_template") if k in body]
        if len(sources) > 1:
            raise ValidationFailed(f"only one of {', '.join(sources)} may be given", field=sources[1])
        if sources and body.get("storage_instances"):
            raise ValidationFailed(
                f"storage_instances cannot be combined with {sources[0]}", field="storage_instances"
            )
        if "template_override" in body and "app_template" not in body:
            raise ValidationFailed("needs app_template", field="template_override")
        if "template_override" in body and not self.opts.is_33:
            raise ValidationFailed(
                f"needs product 3.3.0.0 or later (this one is {self.opts.sw_version})",
                field="template_override",
            )
        now = self.now()
        ai: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "name": name,
            "descr": body.get("descr") or "",
            "uuid": body.get("uuid") or ZERO_UUID,
            "create_mode": body.get("create_mode", "normal"),
            "access_control_mode": body.get("access_control_mode", "deny_all"),
            "admin_state": "online",
            "storage_instances": {},
            "snapshots": {},
            "snapshot_policies": {},
            "metadata": {},
            "restore_point": "",
            "app_template": None,
            "clone_src": None,
            "clone_ready_at": 0.0,
            "repair_priority": body.get("repair_priority", "medium"),
            "storage_pool": [dict(p) for p in body.get("storage_pool", [])],
            "template_override": copy.deepcopy(body.get("template_override") or {}),
        }
        for pol in body.get("snapshot_policies", []):
            self._add_policy(ai["snapshot_policies"], pol, "snapshot_policies")
        if "app_template" in body:
            self._from_template(tenant, ai, body, now)
        elif sources:
            self._from_clone(tenant, ai, body, sources[0], now)
        else:
            for i, sbody in enumerate(body.get("storage_instances", [])):
                self._new_si(tenant, ai, sbody, f"storage_instances[{i}]", now)
        self._put(tenant, "app_instances", ai["id"], ai)
        self.ai_names[tenant][name] = ai["id"]
        for si_name in ai["storage_instances"]:
            self._si_changed(tenant, ai, si_name)
        return self.render_ai(tenant, ai, version)

    def _new_si(self, tenant: str, ai: dict[str, Any], b: dict[str, Any], field: str, now: float) -> dict[str, Any]:
        name = b["name"]
        if name in ai["storage_instances"]:
            raise Conflict(f"storage_instance {name!r} already exists in app_instance {ai['name']}")
        pool = b.get("ip_pool", {}).get("path", "/access_network_ip_pools/default")
        ppath, ptenant = self._ref(tenant, "access_network_ip_pools", pool, f"{field}.ip_pool")
        admin = b.get("admin_state", "online")
        si: dict[str, Any] = {
            "name": name,
            "uuid": str(uuid.uuid4()),
            "iqn": f"iqn.2013-05.com.daterainc:tc:01:sn:{secrets.token_hex(8)}",
            "admin_state": admin if ai["admin_state"] == "online" else "offline",
            "ready_at": now + self.opts.si_online_delay,
            "access_control_mode": b.get("access_control_mode", ai["access_control_mode"]),
            "acl": {"initiators": [], "initiator_groups": []},
            "ip_pool": {"path": ppath, "tenant": ptenant},
            "auth": {"type": "none"},
            "volumes": {},
            "metadata": {},
            "service_configuration": "iscsi",
        }
        if "acl_policy" in b:
            si["acl"] = self._acl_from_body(tenant, b["acl_policy"], f"{field}.acl_policy")
        if "auth" in b:
            si["auth"] = self._auth_from_body(b["auth"], {"type": "none"}, f"{field}.auth")
        for j, vb in enumerate(b.get("volumes", [])):
            self._new_volume(tenant, si, vb, f"{field}.volumes[{j}]")
        ai["storage_instances"][name] = si
        return si

    def _new_volume(self, tenant: str, si: dict[str, Any], b: dict[str, Any], field: str) -> dict[str, Any]:
        name = b["name"]
        if name in si["volumes"]:
            raise Conflict(f"volume {name!r} already exists in storage_instance {si['name']}")
        if "size" not in b:
            raise ValidationFailed("is required", field=f"{field}.size")
        vol: dict[str, Any] = {
            "name": name,
            "uuid": str(uuid.uuid4()),
            "size": b["size"],
            "replica_count": b.get("replica_count", 3),
            "placement_mode": b.get("placement_mode", "hybrid"),
            "placement_policy": None,
            "performance_policy": None,
            "snapshots": {},
            "snapshot_policies": {},
            "storage_pool": [dict(p) for p in b.get("storage_pool", [])],
            "restore_point": "",
        }
        if "placement_policy" in b:
            vol["placement_policy"] = self._placement(tenant, b["placement_policy"], f"{field}.placement_policy")
        if b.get("performance_policy") is not None:
            vol["performance_policy"] = dict(b["performance_policy"])
        for pol in b.get("snapshot_policies", []):
            self._add_policy(vol["snapshot_policies"], pol, f"{field}.snapshot_policies")
        si["volumes"][name] = vol
        return vol

    def _placement(self, tenant: str, ref: dict[str, Any], field: str) -> dict[str, str]:
        if not self.opts.is_33:
            raise ValidationFailed(
                f"placement policies need product 3.3.0.0 or later (this one is {self.opts.sw_version})",
                field=field,
            )
        path, owner = self._ref(tenant, "placement_policies", ref["path"], field)
        return {"path": path, "tenant": owner}

    def _add_policy(self, into: dict[str, Any], b: dict[str, Any], field: str) -> None:
        if b["name"] in into:
            raise Conflict(f"snapshot policy {b['name']!r} already exists")
        into[b["name"]] = {
            "name": b["name"], "interval": b["interval"],
            "retention_count": b["retention_count"], "start_time": b.get("start_time", ""),
        }

    def _acl_from_body(self, tenant: str, b: dict[str, Any], field: str) -> dict[str, Any]:
        acl: dict[str, list[dict[str, str]]] = {"initiators": [], "initiator_groups": []}
        for kind in ("initiators", "initiator_groups"):
            seen = set()
            for i, item in enumerate(b.get(kind, [])):
                path, owner = self._ref(tenant, kind, item["path"], f"{field}.{kind}[{i}]")
                if path not in seen:  # duplicates collapse (see docs/simulator.md)
                    seen.add(path)
                    acl[kind].append({"path": path, "tenant": owner})
        return acl

    def _auth_from_body(self, b: dict[str, Any], old: dict[str, Any], field: str) -> dict[str, Any]:
        new = dict(old)
        new.update({k: v for k, v in b.items()})
        typ = new.get("type", "none")
        need = {"none": (), "chap": ("target_user_name", "target_pswd"),
                "mchap": ("target_user_name", "target_pswd", "initiator_user_name", "initiator_pswd")}
        if typ not in need:  # e.g. access_keys: object SIs are not simulated
            raise ValidationFailed(f"auth type {typ!r} is not supported", field=f"{field}.type")
        for k in need[typ]:
            if not new.get(k):
                raise ValidationFailed(f"is required for auth type {typ}", field=f"{field}.{k}")
        if typ == "none":
            new = {"type": "none"}
        elif typ == "chap":
            new.pop("initiator_user_name", None)
            new.pop("initiator_pswd", None)
        return new

    def _resolve_volume_path(self, tenant: str, path: str, field: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        parts = path.strip("/").split("/")
        if len(parts) != 6 or parts[0] != "app_instances" or parts[2] != "storage_instances" or parts[4] != "volumes":
            raise ValidationFailed(f"{path!r} is not a volume path", field=field)
        try:
            ai = self.get_ai_obj(tenant, parts[1])
        except NotFound:
            raise ValidationFailed(f"{path} does not exist in tenant {tenant}", field=field) from None
        si = ai["storage_instances"].get(parts[3])
        vol = si["volumes"].get(parts[5]) if si else None
        if si is None or vol is None:
            raise ValidationFailed(f"{path} does not exist in tenant {tenant}", field=field)
        return ai, si, vol

    def _copy_si(self, tenant: str, ai: dict[str, Any], src_si: dict[str, Any], vols: Iterable[tuple[dict[str, Any], float | int | None]], now: float) -> None:
        si = self._new_si(tenant, ai, {"name": src_si["name"], "ip_pool": {"path": src_si["ip_pool"]["path"]}}, "clone", now)
        si["access_control_mode"] = src_si["access_control_mode"]
        for vol, size in vols:
            nv = self._new_volume(tenant, si, {
                "name": vol["name"], "size": size if size is not None else vol["size"],
                "replica_count": vol["replica_count"], "placement_mode": vol["placement_mode"],
            }, "clone")
            nv["placement_policy"] = copy.deepcopy(vol.get("placement_policy"))

    def _from_clone(self, tenant: str, ai: dict[str, Any], body: dict[str, Any], kind: str, now: float) -> None:
        path = body[kind]["path"]
        field = f"{kind}.path"
        if kind == "clone_src":
            parts = path.strip("/").split("/")
            if len(parts) != 2 or parts[0] != "app_instances":
                raise ValidationFailed(f"{path!r} is not an app_instance path", field=field)
            try:
                src = self.get_ai_obj(tenant, parts[1])
            except NotFound:
                raise ValidationFailed(f"{path} does not exist in tenant {tenant}", field=field) from None
            for s in src["storage_instances"].values():
                self._copy_si(tenant, ai, s, ((v, None) for v in s["volumes"].values()), now)
        elif kind == "clone_volume_src":
            _sai, ssi, svol = self._resolve_volume_path(tenant, path, field)
            self._copy_si(tenant, ai, ssi, [(svol, None)], now)
        else:
            parts = path.strip("/").split("/")
            if len(parts) == 8 and parts[6] == "snapshots":
                _sai, ssi, svol = self._resolve_volume_path(tenant, "/" + "/".join(parts[:6]), field)
                snap = svol["snapshots"].get(parts[7])
                if snap is None:
                    raise ValidationFailed(f"{path} does not exist in tenant {tenant}", field=field)
                self._check_snap_ready(snap, path)
                self._copy_si(tenant, ai, ssi, [(svol, snap.get("size"))], now)
            elif len(parts) == 4 and parts[0] == "app_instances" and parts[2] == "snapshots":
                try:
                    src = self.get_ai_obj(tenant, parts[1])
                except NotFound:
                    raise ValidationFailed(f"{path} does not exist in tenant {tenant}", field=field) from None
                snap = src["snapshots"].get(parts[3])
                if snap is None:
                    raise ValidationFailed(f"{path} does not exist in tenant {tenant}", field=field)
                self._check_snap_ready(snap, path)
                sizes = snap.get("sizes", {})
                for s in src["storage_instances"].values():
                    self._copy_si(tenant, ai, s, ((v, sizes.get(f"{s['name']}/{v['name']}")) for v in s["volumes"].values()), now)
            else:
                raise ValidationFailed(f"{path!r} is not a snapshot path", field=field)
        ai["clone_src"] = {"path": path}
        ai["clone_ready_at"] = now + self.opts.clone_delay

    def _check_snap_ready(self, snap: dict[str, Any], path: str) -> None:
        if self.now() < snap["ready_at"]:
            raise Conflict(f"snapshot {path} is not available yet; wait for op_state 'available'")

    def _from_template(self, tenant: str, ai: dict[str, Any], body: dict[str, Any], now: float) -> None:
        path, owner = self._ref(tenant, "app_templates", body["app_template"]["path"], "app_template.path")
        tpl = self.objs[owner]["app_templates"][path.rsplit("/", 1)[-1]]
        over = (body.get("template_override") or {}).get("storage_instances", {})
        for st in tpl["storage_templates"]:
            sbody: dict[str, Any] = {"name": st["name"], "volumes": []}
            if st.get("ip_pool"):
                sbody["ip_pool"] = {"path": st["ip_pool"]}
            if st.get("auth") and st["auth"].get("type", "none") != "none":
                sbody["auth"] = dict(st["auth"])
            for vt in st["volume_templates"]:
                vb: dict[str, Any] = {
                    "name": vt["name"], "size": vt["size"],
                    "replica_count": vt.get("replica_count", 3),
                    "placement_mode": vt.get("placement_mode", "hybrid"),
                }
                if vt.get("performance_policy"):
                    vb["performance_policy"] = dict(vt["performance_policy"])
                vo = over.get(st["name"], {}).get("volumes", {}).get(vt["name"], {})
                for k in ("size", "replica_count"):
                    if k in vo:
                        vb[k] = self._override_num(vo[k], f"template_override.storage_instances.{st['name']}.volumes.{vt['name']}.{k}")
                sbody["volumes"].append(vb)
            for vb in sbody["volumes"]:
                if not 1 <= vb["size"] <= 32768:
                    raise ValidationFailed(f"{vb['size']} is outside 1..32768 GiB", field="template_override")
                if not 1 <= vb["replica_count"] <= 5:
                    raise ValidationFailed(f"{vb['replica_count']} is outside 1..5", field="template_override")
            self._new_si(tenant, ai, sbody, f"app_template.storage_templates[{st['name']}]", now)
        for pol in tpl.get("snapshot_policies", []):
            if pol["name"] not in ai["snapshot_policies"]:
                self._add_policy(ai["snapshot_policies"], pol, "snapshot_policies")
        unknown = [n for n in over if n not in ai["storage_instances"]]
        if unknown:
            raise ValidationFailed(f"template has no storage template {unknown[0]!r}", field="template_override")
        ai["app_template"] = {"path": path, "tenant": owner}

    @staticmethod
    def _override_num(v: Any, field: str) -> int:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValidationFailed(f"{v!r} is not a number", field=field) from None
        if not f.is_integer():
            raise ValidationFailed(f"{v!r} is not a whole number", field=field)
        return int(f)

    def update_ai(self, tenant: str, key: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        """Apply a PUT on a copy and install it only if every check passed."""
        current = self.get_ai_obj(tenant, key)
        ai = copy.deepcopy(current)
        events_before = dict(self._si_events)
        try:
            out = self._update_ai(tenant, ai, body, version)
        except Exception:
            self._si_events = events_before
            raise
        if ai["name"] != current["name"]:
            del self.ai_names[tenant][current["name"]]
            self.ai_names[tenant][ai["name"]] = ai["id"]
        self._put(tenant, "app_instances", ai["id"], ai)
        return out

    def _update_ai(self, tenant: str, ai: dict[str, Any], body: dict[str, Any], version: str) -> dict[str, Any]:
        new_name = body.get("name")
        if new_name is not None and new_name != ai["name"] and new_name in self.ai_names[tenant]:
            raise Conflict(f"app_instance named {new_name!r} already exists in tenant {tenant}")
        if "restore_point" in body:
            rp = body["restore_point"]
            if rp not in ai["snapshots"]:
                raise ValidationFailed(f"no app_instance snapshot {rp}", field="restore_point")
            if ai["admin_state"] == "online" and body.get("admin_state") != "offline":
                raise Conflict(f"app_instance {ai['name']} must be offline to restore a snapshot")
            self._check_snap_ready(ai["snapshots"][rp], rp)
        si_updates = []
        for i, sb in enumerate(body.get("storage_instances", [])):
            si = ai["storage_instances"].get(sb["name"])
            if si is None:
                raise ValidationFailed(f"no storage_instance {sb['name']!r}", field=f"storage_instances[{i}].name")
            si_updates.append((si, {k: v for k, v in sb.items() if k != "name"}, f"storage_instances[{i}]"))
        # all checks passed: apply
        if new_name is not None:
            ai["name"] = new_name
        if "descr" in body:
            ai["descr"] = body["descr"] or ""
        for k in ("repair_priority",):
            if k in body:
                ai[k] = body[k]
        if "storage_pool" in body:
            ai["storage_pool"] = [dict(p) for p in body["storage_pool"]]
        if "snapshot_policies" in body:
            pols: dict[str, Any] = {}
            for p in body["snapshot_policies"]:
                self._add_policy(pols, p, "snapshot_policies")
            ai["snapshot_policies"] = pols
        if "admin_state" in body and body["admin_state"] != ai["admin_state"]:
            ai["admin_state"] = body["admin_state"]
            for si in ai["storage_instances"].values():
                self._set_si_admin(tenant, ai, si, body["admin_state"])
        if "restore_point" in body:
            ai["restore_point"] = body["restore_point"]
        for si, sb, field in si_updates:
            self._apply_si_update(tenant, ai, si, sb, field)
        return self.render_ai(tenant, ai, version)

    def _set_si_admin(self, tenant: str, ai: dict[str, Any], si: dict[str, Any], state: str) -> None:
        if si["admin_state"] == state:
            return
        si["admin_state"] = state
        if state == "offline":
            si["active"] = []  # an offline target drops its sessions
        if state == "online":
            si["ready_at"] = self.now() + self.opts.si_online_delay
        self._si_changed(tenant, ai, si["name"])

    def log_in(self, tenant: str, key: str, iqn: str, si_name: str = "storage-1") -> None:
        """Record initiator ``iqn`` as logged in to a storage instance (its entity's
        ``active_initiators``) until the storage instance goes offline. Stands for a
        session the API-only simulator does not see (tests of "in use" rules)."""
        ai = self.get_ai_obj(tenant, key)
        si = ai["storage_instances"].get(si_name)
        if si is None:
            raise NotFound(f"storage_instance {si_name} does not exist in app_instance {ai['name']}")
        if si["admin_state"] != "online":
            raise Conflict(f"storage_instance {si_name} is offline: no login")
        si.setdefault("active", [])
        if iqn not in si["active"]:
            si["active"].append(iqn)
        self.touch(tenant, "app_instances", ai["id"])

    def delete_ai(self, tenant: str, key: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        ai = self.get_ai_obj(tenant, key)
        if ai["admin_state"] == "online" and not body.get("force"):
            raise Conflict(
                f"app_instance {ai['name']} is online; set admin_state offline first or delete with force"
            )
        out = self.render_ai(tenant, ai, version)
        for si_name in ai["storage_instances"]:
            self._si_deleted(tenant, ai, si_name)
        self._drop(tenant, "app_instances", ai["id"])
        self.ai_names[tenant].pop(ai["name"], None)
        return out

    # ------------------------------------------------------------------ storage instances

    def get_si_obj(self, tenant: str, ai_key: str, si_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        ai = self.get_ai_obj(tenant, ai_key)
        si = ai["storage_instances"].get(si_name)
        if si is None:
            raise NotFound(f"storage_instance {si_name} does not exist in app_instance {ai['name']}")
        return ai, si

    def render_si(self, tenant: str, ai: dict[str, Any], si: dict[str, Any], version: str) -> dict[str, Any]:
        return ent.storage_instance(
            ai, si, now=self.now(), tenant=tenant, version=version,
            ips=self._si_ips(tenant, ai)[si["name"]], node_paths=self.node_paths,
        )

    def list_sis(self, tenant: str, ai_key: str, version: str) -> Rows:
        ai = self.get_ai_obj(tenant, ai_key)
        return Rows(list(ai["storage_instances"].values()),
                    lambda si: self.render_si(tenant, ai, si, version), _NAMED)

    def get_si(self, tenant: str, ai_key: str, si_name: str, version: str) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        return self.render_si(tenant, ai, si, version)

    def create_si(self, tenant: str, ai_key: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        ai = self.get_ai_obj(tenant, ai_key)
        trial = copy.deepcopy(ai)  # build on a copy: nothing changes if a check fails
        si = self._new_si(tenant, trial, body, "body", self.now())
        ai["storage_instances"][si["name"]] = si
        self.touch(tenant, "app_instances", ai["id"])
        self._si_changed(tenant, ai, si["name"])
        return self.render_si(tenant, ai, si, version)

    def update_si(self, tenant: str, ai_key: str, si_name: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        trial = copy.deepcopy(si)  # volumes are checked one by one; install only if all pass
        self._apply_si_update(tenant, ai, trial, body, "body")
        ai["storage_instances"][si_name] = trial
        self.touch(tenant, "app_instances", ai["id"])
        return self.render_si(tenant, ai, trial, version)

    def _apply_si_update(self, tenant: str, ai: dict[str, Any], si: dict[str, Any], b: dict[str, Any], field: str) -> None:
        # checks first
        pool = None
        if "ip_pool" in b:
            pool = self._ref(tenant, "access_network_ip_pools", b["ip_pool"]["path"], f"{field}.ip_pool.path")
            if pool[0] != si["ip_pool"]["path"] and si["admin_state"] == "online" and not b.get("force"):
                raise Conflict(
                    f"storage_instance {si['name']} is online; offline the app_instance before changing ip_pool"
                )
        acl = self._acl_from_body(tenant, b["acl_policy"], f"{field}.acl_policy") if "acl_policy" in b else None
        auth = self._auth_from_body(b["auth"], si["auth"], f"{field}.auth") if "auth" in b else None
        if b.get("access_control_mode") == "allow_all" and si["access_control_mode"] == "deny_all":
            raise ValidationFailed("can only change from allow_all to deny_all", field=f"{field}.access_control_mode")
        vol_updates = []
        for i, vb in enumerate(b.get("volumes", [])):
            vol = si["volumes"].get(vb.get("name", ""))
            if vol is None:
                raise ValidationFailed(f"no volume {vb.get('name')!r}", field=f"{field}.volumes[{i}].name")
            upd = {k: v for k, v in vb.items() if k in ("size", "replica_count", "placement_mode", "placement_policy")}
            self._check_volume_update(tenant, vol, upd, f"{field}.volumes[{i}]")
            vol_updates.append((vol, upd))
        # apply
        if pool is not None:
            si["ip_pool"] = {"path": pool[0], "tenant": pool[1]}
        if acl is not None:
            si["acl"] = acl
        if auth is not None:
            si["auth"] = auth
        if "access_control_mode" in b:
            si["access_control_mode"] = b["access_control_mode"]
        for vol, upd in vol_updates:
            self._apply_volume_update(tenant, vol, upd)
        if "admin_state" in b:
            if b["admin_state"] == "online" and ai["admin_state"] == "offline":
                raise Conflict(f"app_instance {ai['name']} is offline; online the app_instance instead")
            self._set_si_admin(tenant, ai, si, b["admin_state"])
        self._si_changed(tenant, ai, si["name"])

    def delete_si(self, tenant: str, ai_key: str, si_name: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        if si["admin_state"] == "online" and not body.get("force"):
            raise Conflict(f"storage_instance {si_name} is online; offline it first or delete with force")
        out = self.render_si(tenant, ai, si, version)
        del ai["storage_instances"][si_name]
        self.touch(tenant, "app_instances", ai["id"])
        self._si_deleted(tenant, ai, si_name)
        return out

    def get_acl(self, tenant: str, ai_key: str, si_name: str) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        return ent.acl_policy(ent.si_path(ai, si), si["acl"])

    def put_acl(self, tenant: str, ai_key: str, si_name: str, body: dict[str, Any]) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        acl = self._acl_from_body(tenant, body, "body")
        for kind in ("initiators", "initiator_groups"):
            if kind not in body:  # PUT replaces only the lists it names
                acl[kind] = si["acl"][kind]
        si["acl"] = acl
        self.touch(tenant, "app_instances", ai["id"])
        self._si_changed(tenant, ai, si_name)
        return ent.acl_policy(ent.si_path(ai, si), si["acl"])

    def acl_link(self, tenant: str, ai_key: str, si_name: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        op = body["op"]
        if op not in ("add", "remove"):
            raise ValidationFailed(f"{op!r} is not one of ['add', 'remove']", field="op")
        items = si["acl"][kind]
        if op == "add":
            path, owner = self._ref(tenant, kind, body["path"], "path")
            if all(i["path"] != path for i in items):
                items.append({"path": path, "tenant": owner})
        else:
            if all(i["path"] != body["path"] for i in items):
                raise NotFound(f"{body['path']} is not in the acl_policy of {si_name}")
            si["acl"][kind] = [i for i in items if i["path"] != body["path"]]
        self.touch(tenant, "app_instances", ai["id"])
        self._si_changed(tenant, ai, si_name)
        return ent.acl_policy(ent.si_path(ai, si), si["acl"])

    def acl_items(self, tenant: str, ai_key: str, si_name: str, kind: str) -> Rows:
        _ai, si = self.get_si_obj(tenant, ai_key, si_name)
        return Rows(list(si["acl"][kind]), dict, {"path": lambda i: i.get("path")})

    def get_auth(self, tenant: str, ai_key: str, si_name: str) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        return ent.auth(ent.si_path(ai, si), si["auth"])

    def put_auth(self, tenant: str, ai_key: str, si_name: str, body: dict[str, Any]) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        si["auth"] = self._auth_from_body(body, si["auth"], "body")
        self.touch(tenant, "app_instances", ai["id"])
        self._si_changed(tenant, ai, si_name)
        return ent.auth(ent.si_path(ai, si), si["auth"])

    # ------------------------------------------------------------------ volumes

    def get_vol_obj(self, tenant: str, ai_key: str, si_name: str, vol_name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        vol = si["volumes"].get(vol_name)
        if vol is None:
            raise NotFound(f"volume {vol_name} does not exist in storage_instance {si_name}")
        return ai, si, vol

    def render_vol(self, tenant: str, ai: dict[str, Any], si: dict[str, Any], vol: dict[str, Any], version: str) -> dict[str, Any]:
        return ent.volume(ai, si, vol, now=self.now(), tenant=tenant, version=version, node_paths=self.node_paths)

    def list_vols(self, tenant: str, ai_key: str, si_name: str, version: str) -> Rows:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        return Rows(list(si["volumes"].values()),
                    lambda v: self.render_vol(tenant, ai, si, v, version), _NAMED)

    def get_vol(self, tenant: str, ai_key: str, si_name: str, vol_name: str, version: str) -> dict[str, Any]:
        return self.render_vol(tenant, *self.get_vol_obj(tenant, ai_key, si_name, vol_name), version)

    def create_vol(self, tenant: str, ai_key: str, si_name: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        ai, si = self.get_si_obj(tenant, ai_key, si_name)
        trial = copy.deepcopy(si)
        vol = self._new_volume(tenant, trial, {k: v for k, v in body.items() if k != "force"}, "body")
        si["volumes"][vol["name"]] = vol
        self.touch(tenant, "app_instances", ai["id"])
        self._si_changed(tenant, ai, si_name)
        return self.render_vol(tenant, ai, si, vol, version)

    def _check_volume_update(self, tenant: str, vol: dict[str, Any], b: dict[str, Any], field: str) -> None:
        if "size" in b and b["size"] < vol["size"]:
            raise ValidationFailed(
                f"volumes can only grow: {b['size']} GiB is smaller than the current {vol['size']} GiB",
                field=f"{field}.size",
            )
        if "replica_count" in b and b["replica_count"] < vol["replica_count"]:
            raise ValidationFailed(
                f"replica_count can only be increased: {b['replica_count']} < {vol['replica_count']}",
                field=f"{field}.replica_count",
            )
        if "placement_policy" in b:
            b["placement_policy"] = self._placement(tenant, b["placement_policy"], f"{field}.placement_policy")

    def _apply_volume_update(self, tenant: str, vol: dict[str, Any], b: dict[str, Any]) -> None:
        for k in ("size", "replica_count", "placement_mode", "placement_policy"):
            if k in b:
                vol[k] = b[k]
        if "storage_pool" in b:
            vol["storage_pool"] = [dict(p) for p in b["storage_pool"]]

    def update_vol(self, tenant: str, ai_key: str, si_name: str, vol_name: str, body: dict[str, Any], version: str) -> dict[str, Any]:
        ai, si, vol = self.get_vol_obj(tenant, ai_key, si_name, vol_name)
        b = dict(body)
        rp = b.pop("restore_point", None)
        if rp is not None:
            snap = vol["snapshots"].get(rp)
            if snap is None:
                raise ValidationFailed(f"no snapshot {rp} on volume {vol_name}", field="restore_point")
            if si["admin_state"] == "online":
                raise Conflict(f"volume {vol_name} must be offline to restore a snapshot")
            self._check_snap_ready(snap, rp)
        self._check_volume_update(tenant, vol, b, "body")
        if rp is not None:
            vol["restore_point"] = rp
        self._apply_volume_update(tenant, vol, b)
        self.touch(tenant, "app_instances", ai["id"])
        self._si_changed(tenant, ai, si_name)
        return self.render_vol(tenant, ai, si, vol, version)

    def delete_vol(self, tenant: str, ai_key: str, si_name: str, vol_name: str, version: str) -> dict[str, Any]:
        ai, si, vol = self.get_vol_obj(tenant, ai_key, si_name, vol_name)
        if si["admin_state"] == "online":
            raise Conflict(f"storage_instance {si_name} is online; offline it before deleting volume {vol_name}")
        out = self.render_vol(tenant, ai, si, vol, version)
        del si["volumes"][vol_name]
        self.touch(tenant, "app_instances", ai["id"])
        self._si_changed(tenant, ai, si_name)
        return out

    # performance policy (singleton)

    def get_perf(self, tenant: str, ai_key: str, si_name: str, vol_name: str) -> dict[str, Any]:
        ai, si, vol = self.get_vol_obj(tenant, ai_key, si_name, vol_name)
        if vol.get("performance_policy") is None:
            raise NotFound(f"volume {vol_name} has no performance_policy")
        return ent.performance_policy(ent.vol_path(ai, si, vol), vol["performance_policy"])

    def create_perf(self, tenant: str, ai_key: str, si_name: str, vol_name: str, body: dict[str, Any]) -> dict[str, Any]:
        ai, si, vol = self.get_vol_obj(tenant, ai_key, si_name, vol_name)
        if vol.get("performance_policy") is not None:
            raise Conflict(f"volume {vol_name} already has a performance_policy; PUT or DELETE it")
        vol["performance_policy"] = dict(body)
        self.touch(tenant, "app_instances", ai["id"])
        return ent.performance_policy(ent.vol_path(ai, si, vol), vol["performance_policy"])

    def update_perf(self, tenant: str, ai_key: str, si_name: str, vol_name: str, body: dict[str, Any]) -> dict[str, Any]:
        ai, si, vol = self.get_vol_obj(tenant, ai_key, si_name, vol_name)
        if vol.get("performance_policy") is None:
            raise NotFound(f"volume {vol_name} has no performance_policy; POST one")
        vol["performance_policy"].update(body)
        self.touch(tenant, "app_instances", ai["id"])
        return ent.performance_policy(ent.vol_path(ai, si, vol), vol["performance_policy"])

    def delete_perf(self, tenant: str, ai_key: str, si_name: str, vol_name: str) -> dict[str, Any]:
        out = self.get_perf(tenant, ai_key, si_name, vol_name)
        ai, _si, vol = self.get_vol_obj(tenant, ai_key, si_name, vol_name)
        vol["performance_policy"] = None
        self.touch(tenant, "app_instances", ai["id"])
        return out

    # ------------------------------------------------------------------ snapshots

    def _snap_parent(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None) -> tuple[dict[str, Any], dict[str, Any], str]:
        if si_name is None:
            ai = self.get_ai_obj(tenant, ai_key)
            return ai, ai, ent.ai_path(ai)
        ai, si, vol = self.get_vol_obj(tenant, ai_key, si_name, vol_name or "")
        return ai, vol, ent.vol_path(ai, si, vol)

    def list_snaps(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None) -> Rows:
        _ai, parent, ppath = self._snap_parent(tenant, ai_key, si_name, vol_name)
        now = self.now()
        return Rows(list(parent["snapshots"].values()), lambda s: ent.snapshot(ppath, s, now, tenant),
                    {"timestamp": lambda s: s["timestamp"], "utc_ts": lambda s: s["timestamp"]})

    def get_snap(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None, ts: str) -> dict[str, Any]:
        _ai, parent, ppath = self._snap_parent(tenant, ai_key, si_name, vol_name)
        snap = parent["snapshots"].get(ts)
        if snap is None:
            raise NotFound(f"snapshot {ts} does not exist at {ppath}")
        return ent.snapshot(ppath, snap, self.now(), tenant)

    def create_snap(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        ai, parent, ppath = self._snap_parent(tenant, ai_key, si_name, vol_name)
        uid = body.get("uuid")
        if uid and any(s.get("uuid") == uid for s in parent["snapshots"].values()):
            raise InvalidRequest(f"a snapshot with uuid {uid} already exists at {ppath}", code=15)
        ts = self.new_timestamp()
        snap: dict[str, Any] = {
            "timestamp": ts, "uuid": uid or "", "type": body.get("type", "local"),
            "ready_at": self.now() + self.opts.snapshot_delay,
        }
        if si_name is None:
            snap["sizes"] = {
                f"{s['name']}/{v['name']}": v["size"]
                for s in ai["storage_instances"].values() for v in s["volumes"].values()
            }
        else:
            snap["size"] = parent["size"]
        parent["snapshots"][ts] = snap
        self.touch(tenant, "app_instances", ai["id"])
        return ent.snapshot(ppath, snap, self.now(), tenant)

    def delete_snap(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None, ts: str) -> dict[str, Any]:
        out = self.get_snap(tenant, ai_key, si_name, vol_name, ts)
        ai, parent, _ = self._snap_parent(tenant, ai_key, si_name, vol_name)
        del parent["snapshots"][ts]
        self.touch(tenant, "app_instances", ai["id"])
        return out

    # ------------------------------------------------------------------ snapshot policies

    def _policy_parent(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None) -> tuple[dict[str, Any], dict[str, Any], str]:
        return self._snap_parent(tenant, ai_key, si_name, vol_name)

    def list_policies(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None) -> Rows:
        _ai, parent, ppath = self._policy_parent(tenant, ai_key, si_name, vol_name)
        return Rows(list(parent["snapshot_policies"].values()),
                    lambda p: ent.snapshot_policy(ppath, p), _NAMED)

    def get_policy(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None, name: str) -> dict[str, Any]:
        _ai, parent, ppath = self._policy_parent(tenant, ai_key, si_name, vol_name)
        pol = parent["snapshot_policies"].get(name)
        if pol is None:
            raise NotFound(f"snapshot policy {name} does not exist at {ppath}")
        return ent.snapshot_policy(ppath, pol)

    def create_policy(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None, body: dict[str, Any]) -> dict[str, Any]:
        ai, parent, ppath = self._policy_parent(tenant, ai_key, si_name, vol_name)
        self._add_policy(parent["snapshot_policies"], body, "body")
        self.touch(tenant, "app_instances", ai["id"])
        return ent.snapshot_policy(ppath, parent["snapshot_policies"][body["name"]])

    def update_policy(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.get_policy(tenant, ai_key, si_name, vol_name, name)
        ai, parent, ppath = self._policy_parent(tenant, ai_key, si_name, vol_name)
        parent["snapshot_policies"][name].update(body)
        self.touch(tenant, "app_instances", ai["id"])
        return ent.snapshot_policy(ppath, parent["snapshot_policies"][name])

    def delete_policy(self, tenant: str, ai_key: str, si_name: str | None, vol_name: str | None, name: str) -> dict[str, Any]:
        out = self.get_policy(tenant, ai_key, si_name, vol_name, name)
        ai, parent, _ = self._policy_parent(tenant, ai_key, si_name, vol_name)
        del parent["snapshot_policies"][name]
        self.touch(tenant, "app_instances", ai["id"])
        return out

    # ------------------------------------------------------------------ metadata

    def get_metadata(self, tenant: str, ai_key: str, *, ecosystem: bool) -> dict[str, Any]:
        self._check_ecosystem(ecosystem)
        return dict(self.get_ai_obj(tenant, ai_key)["metadata"])

    def _check_ecosystem(self, ecosystem: bool) -> None:
        if ecosystem and not self.opts.is_33:
            raise NotFound(f"int_ecosystem_data needs product 3.3.0.0 or later (this one is {self.opts.sw_version})")

    def put_metadata(self, tenant: str, ai_key: str, body: dict[str, Any], *, ecosystem: bool) -> dict[str, Any]:
        """Merge keys into the app instance's metadata; a ``null`` value removes a key."""
        import json

        self._check_ecosystem(ecosystem)
        ai = self.get_ai_obj(tenant, ai_key)
        new = dict(ai["metadata"])
        for k, v in body.items():
            if v is None:
                new.pop(k, None)
            elif isinstance(v, (dict, list)):
                raise ValidationFailed("metadata values must be strings, numbers or booleans", field=k)
            else:
                new[k] = v
        if len(json.dumps(new)) > METADATA_LIMIT:
            raise ValidationFailed(f"metadata exceeds {METADATA_LIMIT} characters when serialized", field="body")
        ai["metadata"] = new
        self.touch(tenant, "app_instances", ai["id"])
        return dict(new)

    # ------------------------------------------------------------------ initiators / groups

    def _inherited_keys(self, tenant: str, coll: str) -> list[tuple[str, str]]:
        """(owner tenant, key) of every ``coll`` object ``tenant`` can read, kept as a view."""
        def build() -> list[tuple[str, str]]:
            seen: dict[str, tuple[str, str]] = {}
            for t in reversed(self.lineage(tenant)):  # nearer tenants override farther ones
                for k in self.objs[t][coll]:
                    seen[k] = (t, k)
            return list(seen.values())
        return self._view(("inherited", tenant, coll), coll, build)

    def _inherited_rows(self, tenant: str, coll: str,
                        render: Callable[[str, dict[str, Any]], dict[str, Any]], *attrs_: str) -> Rows:
        """An inherited collection as (owner, key) rows, with ``attrs_`` read as stored."""
        objs = self.objs

        def obj(tk: tuple[str, str]) -> dict[str, Any]:
            return objs[tk[0]][coll][tk[1]]

        return Rows(self._inherited_keys(tenant, coll), lambda tk: render(tk[0], obj(tk)),
                    {a: (lambda tk, a=a: obj(tk).get(a)) for a in attrs_})

    def _get_inherited(self, tenant: str, coll: str, key: str, what: str) -> tuple[str, dict[str, Any]]:
        found = self._find_inherited(tenant, coll, key)
        if found is None:
            raise NotFound(f"{what} {key} does not exist in tenant {tenant}")
        return found

    def _own(self, tenant: str, coll: str, key: str, what: str) -> dict[str, Any]:
        obj = self.objs[tenant][coll].get(key)
        if obj is None:
            if self._find_inherited(tenant, coll, key) is not None:
                raise NotFound(f"{what} {key} belongs to a parent tenant; change it from there")
            raise NotFound(f"{what} {key} does not exist in tenant {tenant}")
        return obj

    def _users_of(self, kind: str, path: str) -> list[str]:
        out = []
        for colls in self.objs.values():
            for ai in colls["app_instances"].values():
                for si in ai["storage_instances"].values():
                    if any(i["path"] == path for i in si["acl"][kind]):
                        out.append(ent.si_path(ai, si))
            if kind == "initiators":
                for g in colls["initiator_groups"].values():
                    if any(m["path"] == path for m in g["members"]):
                        out.append(f"/initiator_groups/{g['name']}")
        return out

    @staticmethod
    def render_initiator(tenant: str, o: dict[str, Any]) -> dict[str, Any]:
        return {"path": f"/initiators/{o['id']}", "id": o["id"], "name": o["name"], "tenant": tenant}

    def list_initiators(self, tenant: str) -> Rows:
        return self._inherited_rows(tenant, "initiators", self.render_initiator, "id", "name")

    def get_initiator(self, tenant: str, iqn: str) -> dict[str, Any]:
        return self.render_initiator(*self._get_inherited(tenant, "initiators", iqn, "initiator"))

    def create_initiator(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        iqn = body["id"]
        if iqn in self.objs[tenant]["initiators"]:
            raise Conflict(f"initiator {iqn} already exists in tenant {tenant}")
        o = {"id": iqn, "name": body["name"]}
        self._put(tenant, "initiators", iqn, o)
        return self.render_initiator(tenant, o)

    def update_initiator(self, tenant: str, iqn: str, body: dict[str, Any]) -> dict[str, Any]:
        o = self._own(tenant, "initiators", iqn, "initiator")
        if "name" in body:
            o["name"] = body["name"]
        self.touch(tenant, "initiators", iqn)
        return self.render_initiator(tenant, o)

    def delete_initiator(self, tenant: str, iqn: str) -> dict[str, Any]:
        return self._delete_unused(tenant, "initiators", iqn, "initiator", self.render_initiator)

    def _delete_unused(self, tenant: str, coll: str, key: str, what: str,
                       render: Callable[[str, dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Delete an initiator or a group that no ACL or group refers to (409 otherwise)."""
        o = self._own(tenant, coll, key, what)
        users = self._users_of(coll, f"/{coll}/{key}")
        if users:
            raise Conflict(f"{what} {key} is still referenced by {', '.join(users[:5])}; remove it there first")
        self._drop(tenant, coll, key)
        return render(tenant, o)

    @staticmethod
    def render_group(tenant: str, o: dict[str, Any]) -> dict[str, Any]:
        return {
            "path": f"/initiator_groups/{o['name']}", "name": o["name"],
            "members": [dict(m) for m in o["members"]], "tenant": tenant,
        }

    def _members(self, tenant: str, items: list[dict[str, Any]], field: str) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        for i, m in enumerate(items):
            path, owner = self._ref(tenant, "initiators", m["path"], f"{field}[{i}].path")
            if all(x["path"] != path for x in out):
                out.append({"path": path, "tenant": owner})
        return out

    def list_groups(self, tenant: str) -> Rows:
        return self._inherited_rows(tenant, "initiator_groups", self.render_group, "name")

    def get_group(self, tenant: str, name: str) -> dict[str, Any]:
        return self.render_group(*self._get_inherited(tenant, "initiator_groups", name, "initiator_group"))

    def create_group(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"]
        if name in self.objs[tenant]["initiator_groups"]:
            raise Conflict(f"initiator_group {name} already exists in tenant {tenant}")
        o = {"name": name, "members": self._members(tenant, body.get("members", []), "members")}
        self._put(tenant, "initiator_groups", name, o)
        return self.render_group(tenant, o)

    def update_group(self, tenant: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        o = self._own(tenant, "initiator_groups", name, "initiator_group")
        if "members" in body:
            o["members"] = self._members(tenant, body["members"], "members")
        self.touch(tenant, "initiator_groups", name)
        self._groups_changed(f"/initiator_groups/{name}")
        return self.render_group(tenant, o)

    def group_link(self, tenant: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        o = self._own(tenant, "initiator_groups", name, "initiator_group")
        if body["op"] == "add":
            path, owner = self._ref(tenant, "initiators", body["path"], "path")
            if all(m["path"] != path for m in o["members"]):
                o["members"].append({"path": path, "tenant": owner})
        elif body["op"] == "remove":
            if all(m["path"] != body["path"] for m in o["members"]):
                raise NotFound(f"{body['path']} is not a member of initiator_group {name}")
            o["members"] = [m for m in o["members"] if m["path"] != body["path"]]
        else:
            raise ValidationFailed(f"{body['op']!r} is not one of ['add', 'remove']", field="op")
        self.touch(tenant, "initiator_groups", name)
        self._groups_changed(f"/initiator_groups/{name}")
        return self.render_group(tenant, o)

    def _groups_changed(self, gpath: str) -> None:
        """Group membership feeds ACLs: tell the data plane about every SI using the group."""
        for t, colls in self.objs.items():
            for ai in colls["app_instances"].values():
                for si in ai["storage_instances"].values():
                    if any(g["path"] == gpath for g in si["acl"]["initiator_groups"]):
                        self._si_changed(t, ai, si["name"])

    def delete_group(self, tenant: str, name: str) -> dict[str, Any]:
        return self._delete_unused(tenant, "initiator_groups", name, "initiator_group", self.render_group)

    # ------------------------------------------------------------------ IP pools

    @staticmethod
    def render_pool(tenant: str, o: dict[str, Any]) -> dict[str, Any]:
        p = f"/access_network_ip_pools/{o['name']}"
        return {
            "path": p, "name": o["name"], "descr": o.get("descr") or "", "tenant": tenant,
            "network_paths": [dict(np, path=f"{p}/network_paths/{np['name']}") for np in o["network_paths"]],
        }

    def list_pools(self, tenant: str) -> Rows:
        return self._inherited_rows(tenant, "access_network_ip_pools", self.render_pool, "name")

    def get_pool(self, tenant: str, name: str) -> dict[str, Any]:
        return self.render_pool(*self._get_inherited(tenant, "access_network_ip_pools", name, "access_network_ip_pool"))

    @staticmethod
    def _network_paths(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for i, np in enumerate(items):
            d = {"name": np.get("name") or f"path-{i + 1}", "netmask": 16, "range": 6, "vlan": 0, "mtu": 1500, "gateway": ""}
            d.update(np)
            out.append(d)
        names = [d["name"] for d in out]
        if len(set(names)) != len(names):
            raise ValidationFailed("network path names must be unique", field="network_paths")
        return out

    def create_pool(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"]
        if name in self.objs[tenant]["access_network_ip_pools"]:
            raise Conflict(f"access_network_ip_pool {name} already exists in tenant {tenant}")
        o = {"name": name, "descr": body.get("descr") or "", "network_paths": self._network_paths(body.get("network_paths", []))}
        self._put(tenant, "access_network_ip_pools", name, o)
        return self.render_pool(tenant, o)

    def update_pool(self, tenant: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        o = self._own(tenant, "access_network_ip_pools", name, "access_network_ip_pool")
        if "network_paths" in body:
            o["network_paths"] = self._network_paths(body["network_paths"])
            o["network_paths_set"] = True
        if "descr" in body:
            o["descr"] = body["descr"] or ""
        self.touch(tenant, "access_network_ip_pools", name)
        return self.render_pool(tenant, o)

    def delete_pool(self, tenant: str, name: str) -> dict[str, Any]:
        o = self._own(tenant, "access_network_ip_pools", name, "access_network_ip_pool")
        if name == "default" and tenant == ROOT:
            raise InvalidRequest("the default access_network_ip_pool cannot be deleted")
        path = f"/access_network_ip_pools/{name}"
        users = [ent.si_path(ai, si) for c in self.objs.values() for ai in c["app_instances"].values()
                 for si in ai["storage_instances"].values() if si["ip_pool"] == {"path": path, "tenant": tenant}]
        if users:
            raise Conflict(f"access_network_ip_pool {name} is used by {', '.join(users[:5])}")
        self._drop(tenant, "access_network_ip_pools", name)
        return self.render_pool(tenant, o)

    def get_network_path(self, tenant: str, pool: str, np_name: str | None) -> Any:
        p = self.get_pool(tenant, pool)
        if np_name is None:
            return p["network_paths"]
        for np in p["network_paths"]:
            if np["name"] == np_name:
                return np
        raise NotFound(f"network path {np_name} does not exist in access_network_ip_pool {pool}")

    def update_network_path(self, tenant: str, pool: str, np_name: str, body: dict[str, Any]) -> dict[str, Any]:
        o = self._own(tenant, "access_network_ip_pools", pool, "access_network_ip_pool")
        for np in o["network_paths"]:
            if np["name"] == np_name:
                np.update(body)
                o["network_paths_set"] = True
                self.touch(tenant, "access_network_ip_pools", pool)
                return self.get_network_path(tenant, pool, np_name)
        raise NotFound(f"network path {np_name} does not exist in access_network_ip_pool {pool}")

    # ------------------------------------------------------------------ app templates

    @staticmethod
    def render_template(tenant: str, o: dict[str, Any]) -> dict[str, Any]:
        tp = f"/app_templates/{o['name']}"
        sts = []
        for st in o["storage_templates"]:
            sp = f"{tp}/storage_templates/{st['name']}"
            vts = []
            for vt in st["volume_templates"]:
                vp = f"{sp}/volume_templates/{vt['name']}"
                v = {"path": vp, "name": vt["name"], "size": vt["size"],
                     "replica_count": vt.get("replica_count", 3),
                     "placement_mode": vt.get("placement_mode", "hybrid"),
                     "snapshot_policies": [ent.snapshot_policy(vp, p) for p in vt.get("snapshot_policies", [])]}
                if vt.get("performance_policy"):
                    v["performance_policy"] = ent.performance_policy(vp, vt["performance_policy"])
                vts.append(v)
            sts.append({
                "path": sp, "name": st["name"], "volume_templates": vts,
                "ip_pool": ent.ref(st["ip_pool"], "") if st.get("ip_pool") else ent.ref("", ""),
                "auth": ent.auth(sp, st.get("auth") or {"type": "none"}),
            })
        return {
            "path": tp, "name": o["name"], "descr": o.get("descr") or "", "tenant": tenant,
            "storage_templates": sts,
            "snapshot_policies": [ent.snapshot_policy(tp, p) for p in o.get("snapshot_policies", [])],
            "app_instances": [],
        }

    def list_templates(self, tenant: str) -> Rows:
        return self._inherited_rows(tenant, "app_templates", self.render_template, "name")

    def get_template(self, tenant: str, name: str) -> dict[str, Any]:
        return self.render_template(*self._get_inherited(tenant, "app_templates", name, "app_template"))

    def _template_body(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        sts = []
        for i, st in enumerate(body.get("storage_templates", [])):
            ip_pool = st.get("ip_pool")
            if isinstance(ip_pool, dict):
                ip_pool = ip_pool.get("path")
            if ip_pool:
                self._ref(tenant, "access_network_ip_pools", ip_pool, f"storage_templates[{i}].ip_pool")
            auth = self._auth_from_body(st["auth"], {"type": "none"}, f"storage_templates[{i}].auth") if "auth" in st else {"type": "none"}
            sts.append({"name": st["name"], "ip_pool": ip_pool or "", "auth": auth,
                        "volume_templates": [dict(vt) for vt in st.get("volume_templates", [])]})
        return {"storage_templates": sts, "snapshot_policies": [dict(p) for p in body.get("snapshot_policies", [])]}

    def create_template(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["name"]
        if name in self.objs[tenant]["app_templates"]:
            raise Conflict(f"app_template {name} already exists in tenant {tenant}")
        if "copy_from" in body:
            path, owner = self._ref(tenant, "app_templates", body["copy_from"]["path"], "copy_from.path")
            o = copy.deepcopy(self.objs[owner]["app_templates"][path.rsplit("/", 1)[-1]])
            o["name"] = name
        else:
            o = {"name": name, **self._template_body(tenant, body)}
        o["descr"] = body.get("descr") or ""
        self._put(tenant, "app_templates", name, o)
        return self.render_template(tenant, o)

    def update_template(self, tenant: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        o = self._own(tenant, "app_templates", name, "app_template")
        new = self._template_body(tenant, body)
        if "storage_templates" in body:
            o["storage_templates"] = new["storage_templates"]
        if "snapshot_policies" in body:
            o["snapshot_policies"] = new["snapshot_policies"]
        if "descr" in body:
            o["descr"] = body["descr"] or ""
        self.touch(tenant, "app_templates", name)
        return self.render_template(tenant, o)

    def delete_template(self, tenant: str, name: str) -> dict[str, Any]:
        o = self._own(tenant, "app_templates", name, "app_template")
        path = f"/app_templates/{name}"
        users = [ai["name"] for c in self.objs.values() for ai in c["app_instances"].values()
                 if ai.get("app_template") == {"path": path, "tenant": tenant}]
        if users:
            raise Conflict(f"app_template {name} is used by app_instances {', '.join(users[:5])}")
        self._drop(tenant, "app_templates", name)
        return self.render_template(tenant, o)

    # ------------------------------------------------------------------ placement policies

    def _check_33(self) -> None:
        if not self.opts.is_33:
            raise NotFound(f"placement_policies need product 3.3.0.0 or later (this one is {self.opts.sw_version})")

    @staticmethod
    def render_placement(tenant: str, o: dict[str, Any]) -> dict[str, Any]:
        p = f"/placement_policies/{o['name']}"
        return {"path": p, "name": o["name"], "descr": o.get("descr") or "", "max": list(o["max"]),
                "min": list(o["min"]), "resolved_path": p, "resolved_tenant": tenant, "tenant": tenant}

    def list_placements(self, tenant: str) -> Rows:
        self._check_33()
        return self._inherited_rows(tenant, "placement_policies", self.render_placement, "name")

    def get_placement(self, tenant: str, name: str) -> dict[str, Any]:
        self._check_33()
        return self.render_placement(*self._get_inherited(tenant, "placement_policies", name, "placement_policy"))

    def create_placement(self, tenant: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_33()
        name = body["name"]
        if name in self.objs[tenant]["placement_policies"]:
            raise Conflict(f"placement_policy {name} already exists in tenant {tenant}")
        o = {"name": name, "descr": body.get("descr") or "", "max": list(body.get("max", [])), "min": list(body.get("min", []))}
        self._put(tenant, "placement_policies", name, o)
        return self.render_placement(tenant, o)

    def update_placement(self, tenant: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._check_33()
        o = self._own(tenant, "placement_policies", name, "placement_policy")
        for k in ("descr", "max", "min"):
            if k in body:
                o[k] = body[k] if k != "descr" else (body[k] or "")
        self.touch(tenant, "placement_policies", name)
        return self.render_placement(tenant, o)

    def delete_placement(self, tenant: str, name: str) -> dict[str, Any]:
        self._check_33()
        o = self._own(tenant, "placement_policies", name, "placement_policy")
        ref = {"path": f"/placement_policies/{name}", "tenant": tenant}
        users = [ent.vol_path(ai, si, v) for c in self.objs.values() for ai in c["app_instances"].values()
                 for si in ai["storage_instances"].values() for v in si["volumes"].values()
                 if v.get("placement_policy") == ref]
        if users:
            raise Conflict(f"placement_policy {name} is used by {', '.join(users[:5])}")
        self._drop(tenant, "placement_policies", name)
        return self.render_placement(tenant, o)

    # ------------------------------------------------------------------ system

    def provisioned_bytes(self) -> tuple[int, int]:
        """(all-flash, hybrid) bytes provisioned: size x replicas over every volume.

        Cached per store generation: /system is polled often, stores can be large."""
        gen, cached = self._prov_cache
        if gen == self.generation:
            return cached
        flash = hybrid = 0
        for colls in self.objs.values():
            for ai in colls["app_instances"].values():
                for si in ai["storage_instances"].values():
                    for v in si["volumes"].values():
                        b = int(v["size"] * ent.GIB) * v["replica_count"]
                        if v["placement_mode"] == "all_flash":
                            flash += b
                        else:
                            hybrid += b
        self._prov_cache = (self.generation, (flash, hybrid))
        return flash, hybrid

    def system(self) -> dict[str, Any]:
        total = self.opts.total_capacity
        flash_total = total // 4
        hybrid_total = total - flash_total
        flash, hybrid = self.provisioned_bytes()
        return {
            "path": "/system",
            "name": self.opts.name,
            "uuid": self.system_uuid,
            "sw_version": self.opts.sw_version,
            "build_version": f"{self.opts.sw_version}-sim",
            "health": "ok",
            "op_state": "running",
            "uptime": int((self.clock() - self.started) * 1000),
            "total_capacity": total,
            "available_capacity": max(0, total - flash - hybrid),
            "total_provisioned_capacity": flash + hybrid,
            "all_flash_total_capacity": flash_total,
            "all_flash_available_capacity": max(0, flash_total - flash),
            "all_flash_provisioned_capacity": flash,
            "hybrid_total_capacity": hybrid_total,
            "hybrid_available_capacity": max(0, hybrid_total - hybrid),
            "hybrid_provisioned_capacity": hybrid,
            "compression_enabled": False,
            "compression_ratio": "1.0",
            "l3_enabled": False,
            "callhome_enabled": False,
            "num_storage_nodes": len(self.node_uuids),
        }

    def storage_node(self, i: int) -> dict[str, Any]:
        u = self.node_uuids[i]
        per = self.opts.total_capacity // max(1, len(self.node_uuids))
        flash, hybrid = self.provisioned_bytes()
        used = (flash + hybrid) // max(1, len(self.node_uuids))
        return {
            "path": f"/storage_nodes/{u}", "uuid": u, "name": f"sim-node-{i + 1}",
            "total_capacity": per, "available_capacity": max(0, per - used),
            "admin_state": "online", "op_state": "online", "type": "hybrid", "health": "ok",
            "sw_version": self.opts.sw_version, "causes": [],
        }

    def storage_nodes(self) -> list[dict[str, Any]]:
        return [self.storage_node(i) for i in range(len(self.node_uuids))]

    def get_storage_node(self, node_uuid: str) -> dict[str, Any]:
        if node_uuid not in self.node_uuids:
            raise NotFound(f"storage node {node_uuid} does not exist")
        return self.storage_node(self.node_uuids.index(node_uuid))

    def summary(self) -> dict[str, int]:
        """Object counts (for tests asserting "nothing changed")."""
        out = {"tenants": len(self.tenants)}
        for c in COLLS:
            out[c] = sum(len(o[c]) for o in self.objs.values())
        return out

    def snapshot_state(self) -> str:
        """A canonical JSON dump of all state (tests compare two of them)."""
        import json

        return json.dumps({"tenants": self.tenants, "objs": self.objs}, sort_keys=True, default=str)


def _same(x: Any) -> Any:
    return x


def _via(objs: dict[str, dict[str, Any]], get: Callable[[dict[str, Any]], Any]) -> Callable[[str], Any]:
    """``get`` on the object stored under a key."""
    return lambda key: get(objs[key])


#: attributes a rendered object shows exactly as stored (filters and sorts on them read the
#: stored objects: see :class:`datera_iac.sim.query.Rows`)
_NAMED: dict[str, Callable[[dict[str, Any]], Any]] = {"name": lambda o: o.get("name")}
_AI_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "name": lambda ai: ai["name"],
    "id": lambda ai: ai["id"],
    "uuid": lambda ai: ai["uuid"],
    "descr": lambda ai: ai.get("descr") or "",
    "path": lambda ai: ent.ai_path(ai),
}
