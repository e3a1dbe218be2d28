"""Read-only queries the front ends need beyond one object: the system's version and
capacity, and the listings (volumes, snapshots, volume types, tenants, manageable volumes
and snapshots).

One implementation, three front ends: the engine's ``datera-iac ls``, the Terraform data
sources (``datera_volumes``, ``datera_snapshots``...) and the Pulumi functions all call
:data:`LISTINGS` and translate its rows; none of them talks to the DSP itself.

Costs (the client's pages: 1,000 items, the schema's maximum, or 100 on a DSP that
refuses large pages):

* volumes, snapshots of a tenant, volume types, tenants, manageable volumes/snapshots:
  one paged list, ``ceil(N / page)`` requests for N objects. The app_instance list embeds
  storage instances, volumes and their snapshots, so nothing is read per object;
* a volume's metadata (``volume_type`` and ``metadata``) is not in that list: filtering on
  them, or asking ``with_metadata``, adds one GET per volume whose name passed the
  ``name_regex`` filter;
* snapshots of one volume: one GET of that volume.
"""

from __future__ import annotations

import functools
import re
from concurrent.futures import ThreadPoolExecutor
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from datera_iac.dsp import System, from_api
from datera_iac.errors import InputError, NotFound
from datera_iac.resources._util import ROOT, check_tenant, normalize_tenant
from datera_iac.resources.base import KINDS, SENSITIVE, Context, Observed

__all__ = [
    "LISTINGS",
    "Column",
    "Listing",
    "SystemInfo",
    "kind_columns",
    "kind_row",
    "list_consistency_groups",
    "list_snapshots",
    "list_tenants",
    "list_volume_types",
    "list_volumes",
    "listing",
    "snapshots_of",
    "system_info",
    "volumes_and_entities",
]


#: metadata GETs of a listing in flight at once
META_READERS = 8


@attrs.frozen(kw_only=True)
class SystemInfo:
    """The DSP's ``/system`` entity plus the REST API version the client speaks."""

    system: System
    api_version: str


def system_info(ctx: Context) -> SystemInfo:
    """GET /system (one request) and the negotiated API version."""
    data = ctx.client.get("/system")
    return SystemInfo(system=from_api(data, System), api_version=str(ctx.client.api_version))


# ---- the listings -----------------------------------------------------------------------


def _regex(value: str | None, kind: str) -> re.Pattern[str] | None:
    try:
        return re.compile(value) if value else None
    except re.error as e:
        raise InputError(f"invalid regular expression: {e}", kind=kind, field="name_regex",
                         fix="write a Python regular expression, e.g. '^db-'") from None


def _where(ctx: Context, tenant: str | None, kind: str) -> str:
    from datera_iac.resources.layout import default_tenant

    where = normalize_tenant(tenant, kind=kind, field="tenant") if tenant else None
    return check_tenant(ctx, where or default_tenant(ctx), kind=kind, field="tenant")


def _cinder_layout(ai: Mapping[str, Any]) -> bool:
    sis = ai.get("storage_instances") or []
    return len(sis) == 1 and len((sis[0] or {}).get("volumes") or []) == 1


def list_volumes(
    ctx: Context, *, tenant: str | None = None, name_regex: str | None = None,
    volume_type: str | None = None, metadata: Mapping[str, str] | None = None,
    with_metadata: bool = False,
) -> list[Observed[Any, Any]]:
    """The volumes (single-volume app_instances, the Cinder layout) of one tenant (default:
    the provider's), sorted by name.

    ``name_regex``: keep names matching it (Python ``re.search``). ``volume_type`` and
    ``metadata`` (every given key with that value) filter on the volume's metadata, which
    costs one GET per volume left after the name filter; so does ``with_metadata`` (the
    rows then show ``volume_type`` and ``metadata``; without it they are unknown, None).
    Raises InputError for an invalid regex or tenant."""
    return [o for o, _ in volumes_and_entities(
        ctx, tenant=tenant, name_regex=name_regex, volume_type=volume_type,
        metadata=metadata, with_metadata=with_metadata)]


