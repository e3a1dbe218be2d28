"""``datera-iac preview | up | refresh | destroy | import | state`` (wired in datera_iac.cli).

Exit codes: 0 success; 1 error (bad input, failed operations, a held lock); with
``--detailed-exitcode`` 2 means "changes present" (or, with ``--refresh-only``, "the DSP
differs from the state"). Human output goes to stdout, progress and notes to stderr, so
``--json`` output can be piped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from datera_iac.engine.backends import check_stack_name
from datera_iac.engine.core import Workspace
from datera_iac.engine.discover import discover_options, run_discover
from datera_iac.engine.render import plan_json, render_plan, render_result, show_value
from datera_iac.errors import InputError

__all__ = ["destroy", "import_", "preview", "refresh", "state", "up"]


def _parse_config(pairs: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--config")
        out[key.strip()] = value
    return out


def _stack_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_stack_name(value)
    except InputError as e:
        raise click.BadParameter(f"{e.reason}; {e.fix}", param_hint="--stack") from None


def _default_file() -> Path:
    for name in ("Pulumi.yaml", "Pulumi.yml", "__main__.py"):
        if Path(name).exists():
            return Path(name)
    return Path("Pulumi.yaml")


def stack_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every stack command."""
    opts = [
        click.option("-f", "--file", "file", type=click.Path(path_type=Path), default=None,
                     help="Stack file: a Pulumi.yaml (runtime: yaml or python) or a Python program "
                          "[default: ./Pulumi.yaml]."),
        click.option("-s", "--stack", default="dev", show_default=True, envvar="DATERA_IAC_STACK",
                     callback=_stack_name,
                     help="Stack name ([A-Za-z0-9_.-], 1-100 characters): selects the state and "
                          "Pulumi.<stack>.yaml config."),
        click.option("-c", "--config", "config", multiple=True, metavar="KEY=VALUE",
                     help="Stack config (or datera:<option> provider config); repeatable."),
        click.option("--endpoint", envvar="DATERA_ENDPOINT", default=None,
                     help="DSP URL (overrides the stack's datera:endpoint). Without any DSP address "
                          "the bundled simulator is used."),
        click.option("--backend", envvar="DATERA_IAC_BACKEND", default=None,
                     help="State backend: a directory (default .datera-iac beside the stack file) or "
                          "postgresql://user@host:port/db."),
        click.option("--color/--no-color", default=None, help="Colour output [default: on a TTY]."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def _workspace(file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
               backend: str | None, parallel: int = 10, command: str = "", need_file: bool = True) -> Workspace:
    path = file if file is not None else _default_file()
    if not path.exists():
        if need_file:
            raise InputError(f"no stack file {path}", fix="pass -f <Pulumi.yaml | program.py>")
        path = None  # type: ignore[assignment]
    return Workspace(
        stack_file=path, stack=stack, config=_parse_config(config), backend_url=backend,
        endpoint=endpoint, parallel=parallel, command=command,
    )


#: ``--target NAME`` (repeatable) on preview / up / destroy
_target = click.option(
    "--target", "targets", multiple=True, metavar="NAME",
    help="Plan only this resource's changes (and what they need); repeatable. The only way "
         "to delete an object `import` adopted that the stack does not declare.")


def _color(flag: bool | None) -> bool:
    return sys.stdout.isatty() if flag is None else flag


def _echo_plan(plan: Any, as_json: bool, color: bool, verb: str = "preview") -> None:
    """The plan as JSON (--json) or as text for the terminal."""
    click.echo(json.dumps(plan_json(plan), indent=2) if as_json
               else render_plan(plan, color=color, verb=verb))


def _notes(ws: Workspace) -> None:
    for n in ws.notes:
        click.echo(f"note: {n}", err=True)
    ws.notes.clear()


def _force_unlock(ws: Workspace, lock_id: str | None = None) -> None:
    holder = ws.force_unlock(lock_id=lock_id)
    if holder:
        from datera_iac.engine.backends import describe_holder

        click.echo(f"note: broke the lock held by {describe_holder(holder)}", err=True)
    else:
        click.echo("note: the stack was not locked", err=True)


_EXAMPLES_PREVIEW = """
\b
Examples:
  datera-iac preview                          plan ./Pulumi.yaml against the DSP
  datera-iac preview --json > plan.json       machine-readable plan (see plan.schema.json)
  datera-iac preview --show-calls             also the DSP calls each create/update sends
  datera-iac preview --detailed-exitcode      exit 0 no changes, 2 changes, 1 error
  datera-iac preview --refresh-only --detailed-exitcode   drift check: 2 when the DSP
                                              differs from the state
  datera-iac preview --refresh=full           also read each volume's metadata (2 requests
                                              per volume instead of ~10 for 1,000)
"""

_REFRESH_HELP = ("How to read the DSP first: fast = bulk lists (no volume metadata), full = "
                 "every object on its own, metadata included. Default: the DSP "
                 "configuration's `refresh` (fast unless set).")


@click.command(epilog=_EXAMPLES_PREVIEW)
@stack_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes (or drift).")
@click.option("--refresh-only", is_flag=True, help="Only compare the DSP with the state (drift).")
@click.option("--refresh", "refresh_mode", type=click.Choice(["fast", "full"]), default=None,
              help=_REFRESH_HELP)
@click.option("--destroy", "destroy_", is_flag=True, help="Plan the removal of every resource.")
@click.option("--show-calls", is_flag=True,
              help="List the DSP calls each create and update would send (always in --json).")
@_target
@click.pass_context
def preview(ctx: click.Context, file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
            backend: str | None, color: bool | None, as_json: bool, detailed_exitcode: bool,
            refresh_only: bool, refresh_mode: str | None, destroy_: bool, show_calls: bool,
            targets: tuple[str, ...]) -> None:
    """Show what `up` would do, without changing anything (no lock is taken)."""
    with _workspace(file, stack, config, endpoint, backend, command="preview") as ws:
        plan = ws.preview(refresh_only=refresh_only, destroy=destroy_, refresh=refresh_mode,
                          targets=targets, with_calls=show_calls or as_json)
        _notes(ws)
        _echo_plan(plan, as_json, _color(color))
    if plan.errors:
        ctx.exit(1)
    if detailed_exitcode and plan.has_changes:
        ctx.exit(2)


_EXAMPLES_UP = """
\b
Examples:
  datera-iac up                     deploy ./Pulumi.yaml (asks first on a TTY)
  datera-iac up --yes --parallel 20 no questions, 20 operations at a time
  datera-iac up -f program.py -s prod --backend postgresql://iac@db/iac
  datera-iac up --force-unlock      break a lock left by a run that is gone
Without --yes and without a terminal on stdin, `up` refuses to change anything.
"""

_LOCK_ID_HELP = ("With --force-unlock: the lock id the refusal named; needed to break a lock "
                 "whose holder is still running on this host.")


class NoConsent(InputError):
    """Changes planned, no ``--yes``, and nobody at a terminal to ask."""


def _confirm(yes: bool, color: bool, as_json: bool, command: str = "up") -> Callable[[Any], bool]:
    def ask(plan: Any) -> bool:
        _echo_plan(plan, as_json, color, "up")
        if yes:
            return True
        if not sys.stdin.isatty():
            # never take silence for consent: a CI job or a pipe that forgot --yes must
            # not delete or change storage (nothing has been written yet)
            raise NoConsent(
                f"`{command}` would change the DSP, but stdin is not a terminal so nobody can "
                f"confirm; nothing was changed",
                fix=f"review the plan above, then run `datera-iac {command} --yes`")
        return click.confirm("Do you want to perform these actions?", default=False)

    return ask


def _run_up(ctx: click.Context, ws: Workspace, *, yes: bool, color: bool, as_json: bool,
            destroy: bool = False, refresh_only: bool = False, force_unlock: bool = False,
            detailed_exitcode: bool = False, refresh_mode: str | None = None,
            lock_id: str | None = None, targets: tuple[str, ...] = ()) -> None:
    if force_unlock or lock_id:
        _force_unlock(ws, lock_id)
    shown: list[Any] = []

    def on_plan(plan: Any) -> None:
        _notes(ws)
        shown.append(plan)
        if plan.errors or not plan.changes or refresh_only:
            _echo_plan(plan, as_json, color, "up")

    ask = _confirm(yes, color, as_json, "destroy" if destroy else "up")
    plan, result = ws.up(destroy=destroy, refresh_only=refresh_only, on_plan=on_plan,
                         confirm=lambda p: ask(p), refresh=refresh_mode, targets=targets)
    _notes(ws)
    if plan.errors:
        ctx.exit(1)
    if result is None:
        click.echo("Cancelled: nothing was changed.", err=True)
        ctx.exit(1)
    if plan.changes and not refresh_only:
        state = ws.load_state()
        click.echo(render_result(result, {} if destroy else state.outputs, color=color),
                   err=as_json)
    if not result.ok:
        ctx.exit(1)
    if detailed_exitcode and plan.has_changes:
        ctx.exit(2)


@click.command(epilog=_EXAMPLES_UP)
@stack_options
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("-p", "--parallel", default=10, show_default=True, type=click.IntRange(1, 256),
              help="Operations run at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (results go to stderr).")
@click.option("--refresh-only", is_flag=True, help="Only bring the state in line with the DSP.")
@click.option("--refresh", "refresh_mode", type=click.Choice(["fast", "full"]), default=None,
              help=_REFRESH_HELP)
@click.option("--force-unlock", is_flag=True, help="Break the stack's lock first (the holder is shown).")
@click.option("--lock-id", default=None, metavar="ID", help=_LOCK_ID_HELP)
@_target
@click.pass_context
def up(ctx: click.Context, file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
       backend: str | None, color: bool | None, yes: bool, parallel: int, as_json: bool,
       refresh_only: bool, refresh_mode: str | None, force_unlock: bool, lock_id: str | None,
       targets: tuple[str, ...]) -> None:
    """Create, update and delete DSP objects until they match the stack."""
    with _workspace(file, stack, config, endpoint, backend, parallel, command="up") as ws:
        _run_up(ctx, ws, yes=yes, color=_color(color), as_json=as_json, refresh_only=refresh_only,
                force_unlock=force_unlock, lock_id=lock_id, refresh_mode=refresh_mode,
                targets=targets)


@click.command(epilog="""
\b
Examples:
  datera-iac refresh                        drop vanished objects, record drift in the state
  datera-iac refresh --detailed-exitcode    exit 2 when something drifted (metadata included)
  datera-iac refresh --refresh=fast         bulk lists only (skips volume metadata)
""")
@stack_options
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the DSP differed from the state.")
@click.option("--json", "as_json", is_flag=True, help="Print the drift as JSON.")
@click.option("--refresh", "refresh_mode", type=click.Choice(["fast", "full"]), default="full",
              show_default=True,
              help="How to read the DSP: full = every object on its own, metadata included; "
                   "fast = bulk lists (no volume metadata).")
@click.option("--force-unlock", is_flag=True, help="Break the stack's lock first.")
@click.option("--lock-id", default=None, metavar="ID", help=_LOCK_ID_HELP)
@click.pass_context
def refresh(ctx: click.Context, file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
            backend: str | None, color: bool | None, detailed_exitcode: bool, as_json: bool,
            refresh_mode: str, force_unlock: bool, lock_id: str | None) -> None:
    """Read every managed object and update the state to match the DSP."""
    with _workspace(file, stack, config, endpoint, backend, command="refresh") as ws:
        _run_up(ctx, ws, yes=True, color=_color(color), as_json=as_json, refresh_only=True,
                force_unlock=force_unlock, lock_id=lock_id, detailed_exitcode=detailed_exitcode,
                refresh_mode=refresh_mode)


@click.command(epilog="""
\b
Examples:
  datera-iac destroy --yes                  delete everything the stack manages
  datera-iac destroy -s old --backend postgresql://iac@db/iac
Protected resources make the plan fail; retainOnDelete resources are forgotten, not deleted.
""")
@stack_options
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("-p", "--parallel", default=10, show_default=True, type=click.IntRange(1, 256))
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--force-unlock", is_flag=True, help="Break the stack's lock first.")
@click.option("--lock-id", default=None, metavar="ID", help=_LOCK_ID_HELP)
@_target
@click.pass_context
def destroy(ctx: click.Context, file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
            backend: str | None, color: bool | None, yes: bool, parallel: int, as_json: bool,
            force_unlock: bool, lock_id: str | None, targets: tuple[str, ...]) -> None:
    """Delete every object in the stack's state (objects already gone are fine)."""
    with _workspace(file, stack, config, endpoint, backend, parallel, command="destroy",
                    need_file=False) as ws:
        _run_up(ctx, ws, yes=yes, color=_color(color), as_json=as_json, destroy=True,
                force_unlock=force_unlock, lock_id=lock_id, targets=targets)


@click.command("import", epilog="""
\b
Examples:
  datera-iac import datera:index:Volume legacy-db /root/app/legacy-db
  datera-iac import Volume web 6b8e...-uuid --protect
Then declare the resource in the stack with the same name; `preview` should show no changes.
Until a stack declares it, no plan deletes it: it shows as "imported, not declared"
(delete it on purpose with `up --target NAME`, or forget it with `state rm NAME`).
  datera-iac import --discover --tenant team-a --out stack/Pulumi.yaml
  datera-iac import --discover --filter name_regex=^db- --out main.tf
Discovery writes a stack (or Terraform HCL) declaring what the DSP holds, each with its
import; see docs/listing.md.
""")
@stack_options
@click.argument("type_", metavar="[TYPE", required=False)
@click.argument("name", required=False)
@click.argument("ref", metavar="ID]", required=False)
@click.option("--protect", is_flag=True, help="Mark the imported resource protected.")
@click.option("--force-unlock", is_flag=True, help="Break the stack's lock first.")
@click.option("--lock-id", default=None, metavar="ID", help=_LOCK_ID_HELP)
@discover_options
def import_(file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None, backend: str | None,
            color: bool | None, type_: str | None, name: str | None, ref: str | None, protect: bool,
            force_unlock: bool, lock_id: str | None, **discover: Any) -> None:
    """Adopt an existing DSP object into the state as NAME (no write to the DSP), or,
    with --discover, write a stack declaring the DSP's objects with their imports."""
    if discover.get("discover_mode"):
        with _workspace(file, stack, config, endpoint, backend, command="import",
                        need_file=False) as ws:
            run_discover(ws, protect=protect, **discover)
            _notes(ws)
        return
    if not (type_ and name and ref):
        raise click.UsageError("give TYPE NAME ID (or --discover --out FILE)")
    with _workspace(file, stack, config, endpoint, backend, command="import", need_file=False) as ws:
        if force_unlock or lock_id:
            _force_unlock(ws, lock_id)
        obs = ws.import_resource(name, type_, ref, protect=protect)
        _notes(ws)
        click.echo(f"imported {name} ({obs.id})")


@click.group(epilog="""
\b
Examples:
  datera-iac state list
  datera-iac state show db
  datera-iac state rm db            forget db (the DSP object stays)
  datera-iac state unlock           break a stale lock (shows the holder)
  datera-iac state reassign-dsp --endpoint https://dsp2:7718
                                    the stack now belongs to that DSP (state only)
""")
def state() -> None:
    """Inspect and edit the stack's state."""


@state.command("list")
@stack_options
@click.option("--json", "as_json", is_flag=True)
def state_list(file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
               backend: str | None, color: bool | None, as_json: bool) -> None:
    """List managed resources: name, kind, id."""
    ws = _workspace(file, stack, config, endpoint, backend, need_file=False)
    st = ws.load_state()
    if as_json:
        click.echo(json.dumps([{"name": r.name, "type": r.type, "id": r.id} for r in st.resources.values()], indent=2))
        return
    for r in st.resources.values():
        click.echo(f"{r.name}\t{r.type}\t{r.id}")
    for r in st.deposed:
        click.echo(f"{r.name}\t{r.type}\t{r.id}\t(old object awaiting delete)")
    for p in st.pending.values():
        click.echo(f"{p.name}\tpending {p.op}\t{p.object_id or ''}", err=True)


@state.command("show")
@stack_options
@click.argument("name")
def state_show(file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
               backend: str | None, color: bool | None, name: str) -> None:
    """Show one resource's recorded inputs and outputs (secrets masked)."""
    ws = _workspace(file, stack, config, endpoint, backend, need_file=False)
    st = ws.load_state()
    r = st.resources.get(name)
    if r is None:
        raise InputError(f"{name!r} is not in the state", fix="see `datera-iac state list`")
    click.echo(f"{r.name}: {r.type} {r.id}")
    if r.protect:
        click.echo("  protected")
    for k, v in r.spec.items():
        click.echo(f"  {k} = {show_value(v)}")
    for k, v in r.outputs.items():
        click.echo(f"  {k} (output) = {show_value(v)}")


@state.command("rm")
@stack_options
@click.argument("names", nargs=-1, required=True)
def state_rm(file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
             backend: str | None, color: bool | None, names: tuple[str, ...]) -> None:
    """Forget resources: they leave the state and stay on the DSP."""
    ws = _workspace(file, stack, config, endpoint, backend, command="state rm", need_file=False)
    for n in ws.state_rm(list(names)):
        click.echo(f"removed {n} from state")


@state.command("reassign-dsp")
@stack_options
def state_reassign_dsp(file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
                       backend: str | None, color: bool | None) -> None:
    """Record the DSP this run is configured for (--endpoint / DATERA_ENDPOINT; the bundled
    simulator when none) as the stack's DSP. Only the state changes: use it when a DSP
    moved or the state was copied on purpose; the next plan compares with that DSP."""
    from datera_iac.dsp.identity import describe_dsp

    with _workspace(file, stack, config, endpoint, backend, command="state reassign-dsp",
                    need_file=False) as ws:
        old, new = ws.reassign_dsp()
        _notes(ws)
        was = describe_dsp(old) if old else "no DSP recorded"
        click.echo(f"stack {stack} now belongs to {describe_dsp(new)} (was {was})")


@state.command("unlock")
@stack_options
@click.argument("lock_id", required=False, default=None)
def state_unlock(file: Path | None, stack: str, config: tuple[str, ...], endpoint: str | None,
                 backend: str | None, color: bool | None, lock_id: str | None) -> None:
    """Break the stack's lock (for a run that is gone); prints who held it. A lock whose
    holder still runs on this host is broken only when LOCK_ID (the id it names) is given."""
    ws = _workspace(file, stack, config, endpoint, backend, need_file=False)
    _force_unlock(ws, lock_id)

