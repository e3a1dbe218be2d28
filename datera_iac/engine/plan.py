"""Planning: facts (the refreshed DSP) versus the declaration, as a list of steps.

``preview`` prints a :class:`Plan` and stops; ``up`` applies the same plan. No kind has a
dry-run branch: the plan is made only of reads (``find``, ``read_many``, ``adopt``) and of
the kinds' pure ``diff``.

Actions: ``create``, ``update``, ``replace``, ``delete``, ``import``, ``forget`` (leave the
object on the DSP: ``retainOnDelete``) and ``same`` (no change, not printed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs

from datera_iac.engine.graph import dependencies, topo_order
from datera_iac.engine.model import (
    UNKNOWN,
    Ref,
    ResourceDecl,
    StackDef,
    StackError,
    has_unknown,
    resolve,
)
from datera_iac.engine.state import (
    PendingOp,
    ResourceState,
    State,
    data_digest,
    is_digest,
    keep_or_hash,
    mask_outputs,
    mask_spec,
    secret_matches,
)
from datera_iac.errors import DateraIacError, InputError, NotFound
from datera_iac.resources.plan import (
    TEMP_SUFFIX, Change, differing, is_sensitive, plan_change, recorded_inputs, refuse_replace,
    repair_of, replace_strategy, spec_if_known)
from datera_iac.resources.base import (
    PENDING_ID,
    SENSITIVE,
    Context,
    FieldChange,
    Kind,
    Observed,
    check_delete,
    kind_for,
)

__all__ = [
    "TEMP_SUFFIX",
    "Drift",
    "Facts",
    "Plan",
    "Step",
    "build_spec",
    "change_for",
    "lookup_value",
    "make_plan",
    "masked_outputs",
    "merge_known",
    "recover_pending",
    "refresh",
    "replace_strategy",
]

CHANGE_ACTIONS = ("create", "update", "replace", "delete", "import", "forget")


@attrs.define
class Step:
    """One planned operation on one resource.

    ``changes`` are the field changes (for update / replace / import-then-update);
    ``strategy`` says how a replacement runs: ``create-before-delete``,
    ``delete-before-create`` or ``temporary-name`` (create under ``temp_name``, delete the
    old object, rename through the kind's update). ``deps`` are the names this step waits
    for; ``deposed`` marks the delete of an old object left by a replacement.
    """

    name: str
    kind: str
    action: str
    id: str | None = None
    changes: tuple[FieldChange, ...] = ()
    reason: str | None = None
    strategy: str | None = None
    temp_name: str | None = None
    deps: tuple[str, ...] = ()
    protect: bool = False
    retain_on_delete: bool = False
    import_id: str | None = None
    deposed: bool = False
    #: live objects its delete takes with it (a volume's snapshots under ``cascade``),
    #: shown in the plan: ``Snapshot 1733.12 of volume db``
    also_deletes: tuple[str, ...] = ()
    #: resolved declared properties, secrets included: never in repr (logs, test failures)
    desired: dict[str, Any] | None = attrs.field(default=None, repr=False)
    #: the DSP calls the step sends (``Kind.calls``: secrets in clear, masked when shown),
    #: when the plan was asked for them; None: not listed (a create from a source)
    calls: list[Any] | None = attrs.field(default=None, repr=False)


@attrs.define
class Drift:
    """A managed object that differs from the state (refresh-only mode)."""

    name: str
    kind: str
    id: str
    status: str  # "changed" | "deleted" | "degraded"
    fields: tuple[str, ...] = ()
    changes: tuple[FieldChange, ...] = ()
    #: why the live object needs repair (``kind.needs_repair``: an attachment left
    #: half-detached); with no field change the status is "degraded"
    reason: str | None = None


@attrs.define
class Plan:
    stack: str
    steps: list[Step] = attrs.field(factory=list)
    drift: list[Drift] = attrs.field(factory=list)
    errors: list[str] = attrs.field(factory=list)
    outputs: dict[str, Any] = attrs.field(factory=dict)
    refresh_only: bool = False
    destroy: bool = False
    recovered: list[str] = attrs.field(factory=list)
    #: the DSP this run talks to, as the plan header shows it (an endpoint, or the bundled
    #: simulator with its data directory)
    dsp: str = ""
    #: the stack has no state yet: everything is planned from scratch (a typo in ``-s``
    #: shows here before anything is created)
    new_stack: bool = False
    #: objects ``datera-iac import`` adopted that the stack does not declare: kept (not
    #: deleted) unless ``--target`` names them; shown as "imported, not declared"
    imported: list[Step] = attrs.field(factory=list)
    #: ``--target`` names: the plan holds only their changes and what those need
    targets: tuple[str, ...] = ()
    #: the creates and updates list their DSP calls (``preview --show-calls`` / ``--json``)
    with_calls: bool = False
    #: phase -> (wall, CPU) seconds of the run that made this plan (``core.Phases``)
    timings: dict[str, tuple[float, float]] = attrs.field(factory=dict, eq=False, repr=False)

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.action != "same"]

    @property
    def has_changes(self) -> bool:
        if self.refresh_only:
            return bool(self.drift)
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        out = {a: 0 for a in CHANGE_ACTIONS}
        for s in self.changes:
            out[s.action] = out.get(s.action, 0) + 1
        return out


@attrs.define
class Facts:
    """What the engine knows about live objects during one run: real values (secrets in
    memory only), keyed by logical name. The plan reads them; apply updates them."""

    observed: dict[str, Observed[Any, Any]] = attrs.field(factory=dict)
    #: name -> action for resources whose id/outputs are not known before apply
    pending_action: dict[str, str] = attrs.field(factory=dict)
    #: name -> resolved desired properties (may hold UNKNOWN; secrets in clear: no repr)
    desired: dict[str, dict[str, Any]] = attrs.field(factory=dict, repr=False)
    kinds: dict[str, Kind[Any, Any]] = attrs.field(factory=dict)
    #: names whose live object differs from the state (refresh)
    drifted: set[str] = attrs.field(factory=set)
    #: name -> the drifted fields
    drift_fields: dict[str, set[str]] = attrs.field(factory=dict)
    #: name -> the outputs a planned update will leave (``Kind.planned_outputs``), so
    #: dependents are planned with them in the same run
    planned: dict[str, Any] = attrs.field(factory=dict, repr=False)
    #: list each create's and update's DSP calls on its step (``Kind.calls``)
    with_calls: bool = False


def _attr(value: Any, key: str | int) -> Any:
    if value is UNKNOWN or value is None:
        return value
    if isinstance(value, Mapping):
        return value.get(key, None) if isinstance(key, str) else None
    if isinstance(value, (list, tuple)) and isinstance(key, int):
        return value[key] if -len(value) <= key < len(value) else None
    if attrs.has(type(value)) and isinstance(key, str):
        return getattr(value, key, None)
    return None


def lookup_value(facts: Facts, ref: Ref) -> Any:
    """The current value of ``ref`` (or UNKNOWN before the referenced object exists)."""
    name = ref.resource
    path = ref.path or ("id",)
    head, rest = path[0], path[1:]
    kind = facts.kinds.get(name)
    spec_fields = {f.name for f in attrs.fields(kind.Spec)} if kind else set()
    out_fields = {f.name for f in attrs.fields(kind.Outputs)} if kind else set()
    action = facts.pending_action.get(name)
    obs = facts.observed.get(name)
    desired = facts.desired.get(name, {})
    if head in spec_fields and head in desired:
        value: Any = desired[head]
    elif action in ("create", "replace") or obs is None:
        value = UNKNOWN
    elif head == "id":
        value = obs.id
    elif head in out_fields:
        planned = facts.planned.get(name) if action == "update" else None
        value = getattr(planned if planned is not None else obs.outputs, str(head))
    elif head in spec_fields:
        value = getattr(obs.spec, str(head))
    else:
        value = None
    for key in rest:
        value = _attr(value, key)
    return value


def build_spec(kind: Kind[Any, Any], props: Mapping[str, Any], decl: ResourceDecl | None,
               base: Any = None) -> tuple[Any, tuple[str, ...]]:
    """A Spec from resolved properties, and their unknown fields
    (:func:`~datera_iac.resources.plan.spec_if_known`: with ``base``, a Spec or plain
    data, they take its values, so they diff equal; without, the known fields' Spec, or
    None while they may be what is wrong); raises StackError with the declaration's place."""
    unknown = tuple(k for k, v in props.items() if has_unknown(v))
    if decl is not None and decl.validated is not None and props is decl.properties:
        return decl.validated, ()
    if base is not None and not isinstance(base, Mapping):
        base = {k: getattr(base, k, None) for k in unknown}
    try:
        return spec_if_known(kind, props, unknown, prior=base, partial=True,
                             resource=decl.name if decl else None), unknown
    except InputError as e:
        raise StackError.wrap(e, decl.where_of(e.field) if decl else None,
                              decl.name if decl else e.resource) from None


def change_for(ctx: Context | None, kind: Kind[Any, Any], observed: Observed[Any, Any],
               spec: Any, prior: ResourceState | None, unknown: tuple[str, ...] = (),
               options: Any = None) -> Change:
    """The planner's answer (:func:`~datera_iac.resources.plan.plan_change`) for a live
    object and the engine's state of it: the last declaration (removed keys reset), the
    salted digest of a secret the DSP never returns, a replacement's temporary name, and
    the declaration's ``ignore_changes`` / ``delete_before_replace`` (``options``)."""
    kept = None
    if prior is not None:
        def kept(c: FieldChange) -> bool:
            stored = prior.spec.get(c.name)
            return is_digest(stored) and secret_matches(stored, c.new)

    return plan_change(
        kind, observed.spec, spec, outputs=observed.outputs,
        last=prior.declared if prior else None, config=ctx.config if ctx else None,
        resource=prior.name if prior else None, unknown=unknown, unknown_value=UNKNOWN,
        secret_kept=kept, temp_name=prior.temp_name if prior else None,
        ignore=getattr(options, "ignore_changes", None) or (),
        delete_before_replace=bool(getattr(options, "delete_before_replace", False)))


def masked_outputs(stack: StackDef, facts: Facts, *, keep_unknown: bool = False,
                   prior: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The stack's outputs as stored in state: values that come from a sensitive field
    become digests; values not known (a failed resource) are left out."""
    out: dict[str, Any] = {}
    for k, v in stack.outputs.items():
        secret = k in stack.sensitive_outputs

        def look(ref: Any) -> Any:
            nonlocal secret
            secret = secret or is_sensitive(facts.kinds.get(ref.resource), (ref.path or ("id",))[0])
            return lookup_value(facts, ref)

        value = resolve(v, look)
        if has_unknown(value):
            if keep_unknown:
                out[k] = UNKNOWN
            continue
        old = (prior or {}).get(k)
        out[k] = keep_or_hash(old, value) if secret else value
    return out


# ---- recovery and refresh ------------------------------------------------------------------


def _journal_spec(kind: Kind[Any, Any], op: PendingOp, desired: Mapping[str, Any] | None) -> Any:
    """The spec a pending create was called with, as far as ``find`` needs it: names are
    in the journal; secrets are not (their digests are dropped or matched to the program)."""
    data = dict(op.spec)
    for f in attrs.fields(kind.Spec):
        if f.metadata.get(SENSITIVE) and is_digest(data.get(f.name)):
            want = (desired or {}).get(f.name)
            if want is not None and not has_unknown(want) and secret_matches(data[f.name], want):
                data[f.name] = want
            else:
                data.pop(f.name)
    try:
        return kind.spec_from(data, resource=op.name)
    except InputError:
        if desired and not has_unknown(desired):
            return kind.spec_from(desired, resource=op.name)
        raise


def recover_pending(ctx: Context, state: State, desired_props: Mapping[str, Mapping[str, Any]],
                    ) -> tuple[list[dict[str, Any]], list[str]]:
    """Resolve operations a killed run left pending. Returns deltas (to journal or to
    apply in memory for a preview) and human notes. Only reads the DSP."""
    deltas: list[dict[str, Any]] = []
    notes: list[str] = []
    for op in list(state.pending.values()):
        kind = kind_for(op.type)
        delta: dict[str, Any] = {"pending_clear": [op.op_id]}
        if op.op in ("create", "import"):
            try:
                spec = _journal_spec(kind, op, desired_props.get(op.name))
            except InputError as e:
                # keep the intent: clearing it could orphan an object we cannot look up
                notes.append(f"{op.name}: an interrupted {op.op} cannot be looked up ({e.reason}); "
                             f"check the DSP for it (import it if it exists), then drop the "
                             f"intent with `datera-iac state rm {op.name}`")
                continue
            found = kind.find_own(ctx, spec, op.token) if op.op == "create" else None
            if found is None and op.op == "import" and op.object_id:
                try:
                    found = kind.adopt(ctx, op.object_id)
                except NotFound:
                    found = None
            if found is not None:
                prior = state.resources.get(op.name)
                nm = op.spec.get("name")
                temp = nm if isinstance(nm, str) and nm.endswith(TEMP_SUFFIX) else None
                rs = ResourceState(
                    name=op.name, type=kind.token, id=found.id,
                    spec=mask_spec(kind, found.spec, op.spec), outputs=mask_outputs(kind, found.outputs),
                    deps=list(prior.deps) if prior else [], temp_name=temp,
                    protect=prior.protect if prior else False,
                    retain_on_delete=prior.retain_on_delete if prior else False,
                )
                if prior is not None and prior.id != found.id:
                    delta["deposed_add"] = [prior.to_json()]
                delta["upsert"] = [rs.to_json()]
                notes.append(f"{op.name}: an interrupted {op.op} had completed; found {found.id}, now in state")
            else:
                notes.append(f"{op.name}: an interrupted {op.op} had not completed; nothing to clean up")
        elif op.op == "delete" and op.object_id:
            obs = kind.read(ctx, op.object_id)
            if obs is None:
                if op.deposed:
                    delta["deposed_remove"] = [op.object_id]
                elif (r := state.resources.get(op.name)) is not None and r.id == op.object_id:
                    delta["remove"] = [op.name]
                notes.append(f"{op.name}: an interrupted delete of {op.object_id} had completed")
            else:
                notes.append(f"{op.name}: an interrupted delete of {op.object_id} had not completed")
        else:
            notes.append(f"{op.name}: an interrupted {op.op} will be re-checked by refresh")
        deltas.append(delta)
        state.apply_delta(delta)
    return deltas, notes


def known_spec(kind: Kind[Any, Any], r: ResourceState) -> Any:
    """The recorded spec as a Spec (secrets, stored as digests, become None), or None
    when it no longer validates (then comparisons fall back to plain data)."""
    return kind.spec_or_none({k: (None if is_digest(v) else v) for k, v in r.spec.items()},
                             resource=r.name)


def merge_known(kind: Kind[Any, Any], obs: Observed[Any, Any], prior: ResourceState | None,
                drifted: set[str] | tuple[str, ...] = ()) -> Observed[Any, Any]:
    """The live object with the recorded value of each field the DSP did not report.

    A kind's ``read_many`` returns None for what a bulk read cannot show (a volume's type
    and metadata, an attachment's recorded size). For the plan, such a field keeps what the
    state recorded — what was last applied — unless refresh judged it drift. Terraform plans
    from refreshed state the same way (:func:`~datera_iac.resources.plan.recorded_inputs`);
    the kinds' ``read_known`` does it one object at a time."""
    known = known_spec(kind, prior) if prior is not None else None
    if known is None:
        return obs
    recorded = {k: v for k, v in kind.spec_to(known).items() if k not in drifted}
    spec = kind.spec_or_none(recorded_inputs(kind, obs.spec, recorded, user_form=False),
                             resource=prior.name)
    return obs if spec is None else attrs.evolve(obs, spec=spec)


def _drift_fields(kind: Kind[Any, Any], obs: Observed[Any, Any], known: Any, r: ResourceState,
                  observed_data: Mapping[str, Any]) -> list[str]:
    """Fields where the DSP differs from the state, judged by the kind's diff (so a value
    the DSP does not report is not drift), secrets by their digests."""
    fields = {f.name: f for f in attrs.fields(kind.Spec)}
    names = differing(kind, obs.spec, known) if known is not None else [
        n for n in fields if _norm(r.spec.get(n)) != _norm(observed_data.get(n))
        and observed_data.get(n) is not None]
    out = []
    for n in names:
        seen = getattr(obs.spec, n, None)
        if is_sensitive(kind, n):
            stored = r.spec.get(n)
            if seen is None or (is_digest(stored) and secret_matches(stored, seen)):
                continue
        out.append(n)
    return out


def _read_each(ctx: Context, kind: Kind[Any, Any], items: list[tuple[ResourceState, bool]],
               parallel: int) -> dict[str, Observed[Any, Any] | None]:
    """A full refresh: every object's own read (``read_known`` with its recorded spec),
    ``parallel`` at a time, like Terraform's refresh."""
    def one(r: ResourceState) -> tuple[str, Observed[Any, Any] | None]:
        return r.id, kind.read_known(ctx, r.id, known_spec(kind, r))

    with ThreadPoolExecutor(max_workers=max(1, parallel),
                            thread_name_prefix="datera-refresh") as pool:
        return dict(pool.map(one, [r for r, _ in items]))


def refresh(ctx: Context, state: State, facts: Facts, *, full: bool = False,
            parallel: int = 10) -> tuple[dict[str, Any], list[Drift]]:
    """Read every managed object with the kinds' bulk reads (``full``: with each object's
    own read, which also sees what a bulk list does not return, such as a volume's
    metadata: about one request more per volume, ``parallel`` at a time).

    Fills ``facts.observed`` and returns (a delta bringing the state in line with the DSP,
    the drift relative to the state). Vanished objects leave the state: the plan then
    re-creates them. An object the bulk read does not show is asked for once more with
    ``read_known`` (a VolumeType that exists only as a declaration answers from it)."""
    by_kind: dict[str, list[tuple[ResourceState, bool]]] = defaultdict(list)
    for r in state.resources.values():
        by_kind[r.type].append((r, False))
    for r in state.deposed:
        by_kind[r.type].append((r, True))
    upserts, removes, deposed_gone, drift = [], [], [], []
    for token, items in by_kind.items():
        kind = kind_for(token)
        # A kind without a bulk read reads each object anyway: with its recorded spec
        # (read_known), so settings only the declaration holds (an attachment's
        # min_paths) are honoured, as in a full refresh
        bulk = kind.has_bulk_read
        seen = (_read_each(ctx, kind, items, parallel) if full or not bulk
                else kind.read_many(ctx, [r.id for r, _ in items]))
        for r, is_deposed in items:
            obs = seen.get(r.id)
            known = None
            if obs is None and not full and bulk:
                known = known_spec(kind, r)
                if known is not None:
                    obs = kind.read_known(ctx, r.id, known)
            if obs is None:
                if is_deposed:
                    deposed_gone.append(r.id)
                else:
                    removes.append(r.name)
                    drift.append(Drift(r.name, kind.name, r.id, "deleted"))
                continue
            if is_deposed:
                continue
            facts.observed[r.name] = obs
            facts.kinds.setdefault(r.name, kind)
            observed_data = mask_spec(kind, obs.spec, r.spec)
            seen_digest = data_digest(observed_data)
            if seen_digest == r.observed_digest:
                names = []  # the DSP shows what it showed last time: no drift, no diff needed
            else:
                names = _drift_fields(kind, obs, known or known_spec(kind, r), r, observed_data)
            new_spec = dict(r.spec) if names else r.spec  # records are never changed in place
            changes = []
            for n in names:
                new_spec[n] = observed_data.get(n)
                changes.append(FieldChange.of(getattr(attrs.fields(kind.Spec), n), r.spec.get(n),
                                              new_spec[n]))
            new_out = mask_outputs(kind, obs.outputs, r.outputs)
            repair = repair_of(kind, obs.outputs)
            if changes:
                facts.drifted.add(r.name)
                facts.drift_fields[r.name] = set(names)
                drift.append(Drift(r.name, kind.name, r.id, "changed", tuple(names), tuple(changes),
                                   reason=repair))
            elif repair is not None:
                # the DSP/node no longer hold what was applied (a session gone, an ACL
                # entry removed): drift, though no declared field differs
                drift.append(Drift(r.name, kind.name, r.id, "degraded", reason=repair))
            if (changes or (new_out != r.outputs and _norm(new_out) != _norm(r.outputs)) or obs.id != r.id
                    or seen_digest != r.observed_digest):
                # recorded drift: the state no longer holds what was applied, so the next
                # plan must diff even though the declaration is unchanged
                upserts.append(attrs.evolve(r, id=obs.id, spec=new_spec, outputs=new_out,
                                            observed_digest=seen_digest,
                                            inputs_digest=None if changes else r.inputs_digest,
                                            ).to_json())
    delta: dict[str, Any] = {}
    if upserts:
        delta["upsert"] = upserts
    if removes:
        delta["remove"] = removes
    if deposed_gone:
        delta["deposed_remove"] = deposed_gone
    return delta, drift


def _norm(v: Any) -> Any:
    """Plain data compare: tuples and lists alike (JSON has only lists)."""
    if isinstance(v, (tuple, list)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


# ---- the plan ------------------------------------------------------------------------


def make_plan(ctx: Context, stack: StackDef | None, state: State, facts: Facts, *,
              stack_name: str, destroy: bool = False, refresh_only: bool = False,
              drift: list[Drift] | None = None, targets: Iterable[str] = ()) -> Plan:
    """Compare the refreshed ``state``/``facts`` with ``stack`` and return the steps.

    Never raises for a per-resource problem: those become ``plan.errors`` so the user sees
    all of them at once (a protected resource, an invalid value, a shrink)."""
    plan = Plan(stack=stack_name, destroy=destroy, refresh_only=refresh_only, drift=list(drift or []),
                targets=tuple(targets), with_calls=facts.with_calls)
    if refresh_only:
        return plan
    decls: dict[str, ResourceDecl] = {} if (destroy or stack is None) else dict(stack.resources)
    deps = dependencies(stack) if decls and stack is not None else {}
    order = topo_order(deps, list(decls)) if decls else []
    for name in order:
        facts.kinds[name] = kind_for(decls[name].type)

    for name in order:
        decl = decls[name]
        kind = facts.kinds[name]
        prior = state.resources.get(name)
        props = (decl.properties if decl.validated is not None
                 else resolve(decl.properties, lambda r: lookup_value(facts, r)))
        facts.desired[name] = props
        step = Step(name=name, kind=kind.name, action="same", deps=tuple(sorted(deps.get(name, ()))),
                    protect=decl.options.protect, retain_on_delete=decl.options.retain_on_delete,
                    desired=props)
        try:
            _plan_one(ctx, step, kind, decl, props, prior, facts)
        except DateraIacError as e:
            if isinstance(e, InputError) and not isinstance(e, StackError):
                e = StackError.wrap(e, decl.where_of(e.field), name)
            plan.errors.append(str(e))
            step.action = "error"
        if step.action in ("create", "replace", "update"):
            facts.pending_action[name] = step.action
        if step.protect and step.action == "replace":
            changed = ", ".join(c.name for c in step.changes if c.replace) or step.reason or "type"
            plan.errors.append(str(StackError(
                f"is protected and the plan would replace it (changed: {changed})",
                where=decl.where, resource=name, kind=kind.name,
                fix="remove `protect` first if you mean it",
            )))
        plan.steps.append(step)

    # objects in state that the stack no longer declares: delete (or forget), dependents
    # first - except what `import` adopted and no stack declared yet (unless targeted)
    for n, r in state.resources.items():
        if n not in decls and r.imported and n not in plan.targets:
            plan.imported.append(Step(name=n, kind=kind_for(r.type).name, action="same", id=r.id,
                                      reason="imported, not declared"))
    kept = {s.name for s in plan.imported}
    leaving = [r for n, r in state.resources.items() if n not in decls and n not in kept]
    leaving_names = {r.name for r in leaving}
    rdeps = {r.name: {d for d in r.deps if d in leaving_names} for r in leaving}
    dependents: dict[str, list[str]] = defaultdict(list)
    for r in leaving:
        for d in rdeps[r.name]:
            dependents[d].append(r.name)
    for name in reversed(topo_order(rdeps, [r.name for r in leaving])):
        r = state.resources[name]
        kind = kind_for(r.type)
        waits = tuple(sorted(dependents.get(name, ())))
        how = kind.unmanages(recorded_declaration(r))
        action = "forget" if r.retain_on_delete or how else "delete"
        plan.steps.append(Step(name=name, kind=kind.name, action=action, id=r.id, deps=waits,
                               protect=r.protect, retain_on_delete=r.retain_on_delete,
                               reason=f"unmanage_on_delete: {how}" + (
                                   " (renamed UNMANAGED-<name>)" if how == "rename" else "")
                               if how else None))
        if r.protect and action == "delete":
            plan.errors.append(
                f"resource {name!r} ({kind.name} {r.id}) is protected and the plan would delete it; "
                "remove `protect` (and run up) before destroying it"
            )
    for r in state.deposed:
        plan.steps.append(Step(name=r.name, kind=kind_for(r.type).name, action="delete", id=r.id,
                               deposed=True, reason="old object of an earlier replacement"))
    if plan.targets:
        _only_targets(plan, state, deps)
    check_dependents(ctx, plan, state)
    if stack is not None and not destroy:
        plan.outputs = masked_outputs(stack, facts, keep_unknown=True)
    return plan


def recorded_declaration(r: ResourceState) -> dict[str, Any]:
    """What the state holds of an object's declaration, by field name: the spec last seen
    with the declared inputs over it (what a delete's rules read: ``cascade``,
    ``unmanage_on_delete``)."""
    return {**r.spec, **(r.declared or {})}


def _only_targets(plan: Plan, state: State, deps: Mapping[str, Iterable[str]]) -> None:
    """Keep the steps of the ``--target`` names and of what they need: the declarations a
    targeted create or update depends on, and the deletes a targeted delete waits for (its
    dependents). A name neither declared nor in the state is a plan error."""
    known = {s.name for s in plan.steps} | set(state.resources)
    for t in plan.targets:
        if t not in known:
            plan.errors.append(f"--target {t!r}: no resource of that name in the stack or its "
                               "state (see `datera-iac state list`)")
    steps = {s.name: s for s in plan.steps if not s.deposed}
    keep: set[str] = set()
    todo = [t for t in plan.targets if t in known]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        s = steps.get(name)
        if s is None:
            continue
        todo.extend(s.deps if s.action in ("delete", "forget") else deps.get(name, ()))
    plan.steps = [s for s in plan.steps if s.name in keep]


def check_dependents(ctx: Context, plan: Plan, state: State, parallel: int = 10) -> None:
    """What each planned delete would take with it on the DSP (issue 16, cases 5 and 10),
    checked before anything is written, by the kinds' one rule (``check_delete``).

    A volume the plan deletes or replaces may still have snapshots: the ones this plan
    deletes first (snapshots leaving the stack with it) are fine; a snapshot the stack
    still declares is never deleted by its volume's delete (a plan error); any other (made
    outside this stack, or the old snapshots of a replaced volume) refuses the plan, naming
    them, unless the volume declares ``cascade`` - then the plan lists them under the step.
    A tenant the plan deletes must hold nothing the plan does not delete first: a retained
    (``retainOnDelete``) volume keeps its tenant, which is then forgotten too (the DSP
    would refuse the delete with 409); anything else refuses the plan, naming it."""
    todo: list[tuple[Step, Kind[Any, Any], Mapping[str, Any] | None]] = []
    for s in plan.steps:
        if s.action not in ("delete", "replace") or not s.id:
            continue
        kind = kind_for(s.kind)
        if not kind.has_dependents:
            continue
        if s.action == "replace":
            if s.reason and s.reason.startswith("type changed"):
                continue
            declared: Mapping[str, Any] | None = s.desired
        else:
            r = (next((d for d in state.deposed if d.id == s.id), None) if s.deposed
                 else state.resources.get(s.name))
            declared = recorded_declaration(r) if r else {}
        todo.append((s, kind, declared))
    if not todo:
        return  # (a plan without deletes walks no state record and no step again)
    by_id = {r.id: r for r in state.resources.values()}
    leaving = [s for s in plan.steps if s.action in ("delete", "forget") and not s.deposed]
    action_of = {s.name: s.action for s in plan.steps if not s.deposed}
    # many deletes of a kind with a bulk answer (a volume's snapshots show in the tenant's
    # listing): one listing per tenant instead of a GET per object; a few: a GET each
    of_kind: dict[str, tuple[Kind[Any, Any], list[str]]] = {}
    for s, kind, _ in todo:
        of_kind.setdefault(kind.name, (kind, []))[1].append(s.id)
    bulk: dict[tuple[str, str], list[Any]] = {}
    for kind, ids in of_kind.values():
        if kind.has_bulk_dependents and len(ids) > parallel:
            bulk.update(((kind.name, i), d) for i, d in kind.dependents_many(ctx, ids).items())
    alone = [t for t in todo if (t[1].name, t[0].id) not in bulk]
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(alone) or 1)),
                            thread_name_prefix="datera-dependents") as pool:
        asked = dict(zip([(t[1].name, t[0].id) for t in alone],
                         pool.map(lambda t: t[1].dependents(ctx, t[0].id), alone)))
    live = [bulk.get((k.name, s.id), asked.get((k.name, s.id))) or [] for s, k, _ in todo]
    for (s, kind, declared), found in zip(todo, live):
        if not found:
            continue
        # deleted first: leaving objects' deletes, which this (backward-phase) delete can
        # wait for; a replacement runs in the forward phase, before any of them
        first = {} if s.action == "replace" else {
            o.id: o.name for o in leaving if o.action == "delete" and o.id and o.name != s.name}
        kept = [d for d in found if d.id not in first and d.id in by_id
                and action_of.get(by_id[d.id].name) not in ("delete", "forget", "replace")]
        if kept:
            names = ", ".join(f"{by_id[d.id].name} ({d})" for d in kept)
            plan.errors.append(
                f"resource {s.name!r} ({kind.name} {s.id}): the plan would {s.action} it, which "
                f"would also delete {names}, still declared in this stack; remove "
                f"{'it' if len(kept) == 1 else 'them'} from the stack too (deleted first), "
                f"or keep {s.name!r}")
            continue
        retained = [d for d in found if d.id in by_id and action_of.get(by_id[d.id].name) == "forget"]
        if retained and kind.dependents_effect == "fails" and s.action == "delete" and not s.deposed:
            others = [d for d in found if d.id not in first and d not in retained]
            if not others:
                # documented rule: a retained object keeps its container
                s.action = "forget"
                s.reason = ("kept on the DSP with what it still holds: "
                            + ", ".join(f"{by_id[d.id].name} ({d}, retainOnDelete)" for d in retained))
                continue
        try:
            s.also_deletes = tuple(
                f"{d} (declared as {by_id[d.id].name}, which is replaced too)" if d.id in by_id
                else f"{d} (made outside this stack)"
                for d in check_delete(kind, ctx, s.id, declared, resource=s.name,
                                      deleted_first=first, found=found))
        except InputError as e:
            plan.errors.append(str(e))
            continue
        # the delete waits for the deletes of what it holds (also those not recorded as
        # its dependents, e.g. a snapshot declared with a literal volume id)
        waits = {first[d.id] for d in found if d.id in first}
        if waits and s.action == "delete":
            s.deps = tuple(sorted(set(s.deps) | waits))