def volumes_and_entities(
    ctx: Context, *, tenant: str | None = None, name_regex: str | None = None,
    volume_type: str | None = None, metadata: Mapping[str, str] | None = None,
    with_metadata: bool = False,
) -> list[tuple[Observed[Any, Any], Mapping[str, Any]]]:
    """:func:`list_volumes`, each with the app_instance entity it was read from (which
    embeds the volume's snapshots: :func:`snapshots_of` needs no further request)."""
    from datera_iac.resources.volume import META_VOLUME_TYPE

    vol = KINDS["Volume"]
    pattern = _regex(name_regex, "Volume")
    where = _where(ctx, tenant, "Volume")
    want_meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    read_meta = with_metadata or volume_type is not None or bool(want_meta)
    out: list[tuple[Observed[Any, Any], Mapping[str, Any]]] = []
    ais = [ai for ai in _entities(ctx, where)
           if pattern is None or pattern.search(str(ai.get("name") or ""))]
    metas: list[dict[str, str] | None] = [None] * len(ais)
    if read_meta and ais:  # one GET each: several at once, like the engine's refresh
        with ThreadPoolExecutor(max_workers=min(META_READERS, len(ais))) as pool:
            metas = list(pool.map(lambda ai: vol.read_metadata(ctx, ai, where), ais))  # type: ignore[attr-defined]
    for ai, meta in zip(ais, metas, strict=True):
        if read_meta and meta is not None:
            if volume_type is not None and meta.get(META_VOLUME_TYPE) != volume_type:
                continue
            if any(meta.get(k) != v for k, v in want_meta.items()):
                continue
        out.append((vol.observe_entity(ctx, ai, where, meta), ai))  # type: ignore[attr-defined]
    return sorted(out, key=lambda p: (str(p[0].spec.name), p[0].id))


def _entities(ctx: Context, where: str) -> list[Mapping[str, Any]]:
    """The tenant's single-volume app_instances (one paged list); none when it is gone."""
    try:
        return [ai for ai in ctx.client.list("/app_instances", tenant=where)
                if _cinder_layout(ai)]
    except NotFound:
        return []


def list_consistency_groups(ctx: Context, *, tenant: str | None = None,
                            name_regex: str | None = None) -> list[Observed[Any, Any]]:
    """The consistency groups of one tenant (app_instances holding one storage instance
    with several volumes; one paged list), sorted by name."""
    from datera_iac.resources.group import is_group, observe_group

    pattern = _regex(name_regex, "ConsistencyGroup")
    where = _where(ctx, tenant, "ConsistencyGroup")
    try:
        ais = list(ctx.client.list("/app_instances", tenant=where))
    except NotFound:
        return []
    return sorted((observe_group(where, ai) for ai in ais if is_group(ai)
                   and (pattern is None or pattern.search(str(ai.get("name") or "")))),
                  key=lambda o: (str(o.spec.name), o.id))


def snapshots_of(ctx: Context, volumes: list[tuple[str, Mapping[str, Any]]]
                 ) -> list[Observed[Any, Any]]:
    """The snapshots embedded in app_instance entities (``(tenant, entity)`` pairs), sorted
    by volume and timestamp; no request."""
    from datera_iac.resources import snapshot as snap_mod
    from datera_iac.resources.layout import first_si_vol

    out = []
    for where, ai in volumes:
        _, vol = first_si_vol(ai)
        for s in (vol or {}).get("snapshots") or []:
            if isinstance(s, Mapping) and s.get("timestamp"):
                out.append(snap_mod.observe_snapshot(ctx, where, ai, s, None))
    return sorted(out, key=lambda o: (str(o.spec.volume_id), float(o.outputs.timestamp)))


def list_snapshots(
    ctx: Context, *, volume: str | None = None, tenant: str | None = None,
) -> list[Observed[Any, Any]]:
    """The snapshots of one volume (``volume``: its id, name or ``[tenant:]ai:si:vol``;
    one GET), or of every volume of a tenant (one paged list), sorted by volume and
    timestamp."""
    if volume is not None and tenant is not None:
        raise InputError("set volume or tenant, not both", kind="Snapshot", field="tenant",
                         fix="a volume id already names its tenant")
    if volume is not None:
        return snapshots_of(ctx, [KINDS["Volume"].resolve_ref(ctx, volume)])  # type: ignore[attr-defined]
    where = _where(ctx, tenant, "Snapshot")
    return snapshots_of(ctx, [(where, ai) for ai in _entities(ctx, where)])


def list_volume_types(ctx: Context, *, name_regex: str | None = None
                      ) -> list[Observed[Any, Any]]:
    """The volume types the DSP holds: its app_templates (one paged list), each as
    :meth:`VolumeType.adopt` reads it (materialized). A type that was never materialized
    lives only in a declaration (and in Cinder), not on the DSP."""
    kind = KINDS["VolumeType"]
    pattern = _regex(name_regex, "VolumeType")
    out = [kind.from_template(ctx, t)  # type: ignore[attr-defined]
           for t in ctx.client.list("/app_templates")
           if pattern is None or pattern.search(str(t.get("name") or ""))]
    return sorted(out, key=lambda o: str(o.spec.name))


