"""Discovery to code: what a DSP holds, written as a stack that adopts it.

``datera-iac import --discover`` lists a tenant's objects through
:data:`datera_iac.resources.queries.LISTINGS` (paged reads; each volume's metadata is one
more GET), and writes either a Pulumi-YAML stack or Terraform HCL declaring each object
with the values the DSP shows, an import of its id (the ``import`` resource option, or an
``import {}`` block), and references between them (a volume's tenant and materialized
volume type, a snapshot's volume). The first ``preview`` / ``terraform plan`` then shows
imports only (no field changes), ``up`` / ``apply`` adopts without writing to the DSP, and
the next plan is empty.

What the DSP does not show is not invented: a CHAP secret becomes a secret config value
(``config: {<name>: {type: string, secret: true}}`` / a sensitive variable) the user must
fill in; a volume's create source (clone, snapshot, image) is unknown and left out. What a
declaration sets to its kind's default is left out too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

from datera_iac.cinder import _hcl_key, _hcl_string, hcl_label
from datera_iac.errors import InputError
from datera_iac.resources.base import KINDS, REFERENCE, SENSITIVE, Context, Observed, camel
from datera_iac.resources.queries import (
    list_tenants,
    list_volume_types,
    snapshots_of,
    volumes_and_entities,
)

__all__ = ["Found", "Ref", "Secret", "discover", "to_hcl", "to_pulumi_yaml", "FILTERS"]

#: ``--filter`` keys (the volume listing's filters); ``metadata.<key>=<value>`` too.
FILTERS = ("name_regex", "volume_type")


@attrs.frozen
class Ref:
    """A reference to another discovered object's attribute (``${res.attr}``)."""

    resource: str
    attr: str


@attrs.frozen
class Secret:
    """A secret the DSP does not show: a secret config value / sensitive variable."""

    key: str


@attrs.frozen(kw_only=True)
class Found:
    """One discovered object: its logical name, kind, import id and declared inputs
    (plain values, :class:`Ref` or :class:`Secret`)."""

    name: str
    kind: str
    id: str
    props: dict[str, Any]