def related_specs(decl: ResourceDecl, facts: Facts, fields: tuple[str, ...]) -> dict[str, Any]:
    """Reference field -> the Spec of the resource of this stack it names (``${x.id}``),
    with that resource's declared values (what it will hold when this step runs), for
    ``Kind.check_plan``. Declarations not known well enough to validate are left out."""
    out: dict[str, Any] = {}
    for fname in fields:
        v = decl.properties.get(fname)
        if not isinstance(v, Ref) or v.path not in ((), ("id",)) or v.resource not in facts.desired:
            continue
        try:
            spec, _ = build_spec(facts.kinds[v.resource], facts.desired[v.resource], None)
        except DateraIacError:
            continue
        if spec is not None:
            out[fname] = spec
    return out


def _check_plan(ctx: Context, kind: Kind[Any, Any], decl: ResourceDecl, props: dict[str, Any],
                spec: Any, facts: Facts, *, creating: bool, base: Any = None) -> None:
    """``Kind.check_plan`` of one declaration, with the declarations it refers to; a
    reference to an object this run creates holds a stand-in (``pending``)."""
    if type(kind).check_plan is Kind.check_plan or not (creating or kind.checks_updates):
        return
    related = related_specs(decl, facts, kind.related_fields)
    if not creating and not related:
        return
    pending = frozenset(k for k in related if has_unknown(props.get(k)))
    if spec is None or pending:
        stand_in = {f.name: getattr(base, f.name, None) for f in attrs.fields(kind.Spec)} \
            if base is not None else {}
        stand_in.update({k: PENDING_ID for k in pending})
        try:
            spec, _ = build_spec(kind, props, decl, stand_in)
        except DateraIacError:
            return  # not valid yet: the plan reports that itself
    if spec is not None:
        kind.check_plan(ctx, spec, related, creating=creating, pending=pending)