def list_tenants(ctx: Context, *, name_regex: str | None = None) -> list[Observed[Any, Any]]:
    """The tenants below ``/root`` (one paged list), sorted by path."""
    from datera_iac.resources.tenant import observe_tenant

    pattern = _regex(name_regex, "Tenant")
    out = []
    for item in ctx.client.list("/tenants", tenant=ROOT):
        parent = normalize_tenant(item.get("parent_path") or ROOT) or ROOT
        name = item.get("name")
        if not name or name == "root" and parent == ROOT:
            continue
        if pattern is not None and not pattern.search(str(name)):
            continue
        out.append(observe_tenant(item, f"{parent.rstrip('/')}/{name}"))
    return sorted(out, key=lambda o: o.id)


# ---- one description per listing, for every front end ---------------------------------


@attrs.frozen(kw_only=True)
class Column:
    """An argument of a listing, or a field of its rows: name, Python type (``str``,
    ``int``, ``bool``, ``list[str]``, ``dict[str, str]`` or ``X | None``) and one line."""

    name: str
    type: Any
    doc: str


@attrs.frozen(kw_only=True)
class Listing:
    """One listing as every front end derives it: the engine's ``ls <name>``, Terraform's
    ``datera_<name>`` data source (its ``items`` attribute holds the rows) and the Pulumi
    function ``datera:index:list<Name>``."""

    name: str
    doc: str
    args: tuple[Column, ...]
    fields: tuple[Column, ...]
    #: the fields a table shows (the engine on a TTY)
    table: tuple[str, ...]
    fetch: Callable[..., list[Any]]
    to_row: Callable[[Any], dict[str, Any]]
    kind: str | None = None
    #: arguments a caller may pass but that no front end exposes (``managed``: the ids a
    #: stack already manages, which only the engine knows from its state)
    hidden: tuple[str, ...] = ()

    def rows(self, ctx: Context, **args: Any) -> list[dict[str, Any]]:
        """The rows, each a plain mapping of :attr:`fields` (secrets never included).
        Arguments left None take their default; an unknown one is an InputError."""
        known = {a.name for a in self.args}
        bad = sorted(set(args) - known - set(self.hidden))
        if bad:
            raise InputError(f"unknown argument {bad[0]!r} of listing {self.name!r}",
                             field=bad[0], fix=f"known: {', '.join(sorted(known)) or 'none'}")
        given = {k: v for k, v in args.items() if v is not None}
        return [self.to_row(o) for o in self.fetch(ctx, **given)]


@functools.cache
def kind_columns(kind_name: str) -> tuple[Column, ...]:
    """The row fields of a kind's listing: ``id``, the non-secret inputs, then the
    outputs whose name the inputs do not already use."""
    from datera_iac.resources.base import DOC

    kind = KINDS[kind_name]
    cols = [Column(name="id", type=str, doc=f"The {kind.name}'s id ({kind.import_id_doc}).")]
    seen = {"id"}
    for cls in (kind.Spec, kind.Outputs):
        hints = typing.get_type_hints(cls)
        for f in attrs.fields(cls):
            if f.name in seen or f.metadata.get(SENSITIVE):
                continue
            seen.add(f.name)
            cols.append(Column(name=f.name, type=hints[f.name], doc=str(f.metadata.get(DOC))))
    return tuple(cols)


def kind_row(obs: Observed[Any, Any], kind_name: str) -> dict[str, Any]:
    """A kind's observation as a listing row (see :func:`kind_columns`)."""
    kind = KINDS[kind_name]
    spec = kind.spec_to(obs.spec)
    outs = kind.outputs_to(obs.outputs)
    row: dict[str, Any] = {"id": obs.id}
    for c in kind_columns(kind_name)[1:]:
        v = spec.get(c.name)
        row[c.name] = outs.get(c.name) if v is None else v
    return row


def _kind_listing(name: str, kind: str, doc: str, args: tuple[Column, ...],
                  table: tuple[str, ...], fetch: Callable[..., list[Any]]) -> Listing:
    return Listing(name=name, doc=doc, args=args, fields=kind_columns(kind), table=table,
                   fetch=fetch, to_row=lambda o: kind_row(o, kind), kind=kind)


def _manageable_volume_row(mv: Any) -> dict[str, Any]:
    row = attrs.asdict(mv)
    row["snapshots"] = [ts for ts, _ in mv.snapshots]
    return row


_TENANT = Column(name="tenant", type=str | None,
                 doc="Tenant to list ('x' or '/root/x'); default: the provider's tenant.")
_REGEX = Column(name="name_regex", type=str | None,
                doc="Keep objects whose name matches this regular expression (Python "
                    "`re.search`).")
