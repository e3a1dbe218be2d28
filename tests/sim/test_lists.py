"""Contract: list filters, sort, limit/offset paging and their metadata in v2.1 and v2.2."""

from __future__ import annotations

from typing import Any


def _make(api: Any, n: int) -> list[str]:
    names = [f"OS-{i:03d}-vol" for i in range(n)]
    for name in reversed(names):  # created out of order: sorting must do the work
        api.ok("POST", "/app_instances", {"name": name})
    return names


def test_match_filter_is_a_full_regex_match(api) -> None:
    """match(name,<regex>) must match the whole name (Cinder's .*<id>.* and prefix.* work)."""
    _make(api, 5)
    got = api.ok("GET", "/app_instances", params={"filter": "match(name,.*002.*)"})
    assert [a["name"] for a in got] == ["OS-002-vol"]
    assert len(api.ok("GET", "/app_instances", params={"filter": "match(name,OS-00.*)"})) == 5
    assert api.ok("GET", "/app_instances", params={"filter": "match(name,002)"}) == []


def test_equality_filter(api) -> None:
    """attr=value compares the attribute's string form."""
    _make(api, 3)
    got = api.ok("GET", "/app_instances", params={"filter": "name=OS-001-vol"})
    assert [a["name"] for a in got] == ["OS-001-vol"]
    assert len(api.ok("GET", "/app_instances", params={"filter": "admin_state=online"})) == 3


def test_bad_filters_are_400(api) -> None:
    """Unknown syntax, spaces and bad regexes are InvalidRequestError."""
    for f in ("name~x", "match(name,[)", "name = x", "match(name,(a+)+$)"):
        e = api.err(400, "GET", "/app_instances", params={"filter": f})
        assert e["name"] == "InvalidRequestError", f


def test_sort_limit_offset_v22_metadata(api) -> None:
    """sort by attribute (-attr descending); limit/offset page; metadata counts the filter."""
    names = _make(api, 7)
    r = api.req("GET", "/app_instances", params={"sort": "name", "limit": 3, "offset": 2}).json()
    assert [a["name"] for a in r["data"]] == names[2:5]
    assert r["metadata"] == {"total_count": 7, "request_count": 3, "limit": 3, "offset": 2}
    desc = api.ok("GET", "/app_instances", params={"sort": "-name"})
    assert [a["name"] for a in desc] == names[::-1]
    r = api.req("GET", "/app_instances", params={"filter": "match(name,OS-00[0-2].*)", "limit": 2}).json()
    assert r["metadata"]["total_count"] == 3 and r["metadata"]["request_count"] == 2
    assert api.ok("GET", "/app_instances", params={"limit": 0}) == []


def test_default_page_is_100_in_v22_and_unpaged_in_v21(api, api21) -> None:
    """v2.2 without limit returns 100 and says so; v2.1 returns everything with {total}."""
    for i in range(103):
        api.ok("POST", "/initiators", {"id": f"iqn.2004-10.com.example:h{i:03d}", "name": f"h{i:03d}"})
    r = api.req("GET", "/initiators").json()
    assert len(r["data"]) == 100
    assert r["metadata"] == {"total_count": 103, "request_count": 100, "limit": 100, "offset": 0}
    r2 = api.req("GET", "/initiators", params={"offset": 100}).json()
    assert len(r2["data"]) == 3
    r21 = api21.req("GET", "/initiators").json()
    assert len(r21["data"]) == 103 and r21["metadata"] == {"total": 103}
    assert len(api21.ok("GET", "/initiators", params={"limit": 10})) == 10


def test_limit_and_offset_ranges(api) -> None:
    """limit is 0..1000 and offset >= 0; others are 422 naming the parameter."""
    assert "limit" in api.err(422, "GET", "/app_instances", params={"limit": 1001})["message"]
    assert "limit" in api.err(422, "GET", "/app_instances", params={"limit": "ten"})["message"]
    assert "offset" in api.err(422, "GET", "/app_instances", params={"offset": -1})["message"]


def test_nested_lists_filter_too(api, body) -> None:
    """Sub-collections (storage instances, volumes, snapshots) take the same parameters."""
    ai = api.ok("POST", "/app_instances", body("nested"))
    api.ok("POST", f"{ai['path']}/storage_instances", {"name": "storage-2"})
    got = api.ok("GET", f"{ai['path']}/storage_instances", params={"filter": "name=storage-2"})
    assert [s["name"] for s in got] == ["storage-2"]


def test_pages_render_only_the_page_and_match_a_full_render() -> None:
    """Lists are paged over the store's stored objects and render only the page's objects
    (O(page) at any size); filters and sorts read stored attributes where the rendered value
    is the stored one. Every answer equals filtering, sorting and paging the fully rendered
    collection, also after creates, renames and deletes (the ordered view follows them)."""
    import attrs

    from datera_iac.sim.query import Rows, page
    from datera_iac.sim.store import ROOT, Store

    store = Store()
    for i in (3, 1, 4, 0, 2):
        store.create_ai(ROOT, {"name": f"OS-{i:03d}-vol", "descr": "odd" if i % 2 else ""}, "v2.2")
    for n in ("ign-a", "ign-b"):
        store.create_initiator(ROOT, {"id": f"iqn.2025-01.org:{n}", "name": n})
    queries = [{}, {"limit": "2", "offset": "1"}, {"filter": "name=OS-004-vol"},
               {"filter": "name=nope"}, {"filter": "match(name,OS-00[12].*)"},
               {"sort": "-name", "limit": "3"}, {"sort": "descr"}, {"filter": "descr=odd", "sort": "name"},
               {"filter": "admin_state=online", "sort": "-uuid", "offset": "2"}]

    def check(rows: Rows, full: list[dict[str, object]]) -> None:
        for q in queries:
            for version in ("v2.1", "v2.2"):
                assert page(rows, q, version) == page(full, q, version), (q, version)

    for r in range(3):
        # the truth: every stored object rendered, in the store's own order
        check(store.list_ais(ROOT, "v2.2"),
              [store.render_ai(ROOT, ai, "v2.2") for ai in store.objs[ROOT]["app_instances"].values()])
        check(store.list_initiators(ROOT),
              [store.render_initiator(ROOT, o) for o in store.objs[ROOT]["initiators"].values()])
        first, second = store.list_ais(ROOT, "v2.2").rows[:2]
        store.update_ai(ROOT, first, {"name": f"OS-10{r}-vol"}, "v2.2")  # rename
        store.create_ai(ROOT, {"name": f"OS-00{r}-new"}, "v2.2")
        store.delete_ai(ROOT, second, {"force": True}, "v2.2")
        store.create_initiator(ROOT, {"id": f"iqn.2025-01.org:x{r}", "name": f"x{r}"})
    assert [a["name"] for a in page(store.list_ais(ROOT, "v2.2"), {}, "v2.2")[0]] == \
        [ai["name"] for ai in store.objs[ROOT]["app_instances"].values()]

    rendered: list[object] = []
    rows = store.list_ais(ROOT, "v2.2")
    counting = attrs.evolve(rows, render=lambda r: rendered.append(r) or rows.render(r))
    data, meta = page(counting, {"limit": "2", "offset": "3", "filter": "match(name,OS-.*)",
                                 "sort": "name"}, "v2.2")
    assert len(data) == 2 and meta["total_count"] == len(rows.rows) and len(rendered) == 2
