"""One ``tf`` Resource class per kind, generated from its :class:`KindAdapter`.

The ``tf`` package expects a class per Terraform type (``get_name``/``get_schema`` class
methods, CRUD methods taking a context with diagnostics). :func:`resource_class` builds it
around the generic adapter; every exception becomes a diagnostic (:mod:`datera_iac_tf.diagnostics`).
When an update or delete fails, the prior state is returned: the object still exists.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import attrs
from tf.iface import (
    CreateContext,
    DeleteContext,
    ImportContext,
    ReadContext,
    Resource,
    UpdateContext,
)
from tf.schema import Schema
from tf.utils import Diagnostics

from datera_iac.resources.base import resolve_aliases
from datera_iac.resources.intents import CreateLeft
from datera_iac.resources.plan import Planned
from datera_iac_tf.adapter import KindAdapter, has_unknown
from datera_iac_tf.diagnostics import report

#: The declaration of the prior apply (from the plan's private state) for the update that
#: ``tf``'s ApplyResourceChange dispatches in this call: ``tf`` passes a resource only its
#: prior and planned states, so :class:`datera_iac_tf.servicer.Servicer` sets this around it.
APPLY_LAST: contextvars.ContextVar[dict | None] = contextvars.ContextVar("APPLY_LAST", default=None)

if TYPE_CHECKING:  # pragma: no cover
    from datera_iac_tf.provider import DateraProvider

__all__ = ["PREFIX", "KindResource", "resource_class"]

PREFIX = "datera_"


class KindResource(Resource):
    """Base of the generated resource classes; ``adapter`` is set per kind."""

    adapter: ClassVar[KindAdapter]

    def __init__(self, provider: DateraProvider) -> None:
        self.provider = provider

    @classmethod
    def get_name(cls) -> str:
        return cls.adapter.kind.tf_type.removeprefix(PREFIX)

    @classmethod
    def get_schema(cls) -> Schema:
        if "_schema" not in cls.__dict__:  # built once: ``tf`` asks for it at every validation
            cls._schema = cls.adapter.schema.resource_schema()
        return cls._schema

    # ---- helpers ----------------------------------------------------------------------

    def _canon(self, state: dict | None) -> dict | None:
        """``state`` (a configuration, plan or state) with each deprecated former name read
        as the attribute it stands for (:attr:`KindSchema.aliases`): the adapter and the
        core see one vocabulary. Raises InputError when both names are set, differently."""
        amap = self.adapter.schema.alias_map
        if not state or not amap:
            return state
        return resolve_aliases(state, amap, kind=self.adapter.kind.name)[0]

    def _former(self, out: dict | None, src: dict | None) -> dict | None:
        """``out`` (a state the adapter returned) with the former names ``src`` used set as
        Terraform requires: the value of the attribute they stand for (a ``_wo_version``
        moves there: the configuration sets only the former one); null when unused and
        for a write-only one."""
        if out is None:
            return out
        for f in self.adapter.schema.aliases:
            used = (src or {}).get(f.name) is not None
            if f.role == "write_only" or not used:
                out[f.name] = None
            elif f.role == "wo_version":
                out[f.name], out[f.alias_of] = out.get(f.alias_of), None
            else:
                out[f.name] = out.get(f.alias_of)
        return out

    def _report(self, diags: Diagnostics, exc: BaseException, op: str, *states: Any) -> None:
        a = self.adapter
        report(
            diags, exc, what=f"{a.kind.tf_type} {op}",
            # no path into a secret: Terraform would print the configuration line, and a
            # literal secret with it
            attributes=[f.name for f in a.schema.fields() if not f.sensitive],
            secrets=[*(v for st in states for f in a.schema.fields() if f.sensitive
                       and isinstance(v := (st or {}).get(f.name), str) and v),
                     *self.provider.secrets()],
            operation=op if op in ("create", "update", "delete", "read") else None,
        )

    # ---- tf.iface.Resource ------------------------------------------------------------

    def validate(self, diags: Diagnostics, type_name: str, config: dict) -> None:
        super().validate(diags, type_name, config)
        if diags.has_errors():
            return
        try:
            self.adapter.validate(self._canon(config), keep=True)  # for the plan
        except Exception as e:  # noqa: BLE001 - every failure becomes a diagnostic
            self._report(diags, e, "validate", config)
        for name, wo, version in self.adapter.schema.secret_pairs:
            if config.get(name) is not None and not diags.has_errors():
                diags.add_warning(
                    f"{self.adapter.kind.tf_type}: {name} is stored in the state in clear",
                    f"Terraform writes {name} to terraform.tfstate as written. Use {wo} with "
                    f"{version} instead (Terraform 1.11+): a write-only argument is never "
                    "stored.")  # no path: Terraform would print the line, secret included

    def plan_change(
        self, diags: Diagnostics, prior: dict | None, config: dict,
        last: dict | None = None,
    ) -> Planned | None:
        """Called by :class:`datera_iac_tf.servicer.Servicer` (``tf`` does not pass the config
        nor let a resource name the replace paths). ``last``: the declaration of the prior
        apply, from the resource's private state."""
        try:
            outcome = self.adapter.plan(self._canon(prior), self._canon(config), last=last,
                                        defaults=getattr(self.provider, "config", None))
        except Exception as e:  # noqa: BLE001
            self._report(diags, e, "plan", prior, config)
            return None
        amap = self.adapter.schema.alias_map
        outcome = attrs.evolve(
            outcome, values=self._former(outcome.values, config),
            replaces=tuple(sorted({*outcome.replaces, *(
                a for a, n in amap.items()
                if n in outcome.replaces and config.get(a) is not None)})))
        if prior is None or outcome.replaces:
            try:  # what the apply would refuse after the copy was made (a clone's size)
                self.adapter.check_plan(self.provider.context, self._canon(config))
            except Exception as e:  # noqa: BLE001
                self._report(diags, e, "plan", prior, config)
                return None
        if outcome.repair and not outcome.replaces:
            diags.add_warning(f"{self.adapter.kind.tf_type} {prior.get('id') if prior else ''} "
                              "needs repair", f"{outcome.repair}; this apply repairs it in place")
        return outcome

    def plan_delete(self, diags: Diagnostics, prior: dict, declared: dict | None = None,
                    deleted_first: Iterable[str] = ()) -> None:
        """The dependents rule at plan time, for a destroy (``declared`` None: the prior
        state rules) or a replacement (the configuration rules): an error diagnostic naming
        what the delete would take with it (or be refused by), or a warning listing what
        ``cascade`` deletes with it."""
        how = self.adapter.kind.unmanages(prior)
        if how:  # the delete only releases it (the prior state's choice rules at apply)
            diags.add_warning(
                f"{self.adapter.kind.tf_type} {prior.get('id')} is not deleted: unmanaged",
                "unmanage_on_delete = \"%s\": it stays on the DSP%s and Terraform forgets it"
                % (how, " renamed UNMANAGED-<name>" if how == "rename" else " as it is"))
            return
        if declared is not None:
            declared = {k: v for k, v in declared.items() if not has_unknown(v)}
        try:
            # answered from the listing the plan's refresh made, where the kind allows it
            going = self.adapter.check_delete(self.provider.context, self._canon(prior),
                                              self._canon(declared), deleted_first,
                                              getattr(self.provider, "listings", None))
        except Exception as e:  # noqa: BLE001
            self._report(diags, e, "plan", prior)
            return
        if going:
            diags.add_warning(
                f"{self.adapter.kind.tf_type} {prior.get('id')} also deletes {len(going)} "
                "object(s) this configuration does not manage (cascade)",
                "Deleted with it on the DSP: " + ", ".join(str(d) for d in going))

    def create(self, ctx: CreateContext, planned: dict) -> dict | None:
        try:
            return self._former(self.adapter.create(self.provider.context,
                                                    self._canon(planned)), planned)
        except CreateLeft as e:  # made, then failed: with the error, kept as tainted
            self._report(ctx.diagnostics, e.error, "create", planned)
            return self._former(self.adapter.state_from(e.observed, self._canon(planned)), planned)
        except Exception as e:  # noqa: BLE001
            self._report(ctx.diagnostics, e, "create", planned)
            return None

    def read(self, ctx: ReadContext, current: dict) -> dict | None:
        try:
            return self._former(self.adapter.read(self.provider.context,
                                                  self._canon(current)), current)
        except Exception as e:  # noqa: BLE001
            self._report(ctx.diagnostics, e, "read", current)
            return current

    def update(self, ctx: UpdateContext, current: dict, planned: dict) -> dict | None:
        try:
            return self._former(self.adapter.update(self.provider.context, self._canon(current),
                                                    self._canon(planned),
                                                    last=APPLY_LAST.get()), planned)
        except Exception as e:  # noqa: BLE001
            self._report(ctx.diagnostics, e, "update", current, planned)
            return current

    def delete(self, ctx: DeleteContext, current: dict) -> dict | None:
        try:
            self.adapter.delete(self.provider.context, self._canon(current),
                                getattr(self.provider, "delete_checks", None))
            return None
        except Exception as e:  # noqa: BLE001
            self._report(ctx.diagnostics, e, "delete", current)
            return current

    def import_(self, ctx: ImportContext, id: str) -> dict | None:
        try:
            return self._former(self.adapter.import_(self.provider.context, id), None)
        except Exception as e:  # noqa: BLE001
            self._report(ctx.diagnostics, e, "import")
            return None


def resource_class(adapter: KindAdapter) -> type[KindResource]:
    """The ``tf`` Resource class for one kind."""
    name = f"{adapter.kind.name}Resource"
    return type(name, (KindResource,), {"adapter": adapter, "__doc__": adapter.kind.__doc__})
