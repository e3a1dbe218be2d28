"""The simulator's aiohttp application: REST routes, envelopes, errors, faults, admin.

Every API route is declared once with the ``:param`` template of the real ``/api`` dump
(``/app_instances/:id/storage_instances/:storage_instance_name``); that template names the
body schema it is validated against and keys the request counters
("PUT /v2.2/app_instances/:id"). Routes exist under ``/v2.1`` and ``/v2.2``.

One middleware does, per API request: counting and logging (no bodies, no secrets), fault
injection, the tenant header, the ``Auth-Token`` check, JSON/form body parsing and schema
validation, the envelope ``{tenant, path, version, data[, metadata]}``, JSON errors
``{name, code, http, message}``, the store flush (persistence + data-plane hook) and
"drop the connection after the write was applied".
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

import attrs
from aiohttp import web

from datera_iac.sim import schema as sch
from datera_iac.sim.auth import Session, Sessions
from datera_iac.sim.errors import (
    INITIALIZING_MESSAGE,
    Internal,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    SimError,
    Unavailable,
    ValidationFailed,
)
from datera_iac.sim.faults import Faults
from datera_iac.sim.query import Rows, page
from datera_iac.sim.store import Store
from datera_iac.sim.arrival import arrival_of
from datera_iac.sim.validation import validate

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
LOG_LIMIT = 20000
_OPS = {"GET": "read", "POST": "create", "PUT": "update", "DELETE": "delete"}
_WRITES = frozenset(("POST", "PUT", "DELETE"))
_TENANT_RE = r"{tenant_path:[A-Za-z0-9_\-]+(?:/[.A-Za-z0-9_\-]+)*}"
_PARAM = re.compile(r":([A-Za-z_]+)")


@attrs.define
class Listing:
    """A handler result that is a collection: the envelope filters, sorts and pages it
    (rendered entities, or the store's :class:`~datera_iac.sim.query.Rows`, rendered a page
    at a time)."""

    items: list[dict[str, Any]] | Rows


@attrs.define
class Ctx:
    """What a route handler gets."""

    store: Store
    tenant: str
    version: str
    body: dict[str, Any]
    params: dict[str, str]
    m: dict[str, str]
    session: Session | None
    headers: Any


@attrs.define
class SimState:
    """Everything one running simulator holds (shared by the HTTP and HTTPS sites)."""

    store: Store
    sessions: Sessions
    faults: Faults
    counters: collections.Counter[str] = attrs.field(factory=collections.Counter)
    log: collections.deque[dict[str, Any]] = attrs.field(factory=lambda: collections.deque(maxlen=LOG_LIMIT))
    schema_cache: dict[str, bytes] = attrs.field(factory=dict)
    initial: dict[str, Any] = attrs.field(factory=dict)

    DELAYS = ("si_online_delay", "snapshot_delay", "clone_delay")

    def __attrs_post_init__(self) -> None:
        self.initial = dict(self.faults.as_dict(), **{d: getattr(self.store.opts, d) for d in self.DELAYS})

    def reset(self) -> None:
        """Empty store and defaults again (the data plane's targets and LUNs too); counters,
        log, sessions cleared; faults and delays back to the values the simulator was
        started with."""
        self.store.reset()
        reset_plane = getattr(self.store.dataplane, "reset", None)
        if reset_plane is not None:  # a data plane written before the protocol had reset()
            reset_plane()
        self.sessions.reset()
        self.counters.clear()
        self.log.clear()
        self.faults = Faults()
        self.set_faults(**self.initial)

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Apply fault knobs (and the asynchrony delays); return the resulting settings."""
        for d in self.DELAYS:
            if d in knobs:
                val = float(knobs.pop(d))
                if val < 0:
                    raise ValueError(f"{d} must be >= 0, got {val}")
                setattr(self.store.opts, d, val)
        expire = knobs.get("expire_keys")
        self.faults = self.faults.updated(**knobs)
        self.sessions.key_ttl = self.faults.key_ttl
        if expire:
            self.sessions.expire_all()
        return dict(self.faults.as_dict(), **{d: getattr(self.store.opts, d) for d in self.DELAYS})


Handler = Callable[[Ctx], Any]
STATE = web.AppKey("state", SimState)
FALLBACK: web.AppKey[Callable[[web.Request], Any]] = web.AppKey("fallback")


@attrs.define
class Route:
    method: str
    template: str
    fn: Handler
    auth: bool = True
    schema_key: str | None = None


ROUTES: list[Route] = []


def api(method: str, template: str, *, auth: bool = True, schema_key: str | None = None) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        ROUTES.append(Route(method, template, fn, auth, schema_key))
        return fn
    return deco


# ---------------------------------------------------------------------------- session

@api("PUT", "/login", auth=False)
def _login(c: Ctx) -> Any:
    raise AssertionError("handled by the middleware")  # needs the Sessions object


@api("PUT", "/logout", auth=False)
def _logout(c: Ctx) -> Any:
    raise AssertionError("handled by the middleware")


@api("GET", "/api")
def _api(c: Ctx) -> Any:
    raise AssertionError("handled by the middleware")  # cached serialized schema


# ---------------------------------------------------------------------------- system

@api("GET", "/system")
def _system(c: Ctx) -> Any:
    return c.store.system()


@api("GET", "/storage_nodes")
def _nodes(c: Ctx) -> Any:
    return Listing(c.store.storage_nodes())


@api("GET", "/storage_nodes/:uuid")
def _node(c: Ctx) -> Any:
    return c.store.get_storage_node(c.m["uuid"])


def _metric(c: Ctx, known: list[str], latest: bool) -> Any:
    metric = c.m["metric"]
    if metric not in known:
        raise NotFound(f"unknown metric {metric!r}; known: {', '.join(known)}")
    now = int(c.store.now() * 1000)
    point = {"timestamp": now, "value": 0}
    # no I/O is simulated: one zero point (``latest`` asks for exactly that shape anyway)
    return [{"path": c.params.get("path", "/system"), "uuid": c.params.get("uuid", ""),
             "metric": metric, "latest": latest, "points": [point]}]


def _metric_routes(group: str) -> None:
    """GET /metrics/<group>/:metric and .../latest, for the metrics the v2.1 schema names."""
    known = sch.load_v21()[f"/metrics/{group}/:metric"]["read"]["urlParamSchema"]["metric"]["enum"]
    for tail, latest in (("", False), ("/latest", True)):
        ROUTES.append(Route("GET", f"/metrics/{group}/:metric{tail}",
                            functools.partial(_metric, known=known, latest=latest)))


_metric_routes("io")
_metric_routes("hw")


# ---------------------------------------------------------------------------- tenants

@api("GET", "/tenants")
def _tenants(c: Ctx) -> Any:
    return Listing(c.store.list_tenants(c.tenant))


@api("POST", "/tenants")
def _tenant_create(c: Ctx) -> Any:
    return c.store.create_tenant(c.tenant, c.body)


@api("GET", "/tenants/:tenant_path")
def _tenant_get(c: Ctx) -> Any:
    return c.store.get_tenant(c.tenant, c.m["tenant_path"])


@api("PUT", "/tenants/:tenant_path")
def _tenant_put(c: Ctx) -> Any:
    return c.store.update_tenant(c.tenant, c.m["tenant_path"], c.body)


@api("DELETE", "/tenants/:tenant_path")
def _tenant_del(c: Ctx) -> Any:
    return c.store.delete_tenant(c.tenant, c.m["tenant_path"])


# A tenant's entity path is its tenant path ("/root/a", usable as a tenant header); the
# dfs-sdk sends reload/set/delete to an entity's path, so those are served too.
for _m, _fn in (("GET", _tenant_get), ("PUT", _tenant_put), ("DELETE", _tenant_del)):
    ROUTES.append(Route(_m, "/:tenant_path", _fn, True, "/tenants/:tenant_path"))


# ---------------------------------------------------------------------------- app instances

AI = "/app_instances/:id"
SI = AI + "/storage_instances/:storage_instance_name"
VOL = SI + "/volumes/:volume_name"


@api("GET", "/app_instances")
def _ais(c: Ctx) -> Any:
    return Listing(c.store.list_ais(c.tenant, c.version))


@api("POST", "/app_instances")
def _ai_create(c: Ctx) -> Any:
    return c.store.create_ai(c.tenant, c.body, c.version)


@api("GET", AI)
def _ai_get(c: Ctx) -> Any:
    return c.store.get_ai(c.tenant, c.m["id"], c.version)


@api("PUT", AI)
def _ai_put(c: Ctx) -> Any:
    return c.store.update_ai(c.tenant, c.m["id"], c.body, c.version)


@api("DELETE", AI)
def _ai_del(c: Ctx) -> Any:
    return c.store.delete_ai(c.tenant, c.m["id"], c.body, c.version)


@api("GET", AI + "/metadata")
def _md_get(c: Ctx) -> Any:
    return c.store.get_metadata(c.tenant, c.m["id"], ecosystem=False)


@api("PUT", AI + "/metadata")
def _md_put(c: Ctx) -> Any:
    return c.store.put_metadata(c.tenant, c.m["id"], c.body, ecosystem=False)


@api("GET", AI + "/int_ecosystem_data")
def _eco_get(c: Ctx) -> Any:
    return c.store.get_metadata(c.tenant, c.m["id"], ecosystem=True)


@api("PUT", AI + "/int_ecosystem_data")
def _eco_put(c: Ctx) -> Any:
    data = c.body.get("data")
    if not isinstance(data, dict):
        raise ValidationFailed("expected an object of key/value pairs", field="data")
    return c.store.put_metadata(c.tenant, c.m["id"], data, ecosystem=True)


# ---------------------------------------------------------------------------- storage instances

@api("GET", AI + "/storage_instances")
def _sis(c: Ctx) -> Any:
    return Listing(c.store.list_sis(c.tenant, c.m["id"], c.version))


@api("POST", AI + "/storage_instances")
def _si_create(c: Ctx) -> Any:
    return c.store.create_si(c.tenant, c.m["id"], c.body, c.version)


@api("GET", SI)
def _si_get(c: Ctx) -> Any:
    return c.store.get_si(c.tenant, c.m["id"], c.m["storage_instance_name"], c.version)


@api("PUT", SI)
def _si_put(c: Ctx) -> Any:
    return c.store.update_si(c.tenant, c.m["id"], c.m["storage_instance_name"], c.body, c.version)


@api("DELETE", SI)
def _si_del(c: Ctx) -> Any:
    return c.store.delete_si(c.tenant, c.m["id"], c.m["storage_instance_name"], c.body, c.version)


@api("GET", SI + "/acl_policy")
def _acl_get(c: Ctx) -> Any:
    return c.store.get_acl(c.tenant, c.m["id"], c.m["storage_instance_name"])


@api("PUT", SI + "/acl_policy")
def _acl_put(c: Ctx) -> Any:
    return c.store.put_acl(c.tenant, c.m["id"], c.m["storage_instance_name"], c.body)


for _kind in ("initiators", "initiator_groups"):
    ROUTES.append(Route("GET", f"{SI}/acl_policy/{_kind}", lambda c, kind=_kind: Listing(
        c.store.acl_items(c.tenant, c.m["id"], c.m["storage_instance_name"], kind))))
    ROUTES.append(Route("PUT", f"{SI}/acl_policy/{_kind}", lambda c, kind=_kind: c.store.acl_link(
        c.tenant, c.m["id"], c.m["storage_instance_name"], kind, c.body)))


@api("GET", SI + "/auth")
def _auth_get(c: Ctx) -> Any:
    return c.store.get_auth(c.tenant, c.m["id"], c.m["storage_instance_name"])


@api("PUT", SI + "/auth")
def _auth_put(c: Ctx) -> Any:
    return c.store.put_auth(c.tenant, c.m["id"], c.m["storage_instance_name"], c.body)


# ---------------------------------------------------------------------------- volumes

def _v(c: Ctx) -> tuple[str, str, str]:
    return c.m["id"], c.m["storage_instance_name"], c.m["volume_name"]


@api("GET", SI + "/volumes")
def _vols(c: Ctx) -> Any:
    return Listing(c.store.list_vols(c.tenant, c.m["id"], c.m["storage_instance_name"], c.version))


@api("POST", SI + "/volumes")
def _vol_create(c: Ctx) -> Any:
    return c.store.create_vol(c.tenant, c.m["id"], c.m["storage_instance_name"], c.body, c.version)


@api("GET", VOL)
def _vol_get(c: Ctx) -> Any:
    return c.store.get_vol(c.tenant, *_v(c), c.version)


@api("PUT", VOL)
def _vol_put(c: Ctx) -> Any:
    return c.store.update_vol(c.tenant, *_v(c), c.body, c.version)


@api("DELETE", VOL)
def _vol_del(c: Ctx) -> Any:
    return c.store.delete_vol(c.tenant, *_v(c), c.version)


@api("GET", VOL + "/performance_policy")
def _pp_get(c: Ctx) -> Any:
    return c.store.get_perf(c.tenant, *_v(c))


@api("POST", VOL + "/performance_policy")
def _pp_post(c: Ctx) -> Any:
    return c.store.create_perf(c.tenant, *_v(c), c.body)


@api("PUT", VOL + "/performance_policy")
def _pp_put(c: Ctx) -> Any:
    return c.store.update_perf(c.tenant, *_v(c), c.body)


@api("DELETE", VOL + "/performance_policy")
def _pp_del(c: Ctx) -> Any:
    return c.store.delete_perf(c.tenant, *_v(c))


def _snap_routes(base: str, at_volume: bool) -> None:
    def parent(c: Ctx) -> tuple[str, str | None, str | None]:
        if at_volume:
            return _v(c)
        return c.m["id"], None, None

    ROUTES.append(Route("GET", base + "/snapshots", lambda c: Listing(c.store.list_snaps(c.tenant, *parent(c)))))
    ROUTES.append(Route("POST", base + "/snapshots", lambda c: c.store.create_snap(c.tenant, *parent(c), c.body)))
    ROUTES.append(Route("GET", base + "/snapshots/:timestamp", lambda c: c.store.get_snap(c.tenant, *parent(c), c.m["timestamp"])))
    ROUTES.append(Route("DELETE", base + "/snapshots/:timestamp", lambda c: c.store.delete_snap(c.tenant, *parent(c), c.m["timestamp"])))
    sp = base + "/snapshot_policies"
    one = sp + "/:snapshot_policy_name"
    ROUTES.append(Route("GET", sp, lambda c: Listing(c.store.list_policies(c.tenant, *parent(c)))))
    ROUTES.append(Route("POST", sp, lambda c: c.store.create_policy(c.tenant, *parent(c), c.body)))
    ROUTES.append(Route("GET", one, lambda c: c.store.get_policy(c.tenant, *parent(c), c.m["snapshot_policy_name"])))
    ROUTES.append(Route("PUT", one, lambda c: c.store.update_policy(c.tenant, *parent(c), c.m["snapshot_policy_name"], c.body)))
    ROUTES.append(Route("DELETE", one, lambda c: c.store.delete_policy(c.tenant, *parent(c), c.m["snapshot_policy_name"])))


_snap_routes(VOL, True)
_snap_routes(AI, False)


# ---------------------------------------------------------------------------- shared objects

def _crud(coll: str, param: str, kind: str) -> None:
    """Register list/create and get/put/delete routes for a tenant-level collection, served
    by the store's ``list_<kind>s``, ``create_<kind>``, ``get_<kind>``, ``update_<kind>``
    and ``delete_<kind>``."""
    base, one = f"/{coll}", f"/{coll}/:{param}"
    ROUTES.append(Route("GET", base, lambda c: Listing(getattr(c.store, f"list_{kind}s")(c.tenant))))
    ROUTES.append(Route("POST", base, lambda c: getattr(c.store, f"create_{kind}")(c.tenant, c.body)))
    ROUTES.append(Route("GET", one, lambda c: getattr(c.store, f"get_{kind}")(c.tenant, c.m[param])))
    ROUTES.append(Route("PUT", one,
                        lambda c: getattr(c.store, f"update_{kind}")(c.tenant, c.m[param], c.body)))
    ROUTES.append(Route("DELETE", one, lambda c: getattr(c.store, f"delete_{kind}")(c.tenant, c.m[param])))


_crud("initiators", "id", "initiator")
_crud("initiator_groups", "name", "group")
ROUTES.append(Route("GET", "/initiator_groups/:name/members",
                    lambda c: Listing(c.store.get_group(c.tenant, c.m["name"])["members"])))
ROUTES.append(Route("PUT", "/initiator_groups/:name/members",
                    lambda c: c.store.group_link(c.tenant, c.m["name"], c.body)))
_crud("access_network_ip_pools", "pool_name", "pool")
ROUTES.append(Route("GET", "/access_network_ip_pools/:pool_name/network_paths",
                    lambda c: Listing(c.store.get_network_path(c.tenant, c.m["pool_name"], None))))
ROUTES.append(Route("GET", "/access_network_ip_pools/:pool_name/network_paths/:path_name",
                    lambda c: c.store.get_network_path(c.tenant, c.m["pool_name"], c.m["path_name"])))
ROUTES.append(Route("PUT", "/access_network_ip_pools/:pool_name/network_paths/:path_name",
                    lambda c: c.store.update_network_path(c.tenant, c.m["pool_name"], c.m["path_name"], c.body)))
_crud("app_templates", "name", "template")
_crud("placement_policies", "name", "placement")


def _st(c: Ctx) -> dict[str, Any]:
    tpl = c.store.get_template(c.tenant, c.m["app_template_name"])
    for st in tpl["storage_templates"]:
        if st["name"] == c.m["storage_template_name"]:
            return st
    raise NotFound(f"storage template {c.m['storage_template_name']} does not exist in app_template {tpl['name']}")


def _vt(c: Ctx) -> dict[str, Any]:
    for vt in _st(c)["volume_templates"]:
        if vt["name"] == c.m["volume_template_name"]:
            return vt
    raise NotFound(f"volume template {c.m['volume_template_name']} does not exist")


_ST = "/app_templates/:app_template_name/storage_templates"
ROUTES.append(Route("GET", _ST, lambda c: Listing(c.store.get_template(c.tenant, c.m["app_template_name"])["storage_templates"])))
ROUTES.append(Route("GET", _ST + "/:storage_template_name", _st))
ROUTES.append(Route("GET", _ST + "/:storage_template_name/volume_templates", lambda c: Listing(_st(c)["volume_templates"])))
ROUTES.append(Route("GET", _ST + "/:storage_template_name/volume_templates/:volume_template_name", _vt))


# ---------------------------------------------------------------------------- plumbing

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=_DUMPS(body).encode(), content_type="application/json")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_json(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the body is not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise InvalidRequest(f"the body is not valid JSON: {str(e)[:200]}") from None


async def _read_body(request: web.Request, form_ok: bool) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    ctype = request.content_type
    if ctype == "application/x-www-form-urlencoded" and form_ok:
        try:
            return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=True))
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequest("the form body could not be parsed") from None
    body = _parse_json(raw)
    if not isinstance(body, dict):
        raise ValidationFailed(f"expected a JSON object, got {type(body).__name__}", field="body")
    return body


