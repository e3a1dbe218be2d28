"""The generic Terraform resource over one kind: Terraform's values (decoded cty values,
:data:`tf.types.Unknown`, the write-only ``x_wo``/``x_wo_version`` pairs of
:mod:`datera_iac_tf.schema`, ``id``, ``timeouts``, the private state) translated to the core's
provider pipeline (:mod:`datera_iac.resources.frontend`) and planner (``plan_state``) and back.
Every state returned holds null for ``x_wo`` (and for ``x`` when ``x_wo`` is used); ``x_wo``
is read from the configuration (the servicer adds it to the planned state) as ``x``.
"""

from __future__ import annotations

import functools
import operator
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import msgpack
from tf.types import Unknown

from datera_iac.errors import InputError
from datera_iac.resources.base import (
    Context, Dependent, Diff, Kind, Observed, Timeouts, check_create, check_delete)
from datera_iac.resources.batching import DeleteChecks, SharedListings
from datera_iac.resources.frontend import Frontend, Wire
from datera_iac.resources.intents import IntentJournal
from datera_iac.resources.plan import (
    declaration, holds_unknown, plan_state, secrets_as_applied, spec_if_known)
from datera_iac_tf.schema import ID, TIMEOUTS, KindSchema, kind_schema
from datera_iac_tf.timeouts import timeouts_from

__all__ = ["ContextFactory", "KindAdapter", "PlanOutcome", "has_unknown"]

#: Builds the kind's Context for one operation (the provider's client and config).
ContextFactory = Callable[[Timeouts], Context]


_is_unknown = functools.partial(operator.is_, Unknown)


def has_unknown(value: Any) -> bool:
    """Whether a decoded Terraform value is, or contains, an unknown."""
    return holds_unknown(value, _is_unknown)


class OneUse:
    """Answers of a pure function of a decoded configuration, each kept for one later call
    with an equal configuration: Terraform validates an instance's configuration and then
    plans it with the same one, in one process, so the plan need not build the Spec again
    (~5% of a volume's PlanResourceChange in instructions). Equal means equal as msgpack (types kept: ``1``, ``1.0`` and
    ``True`` differ); an answer is taken once, so no two callers share an object; errors
    are not kept; at most :attr:`size` answers wait (those of another process's plan are
    never taken)."""

    size = 256
    _MISS = object()

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[bytes, Any] = {}

    def get(self, config: Mapping[str, Any], keep: bool, compute: Callable[[Any], Any]) -> Any:
        key = _config_key(config)
        if key is not None and not keep:
            with self._lock:
                found = self._kept.pop(key, self._MISS)
            if found is not self._MISS:
                return found
        value = compute(config)
        if key is not None and keep:
            with self._lock:
                if len(self._kept) >= self.size:
                    del self._kept[next(iter(self._kept))]
                self._kept[key] = value
        return value


def _config_key(config: Mapping[str, Any]) -> bytes | None:
    def unknown(value: Any) -> Any:
        if value is Unknown:
            return msgpack.ExtType(0, b"\0")
        raise TypeError(type(value).__name__)

    try:
        return msgpack.packb(config, default=unknown)
    except (TypeError, ValueError, OverflowError):
        return None


@attrs.frozen
class PlanOutcome:
    """A planned state, the attributes whose change forces a replacement, the planner's
    diff and repair reason, and ``declared``: the non-secret declaration Terraform keeps in
    the private state as the next plan's ``last`` (what a later configuration drops)."""

    planned: dict[str, Any]
    requires_replace: tuple[str, ...] = ()
    diff: Diff | None = None
    repair: str | None = None
    declared: dict[str, Any] | None = None


