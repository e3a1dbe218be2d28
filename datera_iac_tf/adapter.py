"""The generic Terraform resource over one kind: Terraform's values (decoded cty values,
:data:`tf.types.Unknown`, the write-only ``x_wo``/``x_wo_version`` pairs of
:mod:`datera_iac_tf.schema`, ``id``, ``timeouts``, the private state) translated to the core's
provider pipeline (:mod:`datera_iac.resources.frontend`) and back."""

from __future__ import annotations

import functools
import operator
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from tf.types import Unknown

from datera_iac.resources.base import Context, Dependent, Kind, Observed, Timeouts, check_create
from datera_iac.resources.batching import DeleteChecks, SharedListings
from datera_iac.resources.frontend import Frontend, Wire
from datera_iac.resources.frontend import OneUse as _OneUse
from datera_iac.resources.intents import IntentJournal
from datera_iac.resources.plan import Planned, declaration, holds_unknown
from datera_iac_tf.schema import ID, TIMEOUTS, KindSchema, kind_schema
from datera_iac_tf.timeouts import timeouts_from

__all__ = ["ContextFactory", "KindAdapter", "has_unknown"]

#: Builds the kind's Context for one operation (the provider's client and config).
ContextFactory = Callable[[Timeouts], Context]

_is_unknown = functools.partial(operator.is_, Unknown)


def has_unknown(value: Any) -> bool:
    """Whether a decoded Terraform value is, or contains, an unknown."""
    return holds_unknown(value, _is_unknown)


class OneUse(_OneUse):
    """The core's :class:`~datera_iac.resources.frontend.OneUse` of Terraform's values (the
    plan's Spec, built by its validation: ~5% of a volume's PlanResourceChange)."""

    is_unknown = staticmethod(_is_unknown)


