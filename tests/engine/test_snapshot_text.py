"""The snapshot written from journaled record texts (issue #4's final compaction).

FileBackend keeps the JSON text it journaled for each upserted record and the snapshot
joins those texts instead of encoding every record again. These tests pin that the file
and the journal hold exactly the content plain ``json.dumps`` would write, and that a
kept text is used only for the very record it was encoded from.
"""

from __future__ import annotations

import json

from datera_iac.engine.apply import StateStore
from datera_iac.engine.backends import FileBackend
from datera_iac.engine.state import PendingOp, ResourceState, State


def rec(name: str, size: object = 1, **kw: object) -> dict:
    return ResourceState(name=name, type="datera:index:Volume", id=f"/root/{name}",
                         spec={"name": name, "size": size, "note": "é ✓ \u2028"},
                         outputs={"iqn": f"iqn.x:{name}"}, deps=["t"], **kw).to_json()


def reference(state: State) -> object:
    return json.loads(json.dumps(state.to_json(), separators=(",", ":"), default=str))


def test_to_json_text_is_json_dumps_exactly():
    st = State(stack="dev", project="p", outputs={"o": ["ü", 1.5, None]})
    st.apply_delta({"seq": 1, "upsert": [rec("a"), rec("b", protect=True)],
                    "pending_add": [PendingOp(op_id="op1", op="create", name="c",
                                              type="datera:index:Volume").to_json()],
                    "deposed_add": [rec("old")]})
    assert st.to_json_text() == json.dumps(st.to_json(), separators=(",", ":"), default=str)
    assert State(stack="e").to_json_text() == json.dumps(State(stack="e").to_json(),
                                                         separators=(",", ":"))


def test_snapshot_from_journaled_texts_equals_a_full_encoding(tmp_path):
    be = FileBackend(tmp_path, "dev")
    be.lock({"pid": 1})
    try:
        store = StateStore(be, be.load())
        store.commit({"upsert": [rec("a"), rec("b")]})
        store.commit({"upsert": [rec("b", protect=True)], "pending_clear": ["x"]})
        store.commit({"remove": ["a"]})
        store.commit({"upsert": [rec("c")], "outputs": {"k": "v"}})
        # each journal line holds what json.dumps would have written
        lines = (tmp_path / "dev.journal").read_text().splitlines()
        assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3, 4]
        assert json.loads(lines[1]) == {"upsert": [rec("b", protect=True)],
                                        "pending_clear": ["x"], "seq": 2}
        used = [be._record_text(r) is not None for r in store.state.resources.values()]
        assert used == [True, True]
        store.compact()
        assert json.loads((tmp_path / "dev.json").read_text()) == reference(store.state)
        assert FileBackend(tmp_path, "dev").load() == store.state
    finally:
        be.close()


def test_kept_text_only_for_the_same_record(tmp_path):
    """A record rebuilt with an equal but different value (True for 1) or changed without
    the journal (a snapshot loaded from disk) is encoded afresh, never taken from the
    kept text."""
    be = FileBackend(tmp_path, "dev")
    be.lock({"pid": 1})
    try:
        store = StateStore(be, be.load())
        store.commit({"upsert": [rec("a", size=1)]})
        kept = store.state.resources["a"]
        assert be._record_text(kept) is not None
        twin = ResourceState.from_json({**kept.to_json(), "spec": {**kept.spec, "size": True}})
        assert twin == kept  # equal by value (1 == True) ...
        assert be._record_text(twin) is None  # ... but not the record that text encodes
        store.state.resources["a"] = twin  # (tests only: the engine changes state by deltas)
        store.compact()
        assert json.loads((tmp_path / "dev.json").read_text())["resources"][0]["spec"]["size"] is True
        fresh = FileBackend(tmp_path, "dev")
        assert fresh._record_text(fresh.load().resources["a"]) is None
    finally:
        be.close()
