"""Tenancy: a stack configured for tenant A (``datera_tenant_id``) cannot read, change or
delete tenant B's objects - not with names crafted to look like B's objects or paths, and
not with B's ids.

A configuration that names a tenant confines every kind to that tenant's subtree
(``datera_iac.resources._util.check_tenant``): an id such as ``/root/team-b/<uuid>`` or a
``tenant`` outside it is refused with an InputError before any request.
"""

from __future__ import annotations

from typing import Any

import pytest

import datera_iac.resources  # noqa: F401
from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.errors import DateraIacError, InputError, NotFound
from datera_iac.resources.base import KINDS, Context
from tests.fault.conftest import ADMIN, ADMIN_PASSWORD, engine_ws

V, S, T = KINDS["Volume"], KINDS["Snapshot"], KINDS["Tenant"]


def _ctx(sim, tenant: str | None) -> Context:
    data: dict[str, Any] = {"endpoint": sim.http_url, "san_login": ADMIN, "san_password": ADMIN_PASSWORD}
    if tenant:
        data["datera_tenant_id"] = tenant
    cfg = DateraConfig.from_mapping(data, use_env=False)
    return Context(client=DspClient(cfg), config=cfg)


@pytest.fixture
def two_tenants(sim):
    """team-a and team-b; B owns volume ``b-vol`` (2 GiB) and a snapshot of it."""
    root = _ctx(sim, None)
    for n in ("team-a", "team-b"):
        T.create(root, T.spec_from({"name": n}))
    b = _ctx(sim, "team-b")
    vol = V.create(b, V.spec_from({"name": "b-vol", "size": 2}))
    snap = S.create(b, S.spec_from({"volume_id": vol.id}))
    yield {"b": b, "vol": vol, "snap": snap, "a": _ctx(sim, "team-a")}
    for c in (root, b):
        c.client.close()


def _b_intact(two_tenants) -> bool:
    b, vol = two_tenants["b"], two_tenants["vol"]
    now = V.read(b, vol.id)
    return (now is not None and now.spec.name == "b-vol" and now.spec.size == 2
            and S.read(b, two_tenants["snap"].id) is not None)


CRAFTED = [
    ("Volume", {"name": "../team-b/b-vol", "size": 1}),
    ("Volume", {"name": "team-b/b-vol", "size": 1}),
    ("Volume", {"name": "x-vol", "size": 1, "tenant": "team-a/../team-b"}),
    ("Volume", {"name": "x-vol", "size": 1, "tenant": "/root/team-a/../../root/team-b"}),
    ("Volume", {"name": "x-vol", "size": 1, "tenant": "/root/team-b/.."}),
    ("Tenant", {"name": "../team-b"}),
    ("Tenant", {"name": "team-a", "parent": "/root/team-b/.."}),
]


@pytest.mark.parametrize(("kind", "data"), CRAFTED, ids=[repr(d)[:50] for _, d in CRAFTED])
def test_crafted_names_refused_before_any_call(sim, two_tenants, kind, data):
    before = sum(sim.counters().values())
    with pytest.raises(InputError):
        KINDS[kind].spec_from(data, resource="crafted")
    assert sum(sim.counters().values()) == before
    assert _b_intact(two_tenants)


@pytest.mark.parametrize("vid", [
    "/root/team-a/../team-b/{leaf}", "/root/team-a/%2e%2e/team-b/{leaf}", "team-a/../team-b:{leaf}",
])
def test_crafted_snapshot_volume_ids_refused(sim, two_tenants, vid):
    """A snapshot whose volume_id climbs out of team-a with '..' is refused before any write
    (when spec_from lets the path through, create must refuse it)."""
    leaf = two_tenants["vol"].id.rsplit("/", 1)[1]
    writes = lambda: sum(n for k, n in sim.counters().items() if k.split()[0] in ("POST", "PUT", "DELETE")
                         and "login" not in k)
    before = writes()
    with pytest.raises((InputError, NotFound)):
        S.create(two_tenants["a"], S.spec_from({"volume_id": vid.format(leaf=leaf)}))
    assert writes() == before
    assert _b_intact(two_tenants)


