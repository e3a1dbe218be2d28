"""``datera-iac ls volumes|snapshots|types|tenants|manageable|manageable-snapshots``.

A translation of :data:`datera_iac.resources.queries.LISTINGS`: each listing's arguments
become options (``name_regex`` -> ``--name-regex``; a map takes ``KEY=VALUE`` repeatedly; a
boolean is a flag), its rows are printed as a table on a terminal and as JSON otherwise
(``--json`` / ``--table`` force one). ``manageable`` marks what the stack's state already
manages as "already managed by this stack".
"""

from __future__ import annotations

import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

import click

from datera_iac.engine.cli import _notes, _parse_config, _workspace, stack_options
from datera_iac.errors import InputError
from datera_iac.resources.queries import LISTINGS, Column, Listing

__all__ = ["ls", "ALIASES", "render_table"]

#: Short names of the command line -> listing names.
ALIASES = {"types": "volume_types", "manageable": "manageable_volumes"}
_CHOICES = sorted({n.replace("_", "-") for n in LISTINGS} | set(ALIASES))


def _option_name(col: Column) -> str:
    return "--" + col.name.replace("_", "-")


def _base(t: Any) -> Any:
    args = [a for a in typing.get_args(t) if a is not type(None)]
    union = typing.get_origin(t) in (typing.Union, types.UnionType)
    return args[0] if union and len(args) == 1 else t


def _all_args() -> dict[str, Column]:
    out: dict[str, Column] = {}
    for lst in LISTINGS.values():
        for a in lst.args:
            out.setdefault(a.name, a)
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items()) or "-"
    if isinstance(v, list | tuple):
        return ",".join(map(str, v)) or "-"
    return str(v)


def render_table(lst: Listing, rows: list[dict[str, Any]]) -> str:
    """Rows as aligned columns (the listing's ``table`` fields), one line per object."""
    cols = list(lst.table)
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    heads = [c.upper() for c in cols]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]
    return "\n".join(lines)


def _listing_options(fn: Any) -> Any:
    for col in reversed(list(_all_args().values())):
        base = _base(col.type)
        used = sorted(n.replace("_", "-") for n, lst in LISTINGS.items()
                      if any(a.name == col.name for a in lst.args))
        help_ = f"{col.doc} [{', '.join(used)}]"
        if base is bool:
            fn = click.option(_option_name(col), col.name, is_flag=True, default=None,
                              help=help_)(fn)
        elif typing.get_origin(base) is dict:
            fn = click.option(_option_name(col), col.name, multiple=True, metavar="KEY=VALUE",
                              help=help_ + " Repeatable.")(fn)
        else:
            fn = click.option(_option_name(col), col.name, default=None, help=help_)(fn)
    return fn


@click.command(epilog="""
\b
Examples:
  datera-iac ls volumes                          the provider tenant's volumes
  datera-iac ls volumes --name-regex '^db-' --json
  datera-iac ls volumes --volume-type gold --metadata app=db
  datera-iac ls snapshots --volume db-1          one volume's snapshots
  datera-iac ls manageable --tenant team-a       what could be imported, and why not
""")
@click.argument("what", metavar="WHAT", type=click.Choice(_CHOICES))
@stack_options
@_listing_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the default when stdout "
              "is not a terminal).")
@click.option("--table", "as_table", is_flag=True, help="Print a table (the default on a "
              "terminal).")
def ls(what: str, file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
       backend: str | None, color: bool | None, as_json: bool, as_table: bool,
       **args: Any) -> None:
    """List DSP objects: volumes, snapshots, (volume) types, tenants, manageable
    (volumes) and manageable-snapshots. Reads only."""
    if as_json and as_table:
        raise click.UsageError("--json and --table exclude each other")
    lst = LISTINGS[ALIASES.get(what, what.replace("-", "_"))]
    own = {a.name for a in lst.args}
    given: dict[str, Any] = {}
    for name, value in args.items():
        if value is None or value == ():
            continue
        if name not in own:
            opt = "--" + name.replace("_", "-")
            raise InputError(f"{opt} does not apply to `ls {what}`", field=name,
                             fix=f"options of `ls {what}`: "
                                 f"{', '.join(_option_name(a) for a in lst.args) or 'none'}")
        given[name] = _parse_config(value) if isinstance(value, tuple) else value
    with _workspace(file, stack, config, endpoint, backend, command="ls",
                    need_file=False) as ws:
        if "managed" in lst.hidden:
            given["managed"] = [r.id for r in ws.load_state().resources.values() if r.id]
        rows = lst.rows(ws.context(), **given)
        _notes(ws)
    if as_json or not (as_table or sys.stdout.isatty()):
        click.echo(json.dumps(rows, indent=2, sort_keys=False))
    else:
        click.echo(render_table(lst, rows))