def _plan_one(ctx: Context, step: Step, kind: Kind[Any, Any], decl: ResourceDecl,
              props: dict[str, Any], prior: ResourceState | None, facts: Facts) -> None:
    obs = facts.observed.get(decl.name)
    if prior is not None and prior.type != kind.token:
        step.action, step.id = "replace", prior.id
        step.reason = f"type changed from {prior.type} to {kind.token}"
        step.strategy = "delete-before-create"
        return
    if prior is None or obs is None:
        if decl.options.import_id:
            step.action, step.import_id = "import", decl.options.import_id
            adopted = kind.adopt(ctx, decl.options.import_id)
            step.id = adopted.id
            facts.observed[decl.name] = adopted
            spec, unknown = build_spec(kind, props, decl, adopted.spec)
            if spec is not None:
                step.changes = refuse_replace(kind, change_for(ctx, kind, adopted, spec, None, unknown),
                                              importing=adopted.id).changes
            return
        step.action = "create"
        spec, _ = build_spec(kind, props, decl)  # validate what is known now
        if spec is not None:
            kind.confine(ctx, spec)  # nothing outside the configured tenant, before any request
        _check_plan(ctx, kind, decl, props, spec, facts, creating=True)
        if facts.with_calls and spec is not None:
            step.calls = kind.calls(ctx, None, spec)
        return
    step.id = prior.id
    # what it refers to may have changed even when its own declaration did not
    _check_plan(ctx, kind, decl, props, None, facts, creating=False, base=obs.spec)
    if (prior.inputs_digest and not prior.temp_name and decl.name not in facts.drifted
            and not has_unknown(props) and secret_matches(prior.inputs_digest, props)
            and repair_of(kind, obs.outputs) is None):
        return  # declaration unchanged since it was applied, and no drift: nothing to do
    obs = merge_known(kind, obs, prior, facts.drift_fields.get(decl.name, ()))
    spec, unknown = build_spec(kind, props, decl, obs.spec)
    kind.confine(ctx, spec)
    change = change_for(ctx, kind, obs, spec, prior, unknown, decl.options)
    spec, d = change.desired, change.diff
    if change.action == "same":
        return
    step.changes = d.changes
    step.reason = d.reason
    if d.repair:
        step.reason = "; ".join(r for r in (d.reason, f"needs repair: {d.repair}") if r)
    if change.action == "update":
        step.action = "update"
        facts.planned[decl.name] = kind.planned_outputs(obs, spec)
        if facts.with_calls:
            step.calls = kind.calls(ctx, obs, spec)
        if prior.temp_name:
            step.reason = f"rename from temporary name {prior.temp_name!r}"
        return
    step.action = "replace"
    step.strategy, step.temp_name = replace_strategy(kind, d, spec)
    _check_plan(ctx, kind, decl, props, spec, facts, creating=True)
