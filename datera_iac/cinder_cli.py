"""``datera-iac cinder``: Cinder volume types and the cinder.conf backend section.

Reading a stack file is the engine's job; these commands take their input on the command
line, and the same rendering is available to the engine as :func:`render_volume_types` and
:func:`render_conf`::

    datera-iac cinder volume-types --type datera_2way --property DF:replica_count=2
    datera-iac cinder volume-types --type gold -p DF:total_iops_max=9000 --type silver -p replica_count=2 --format hcl
    datera-iac cinder conf --config datera.yaml --set datera_tenant_id=Map
    datera-iac cinder import-type type.json --qos qos.json
    datera-iac cinder properties
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from datera_iac import cinder as dfc
from datera_iac.cinder import render_conf
from datera_iac.errors import ConfigError, InputError

__all__ = ["cinder", "render_volume_types", "render_conf", "load_config", "stack_volume_types",
           "stack_provider_config", "volume_type_from_openstack", "FORMATS"]

FORMATS = ("openstack", "hcl", "json")


def render_volume_types(specs: Iterable[Any], fmt: str = "openstack") -> str:
    """Render VolumeType specs (:class:`~datera_iac.resources.volume_type.VolumeTypeSpec`)
    as ``openstack`` command lines, terraform-provider-openstack ``hcl`` blocks, or ``json``
    (a list of ``{name, extra_specs, openstack_command, terraform_hcl}``)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}", field="format",
                         fix=f"use one of {', '.join(FORMATS)}")
    from datera_iac.resources.volume_type import type_outputs

    rendered = []
    for spec in specs:
        out = type_outputs(spec, spec.name)
        rendered.append((spec, out))
    if fmt == "openstack":
        return "".join(f"{out.openstack_command}\n" for _, out in rendered)
    if fmt == "hcl":
        return "\n".join(out.terraform_hcl or "" for _, out in rendered)
    return json.dumps(
        [{"name": spec.name, "extra_specs": out.extra_specs,
          "openstack_command": out.openstack_command, "terraform_hcl": out.terraform_hcl}
         for spec, out in rendered],
        indent=2,
    ) + "\n"


def load_config(path: str | None, settings: Mapping[str, Any]) -> Any:
    """A DateraConfig from a YAML/JSON file of cinder.conf-named options, overridden by
    ``settings`` (a stack's provider configuration, then ``--set``), with the DATERA_*
    environment as fallback."""
    from datera_iac.config import DateraConfig

    data: dict[str, Any] = {}
    if path:
        text = Path(path).read_text(encoding="utf-8")
        from datera_iac.engine.yamlstack import YamlSyntaxError, parse_with_lines

        try:
            loaded = parse_with_lines(text)  # the stack files' loader, with its size limits
        except YamlSyntaxError as e:
            raise ConfigError(f"{path}:{e.line}: not YAML/JSON: {e}"
                              + (f" ({e.fix})" if e.fix else "")) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{path}: expected a map of cinder.conf option names to values")
        data.update(loaded)
    data.update(settings)
    return DateraConfig.from_mapping(data)


def stack_volume_types(path: str, *, stack: str = "dev") -> list[Any]:
    """The VolumeType specs declared in a stack file (YAML or Python program), via the
    engine's loader. A property that refers to another resource cannot be known before
    ``up`` and is an input error naming the resource and field."""
    from datera_iac.engine.core import load_stack
    from datera_iac.engine.model import refs_in
    from datera_iac.resources.base import kind_for
    from datera_iac.resources.volume_type import VolumeType

    kind = kind_for(VolumeType.name)
    specs = []
    for decl in load_stack(path, stack=stack).resources.values():
        if kind_for(decl.type) is not kind:
            continue
        for field, value in decl.properties.items():
            if any(True for _ in refs_in(value)):
                raise InputError("refers to another resource, so its value is known only "
                                 "after up", kind=VolumeType.name, field=field,
                                 resource=decl.name, fix="write a literal value, or run "
                                 "`datera-iac up` and use the type's outputs")
        specs.append(kind.spec_from(decl.properties, resource=decl.name))
    return specs


def stack_provider_config(path: str, *, stack: str = "dev") -> dict[str, Any]:
    """The provider configuration (``datera:<option>`` keys) a stack file carries."""
    from datera_iac.engine.core import load_stack

    return dict(load_stack(path, stack=stack).provider_config)