def _label(prefix: str, text: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", f"{prefix}_{text}").strip("_") or prefix
    if not re.match(r"[A-Za-z_]", base):
        base = "_" + base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def _props(obs: Observed[Any, Any], kind_name: str, name: str,
           found: list[Found]) -> dict[str, Any]:
    """The inputs a declaration needs to equal ``obs``: every field that differs from its
    default, references where the value is a discovered object, secrets as placeholders."""
    kind = KINDS[kind_name]
    data = kind.spec_to(obs.spec)
    out: dict[str, Any] = {}
    for f in attrs.fields(kind.Spec):
        value = data.get(f.name)
        if f.metadata.get(SENSITIVE):
            user = f.name.replace("secret", "user")
            if user != f.name and data.get(user) is not None:
                out[f.name] = Secret(camel(f"{name}_{f.name}"))
            continue
        default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default  # type: ignore[attr-defined]
        if value is None or value == default:
            continue
        target = f.metadata.get(REFERENCE)
        ref = None
        if target:
            for other in found:
                if other.kind != target:
                    continue
                if other.id == value:
                    ref = Ref(other.name, "id")
                elif other.props.get("name") == value:
                    ref = Ref(other.name, "name")
                if ref:
                    break
        out[f.name] = ref or value
    return out


def discover(ctx: Context, *, tenant: str | None = None, name_regex: str | None = None,
             volume_type: str | None = None, metadata: Mapping[str, str] | None = None,
             types: bool = True, snapshots: bool = True) -> list[Found]:
    """The tenant's (default: the provider's) tenant object, materialized volume types,
    volumes (filtered like ``ls volumes``) and their snapshots, in dependency order.

    With a filter, only the types the selected volumes use are kept."""
    from datera_iac.resources._util import ROOT, normalize_tenant
    from datera_iac.resources.layout import default_tenant

    where = (normalize_tenant(tenant, kind="Volume", field="tenant") if tenant else None) \
        or default_tenant(ctx)
    taken: set[str] = set()
    found: list[Found] = []
    if where != ROOT:
        obs = next((t for t in list_tenants(ctx) if t.id == where), None)
        if obs is None:
            raise InputError(f"no tenant {where!r} on the DSP", field="tenant",
                             fix="see `datera-iac ls tenants`")
        name = _label("tenant", str(obs.spec.name), taken)
        found.append(Found(name=name, kind="Tenant", id=obs.id,
                           props=_props(obs, "Tenant", name, found)))
    pairs = volumes_and_entities(ctx, tenant=where, name_regex=name_regex,
                                 volume_type=volume_type, metadata=metadata,
                                 with_metadata=True)
    vols = [o for o, _ in pairs]
    if types:
        filtered = bool(name_regex or volume_type or metadata)
        used = {v.spec.volume_type for v in vols}
        for obs in list_volume_types(ctx):
            if filtered and obs.spec.name not in used:
                continue
            name = _label("type", str(obs.spec.name), taken)
            found.append(Found(name=name, kind="VolumeType", id=obs.id,
                               props=_props(obs, "VolumeType", name, found)))
    for obs in vols:
        name = _label("vol", str(obs.spec.name), taken)
        found.append(Found(name=name, kind="Volume", id=obs.id,
                           props=_props(obs, "Volume", name, found)))
    if snapshots:
        by_volume = {f.id: f.name for f in found if f.kind == "Volume"}
        for obs in snapshots_of(ctx, [(where, ai) for _, ai in pairs]):
            parent = by_volume.get(obs.spec.volume_id)
            if parent is None:
                continue
            name = _label(f"{parent}_snap", str(obs.outputs.timestamp).split(".")[0], taken)
            found.append(Found(name=name, kind="Snapshot", id=obs.id,
                               props=_props(obs, "Snapshot", name, found)))
    return found


# ---- Pulumi YAML ------------------------------------------------------------------------


def _yaml_value(v: Any) -> Any:
    if isinstance(v, Ref):
        return f"${{{v.resource}.{camel(v.attr)}}}"
    if isinstance(v, Secret):
        return f"${{{v.key}}}"
    return v


def to_pulumi_yaml(found: list[Found], *, project: str = "discovered",
                   protect: bool = False) -> str:
    """A Pulumi-YAML stack (``Pulumi.yaml``) declaring ``found`` with ``import`` options."""
    secrets = sorted({v.key for f in found for v in f.props.values() if isinstance(v, Secret)})
    doc: dict[str, Any] = {"name": project, "runtime": "yaml",
                           "description": "Discovered by `datera-iac import --discover`."}
    if secrets:
        doc["config"] = {k: {"type": "string", "secret": True} for k in secrets}
    resources: dict[str, Any] = {}
    for f in found:
        options: dict[str, Any] = {"import": f.id}
        if protect:
            options["protect"] = True
        resources[f.name] = {
            "type": KINDS[f.kind].token,
            "properties": {camel(k): _yaml_value(v) for k, v in f.props.items()},
            "options": options,
        }
    doc["resources"] = resources
    head = ("# Each resource adopts the DSP object of its `import` id: `datera-iac preview` "
            "shows\n# imports only, `datera-iac up` adopts them without writing to the DSP.\n")
    if secrets:
        head += ("# Set the secrets the DSP does not show first, e.g.\n#   datera-iac config "
                 f"... or -c {secrets[0]}=<value> (or in Pulumi.<stack>.yaml).\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when built with it
    return head + yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False,
                            width=100)


# ---- Terraform HCL ----------------------------------------------------------------------


def _hcl_value(v: Any, found_types: dict[str, str]) -> str:
    if isinstance(v, Ref):
        return f"{found_types[v.resource]}.{v.resource}.{v.attr}"
    if isinstance(v, Secret):
        return f"var.{v.key}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, str):
        return _hcl_string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_hcl_value(x, found_types) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        width = max(len(_hcl_key(str(k))) for k in v)
        inner = "\n".join(f"    {_hcl_key(str(k)).ljust(width)} = {_hcl_value(x, found_types)}"
                          for k, x in v.items())
        return "{\n" + inner + "\n  }"
    raise TypeError(f"no HCL form for {v!r}")


def to_hcl(found: list[Found]) -> str:
    """Terraform configuration declaring ``found`` with one ``import {}`` block each."""
    types = {f.name: KINDS[f.kind].tf_type for f in found}
    out = ['terraform {\n  required_providers {\n    datera = { source = "datera/datera" }'
           '\n  }\n}\n\nprovider "datera" {}\n']
    secrets = sorted({v.key for f in found for v in f.props.values() if isinstance(v, Secret)})
    for key in secrets:
        out.append(f'variable "{key}" {{\n  type      = string\n  sensitive = true\n}}\n')
    for f in found:
        label = hcl_label(f.name)
        pairs = [(k, _hcl_value(v, types)) for k, v in f.props.items()]
        single = [(k, v) for k, v in pairs if "\n" not in v]
        multi = [(k, v) for k, v in pairs if "\n" in v]
        width = max((len(k) for k, _ in single), default=0)
        body = [f"  {k.ljust(width)} = {v}" for k, v in single]
        body += [f"  {k} = {v}" for k, v in multi]
        out.append(f'import {{\n  to = {types[f.name]}.{label}\n  id = {_hcl_string(f.id)}\n}}\n'
                   f'resource "{types[f.name]}" "{label}" {{\n' + "\n".join(body) + "\n}\n")
    return "\n".join(out)


# ---- the command line (``datera-iac import --discover``) --------------------------------


def discover_options(fn: Any) -> Any:
    """The options ``import`` gains for discovery."""
    import click

    opts = [
        click.option("--discover", "discover_mode", is_flag=True, help="Write a stack declaring the DSP's "
                     "objects (each with its import) instead of importing one object."),
        click.option("--tenant", "discover_tenant", default=None, metavar="TENANT",
                     help="With --discover: the tenant to discover [default: the provider's]."),
        click.option("--filter", "discover_filter", multiple=True, metavar="KEY=VALUE",
                     help="With --discover: keep volumes matching name_regex=RE, "
                          "volume_type=NAME or metadata.KEY=VALUE; repeatable."),
        click.option("--out", "discover_out", default=None, metavar="FILE",
                     type=click.Path(dir_okay=False, path_type=Path),
                     help="With --discover: the file to write: *.tf for Terraform HCL "
                          "(import blocks), anything else for a Pulumi-YAML stack."),
        click.option("--no-snapshots", "discover_no_snapshots", is_flag=True,
                     help="With --discover: leave snapshots out."),
        click.option("--force", "discover_force", is_flag=True,
                     help="With --discover: overwrite --out if it exists."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def parse_filters(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``--filter`` pairs as :func:`discover` arguments; InputError for an unknown key."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"{pair!r} is not KEY=VALUE", field="filter",
                             fix="e.g. --filter name_regex=^db- or --filter metadata.app=db")
        if key.startswith("metadata."):
            out.setdefault("metadata", {})[key[len("metadata."):]] = value
        elif key in FILTERS:
            out[key] = value
        else:
            raise InputError(f"unknown filter {key!r}", field="filter",
                             fix=f"filters: {', '.join(FILTERS)}, metadata.<key>")
    return out


def run_discover(ws: Any, *, discover_mode: bool, discover_tenant: str | None,
                 discover_filter: tuple[str, ...], discover_out: Path | None,
                 discover_no_snapshots: bool, discover_force: bool, protect: bool) -> list[Found]:
    """Discover through the workspace's DSP and write ``discover_out``."""
    import click

    if discover_out is None:
        raise InputError("--discover needs --out FILE", field="out",
                         fix="e.g. --out discovered/Pulumi.yaml or --out main.tf")
    if discover_out.exists() and not discover_force:
        raise InputError(f"{discover_out} exists", field="out",
                         fix="choose another file, or pass --force to overwrite it")
    found = discover(ws.context(), tenant=discover_tenant, snapshots=not discover_no_snapshots,
                     **parse_filters(discover_filter))
    hcl = discover_out.suffix == ".tf"
    text = to_hcl(found) if hcl else to_pulumi_yaml(found, protect=protect)
    discover_out.parent.mkdir(parents=True, exist_ok=True)
    discover_out.write_text(text)
    counts: dict[str, int] = {}
    for f in found:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    what = ", ".join(f"{n} {k}" for k, n in counts.items()) or "nothing"
    secrets = sorted({v.key for f in found for v in f.props.values() if isinstance(v, Secret)})
    click.echo(f"wrote {discover_out}: {what}")
    if secrets:
        click.echo(f"note: set the secrets the DSP does not show: {', '.join(secrets)}",
                   err=True)
    return found
