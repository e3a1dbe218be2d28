"""Read-only queries the front ends' data sources need beyond one object: the system's
version and capacity, and a filtered list of volumes.

Written for the Terraform provider's ``datera_system`` and ``datera_volumes`` data sources
(the adapters may not talk to the DSP themselves); the engine and the Pulumi provider can
use them as well. Volumes are read through :meth:`Volume.read_many` (paged list calls), so
a list of N volumes costs a few requests, not N.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from datera_iac.dsp import System
from datera_iac.dsp._entities import from_api
from datera_iac.errors import InputError
from datera_iac.resources._util import join_id, normalize_tenant
from datera_iac.resources.base import KINDS, Context, Observed

__all__ = ["SystemInfo", "list_volumes", "system_info"]


@attrs.frozen(kw_only=True)
class SystemInfo:
    """The DSP's ``/system`` entity plus the REST API version the client speaks."""

    system: System
    api_version: str


def system_info(ctx: Context) -> SystemInfo:
    """GET /system (one request) and the negotiated API version."""
    data = ctx.client.get("/system")
    return SystemInfo(system=from_api(data, System), api_version=str(ctx.client.api_version))


def list_volumes(
    ctx: Context, *, tenant: str | None = None, name_regex: str | None = None,
) -> list[Observed[Any, Any]]:
    """The volumes (app_instances in the Cinder layout) of one tenant (default: the
    provider's), optionally those whose name matches ``name_regex`` (Python ``re.search``),
    sorted by name. Raises InputError for an invalid regex or tenant."""
    from datera_iac.resources.volume import _default_tenant

    try:
        pattern = re.compile(name_regex) if name_regex else None
    except re.error as e:
        raise InputError(f"invalid regular expression: {e}", kind="Volume", field="name_regex",
                         fix="write a Python regular expression, e.g. '^db-'") from None
    where = normalize_tenant(tenant, kind="Volume", field="tenant") if tenant else None
    where = where or _default_tenant(ctx)
    ids = []
    for ai in ctx.client.list("/app_instances", tenant=where):
        name = str(ai.get("name") or "")
        if pattern is not None and not pattern.search(name):
            continue
        sis = ai.get("storage_instances") or []
        if len(sis) != 1 or len((sis[0] or {}).get("volumes") or []) != 1:
            continue  # not a single-volume (Cinder layout) app_instance
        ids.append(join_id(where, str(ai.get("id"))))
    found = KINDS["Volume"].read_many(ctx, ids) if ids else {}
    out = [obs for obs in found.values() if obs is not None]
    return sorted(out, key=lambda o: (str(o.spec.name), o.id))
