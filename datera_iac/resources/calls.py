"""DSP calls as data: what a kind decides to send, apart from sending it.

pyinfra's operations, for the DSP: a kind computes the requests a change needs from the
live object and the declaration without any I/O (``Volume``: :func:`~datera_iac.resources.
volume.volume_calls`), so a preview can list them and table tests can check them without a
DSP; :func:`send_calls` is the only place that sends them. A call the DSP may answer in a
way that only says "do it the other way" carries that other way (``unless`` / ``instead``):
a DELETE of what is already gone, a POST of a policy that exists (409: PUT it), an online
resize the DSP refuses (take the volume offline for it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from datera_iac.errors import Conflict, InvalidRequest, NotFound, ValidationFailed
from datera_iac.secrets import SHOWN, redact

__all__ = ["UNLESS", "Call", "flatten", "offline_around", "send_calls"]

#: The DSP answers that send a call's ``instead`` (an empty ``instead``: nothing to do).
UNLESS: dict[str, tuple[type[Exception], ...]] = {
    "missing": (NotFound,),  # 404
    "conflict": (Conflict,),  # 409
    "refused": (Conflict, ValidationFailed, InvalidRequest),  # 409 / 422 / 400
}


def _shown(body: Any) -> Any:
    """``body`` as a plan shows it: secret keys as ``(sensitive)``, like every secret of a plan."""
    return redact(body, mask=SHOWN)


def _masked(body: Any) -> str:
    return repr(_shown(body))


@attrs.frozen(kw_only=True)
class Call:
    """One DSP request: ``method`` on ``path`` with ``body`` (secrets in clear, masked in
    ``repr`` and :meth:`to_json`); ``why`` names the rule that chose it.

    ``unless`` (a key of :data:`UNLESS`) with ``instead``: when the DSP answers that way,
    ``instead`` is sent in its place (nothing when empty). ``then`` and ``restore`` make a
    bracket: once this call succeeded, ``then`` is sent, and ``restore`` after it even when
    one of ``then`` failed (a volume taken offline comes back online)."""

    method: str
    path: str
    body: Mapping[str, Any] | None = attrs.field(default=None, repr=_masked)
    why: str = ""
    unless: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(UNLESS)))
    instead: tuple[Call, ...] = ()
    then: tuple[Call, ...] = ()
    restore: Call | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready and safe to show: secret body keys masked."""
        out: dict[str, Any] = {"method": self.method, "path": self.path,
                               "body": _shown(self.body) if self.body is not None else None,
                               "why": self.why}
        if self.unless:
            out["unless"] = self.unless
            out["instead"] = [c.to_json() for c in self.instead]
        if self.then:
            out["then"] = [c.to_json() for c in self.then]
        if self.restore is not None:
            out["restore"] = self.restore.to_json()
        return out

    def lines(self, indent: str = "") -> list[str]:
        """Preview lines: ``PUT /app_instances/x/... {"size": 20}  (size 10 -> 20 GiB)``,
        then the bracketed calls indented, then the restoring call."""
        body = "" if self.body is None else " " + json.dumps(_shown(self.body), sort_keys=True)
        text = f"{indent}{self.method} {self.path}{body}"
        if self.why:
            text += f"  ({self.why})"
        if self.unless:
            alt = ", ".join(_short(c) for c in flatten(self.instead))
            text += f"  [if {self.unless}: {alt + ' instead' if alt else 'done'}]"
        out = [text]
        for c in self.then:
            out += c.lines(indent + "  ")
        if self.restore is not None:
            out += self.restore.lines(indent)
        return out


def offline_around(path: str, why: str, then: tuple[Call, ...], *, force: bool = False) -> Call:
    """admin_state offline on the app_instance ``path`` around ``then`` (``force``: with
    initiators logged in), online again after it even when one of ``then`` fails."""
    body: dict[str, Any] = {"admin_state": "offline", **({"force": True} if force else {})}
    return Call(method="PUT", path=path, body=body, why=why, then=then,
                restore=Call(method="PUT", path=path, body={"admin_state": "online"},
                             why="back online"))


def _short(call: Call) -> str:
    """``offline`` / ``online`` for an admin_state flip, else the method."""
    state = (call.body or {}).get("admin_state")
    return str(state) if isinstance(state, str) else call.method


def flatten(calls: Iterable[Call]) -> list[Call]:
    """The calls in the order they are sent when every one succeeds (brackets opened,
    alternatives left out), each without its nested calls."""
    out: list[Call] = []
    for c in calls:
        out.append(attrs.evolve(c, instead=(), then=(), restore=None) if c.then or c.restore
                   else c)
        out += flatten(c.then)
        if c.restore is not None:
            out += flatten([c.restore])
    return out


def send_calls(client: Any, calls: Iterable[Call], *, tenant: str | None) -> int:
    """Send ``calls`` in order (the first failure is raised); returns how many requests
    were sent."""
    return sum(_send(client, c, tenant) for c in calls)


def _send(client: Any, call: Call, tenant: str | None) -> int:
    method = getattr(client, call.method.lower())
    args = () if call.body is None else (call.body,)
    try:
        method(call.path, *args, tenant=tenant)
    except UNLESS.get(call.unless or "", ()):
        return 1 + send_calls(client, call.instead, tenant=tenant)
    sent = 1
    if call.then or call.restore is not None:
        try:
            sent += send_calls(client, call.then, tenant=tenant)
        finally:
            if call.restore is not None:
                sent += _send(client, call.restore, tenant)
    return sent