def volume_type_from_openstack(
    type_doc: Mapping[str, Any], qos_doc: Mapping[str, Any] | None = None
) -> tuple[Any, tuple[str, ...]]:
    """A VolumeType spec from ``openstack volume type show -f json`` (and, when the type has
    QoS specs, ``openstack volume qos show -f json``), read as the driver reads them
    (:func:`datera_iac.cinder.fold_qos_specs`). Returns the spec and the keys the driver
    would ignore (dropped here)."""
    from datera_iac.resources.base import kind_for
    from datera_iac.resources.volume_type import VolumeType

    if not isinstance(type_doc, Mapping) or not type_doc.get("name"):
        raise InputError("not a volume type document", kind=VolumeType.name,
                         fix="give the JSON of `openstack volume type show -f json <type>`")
    name = str(type_doc["name"])
    extra = dfc.parse_osc_properties(type_doc.get("properties", type_doc.get("extra_specs")))
    qos = dfc.parse_osc_properties(qos_doc.get("properties", qos_doc.get("specs"))) if qos_doc else {}
    specs, ignored = dfc.fold_qos_specs(extra, qos)
    norm = dfc.normalize_extra_specs(specs, kind=VolumeType.name, resource=name)
    data: dict[str, Any] = {"name": name, "backend_name": norm.pop(dfc.BACKEND_KEY, None)
                            or dfc.DEFAULT_BACKEND}
    if type_doc.get("description"):
        data["description"] = type_doc["description"]
    if type_doc.get("is_public") is False:
        data["is_public"] = False
    data.update({k[len(dfc.PREFIX):]: v for k, v in norm.items()})
    return kind_for(VolumeType.name).spec_from(data, resource=name), ignored


def _stack_resource(spec: Any) -> dict[str, Any]:
    """A Pulumi-YAML resource entry for a VolumeType spec (camelCase, set fields only)."""
    from datera_iac.resources.base import camel, kind_for
    from datera_iac.resources.volume_type import VolumeType

    kind = kind_for(VolumeType.name)
    defaults = kind.spec_to(kind.spec_from({"name": spec.name}))
    props = {camel(k): v for k, v in kind.spec_to(spec).items()
             if k == "name" or v != defaults.get(k)}
    return {"type": VolumeType.token, "properties": props}


def _pairs(values: Iterable[str], what: str) -> list[tuple[str, str]]:
    out = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        out.append((key.strip(), value))
    return out


