"""List resources (Terraform 1.14+, ``terraform query``) and resource identity.

``list "datera_volume" "all" { provider = datera; config { tenant = "/root/team-a" } }`` in
a ``.tfquery.hcl`` file lists what the DSP holds with the kind's listing
(:data:`datera_iac.resources.queries.LISTINGS`: the same code as ``datera-iac ls``, the
``datera_volumes`` data source and the Pulumi function); ``terraform query
-generate-config-out=FILE`` then writes a resource block and an ``import`` block (by
identity) for each result. Every kind that has a listing is a list resource: volumes,
snapshots, volume types, tenants.

Resource identity (Terraform 1.12+) is what a list result and an ``import`` block name an
object by: ``{ id }``, the kind's import id. The provider reports it for these kinds in
every read, plan, apply and import, and imports by it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tf import types as tft
from tf.schema import Attribute, Schema

from datera_iac_tf._types import tf_type_for

if TYPE_CHECKING:  # pragma: no cover
    from datera_iac.resources.queries import Listing
    from datera_iac_tf.provider import DateraProvider

__all__ = ["IDENTITY_ATTRIBUTE", "ListResource", "list_resources"]

#: the one identity attribute of every listed kind
IDENTITY_ATTRIBUTE = "id"


class ListResource:
    """One kind's list resource: its config schema (the listing's arguments) and its
    results (identity, display name, and the resource object as an import would read it)."""

    def __init__(self, type_name: str, listing: Listing, adapter: Any) -> None:
        self.type_name = type_name
        self.listing = listing
        self.adapter = adapter

    def schema(self) -> Schema:
        return Schema(description=f"List resource: {self.listing.doc}", attributes=[
            Attribute(a.name, tf_type_for(a.type), description=a.doc, optional=True)
            for a in self.listing.args if a.name != "with_metadata"])

    def identity_schema(self) -> list[tuple[str, Any, str]]:
        return [(IDENTITY_ATTRIBUTE, tft.String(),
                 f"The {self.adapter.kind.name}'s id ({self.adapter.kind.import_id_doc}).")]

    def results(self, provider: DateraProvider, config: dict[str, Any], *,
                with_object: bool, limit: int) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
        """(id, display name, resource state or None) of each listed object, at most
        ``limit`` (0: all)."""
        args = {a.name: config.get(a.name) for a in self.listing.args
                if config.get(a.name) is not None}
        if "with_metadata" in {a.name for a in self.listing.args} and with_object:
            args["with_metadata"] = True  # the object is what an import would read
        ctx = provider.context()
        for n, obs in enumerate(self.listing.fetch(ctx, **args)):
            if limit and n >= limit:
                return
            state = self.adapter.state_from(obs, None) if with_object else None
            row = self.listing.to_row(obs)
            label = row.get("name") or row.get("timestamp") or obs.id
            yield obs.id, str(label), state


def list_resources(provider: DateraProvider) -> dict[str, ListResource]:
    """The list resources of ``provider``: one per kind that has a listing."""
    from datera_iac.resources.queries import LISTINGS

    by_kind = {a.kind.name: (t, a) for t, a in provider.adapters.items()}
    out = {}
    for lst in LISTINGS.values():
        if lst.kind is not None and lst.kind in by_kind:
            type_name, adapter = by_kind[lst.kind]
            out[type_name] = ListResource(type_name, lst, adapter)
    return out