def test_same_names_in_tenant_a_never_touch_b(sim, two_tenants, tmp_path, figure, engine_env):
    """A stack in team-a declaring a volume named like B's makes its own; adopting B's name
    from A finds nothing; destroying the stack leaves B's volume and snapshot as they were."""
    a = two_tenants["a"]
    with pytest.raises(NotFound):
        V.adopt(a, "b-vol")
    assert V.find(a, V.spec_from({"name": "b-vol", "size": 2})) is None
    stack = ("name: ta\nruntime: yaml\nresources:\n  v:\n    type: datera:index:Volume\n"
             "    properties: {name: b-vol, size: 5}\n")
    ws = engine_ws(sim, tmp_path / "a", stack, datera_tenant_id="team-a")
    try:
        _, result = ws.up(quiet=True)
        assert result is not None and result.ok, result and result.failures
        mine = next(iter(ws.load_state().resources.values())).id
        assert mine.startswith("/root/team-a/") and mine != two_tenants["vol"].id
        assert _b_intact(two_tenants)
        _, result = ws.up(destroy=True, quiet=True)
        assert result is not None and result.ok
    finally:
        ws.close()
    intact = _b_intact(two_tenants)
    figure("tenancy", case="crafted names", b_objects_touched=int(not intact))
    assert intact


def _attempt(label: str, fn: Any, results: dict[str, str]) -> None:
    """``fn()`` returns whether it reached B's object (a read that returns None did not)."""
    try:
        reached = fn()
    except (InputError, NotFound) as e:
        results[label] = f"refused ({type(e).__name__})"
    except DateraIacError as e:
        results[label] = f"refused ({type(e).__name__}: {str(e)[:60]})"
    else:
        results[label] = "ALLOWED" if reached else "refused (not found)"


def test_crafted_ids_cannot_reach_tenant_b(sim, two_tenants, figure):
    a, vol, snap = two_tenants["a"], two_tenants["vol"], two_tenants["snap"]
    results: dict[str, str] = {}
    _attempt("read", lambda: V.read(a, vol.id) is not None, results)
    _attempt("read_many", lambda: V.read_many(a, [vol.id]).get(vol.id) is not None, results)
    _attempt("adopt", lambda: V.adopt(a, vol.id) is not None, results)
    _attempt("snapshot", lambda: S.create(a, S.spec_from({"volume_id": vol.id})) is not None, results)
    _attempt("read snapshot", lambda: S.read(a, snap.id) is not None, results)
    _attempt("update", lambda: V.update(a, vol.id, vol.spec,
                                        V.spec_from({"name": "pwned-vol", "size": 3})) is not None, results)
    _attempt("delete", lambda: (V.delete(a, vol.id), V.read(two_tenants["b"], vol.id) is None)[1], results)
    allowed = sorted(k for k, v in results.items() if v == "ALLOWED")
    figure("tenancy", case="crafted ids", operations=len(results), allowed=len(allowed),
           allowed_ops=allowed)
    assert not allowed, results


def _foreign(sim, since: int) -> list[str]:
    """Requests after the ``since``-th that named tenant B (its tenant header or path)."""
    return [f"{e['method']} {e['path']} (tenant {e.get('tenant')})" for e in sim.request_log()[since:]
            if str(e.get("tenant") or "").startswith("/root/team-b") or "team-b" in str(e["path"])]