def _api_versions(request: web.Request) -> dict[str, Any]:
    return {"api_versions": ["v2.1", "v2.2"]}


def _schema_bytes(state: SimState, version: str) -> bytes:
    cached = state.schema_cache.get(version)
    if cached is None:
        doc = sch.schema_for(version)
        if version == "v2.2" and not state.store.opts.is_33:
            # products before 3.3 do not advertise template_override (clients check this)
            doc = json.loads(json.dumps(doc))
            doc["/app_instances"]["create"]["bodyParamSchema"]["properties"].pop("template_override", None)
        doc = dict(doc, request_time=0)
        cached = state.schema_cache[version] = json.dumps(doc, separators=(",", ":")).encode()
    return cached


def _tpl_of(request: web.Request) -> tuple[str, Route | None]:
    info = request.match_info
    route = getattr(info.route, "_sim_route", None) if info.route is not None else None
    if route is None:
        return "<unmatched>", None
    return route, getattr(info.route, "_sim_def", None)


@web.middleware
async def sim_middleware(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    state: SimState = request.app[STATE]
    path = request.path
    if path.startswith("/_sim"):
        try:
            return await handler(request)
        except web.HTTPException as e:
            return _json(e.status, {"name": "InvalidRequestError", "http": e.status, "code": 10, "message": e.reason})
    t0 = time.perf_counter()
    arrived = arrival_of(request) or t0
    template, route = _tpl_of(request)
    method = request.method
    version = path.split("/", 2)[1] if path.startswith("/v2.") else ""
    entry: dict[str, Any] = {
        "ts": time.time(), "method": method, "path": path, "template": template,
        "status": 0, "tenant": None, "user": None,
        "client": request.headers.get("Datera-Driver"),
    }
    state.counters[f"{method} {template}"] += 1
    drop = False
    try:
        resp, drop = await _handle(state, request, route, version, entry)
    except SimError as e:
        resp = _json(e.http, dict(e.body(), path=path.split(version, 1)[-1] if version else path,
                                  version=version or None))
    except web.HTTPException as e:
        err: SimError
        if e.status == 404:
            err = NotFound(f"no such endpoint: {method} {path}")
        elif e.status == 405:
            err = MethodNotAllowed(f"method {method} is not allowed on {path}")
        elif e.status == 413:
            err = InvalidRequest(f"the body is larger than {MAX_BODY} bytes")
            err.http = 413
        else:
            err = InvalidRequest(e.reason or "bad request")
            err.http = e.status if 400 <= e.status < 500 else 400
        resp = _json(err.http, err.body())
    except Exception as e:  # a simulator bug: answer JSON 500, keep serving
        log.exception("simulator error on %s %s", method, path)
        resp = _json(500, {"name": "InternalError", "code": 17, "http": 500,
                           "message": f"simulator error: {type(e).__name__}"})
    entry["status"] = resp.status
    entry["ms"] = round((time.perf_counter() - t0) * 1000, 3)
    entry["queued_ms"] = round((t0 - arrived) * 1000, 3)  # arrival to handling
    state.log.append(entry)
    faults = state.faults
    if faults.latency_ms and faults.applies(method, path):
        # the latency is the DSP's service time: the request was handled on arrival and
        # its answer leaves ``latency_ms`` after it came in. Sleeping *before* handling
        # instead made concurrent requests wake together and queue behind each other on
        # this one event loop, adding the simulator's own CPU time to every answer.
        rest = faults.latency_ms / 1000.0 - (time.perf_counter() - arrived)
        if rest > 0:
            await asyncio.sleep(rest)
    if drop:
        entry["dropped"] = True
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError()  # nothing is sent: the client sees a lost connection
    return resp


async def _handle(state: SimState, request: web.Request, route: Route | None, version: str,
                  entry: dict[str, Any]) -> tuple[web.Response, bool]:
    method = request.method
    path = request.path
    faults = state.faults
    if route is None and path != "/api_versions":
        # unmatched paths still go through aiohttp's 404/405 handling
        await request.app[FALLBACK](request)
    if faults.applies(method, path):
        if faults.take_init_500():
            raise _initializing()
        if faults.take_503():
            raise Unavailable("the DSP is busy; retry later (simulated 503)")
    if path == "/api_versions":
        return _json(200, _api_versions(request)), False
    assert route is not None
    store = state.store
    if route.template == "/login":
        creds = await _read_body(request, form_ok=True)
        key = state.sessions.login(creds)
        entry["user"] = creds.get("name") if isinstance(creds.get("name"), str) else None
        return _json(200, {"key": key, "version": version, "request_time": 0}), False
    token = request.headers.get("Auth-Token")
    if route.template == "/logout":
        state.sessions.logout(token)
        return _json(200, {"version": version, "data": {}}), False
    session = state.sessions.check(token)
    entry["user"] = session.user
    if route.template == "/api":
        return web.Response(body=_schema_bytes(state, version), content_type="application/json"), False
    tenant = store.resolve_tenant(request.headers.get("tenant"))
    entry["tenant"] = tenant
    body: dict[str, Any] = {}
    if method in _WRITES:
        body = await _read_body(request, form_ok=False)
        schema_key = route.schema_key or route.template
        validate(body, sch.body_schema(version, schema_key, _OPS[method]))
    params = dict(request.query)
    ctx = Ctx(store=store, tenant=tenant, version=version, body=body, params=params,
              m=dict(request.match_info), session=session, headers=request.headers)
    try:
        result = route.fn(ctx)
    finally:
        store.flush()
    rel = path[len(version) + 1:]
    env: dict[str, Any] = {"tenant": tenant, "path": rel, "version": version}
    if isinstance(result, Listing):
        data, meta = page(result.items, params, version, max_limit=faults.max_list_limit)
        env["data"] = data
        env["metadata"] = meta
    else:
        env["data"] = result
    env["request_time"] = 0
    drop = method in _WRITES and faults.applies(method, path) and faults.take_drop()
    return _json(200, env), drop


def _initializing() -> SimError:
    return Internal(INITIALIZING_MESSAGE)


# ---------------------------------------------------------------------------- admin

async def _admin_counters(request: web.Request) -> web.Response:
    return _json(200, dict(request.app[STATE].counters))


async def _admin_requests(request: web.Request) -> web.Response:
    return _json(200, list(request.app[STATE].log))


async def _admin_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return _json(200, {"reset": True})


async def _admin_faults_get(request: web.Request) -> web.Response:
    return _json(200, request.app[STATE].set_faults())


async def _admin_faults_put(request: web.Request) -> web.Response:
    try:
        knobs = _parse_json(await request.read() or b"{}")
        if not isinstance(knobs, dict):
            raise TypeError("expected a JSON object of fault knobs")
        return _json(200, request.app[STATE].set_faults(**knobs))
    except (ValueError, TypeError, InvalidRequest) as e:
        return _json(422, {"name": "ValidationFailedError", "code": 16, "http": 422, "message": str(e)})


async def _admin_state(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    return _json(200, {"summary": state.store.summary(), "sessions": len(state.sessions),
                       "sw_version": state.store.opts.sw_version})


# ---------------------------------------------------------------------------- app

def _aiohttp_path(template: str) -> str:
    if template == "/:tenant_path":
        return "/" + "{tenant_path:root(?:/[.A-Za-z0-9_\\-]+)*}"
    if template == "/tenants/:tenant_path":
        return "/tenants/" + _TENANT_RE
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", template)


async def _not_found(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()


def make_app(state: SimState) -> web.Application:
    """The aiohttp application serving one simulator's state (both sites share it)."""
    # both API versions' schemas are built now, not by the first write that validates a
    # body (v2.2 is derived from the v2.1 dump: ~40 ms that stalled the event loop, and so
    # every request in flight, at the first POST)
    sch.load_v22()
    app = web.Application(middlewares=[sim_middleware], client_max_size=MAX_BODY)
    app[STATE] = state

    async def fallback(request: web.Request) -> None:
        info = request.match_info
        if info.http_exception is not None:
            raise info.http_exception
        raise web.HTTPNotFound()

    app[FALLBACK] = fallback

    async def endpoint(request: web.Request) -> web.Response:  # never reached: middleware answers
        raise web.HTTPNotFound()

    for version in sch.VERSIONS:
        for r in ROUTES:
            res = app.router.add_route(r.method, f"/{version}" + _aiohttp_path(r.template), endpoint)
            res._sim_route = f"/{version}{r.template}"  # type: ignore[attr-defined]
            res._sim_def = r  # type: ignore[attr-defined]
    versions = app.router.add_get("/api_versions", endpoint)
    versions._sim_route = "/api_versions"  # type: ignore[attr-defined]  # counted as itself
    app.router.add_get("/_sim/counters", _admin_counters)
    app.router.add_get("/_sim/requests", _admin_requests)
    app.router.add_post("/_sim/reset", _admin_reset)
    app.router.add_get("/_sim/faults", _admin_faults_get)
    app.router.add_put("/_sim/faults", _admin_faults_put)
    app.router.add_get("/_sim/state", _admin_state)
    return app