class _TypesCommand(click.Command):
    """Keeps the order of ``--type`` and ``--property`` so each property belongs to the
    ``--type`` before it (click alone would only collect two separate lists)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        groups: list[tuple[str, list[str]]] = []
        orphans: list[str] = []
        it = iter(range(len(args)))
        for i in it:
            arg = args[i]
            opt, eq, inline = arg.partition("=")
            if arg == "--":
                break
            if opt in ("--type", "-t", "--property", "-p"):
                if eq:
                    value = inline
                elif i + 1 < len(args):
                    value = args[i + 1]
                    next(it, None)
                else:
                    continue  # click reports the missing value
                if opt in ("--type", "-t"):
                    groups.append((value, []))
                elif groups:
                    groups[-1][1].append(value)
                else:
                    orphans.append(value)
        ctx.meta["cinder.type_groups"] = groups
        ctx.meta["cinder.orphans"] = orphans
        return super().parse_args(ctx, args)


@click.group()
def cinder_group() -> None:
    """Cinder volume types (DF: extra specs) and the cinder.conf backend section."""


@cinder_group.command("volume-types", cls=_TypesCommand)
@click.option("--stack-file", "-f", "stack_file", type=click.Path(exists=True),
              help="Also emit every VolumeType declared in this stack (Pulumi.yaml or program).")
@click.option("--stack", "stack_name", default="dev", show_default=True,
              help="Stack name used to load --stack-file.")
@click.option("--type", "-t", "types", multiple=True, metavar="NAME",
              help="A volume type; the --property options after it belong to it.")
@click.option("--property", "-p", "props", multiple=True, metavar="DF:KEY=VALUE",
              help="A DF: extra spec of the preceding --type (prefix optional).")
@click.option("--backend-name", default=dfc.DEFAULT_BACKEND, show_default=True,
              help="volume_backend_name of the Datera backend.")
@click.option("--description", default=None, help="Description (applies to every type).")
@click.option("--private", is_flag=True, help="Create the types as private (not public).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="openstack",
              show_default=True, help="openstack CLI lines, terraform-provider-openstack HCL, or JSON.")
@click.pass_context
def volume_types(ctx: click.Context, stack_file: str | None, stack_name: str,
                 types: tuple[str, ...], props: tuple[str, ...],
                 backend_name: str, description: str | None, private: bool, fmt: str) -> None:
    """Print Datera volume types as openstack commands, Terraform HCL or JSON.

    \b
    Examples:
      datera-iac cinder volume-types --type datera_2way --property DF:replica_count=2
      datera-iac cinder volume-types -f Pulumi.yaml --format hcl
    """
    from datera_iac.resources.volume_type import VolumeType

    if ctx.meta.get("cinder.orphans"):
        raise click.UsageError("--property must follow the --type it belongs to")
    groups = ctx.meta.get("cinder.type_groups") or [(t, []) for t in types]
    specs = stack_volume_types(stack_file, stack=stack_name) if stack_file else []
    if not groups and not specs:
        raise click.UsageError("give at least one --type NAME (or a --stack-file declaring types)")
    kind = VolumeType()
    for name, plist in groups:
        data: dict[str, Any] = {"name": name, "backend_name": backend_name,
                                "description": description, "is_public": not private}
        for key, value in _pairs(plist, "--property"):
            if key == dfc.BACKEND_KEY:
                data["backend_name"] = value
                continue
            norm = dfc.normalize_extra_specs({key: value}, resource=name)
            (df_key,) = norm
            field = df_key[len(dfc.PREFIX):]
            if field in data and data[field] != value:
                raise InputError(f"{df_key} given twice", kind="VolumeType", resource=name,
                                 field=f"extra_specs.{df_key}", fix="give each property once")
            data[field] = value
        specs.append(kind.spec_from(data, resource=name))
    click.echo(render_volume_types(specs, fmt), nl=False)


@cinder_group.command("import-type")
@click.argument("type_json", type=click.Path(exists=True, dir_okay=False))
@click.option("--qos", "qos_json", type=click.Path(exists=True, dir_okay=False),
              help="JSON of `openstack volume qos show -f json` for the type's QoS specs.")
@click.option("--resource", "resource_name", default=None,
              help="Logical name of the resource in the stack (default: the type name).")
def import_type(type_json: str, qos_json: str | None, resource_name: str | None) -> None:
    """Turn an existing Cinder volume type into a stack resource (Pulumi YAML).

    QoS specs override extra specs and any ``scope:key`` counts as ``DF:key``, as in the
    driver; keys the driver ignores are listed on stderr.

    \b
    Example:
      openstack volume type show -f json datera_2way > t.json
      datera-iac cinder import-type t.json >> Pulumi.yaml   # under resources:
    """
    import yaml

    def load(path: str) -> Any:
        try:
            return json.loads(Path(path).read_text(encoding="utf-8"))
        except ValueError as e:
            raise InputError(f"{path} is not JSON: {e}", kind="VolumeType",
                             fix="give the output of `openstack ... show -f json`") from None

    spec, ignored = volume_type_from_openstack(load(type_json), load(qos_json) if qos_json else None)
    for key in ignored:
        click.echo(f"note: {key!r} is no DF: setting (the Datera driver ignores it); left out", err=True)
    click.echo(yaml.safe_dump({resource_name or spec.name: _stack_resource(spec)},
                              default_flow_style=False, sort_keys=False), nl=False)


@cinder_group.command("conf")
@click.option("--stack-file", "-f", "stack_file", type=click.Path(exists=True),
              help="Take the provider configuration (datera:<option> keys) of this stack.")
@click.option("--stack", "stack_name", default="dev", show_default=True,
              help="Stack name used to load --stack-file.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="YAML/JSON file of cinder.conf-named options (san_ip, san_login, ...).")
@click.option("--set", "settings", multiple=True, metavar="OPTION=VALUE",
              help="Set one option (wins over the file and the DATERA_* environment).")
@click.option("--backend-name", default=None,
              help="Backend section / volume_backend_name (default: the config's, else datera).")
@click.option("--show-password", is_flag=True,
              help="Write san_password in clear (masked by default).")
def conf(stack_file: str | None, stack_name: str, config_path: str | None,
         settings: tuple[str, ...], backend_name: str | None, show_password: bool) -> None:
    """Print the cinder.conf [DEFAULT]/[<backend>] section for the Datera driver.

    \b
    Example:
      DATERA_SAN_PASSWORD=... datera-iac cinder conf --set san_ip=10.0.0.5 --set san_login=admin
    """
    base = stack_provider_config(stack_file, stack=stack_name) if stack_file else {}
    given = {**base, **dict(_pairs(settings, "--set"))}
    try:
        config = load_config(config_path, given)
    except ConfigError as e:
        # the password is printed masked: without --show-password it need not be known
        if show_password or not str(e).startswith("san_password: not set"):
            raise
        config = load_config(config_path, {**given, "san_password": "placeholder"})
        click.echo("note: san_password is not set: the section masks a placeholder: fill in the real one",
                   err=True)
    click.echo(render_conf(config, backend_name=backend_name, show_password=show_password),
               nl=False)


@cinder_group.command("properties")
def properties() -> None:
    """List every DF: extra spec with its type, driver default and meaning."""
    for key, typ, default, help_text in dfc.property_rows():
        click.echo(f"{key:<24} {typ:<8} default={default or repr('')}\n    {help_text}")


#: The name datera_iac.cli's COMMANDS points at.
cinder = cinder_group