class KindAdapter:
    """Terraform's values for one kind: the derived schema, plus a read batcher shared by
    the concurrent refreshes of one provider process. A kind's ``stable_outputs`` (a
    ClassVar of outputs that never change after create) stay known in an update plan."""

    def __init__(self, kind: Kind, intents: IntentJournal | None = None) -> None:
        self.kind = kind
        self.schema: KindSchema = kind_schema(kind)
        # the creates in flight, beside Terraform's own files ($TF_DATA_DIR, .terraform)
        self.intents = intents or IntentJournal(os.environ.get("TF_DATA_DIR", ".terraform"))
        self.core = Frontend(kind, Wire({n: n for n in self.schema.input_names},
                                        {f.name: f.name for f in self.schema.outputs}, _is_unknown,
                                        keeps_partial=True), self.intents)
        self.batcher = self.core.batcher
        self._stable = set(getattr(kind, "stable_outputs", ()))
        self._pairs = {n: (wo, version) for n, wo, version in self.schema.secret_pairs}
        self._validated = OneUse()

    # ---- Terraform values <-> the core's data -------------------------------------------

    def _inputs_of(self, state: Mapping[str, Any], *, secrets: bool = True) -> dict[str, Any]:
        """The known, non-null inputs (with the known ``x_wo`` as ``x``): what ``spec_from``
        gets."""
        out = self.core.inputs(state)
        return {**out, **self._written(state)} if secrets else out

    def _written(self, state: Mapping[str, Any]) -> dict[str, Any]:
        return {n: v for n, (wo, _) in self._pairs.items()
                if (v := state.get(wo)) is not None and not has_unknown(v)}

    def _rotated(self, prior: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
        return {n for n, (_, version) in self._pairs.items() if prior.get(version) != new.get(version)}

    def _prior_inputs(self, prior: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
        return secrets_as_applied(self._inputs_of(prior), self._written(new), self._rotated(prior, new))

    def without_write_only(self, state: dict[str, Any] | None,
                           versions: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """``state`` with every write-only attribute null, as Terraform requires (with
        ``versions``: each ``x_wo_version`` set, as there)."""
        for _, (wo, version) in self._pairs.items():
            if state is not None and (wo in state or versions is not None):
                state[wo] = None
            if state is not None and versions is not None:
                state[version] = versions.get(version)
        return state

    def spec_of(self, state: Mapping[str, Any], *, resource: str | None = None) -> Any:
        return self.kind.spec_from(self._inputs_of(state), resource=resource)

    def timeouts_of(self, state: Mapping[str, Any] | None) -> Timeouts:
        value = (state or {}).get(TIMEOUTS)
        return Timeouts() if value is None or has_unknown(value) else timeouts_from(
            value, kind=self.kind.name)

    def sensitive_values(self, *states: Mapping[str, Any] | None) -> list[str]:
        """Secrets present in these states, to scrub from error text."""
        names = [f.name for f in self.schema.fields() if f.sensitive]
        return [v for st in states for n in names
                if isinstance(v := (st or {}).get(n), str) and v]

    # ---- validate, plan -------------------------------------------------------------------

    def validate(self, config: Mapping[str, Any], *, keep: bool = False) -> Any:
        """The Spec of the configuration, None while a value is unknown (checked at plan
        and apply). Raises InputError for its known values (at ``x_wo`` where set).
        ``keep``: ValidateResourceConfig's call; the next call with the same configuration
        (the plan's) takes its answer instead of building it again (:class:`OneUse`)."""
        return self._validated.get(config, keep, self._validate)

    def _validate(self, config: Mapping[str, Any]) -> Any:
        self.timeouts_of(config)  # a bad timeouts block raises
        for name, (wo, version) in self._pairs.items():
            if config.get(name) is not None and config.get(wo) is not None:
                raise InputError(f"{name} and {wo} are both set", kind=self.kind.name, field=wo,
                                 fix=f"keep only {wo} (with {version}); {name} is stored in "
                                 "the state in clear")
            if config.get(version) is not None and config.get(wo) is None:
                raise InputError(f"{version} is set without {wo}", kind=self.kind.name,
                                 field=version, fix=f"set {wo} to the secret, or drop {version}")
        unknown = {n for n in self.schema.input_names if has_unknown(config.get(n))}
        unknown |= {n for n, (wo, _) in self._pairs.items() if has_unknown(config.get(wo))}
        try:
            return spec_if_known(self.kind, self._inputs_of(config), unknown)
        except InputError as e:
            root = (e.field or "").split(".")[0]
            if root in self._pairs and config.get(self._pairs[root][0]) is not None:
                raise InputError(e.reason, kind=e.kind, resource=e.resource, fix=e.fix,
                                 field=self._pairs[root][0] + (e.field or "")[len(root):]) from None
            raise

    def plan(self, prior: Mapping[str, Any] | None, config: Mapping[str, Any],
             last: Mapping[str, Any] | None = None, defaults: Any = None) -> PlanOutcome:
        """Plan a create (``prior`` None) or an update/replace (the core's
        :func:`~datera_iac.resources.plan.plan_state`). ``last``: the private state's
        declaration; ``defaults``: the provider's DateraConfig. Raises InputError."""
        spec = self.validate(config)
        p = plan_state(
            self.kind, prior,  # a prior state is wholly known (Terraform stores no unknown)
            self._inputs_of(config, secrets=False), spec,
            unknown={n for n in self.schema.input_names if has_unknown(config.get(n))},
            write_only={n for n, (wo, _) in self._pairs.items() if config.get(wo) is not None},
            written=self._written(config), rotated=self._rotated(prior, config) if prior else (),
            rotation={n: version for n, (_, version) in self._pairs.items()},
            last=last, config=defaults, stable=self._stable)
        planned = {**p.values, **dict.fromkeys(p.unknown, Unknown), TIMEOUTS: config.get(TIMEOUTS)}
        self.without_write_only(planned, config)  # x_wo: never in state
        return PlanOutcome(planned, p.replaces, p.diff, p.repair, declaration(self.kind, spec))

    def state_from(self, obs: Observed[Any, Any], user: Mapping[str, Any] | None) -> dict[str, Any]:
        """Terraform state for what the DSP reports, in the user's form where equal."""
        state = self.core.state(obs, None if user is None else self.core.inputs(user, nulls=True),
                                written=self._written(user or {}))
        self.without_write_only(state, user or {})
        return {**state, ID: obs.id, TIMEOUTS: (user or {}).get(TIMEOUTS)}

    # ---- apply ------------------------------------------------------------------------------

    def create(self, contexts: ContextFactory, planned: Mapping[str, Any]) -> dict[str, Any]:
        """Create; raises :class:`~datera_iac.resources.intents.CreateLeft` when the object
        was made but the wait for it timed out (the kind keeps it): Terraform records it."""
        obs = self.core.create(contexts(self.timeouts_of(planned)), self.spec_of(planned),
                               self._intent_key(planned))
        return self.state_from(obs, planned)

    def _intent_key(self, state: Mapping[str, Any]) -> str:
        """The intent journal's key of a resource: its kind and non-secret inputs."""
        return self.intents.key_of(self.kind, self._inputs_of(state))

    def read(self, contexts: ContextFactory, current: Mapping[str, Any]) -> dict[str, Any] | None:
        """The refreshed state, or None when the object is gone (Terraform drops it and the
        next plan creates it again)."""
        if not current.get(ID):
            return None
        inputs = self._inputs_of(current)
        obs = self.core.read(contexts(self.timeouts_of(current)), current[ID], inputs, declared=inputs)
        return None if obs is None else self.state_from(obs, current)

    def update(self, contexts: ContextFactory, prior: Mapping[str, Any], planned: Mapping[str, Any],
               last: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Update in place; ``last`` as for :meth:`plan` (the plan's private state)."""
        obs = self.core.update(
            lambda: contexts(self.timeouts_of(planned)), prior[ID], prior, self.spec_of(planned),
            written=self._written(planned), rotated=self._rotated(prior, planned), last=last,
            rerun="`terraform apply`", resource=str(planned.get("name") or prior.get(ID) or ""))
        if obs is None:  # no call: the prior outputs stand
            return self.without_write_only({**planned, **{f.name: prior.get(f.name) for f in
                                            self.schema.outputs if has_unknown(planned.get(f.name))}})  # type: ignore[return-value]
        return self.state_from(obs, planned)

    def check_plan(self, contexts: ContextFactory, config: Mapping[str, Any]) -> None:
        """The core's ``check_create`` of a create or replacement."""
        check_create(self.kind, lambda: contexts(self.timeouts_of(config)), self.validate(config))

    def check_delete(self, contexts: ContextFactory, prior: Mapping[str, Any],
                     declared: Mapping[str, Any] | None = None,
                     deleted_first: Iterable[str] = (),
                     listings: SharedListings | None = None) -> tuple[Dependent, ...]:
        """The kind's dependents rule (``resources.base.check_delete``) for ``prior``'s
        object; ``declared``: the declaration that rules (default: the prior state);
        ``listings``: the plan's refresh wave, answering a kind with a bulk answer."""
        if not prior.get(ID) or not self.kind.has_dependents:
            return ()  # no context needed (the provider may not be configured yet)
        ctx = contexts(self.timeouts_of(prior))
        return check_delete(self.kind, ctx, prior[ID], prior if declared is None else declared,
                            resource=prior[ID], deleted_first=deleted_first,
                            check_ctx=None if listings is None else listings.serving(ctx))

    def delete(self, contexts: ContextFactory, prior: Mapping[str, Any],
               checks: DeleteChecks | None = None) -> None:
        """Delete (or unmanage), after the dependents rule on what the DSP holds now;
        ``checks``: the apply's delete checks (one listing answers many deletes of a kind)."""
        if prior.get(ID):
            self.core.delete(contexts(self.timeouts_of(prior)), prior[ID], prior, resource=prior[ID],
                             checks=checks)

    def import_(self, contexts: ContextFactory, ref: str) -> dict[str, Any]:
        """Adopt an existing object; raises NotFound when there is none."""
        return self.state_from(self.kind.adopt(contexts(Timeouts()), ref), None)
