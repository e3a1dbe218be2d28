"""Plan and result output: human text (like ``terraform plan``) and JSON.

The JSON form is documented by ``plan.schema.json`` (shipped beside this module); CI jobs
read it instead of scraping text. Secrets are masked in both forms: a sensitive value is
``(sensitive)`` whatever it is, and a value from a salted digest in state is never shown.
"""

from __future__ import annotations

import json
from importlib import resources as importlib_resources
from typing import Any

import attrs
import click

from datera_iac.engine.model import UNKNOWN, has_unknown
from datera_iac.engine.plan import Drift, Plan, Step
from datera_iac.engine.state import is_digest
from datera_iac.resources.base import SENSITIVE, FieldChange, kind_for
from datera_iac.secrets import SHOWN

__all__ = ["SCHEMA_VERSION", "plan_json", "plan_schema", "render_plan", "render_result", "show_value"]

SCHEMA_VERSION = "1"

_SYMBOL = {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "import": "<=",
           "forget": "~-", "error": "!"}
_COLOR = {"create": "green", "update": "yellow", "replace": "magenta", "delete": "red",
          "import": "cyan", "forget": "blue", "error": "red"}
_SENSITIVE = SHOWN
_UNKNOWN = "(known after apply)"


def plan_schema() -> dict[str, Any]:
    """The JSON Schema of :func:`plan_json` output."""
    text = importlib_resources.files("datera_iac.engine").joinpath("plan.schema.json").read_text()
    return json.loads(text)


