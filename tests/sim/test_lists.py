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
