"""List queries: ``filter``, ``sort``, ``limit`` and ``offset`` on a collection.

Filter grammar (the subset Datera's clients send; no spaces):

* ``match(<attr>,<regex>)``: the attribute's string value matches the regex in full
  (``re.fullmatch``). Clients write ``match(name,.*<id>.*)`` or ``match(name,prefix.*)``,
  which behave the same under full or partial matching; a full match is the stricter choice,
  so a client that works here works on either.
* ``<attr>=<value>``: the attribute's string form equals the value.

Anything else is a 400 ``InvalidRequestError``, and so are regexes longer than 512
characters or with nested quantifiers (``(a+)+``), which could backtrack for ever.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from datera_iac.sim.errors import InvalidRequest, ValidationFailed

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

_MATCH = re.compile(r"^match\((?P<attr>[A-Za-z_][A-Za-z0-9_]*),(?P<rx>.*)\)$", re.DOTALL)
#: a quantified group that itself contains a quantifier: "(a+)+", "(x*y)*" — the shapes that
#: backtrack exponentially. Rejected so a filter can never hang the simulator.
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[*+}](?:[^()\\]|\\.)*\)[*+{]")
MAX_REGEX = 512
_EQ = re.compile(r"^(?P<attr>[A-Za-z_][A-Za-z0-9_]*)=(?P<val>.*)$", re.DOTALL)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compile_filter(expr: str | None) -> Callable[[dict[str, Any]], bool] | None:
    """Turn a ``filter`` query value into a predicate over rendered entities."""
    if expr is None or expr == "":
        return None
    if any(c.isspace() for c in expr):
        raise InvalidRequest(f"filter {expr!r}: no spaces allowed")
    m = _MATCH.match(expr)
    if m:
        attr = m["attr"]
        if len(m["rx"]) > MAX_REGEX or _NESTED_QUANTIFIER.search(m["rx"]):
            raise InvalidRequest(
                f"filter {expr[:80]!r}: regular expression too long or with nested quantifiers"
            )
        try:
            rx = re.compile(m["rx"])
        except re.error as e:
            raise InvalidRequest(f"filter {expr!r}: bad regular expression: {e}") from None
        return lambda ent: rx.fullmatch(_text(ent.get(attr))) is not None
    m = _EQ.match(expr)
    if m:
        attr, val = m["attr"], m["val"]
        return lambda ent: _text(ent.get(attr)) == val
    raise InvalidRequest(
        f"filter {expr!r} is not understood; use match(<attr>,<regex>) or <attr>=<value>"
    )


def _int_param(params: dict[str, str], name: str, lo: int, hi: int | None) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        val = int(raw)
    except ValueError:
        raise ValidationFailed(f"{raw!r} is not an integer", field=name) from None
    if val < lo or (hi is not None and val > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ValidationFailed(f"{val} must be {bound}", field=name)
    return val


def page(
    items: Iterable[dict[str, Any]], params: dict[str, str], version: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Filter, sort and page rendered entities; return the page and the list metadata.

    v2.1 metadata is ``{"total": N}``; v2.2 is ``{total_count, request_count, limit,
    offset}``. Both versions honour ``offset`` (harmless for v2.1 clients, which never
    send it). ``sort`` takes an attribute name, ``-attr`` for descending.
    """
    pred = compile_filter(params.get("filter"))
    limit = _int_param(params, "limit", 0, MAX_LIMIT)
    offset = _int_param(params, "offset", 0, None) or 0
    rows = [e for e in items if pred is None or pred(e)]
    sort = params.get("sort")
    if sort:
        desc = sort.startswith("-")
        attr = sort.lstrip("-+")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", attr):
            raise InvalidRequest(f"sort {sort!r}: expected an attribute name")
        rows.sort(key=lambda e: (e.get(attr) is None, _sort_key(e.get(attr))), reverse=desc)
    total = len(rows)
    if version == "v2.1":
        # v2.1 clients never page: without a limit they get everything.
        chunk = rows[offset:] if limit is None else rows[offset : offset + limit]
        meta: dict[str, Any] = {"total": total}
    else:
        eff_limit = DEFAULT_LIMIT if limit is None else limit
        chunk = rows[offset : offset + eff_limit]
        meta = {
            "total_count": total,
            "request_count": len(chunk),
            "limit": eff_limit,
            "offset": offset,
        }
    return chunk, meta


def _sort_key(v: Any) -> tuple[int, Any]:
    if isinstance(v, bool):
        return (0, int(v))
    if isinstance(v, (int, float)):
        return (0, v)
    return (1, _text(v))