class KindAdapter:
    """Terraform's values for one kind: the derived schema, plus a read batcher shared by
    the concurrent refreshes of one provider process. ``x_wo`` is read as ``x`` from the
    configuration (the servicer adds it to the planned state); a state holds null for it."""

    def __init__(self, kind: Kind, intents: IntentJournal | None = None) -> None:
        self.kind = kind
        self.schema: KindSchema = kind_schema(kind)
        # the creates in flight, beside Terraform's own files ($TF_DATA_DIR, .terraform)
        self.intents = intents or IntentJournal(os.environ.get("TF_DATA_DIR", ".terraform"))
        self.core = Frontend(kind, Wire(
            {n: n for n in self.schema.input_names}, {f.name: f.name for f in self.schema.outputs},
            _is_unknown, write_only={n: (wo, v) for n, wo, v in self.schema.secret_pairs},
            keeps_partial=True), self.intents)
        self.batcher = self.core.batcher
        self._validated = OneUse()

    def spec_of(self, state: Mapping[str, Any], *, resource: str | None = None) -> Any:
        return self.kind.spec_from(self.core.given(state), resource=resource)

    def timeouts_of(self, state: Mapping[str, Any] | None) -> Timeouts:
        value = (state or {}).get(TIMEOUTS)
        return Timeouts() if value is None or has_unknown(value) else timeouts_from(
            value, kind=self.kind.name)

    def validate(self, config: Mapping[str, Any], *, keep: bool = False) -> Any:
        """The Spec of the configuration, None while a value is unknown (checked at plan
        and apply); InputError for its known values. ``keep``: ValidateResourceConfig's
        call; the plan's next call with the same configuration takes its answer."""
        return self._validated.get(config, keep, self._validate)

    def _validate(self, config: Mapping[str, Any]) -> Any:
        self.timeouts_of(config)  # a bad timeouts block raises
        return self.core.spec_if_known(config)

    def plan(self, prior: Mapping[str, Any] | None, config: Mapping[str, Any],
             last: Mapping[str, Any] | None = None, defaults: Any = None) -> Planned:
        """Plan a create (``prior`` None) or an update/replace: the planned state (unknowns
        as Terraform's), the attributes that force a replacement, the declaration for the
        private state. ``last``: the private state's declaration; ``defaults``: the
        provider's DateraConfig. Raises InputError."""
        spec = self.validate(config)
        p = self.core.plan(prior, config, spec, last=last, defaults=defaults)
        planned = {**p.values, **dict.fromkeys(p.unknown, Unknown), TIMEOUTS: config.get(TIMEOUTS)}
        self.core.without_write_only(planned, config)  # x_wo: never in state
        return attrs.evolve(p, values=planned, declared=declaration(self.kind, spec))

    def state_from(self, obs: Observed[Any, Any], user: Mapping[str, Any] | None) -> dict[str, Any]:
        """Terraform state for what the DSP reports, in the user's form where equal."""
        return {**self.core.state(obs, user), ID: obs.id, TIMEOUTS: (user or {}).get(TIMEOUTS)}

    def create(self, contexts: ContextFactory, planned: Mapping[str, Any]) -> dict[str, Any]:
        """Create; raises :class:`~datera_iac.resources.intents.CreateLeft` when the object
        was made but the wait for it timed out (the kind keeps it): Terraform records it."""
        obs = self.core.create(contexts(self.timeouts_of(planned)), self.spec_of(planned),
                               self._intent_key(planned))
        return self.state_from(obs, planned)

    def _intent_key(self, state: Mapping[str, Any]) -> str:
        return self.intents.key_of(self.kind, self.core.given(state))

    def read(self, contexts: ContextFactory, current: Mapping[str, Any]) -> dict[str, Any] | None:
        """The refreshed state, or None when the object is gone (Terraform drops it)."""
        if not current.get(ID):
            return None
        inputs = self.core.given(current)
        obs = self.core.read(contexts(self.timeouts_of(current)), current[ID], inputs, declared=inputs)
        return None if obs is None else self.state_from(obs, current)

    def update(self, contexts: ContextFactory, prior: Mapping[str, Any], planned: Mapping[str, Any],
               last: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Update in place; ``last`` as for :meth:`plan` (the plan's private state)."""
        obs = self.core.update(
            lambda: contexts(self.timeouts_of(planned)), prior[ID], prior, self.spec_of(planned),
            planned, last=last, rerun="`terraform apply`",
            resource=str(planned.get("name") or prior.get(ID) or ""))
        if obs is None:  # no call: the prior outputs stand
            return self.core.without_write_only({**planned, **{f.name: prior.get(f.name) for f in
                                                 self.schema.outputs if has_unknown(planned.get(f.name))}})  # type: ignore[return-value]
        return self.state_from(obs, planned)

    def check_plan(self, contexts: ContextFactory, config: Mapping[str, Any]) -> None:
        """The core's ``check_create`` of a create or replacement."""
        check_create(self.kind, lambda: contexts(self.timeouts_of(config)), self.validate(config))

    def check_delete(self, contexts: ContextFactory, prior: Mapping[str, Any],
                     declared: Mapping[str, Any] | None = None, deleted_first: Iterable[str] = (),
                     listings: SharedListings | None = None) -> tuple[Dependent, ...]:
        """The kind's dependents rule for ``prior``'s object; ``declared``: the declaration
        that rules (default: the prior state); ``listings``: the plan's refresh wave."""
        return self.core.check_delete(lambda: contexts(self.timeouts_of(prior)), prior.get(ID),
                                      prior if declared is None else declared,
                                      deleted_first=deleted_first, listings=listings)

    def delete(self, contexts: ContextFactory, prior: Mapping[str, Any],
               checks: DeleteChecks | None = None) -> None:
        """Delete (or unmanage), after the dependents rule on what the DSP holds now."""
        if prior.get(ID):
            self.core.delete(contexts(self.timeouts_of(prior)), prior[ID], prior, resource=prior[ID],
                             checks=checks)

    def import_(self, contexts: ContextFactory, ref: str) -> dict[str, Any]:
        """Adopt an existing object; raises NotFound when there is none."""
        return self.state_from(self.kind.adopt(contexts(Timeouts()), ref), None)