def test_every_naming_form_is_confined_before_any_request(sim, two_tenants, figure):
    """Every way of naming an object - ids, Cinder references (``tenant:ai:si:vol``), names
    with a tenant, snapshot ids, clone and snapshot sources, a ``tenant`` field, imports,
    finds and listings - passes the one confinement check before any request: naming
    tenant B from a context bound to team-a is refused with 0 requests in B. (Before: the
    Cinder reference imported B's volume; find, listings and the image path read B.)"""
    from datera_iac.resources.manage import list_manageable_snapshots, list_manageable_volumes
    from datera_iac.resources.queries import list_volumes

    a, vol, snap = two_tenants["a"], two_tenants["vol"], two_tenants["snap"]
    leaf = vol.id.rsplit("/", 1)[1]
    NA = KINDS["NodeAttachment"]
    forms: dict[str, Any] = {
        "Cinder reference tenant:ai:si:vol": lambda: V.adopt(a, "team-b:b-vol:storage-1:volume-1"),
        "Cinder reference /root/team-b:ai:si:vol": lambda: V.adopt(a, "root/team-b:b-vol:storage-1:volume-1"),
        "tenant:<ai id>": lambda: V.adopt(a, f"team-b:{leaf}"),
        "tenant path + name": lambda: V.adopt(a, "/root/team-b/b-vol"),
        "id": lambda: V.read(a, vol.id),
        "find by name in tenant B": lambda: V.find(a, V.spec_from({"name": "b-vol", "size": 2,
                                                                   "tenant": "team-b"})),
        "create with tenant B": lambda: V.create(a, V.spec_from({"name": "x-vol", "size": 1,
                                                                 "tenant": "team-b"})),
        "clone source": lambda: V.create(a, V.spec_from({"name": "x-vol", "size": 2,
                                                         "clone_of": vol.id})),
        "snapshot source": lambda: V.create(a, V.spec_from({"name": "x-vol", "size": 2,
                                                            "snapshot_id": snap.id})),
        "snapshot id": lambda: S.read(a, snap.id),
        "snapshot import": lambda: S.adopt(a, snap.id),
        "snapshot of B's volume": lambda: S.create(a, S.spec_from({"volume_id": vol.id})),
        "tenant id": lambda: T.read(a, "/root/team-b"),
        "tenant import": lambda: T.adopt(a, "team-b"),
        "tenant find": lambda: T.find(a, T.spec_from({"name": "team-b"})),
        "attachment volume_id": lambda: NA.create(a, NA.spec_from({"volume_id": vol.id})),
        "volume listing": lambda: list_volumes(a, tenant="team-b"),
        "manageable volumes": lambda: list_manageable_volumes(a, tenant="team-b"),
        "manageable snapshots": lambda: list_manageable_snapshots(a, tenants=["team-b"]),
    }
    escapes: dict[str, str] = {}
    reads: dict[str, list[str]] = {}
    for label, fn in forms.items():
        since = len(sim.request_log())
        try:
            got = fn()
        except InputError as e:
            if "outside the configured tenant" not in str(e):
                escapes[label] = f"refused for another reason: {e}"
        except Exception as e:  # noqa: BLE001 - anything but the confinement error is an escape
            escapes[label] = f"{type(e).__name__}: {str(e)[:80]}"
        else:
            escapes[label] = f"returned {str(got)[:60]}"
        foreign = _foreign(sim, since)
        if foreign:
            reads[label] = foreign
    figure("tenancy", case="naming forms", forms=len(forms), escapes=len(escapes),
           foreign_requests=sum(len(v) for v in reads.values()))
    assert not escapes and not reads, (escapes, reads)
    assert _b_intact(two_tenants)


def test_stack_with_a_foreign_tenant_is_refused_at_plan(sim, two_tenants, tmp_path, figure, engine_env):
    """A stack bound to team-a that declares ``tenant: team-b`` (or imports B's volume by
    Cinder reference) is refused by preview, with 0 requests in B."""
    stacks = {
        "tenant field": "properties: {name: x-vol, size: 1, tenant: team-b}",
        "import by Cinder reference": ("properties: {name: b-vol, size: 2}\n"
                                       "    options: {import: 'team-b:b-vol:storage-1:volume-1'}"),
    }
    found: dict[str, Any] = {}
    for label, body in stacks.items():
        text = f"name: ta\nruntime: yaml\nresources:\n  v:\n    type: datera:index:Volume\n    {body}\n"
        ws = engine_ws(sim, tmp_path / label.replace(" ", "-"), text, datera_tenant_id="team-a")
        since = len(sim.request_log())
        try:
            plan = ws.preview()
        except InputError as e:
            msg = str(e)
        else:
            msg = "; ".join(plan.errors) or "no error"
        finally:
            ws.close()
        found[label] = (msg, _foreign(sim, since))
    figure("tenancy", case="stack plan", stacks=len(stacks),
           foreign_requests=sum(len(f) for _, f in found.values()))
    for label, (msg, foreign) in found.items():
        assert "outside the configured tenant" in msg and "Pulumi.yaml:" in msg, (label, msg)
        assert not foreign, (label, foreign)
