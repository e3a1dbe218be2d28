"""List queries: ``filter``, ``sort``, ``limit`` and ``offset`` on a collection.

Filter grammar (the subset Datera's clients send; no spaces):

* ``match(<attr>,<regex>)``: the attribute's string value matches the regex in full
  (``re.fullmatch``). Clients write ``match(name,.*<id>.*)`` or ``match(name,prefix.*)``,
  which behave the same under full or partial matching; a full match is the stricter choice,
  so a client that works here works on either.
* ``<attr>=<value>``: the attribute's string form equals the value.

Anything else is a 400 ``InvalidRequestError``, and so are regexes longer than 512
characters or with nested quantifiers (``(a+)+``), which could backtrack for ever.

A page costs O(page), not O(collection): a list route hands :func:`page` a :class:`Rows` -
the collection's stored objects in their order (a list kept by the store, so its length is
the total count) and how to render one - and only the page's objects are rendered. A filter
or sort on an attribute the stored object holds as-is (``Rows.fields``: an app instance's
name, id, uuid, ...) reads the stored objects without rendering them, and an equality filter
on an indexed attribute (``Rows.index``: an app instance's name) is a lookup. Any other
filter or sort renders the collection first, as before: the same answer either way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

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


@attrs.frozen
class Rows:
    """A collection for :func:`page`: stored objects in order, rendered a page at a time.

    ``render=None`` means the rows are already rendered entities. ``fields`` maps an
    attribute to a getter on a stored object that returns exactly the rendered value;
    ``index`` maps an attribute to a lookup of the stored objects whose attribute's text
    equals a value (in collection order).
    """

    rows: Sequence[Any]
    render: Callable[[Any], dict[str, Any]] | None = None
    fields: Mapping[str, Callable[[Any], Any]] = attrs.field(factory=dict)
    index: Mapping[str, Callable[[str], Sequence[Any]]] = attrs.field(factory=dict)

    def getter(self, attr: str) -> Callable[[Any], Any] | None:
        """How to read ``attr`` off a row without rendering it (None: render first)."""
        if self.render is None:
            return lambda e: e.get(attr)
        return self.fields.get(attr)

    def rendered(self) -> Rows:
        """Every row rendered (for a filter or sort on a computed attribute)."""
        if self.render is None:
            return self
        return Rows([self.render(r) for r in self.rows])


def parse_filter(expr: str | None) -> tuple[str, str, Callable[[str], bool]] | None:
    """A ``filter`` query value as (attribute, ``"match"`` or ``"eq"``, test on its text)."""
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
        return attr, "match", lambda text: rx.fullmatch(text) is not None
    m = _EQ.match(expr)
    if m:
        attr, val = m["attr"], m["val"]
        return attr, "eq", lambda text: text == val
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
    items: Rows | Sequence[dict[str, Any]], params: dict[str, str], version: str,
    *, max_limit: int = MAX_LIMIT,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Filter, sort and page a collection; return the page (rendered) and the list metadata.

    v2.1 metadata is ``{"total": N}``; v2.2 is ``{total_count, request_count, limit,
    offset}``. Both versions honour ``offset`` (harmless for v2.1 clients, which never
    send it). ``sort`` takes an attribute name, ``-attr`` for descending. ``max_limit``
    below the schema's 1,000 plays an older DSP that caps its pages (a fault knob).
    """
    rows = items if isinstance(items, Rows) else Rows(items)
    parsed = parse_filter(params.get("filter"))
    limit = _int_param(params, "limit", 0, min(MAX_LIMIT, max_limit))
    offset = _int_param(params, "offset", 0, None) or 0
    sort = params.get("sort")
    if sort:
        desc = sort.startswith("-")
        attr = sort.lstrip("-+")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", attr):
            raise InvalidRequest(f"sort {sort!r}: expected an attribute name")
    if parsed is not None:
        fattr, kind, test = parsed
        lookup = rows.index.get(fattr) if kind == "eq" and rows.render is not None else None
        if lookup is not None:
            val = params["filter"].split("=", 1)[1]
            rows = attrs.evolve(rows, rows=lookup(val))
        else:
            get = rows.getter(fattr)
            if get is None:
                rows = rows.rendered()
                get = rows.getter(fattr)
                assert get is not None
            rows = attrs.evolve(rows, rows=[r for r in rows.rows if test(_text(get(r)))])
    if sort:
        get = rows.getter(attr)
        if get is None:
            rows = rows.rendered()
            get = rows.getter(attr)
            assert get is not None
        key = get
        rows = attrs.evolve(rows, rows=sorted(
            rows.rows, key=lambda e: (key(e) is None, _sort_key(key(e))), reverse=desc))
    total = len(rows.rows)
    if version == "v2.1":
        # v2.1 clients never page: without a limit they get everything.
        chunk = rows.rows[offset:] if limit is None else rows.rows[offset : offset + limit]
        meta: dict[str, Any] = {"total": total}
    else:
        eff_limit = DEFAULT_LIMIT if limit is None else limit
        chunk = rows.rows[offset : offset + eff_limit]
        meta = {
            "total_count": total,
            "request_count": len(chunk),
            "limit": eff_limit,
            "offset": offset,
        }
    render = rows.render
    return ([render(r) for r in chunk] if render is not None else list(chunk)), meta


def _sort_key(v: Any) -> tuple[int, Any]:
    if isinstance(v, bool):
        return (0, int(v))
    if isinstance(v, (int, float)):
        return (0, v)
    return (1, _text(v))
