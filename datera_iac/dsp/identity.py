"""Which DSP a front end's state belongs to (issue 16, case 1): the endpoint it was made
through and the DSP's own identity from ``GET /system`` (uuid and name), so a run against
another DSP refuses before it reads or writes anything, while the same DSP at a new
address (same uuid) is recognised. The engine keeps the record in its state file; the
Terraform provider in each resource's private state."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from datera_iac.errors import DateraIacError

__all__ = ["describe_dsp", "dsp_identity", "norm_url", "other_dsp", "same_dsp"]

log = logging.getLogger(__name__)


def norm_url(url: str | None) -> str:
    return (url or "").rstrip("/").lower()


def describe_dsp(rec: Mapping[str, Any]) -> str:
    """``the DSP at URL (name N, uuid U)``, or ``the bundled simulator``."""
    if rec.get("simulator"):
        return "the bundled simulator"
    extra = ", ".join(f"{k} {rec[k]}" for k in ("name", "uuid") if rec.get(k))
    return f"the DSP at {rec.get('endpoint')}" + (f" ({extra})" if extra else "")


def dsp_identity(client: Any, base_url: str | None, *, fetch: bool = True) -> dict[str, Any]:
    """The DSP ``client`` talks to, as a record: its endpoint, and its uuid/name from
    ``GET /system`` (the answer the client already has, else one request when ``fetch``;
    a user who may not read /system gets the endpoint only)."""
    if not base_url:
        return {}
    out: dict[str, Any] = {"endpoint": base_url}
    info = getattr(client, "system_info", None)
    if info is None and fetch:
        try:
            info = client.get("/system", tenant="/root")
        except DateraIacError as e:
            log.debug("GET /system for the DSP identity failed: %s", e)
            info = None
    if isinstance(info, Mapping):
        for k in ("uuid", "name"):
            if info.get(k):
                out[k] = str(info[k])
    return out


def same_dsp(rec: Mapping[str, Any], here: Mapping[str, Any]) -> bool:
    """Whether ``here`` is the DSP of the record ``rec``: the same endpoint, or the same
    uuid at a new address."""
    if norm_url(rec.get("endpoint")) == norm_url(here.get("endpoint")):
        return True
    return bool(rec.get("uuid")) and rec.get("uuid") == here.get("uuid")


def other_dsp(rec: Mapping[str, Any] | None, client: Any, base_url: str | None
              ) -> dict[str, Any] | None:
    """The DSP ``client`` talks to when it is not the one of the record ``rec`` (else
    None). No request while the endpoints match; ``GET /system`` once they differ (the
    same DSP at a new address has the same uuid)."""
    if not rec or not base_url:
        return None
    here = dsp_identity(client, base_url, fetch=False)
    if same_dsp(rec, here):
        return None
    here = dsp_identity(client, base_url, fetch=True)
    return None if same_dsp(rec, here) else here
