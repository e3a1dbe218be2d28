"""Creates announced ahead: the scheduler journals the intents of ready creates in durable
batches, so workers start with the API call. Each intent is still synced before its call;
a run that stops early clears the intents it never started; a kill right after an
announcement is recovered with ``find`` (no twin, no orphan, nothing pending)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from datera_iac.engine import apply as apply_mod
from datera_iac.engine.backends import FileBackend

from .conftest import EngineToy

N = 40


def stack(n: int = N) -> str:
    lines = ["name: ahead", "runtime: yaml", "resources:"]
    for i in range(n):
        lines += [f"  t{i:02d}:", "    type: datera:index:EngineToy", "    properties:",
                  f"      name: toy-{i:02d}"]
    return "\n".join(lines) + "\n"


def test_each_intent_is_synced_before_its_create_and_syncs_are_batched(toy_ws, monkeypatch):
    """Every create call finds its intent in a journal record already synced, and the
    40 creates at parallelism 4 cost far fewer synced intent records than creates."""
    record_of: dict[str, int] = {}  # toy name -> token of the record announcing it
    synced = [0]
    intent_records = [0]
    append, sync = FileBackend.append, FileBackend.sync

    def spy_append(self: FileBackend, delta: dict[str, Any]) -> int:
        token = append(self, delta)
        names = [p["spec"].get("name") for p in delta.get("pending_add", ())]
        for name in names:
            record_of[name] = token
        intent_records[0] += bool(names)
        return token

    def spy_sync(self: FileBackend, token: int) -> None:
        sync(self, token)
        synced[0] = max(synced[0], self._synced)

    create = EngineToy.create
    late: list[str] = []

    def checked_create(self: EngineToy, ctx: Any, spec: Any) -> Any:
        if record_of.get(spec.name, 1 << 30) > synced[0]:
            late.append(spec.name)
        return create(self, ctx, spec)

    monkeypatch.setattr(FileBackend, "append", spy_append)
    monkeypatch.setattr(FileBackend, "sync", spy_sync)
    monkeypatch.setattr(EngineToy, "create", checked_create)
    plan, result = toy_ws(stack(), parallel=4).up(quiet=True)
    assert result is not None and result.ok and result.done == {"create": N}
    assert late == []
    assert len(record_of) == N
    assert intent_records[0] <= N // 2, intent_records[0]
    assert not toy_ws(stack()).load_state().pending


def test_run_stopped_early_clears_unstarted_intents(toy_ws, monkeypatch):
    """When the scheduler stops (here: interrupted in its first wait), steps still queued
    in the pool are cancelled and the intents never started are cleared; the started ones
    finish and record their objects (no orphan, nothing pending)."""
    def interrupted(*a: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(apply_mod, "_wait_any", interrupted)
    with pytest.raises(KeyboardInterrupt):
        toy_ws(stack(), parallel=4).up(quiet=True)
    state = toy_ws(stack()).load_state()
    assert not state.pending
    made = sorted(o["name"] for o in toy_ws.store.objects.values())
    assert sorted(r.spec["name"] for r in state.resources.values()) == made
    assert len(made) <= 8  # at most the submitted steps (2 x parallelism), never the rest


def test_interrupted_destroy_starts_no_queued_delete(toy_ws, monkeypatch):
    """Ctrl-C during a destroy: the deletes already running finish, the ones waiting in
    the pool's queue never start (nothing reaches the DSP after the interrupt)."""
    import time

    plan, result = toy_ws(stack(), parallel=4).up(quiet=True)
    assert result is not None and result.ok
    deleted: list[str] = []
    delete = EngineToy.delete

    def slow_delete(self: EngineToy, ctx: Any, id: str) -> None:
        time.sleep(0.3)  # the 4 running deletes are still running when the interrupt comes
        deleted.append(id)
        delete(self, ctx, id)

    def interrupted(*a: Any, **kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(EngineToy, "delete", slow_delete)
    monkeypatch.setattr(apply_mod, "_wait_any", interrupted)
    with pytest.raises(KeyboardInterrupt):
        toy_ws(stack(), parallel=4).up(destroy=True, quiet=True)
    assert len(deleted) == 4, deleted  # the pool's 4 threads; the 4 queued were cancelled


def test_kill_right_after_an_announcement_is_recovered(toy_ws, tmp_path, monkeypatch):
    """The journal as a SIGKILL leaves it just after the first announcement (12 intents:
    8 submitted, 4 ahead; some creates started) is resolved by the next run: the made objects are adopted, the
    unstarted intents are found absent and cleared; every toy exists exactly once."""
    journals: list[bytes] = []

    def killed(*a: Any, **kw: Any) -> Any:
        journals.append(next(tmp_path.glob(".datera-iac/*/*.journal")).read_bytes())
        raise KeyboardInterrupt

    monkeypatch.setattr(apply_mod, "_wait_any", killed)
    with pytest.raises(KeyboardInterrupt):
        toy_ws(stack(), parallel=4).up(quiet=True)
    monkeypatch.undo()
    journal = next(tmp_path.glob(".datera-iac/*/*.journal"))
    journal.write_bytes(journals[0])  # what was on disk at the kill
    records = [json.loads(line) for line in journals[0].splitlines() if line.strip()]
    announced = [p for r in records for p in r.get("pending_add", ())]
    assert len(announced) == 12  # 2 x parallelism submitted + parallelism ahead, one record
    plan, result = toy_ws(stack(), parallel=4).up(quiet=True)
    assert result is not None and result.ok
    assert any("had not completed" in n for n in plan.recovered)
    names = sorted(o["name"] for o in toy_ws.store.objects.values())
    assert names == [f"toy-{i:02d}" for i in range(N)]  # no twin, none missing
    state = toy_ws(stack()).load_state()
    assert not state.pending and len(state.resources) == N