def _json_value(v: Any, sensitive: bool = False) -> Any:
    if sensitive and v is not None:
        return _SENSITIVE
    if v is UNKNOWN:
        return None
    if is_digest(v):
        return _SENSITIVE
    if isinstance(v, tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if attrs.has(type(v)):
        return _json_value(attrs.asdict(v))
    return v


def _change_json(c: FieldChange) -> dict[str, Any]:
    return {
        "field": c.name,
        "old": _json_value(c.old, c.sensitive),
        "new": _json_value(c.new, c.sensitive),
        "unknown": c.new is UNKNOWN or has_unknown(c.new),
        "replace": c.replace,
        "sensitive": c.sensitive,
    }


def _create_changes(step: Step) -> tuple[FieldChange, ...]:
    """A create shows every declared property as a change from nothing."""
    if step.action not in ("create",) and not (step.action == "replace" and step.strategy == "delete-before-create" and not step.changes):
        return step.changes
    kind = kind_for(step.kind)
    fields = {f.name: f for f in attrs.fields(kind.Spec)}
    out = []
    for k, v in (step.desired or {}).items():
        f = fields.get(k)
        out.append(FieldChange(name=k, old=None, new=v, replace=False,
                               sensitive=bool(f and f.metadata.get(SENSITIVE))))
    return tuple(out)


def _step_json(step: Step, with_calls: bool = False) -> dict[str, Any]:
    kind = kind_for(step.kind)
    calls = {"calls": None if step.calls is None else [c.to_json() for c in step.calls]
             } if with_calls else {}
    return {
        "name": step.name,
        "kind": kind.name,
        "type": kind.token,
        "action": step.action,
        "id": step.id,
        "strategy": step.strategy,
        "temp_name": step.temp_name,
        "reason": step.reason,
        "import_id": step.import_id,
        "deposed": step.deposed,
        "protect": step.protect,
        "depends_on": list(step.deps),
        "changes": [_change_json(c) for c in _create_changes(step)],
        "also_deletes": list(step.also_deletes),
        **calls,
    }


def _drift_json(d: Drift) -> dict[str, Any]:
    return {
        "name": d.name, "kind": d.kind, "id": d.id, "status": d.status,
        "fields": list(d.fields), "changes": [_change_json(c) for c in d.changes],
        "reason": d.reason,
    }


def plan_json(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data (validates against ``plan.schema.json``)."""
    mode = "refresh-only" if plan.refresh_only else "destroy" if plan.destroy else "normal"
    return {
        "format_version": SCHEMA_VERSION,
        "stack": plan.stack,
        "mode": mode,
        "has_changes": plan.has_changes,
        "summary": plan.counts(),
        "actions": [_step_json(s, plan.with_calls) for s in plan.changes],
        "drift": [_drift_json(d) for d in plan.drift],
        "outputs": {k: _json_value(v) for k, v in plan.outputs.items()},
        "errors": list(plan.errors),
        "recovered": list(plan.recovered),
        "dsp": plan.dsp,
        "new_stack": plan.new_stack,
        "imported_not_declared": [{"name": s.name, "kind": s.kind, "id": s.id}
                                  for s in plan.imported],
        "targets": list(plan.targets),
    }


def plan_header(plan: Plan) -> str:
    """The first line of a plan: which stack (new or not) on which DSP."""
    new = " (new stack: no state yet)" if plan.new_stack else ""
    dsp = f" on {plan.dsp}" if plan.dsp else ""
    return f"Stack {plan.stack}{new}{dsp}"


def show_value(v: Any, sensitive: bool = False) -> str:
    """A value for human output (secrets masked, unknowns spelled out)."""
    if sensitive and v is not None:
        return _SENSITIVE
    if v is UNKNOWN or has_unknown(v):
        return _UNKNOWN
    if is_digest(v):
        return _SENSITIVE
    return json.dumps(_json_value(v), sort_keys=True, default=str)


def _style(text: str, color: str | None, tty: bool, bold: bool = False) -> str:
    return click.style(text, fg=color, bold=bold) if tty else text


def render_plan(plan: Plan, *, color: bool = False, verb: str = "preview") -> str:
    """The plan as text: one block per changed resource, then a summary line."""
    lines: list[str] = [_style(plan_header(plan), None, color, bold=True)]
    for note in plan.recovered:
        lines.append(_style(f"recovered: {note}", "cyan", color))
    if plan.drift:
        lines.append(_style("Objects changed outside datera-iac:", None, color, bold=True))
        for d in plan.drift:
            if d.status == "deleted":
                lines.append(f"  {d.kind} {d.name} ({d.id}) was deleted")
            elif d.status == "degraded":
                lines.append(f"  {d.kind} {d.name} ({d.id}) needs repair: {d.reason}")
            else:
                lines.append(f"  {d.kind} {d.name} ({d.id}) changed: {', '.join(d.fields)}")
                for c in d.changes:
                    old, new = show_value(c.old, c.sensitive), show_value(c.new, c.sensitive)
                    lines.append(f"      {c.name}: {old} -> {new}")
                if d.reason:
                    lines.append(f"      needs repair: {d.reason}")
        lines.append("")
    if plan.refresh_only:
        lines.append("No drift: the DSP matches the state." if not plan.drift
                     else f"Drift: {len(plan.drift)} object(s) differ from the state.")
        return "\n".join(lines)
    for step in plan.changes:
        sym = _SYMBOL.get(step.action, "?")
        head = f"{sym} {step.action:<8} {step.kind} {step.name}"
        extra = []
        if step.id:
            extra.append(f"id {step.id}")
        if step.deposed:
            extra.append("old object of a replacement")
        if step.action == "replace" and step.strategy:
            how = step.strategy
            if step.strategy == "temporary-name":
                how = f"create as {step.temp_name!r}, delete the old, then rename"
            extra.append(how)
        if step.import_id:
            extra.append(f"import {step.import_id}")
        if step.protect and step.action in ("replace", "delete"):
            extra.append("PROTECTED")
        if extra:
            head += f"  ({'; '.join(extra)})"
        lines.append(_style(head, _COLOR.get(step.action), color, bold=True))
        if step.reason:
            lines.append(f"      # {step.reason}")
        for d in step.also_deletes:
            lines.append(_style(f"      also deletes {d}: cascade",
                                "red", color))
        changes = _create_changes(step)
        width = max((len(c.name) for c in changes), default=0)
        for c in changes:
            if step.action == "create" or (c.old is None and step.action != "update"):
                val = show_value(c.new, c.sensitive)
                lines.append(f"      {c.name:<{width}} = {val}")
            else:
                old, new = show_value(c.old, c.sensitive), show_value(c.new, c.sensitive)
                tail = "   # forces replacement" if c.replace and step.action == "replace" else ""
                lines.append(f"      {c.name:<{width}} {old} -> {new}{tail}")
        if plan.with_calls and step.action in ("create", "update"):
            lines += _call_lines(step)
    if plan.imported:
        lines.append(_style("Imported, not declared (kept: declare them in the stack, delete one "
                            "on purpose with --target NAME, or forget it with `datera-iac state "
                            "rm NAME`):", None, color, bold=True))
        for s in plan.imported:
            lines.append(f"  {s.kind} {s.name} ({s.id})")
    if plan.errors:
        lines.append("")
        for e in plan.errors:
            lines.append(_style(f"error: {e}", "red", color))
    counts = plan.counts()
    if not plan.changes and not plan.errors:
        lines.append("No changes. Nothing to destroy: the stack's state holds no resource."
                     if plan.destroy else "No changes. The DSP matches the stack.")
    else:
        parts = [f"{counts[a]} to {a}" for a in ("create", "update", "replace", "delete", "import", "forget")
                 if counts[a] or a in ("create", "update", "delete")]
        lines.append("")
        lines.append(_style(("Plan: " if verb == "preview" else "Changes: ") + ", ".join(parts) + ".",
                            None, color, bold=True))
    if plan.outputs and not plan.destroy:
        lines.append("")
        lines.append("Outputs:")
        for k, v in plan.outputs.items():
            lines.append(f"    {k}: {show_value(v)}")
    return "\n".join(lines)


def _call_lines(step: Step) -> list[str]:
    """``preview --show-calls``: the DSP calls of a create or an update, secrets masked."""
    if step.calls is None:
        why = ("its calls depend on what it is created from" if step.action == "create"
               else f"{step.kind} does not list its calls")
        return [f"      calls: {step.action} ({why})"]
    if not step.calls:
        return ["      calls: none"]
    return ["      calls:"] + [line for c in step.calls for line in c.lines("        ")]


def _some(names: list[str], shown: int = 10) -> str:
    """``n (a, b, ... and 12 more)``: a count with the first names."""
    if not names:
        return "0"
    head = ", ".join(sorted(names)[:shown])
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{len(names)} ({head}{more})"


def render_result(result: Any, outputs: dict[str, Any], *, color: bool = False) -> str:
    """The end of ``up`` / ``destroy``: counts, every failure, skipped resources, outputs."""
    lines = []
    verbs = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted",
             "import": "imported", "forget": "forgotten"}
    done = ", ".join(f"{n} {verbs.get(a, a)}" for a, n in sorted(result.done.items()))
    if result.failures:
        # never "Done" / "nothing to do" when something failed
        lines.append(_style(f"Failed after {result.elapsed:.1f}s: {len(result.failures)} "
                            f"operation(s) failed, {done or 'nothing'} completed.", "red", color,
                            bold=True))
    else:
        lines.append(f"Done in {result.elapsed:.1f}s: {done or 'nothing to do'}.")
    unreachable = getattr(result, "unreachable", None)
    for f in result.failures:
        if not getattr(f, "unreachable", False):
            lines.append(_style(f"  {f.name} ({f.action}): {f.message}", "red", color))
    if unreachable:
        # one error for every operation the client's breaker failed, and those not started
        cut = [f.name for f in result.failures if f.unreachable]
        lines.append(_style(f"  {unreachable}", "red", color))
        lines.append(f"  Interrupted by it: {_some(cut)}; not started: "
                     f"{_some(result.not_started)}. What was done is in the state: run again "
                     f"once the DSP is back.")
    if result.skipped:
        lines.append(f"Skipped because a dependency failed: {', '.join(sorted(result.skipped))}")
    if outputs:
        lines.append("Outputs:")
        for k, v in outputs.items():
            lines.append(f"    {k}: {show_value(v)}")
    return "\n".join(lines)