_SAFE = (
    Column(name="size", type=int | None, doc="Size in GiB."),
    Column(name="safe_to_manage", type=bool, doc="Whether importing it is safe."),
    Column(name="reason_not_safe", type=str, doc="Why not (empty when safe): already "
           "managed by Cinder or by this stack, another layout, attached, in use, or its "
           "parent volume is not safe."),
    Column(name="cinder_id", type=str | None, doc="The Cinder volume id when Cinder "
           "manages it (its name is OS-<id>)."),
)


def _manageable(fn_name: str) -> Callable[..., list[Any]]:
    def fetch(ctx: Context, **kw: Any) -> list[Any]:
        from datera_iac.resources import manage

        return list(getattr(manage, fn_name)(ctx, **kw))
    return fetch


def _build() -> dict[str, Listing]:
    items = [
        _kind_listing(
            "volumes", "Volume",
            "The volumes of a tenant, filtered by name regex, volume type or metadata.",
            (_TENANT, _REGEX,
             Column(name="volume_type", type=str | None,
                    doc="Keep volumes of this volume type (recorded in their metadata; one "
                        "GET per volume)."),
             Column(name="metadata", type=dict[str, str] | None,
                    doc="Keep volumes whose metadata holds every one of these key/value "
                        "pairs (one GET per volume)."),
             Column(name="with_metadata", type=bool | None,
                    doc="Also read each volume's volume_type and metadata (one GET per "
                        "volume); otherwise they are unknown (null).")),
            ("name", "size", "volume_type", "replica_count", "op_state", "id"),
            list_volumes),
        _kind_listing(
            "snapshots", "Snapshot",
            "The snapshots of one volume, or of every volume of a tenant.",
            (Column(name="volume", type=str | None,
                    doc="The volume (id, name or [tenant:]ai:si:vol) whose snapshots to list; "
                        "unset: every volume of the tenant."),
             _TENANT),
            ("volume_id", "timestamp", "uuid", "op_state", "id"),
            list_snapshots),
        _kind_listing(
            "volume_types", "VolumeType",
            "The volume types materialized on the DSP (its app_templates).",
            (_REGEX,),
            ("name", "replica_count", "placement_mode", "ip_pool", "total_iops_max", "id"),
            list_volume_types),
        _kind_listing(
            "tenants", "Tenant", "The tenants of the DSP.", (_REGEX,),
            ("path", "description", "parent"), list_tenants),
        _kind_listing(
            "consistency_groups", "ConsistencyGroup",
            "The consistency groups of a tenant (app_instances holding several volumes).",
            (_TENANT, _REGEX),
            ("name", "volumes", "replica_count", "admin_state", "id"),
            list_consistency_groups),
        Listing(
            name="manageable_volumes",
            doc="Every app_instance of a tenant with the Cinder driver's verdict on managing "
                "it (cinder manageable-list).",
            args=(_TENANT,),
            fields=(Column(name="reference", type=str, doc="Cinder's source-name, "
                           "[tenant:]ai:si:vol."),
                    Column(name="id", type=str, doc="The volume id to import."),
                    Column(name="name", type=str, doc="The app_instance's name."),
                    Column(name="tenant", type=str, doc="Its tenant."),
                    *_SAFE,
                    Column(name="snapshots", type=list[str],
                           doc="utc_ts of its volume's snapshots.")),
            table=("name", "size", "safe_to_manage", "reason_not_safe", "reference"),
            fetch=_manageable("list_manageable_volumes"), to_row=_manageable_volume_row,
            hidden=("managed",)),
        Listing(
            name="manageable_snapshots",
            doc="Every volume snapshot of a tenant with the Cinder driver's verdict on "
                "managing it.",
            args=(_TENANT,),
            fields=(Column(name="reference", type=str, doc="The snapshot's timestamp "
                           "(Cinder's source-name)."),
                    Column(name="id", type=str, doc="The snapshot id to import."),
                    Column(name="source_reference", type=str,
                           doc="The parent volume's reference."),
                    *_SAFE,
                    Column(name="uuid", type=str | None, doc="The snapshot's uuid, if any.")),
            table=("id", "safe_to_manage", "reason_not_safe", "source_reference"),
            fetch=_manageable("list_manageable_snapshots"), to_row=attrs.asdict,
            hidden=("managed",)),
    ]
    return {i.name: i for i in items}


#: Every listing by name: volumes, snapshots, volume_types, tenants, consistency_groups,
#: manageable_volumes, manageable_snapshots.
LISTINGS: dict[str, Listing] = _build()


def listing(name: str) -> Listing:
    """The listing of that name (``-`` and ``_`` alike); InputError naming the known ones."""
    key = name.replace("-", "_")
    if key not in LISTINGS:
        raise InputError(f"no listing {name!r}", field="listing",
                         fix=f"known: {', '.join(LISTINGS)}")
    return LISTINGS[key]
