"""Crash recovery in the Pulumi provider (issue 16, case 4): a create whose answer was lost
(the DSP died after making the object) is adopted by the next create of the same URN -
only the object carrying the token that create wrote, never a same-named object someone
else made (that stays a conflict with an import hint). The provider keeps its own record
of creates in flight (``$PULUMI_HOME/datera-intents/``, datera_iac.resources.intents),
dropped once the engine shows it holds the object (Diff/Read/Update/Delete of its id).

Driven through the real plugin process's gRPC against a simulator process that is
SIGKILLed while the create waits for its volume to come online (made, answer never seen)."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.pulumi._codec import Secret
from datera_iac.pulumi.testing import Rpc, plain, start_plugin, stop_plugin
from tests.fault.conftest import REPO, wait_until

sys.path.insert(0, str(REPO / "bench"))
from _simproc import SimProcess  # noqa: E402

VOLUME = "datera:index:Volume"


@pytest.fixture
def dying_sim(tmp_path: Path) -> Iterator[SimProcess]:
    """A simulator process with a data dir (kill()/restart() keep its store); a new volume
    comes online 1 s after its POST, so a kill lands while the create waits for it."""
    sim = SimProcess(tmp_path / "dsp-data", "--si-online-delay", "1")
    try:
        yield sim
    finally:
        sim.stop()


@contextlib.contextmanager
def _plugin(tmp_path: Path, sim: SimProcess) -> Iterator[tuple[Any, Rpc]]:
    """The real plugin process, with its own PULUMI_HOME (where its intents live),
    configured for ``sim``. Each `pulumi up` starts a new one."""
    proc, port = start_plugin(env={"PULUMI_HOME": str(tmp_path / "pulumi-home")},
                              log_path=str(tmp_path / "plugin.log"))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
        rpc = Rpc(channel)
        rpc.configure(endpoint=sim.url, sanLogin="admin", sanPassword=Secret("password"),
                      datera503Timeout=5)
        yield proc, rpc
    finally:
        channel.close()
        stop_plugin(proc)


def _intents(tmp_path: Path) -> list[Path]:
    d = tmp_path / "pulumi-home" / "datera-intents"
    return sorted(d.glob("*.json")) if d.is_dir() else []


def _dsp(sim: SimProcess) -> DspClient:
    return DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.url, "san_login": "admin", "san_password": "password"}, use_env=False))


def _volumes(sim: SimProcess, name: str) -> list[dict[str, Any]]:
    c = _dsp(sim)
    try:
        return [a for a in c.list("/app_instances", tenant="/root") if a["name"] == name]
    finally:
        c.close()


def _created(sim: SimProcess) -> bool:
    """Whether the DSP has handled a volume's POST (the object is stored). Not its
    counter: that moves when the headers arrive, and the client sends the body after
    them; a kill in between left nothing made (seen under load)."""
    return any(e["method"] == "POST" and e["template"] == "/v2.2/app_instances"
               and e["status"] == 200 for e in sim.request_log())


def _lost_create(tmp_path: Path, sim: SimProcess, props: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A Create that reaches the DSP, which then dies before the volume is online: the
    create's answer is never seen. Returns (the checked inputs, the Create's error); the
    DSP is back after it."""
    box: dict[str, Any] = {}
    with _plugin(tmp_path, sim) as (_, rpc):
        inputs = plain(rpc.check(VOLUME, "v", props).inputs)

        def create() -> None:
            try:
                box["ok"] = rpc.create(VOLUME, "v", inputs)
            except grpc.RpcError as e:
                box["error"] = e.details()

        t = threading.Thread(target=create)
        t.start()
        wait_until(lambda: _created(sim) or not t.is_alive(), 60, "the POST")
        assert t.is_alive(), f"the create ended before the DSP was killed: {box}"
        sim.kill()
        t.join(60)
        assert not t.is_alive() and "error" in box, box
    sim.restart()
    return inputs, box["error"]


def test_a_create_whose_answer_was_lost_is_adopted_by_its_token(dying_sim, tmp_path):
    """Before: the provider kept no record; the next `pulumi up` failed with 409 (name
    taken by the volume its own lost create made), the volume an orphan."""
    inputs, err = _lost_create(tmp_path, dying_sim, {"name": "lost-answer", "size": 1})
    assert "Traceback" not in err, err
    made = _volumes(dying_sim, "lost-answer")
    assert len(made) == 1, made  # the DSP made it; Pulumi holds nothing
    assert len(_intents(tmp_path)) == 1  # the outcome was unknown: the record stays

    with _plugin(tmp_path, dying_sim) as (_, rpc):  # the next `pulumi up`
        got = rpc.create(VOLUME, "v", inputs)
        assert got.id.rsplit("/", 1)[1] == made[0]["id"]
        assert [a["id"] for a in _volumes(dying_sim, "lost-answer")] == [made[0]["id"]]  # no twin
        # the engine now holds it: its next Diff (every `up` asks) drops the record
        assert len(_intents(tmp_path)) == 1
        state = plain(got.properties)
        d = rpc.diff(VOLUME, "v", got.id, state, inputs, old_inputs=inputs)
        assert not list(d.diffs), list(d.diffs)
    assert _intents(tmp_path) == []


def test_a_lost_create_never_adopts_a_same_named_stranger(dying_sim, tmp_path):
    """The record of a lost create proves nothing about an object without its token: when
    someone else's volume holds the name by the next run (ours was removed meanwhile), the
    create is a conflict with an import hint and their volume is untouched."""
    inputs, _ = _lost_create(tmp_path, dying_sim, {"name": "taken-later", "size": 1})
    c = _dsp(dying_sim)
    try:
        ours = _volumes(dying_sim, "taken-later")[0]
        c.put(f"/app_instances/{ours['id']}", {"admin_state": "offline"}, tenant="/root")
        c.delete(f"/app_instances/{ours['id']}", tenant="/root")
        theirs = c.post("/app_instances", {"name": "taken-later", "storage_instances": [
            {"name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]})
    finally:
        c.close()
    assert len(_intents(tmp_path)) == 1
    with _plugin(tmp_path, dying_sim) as (_, rpc), pytest.raises(grpc.RpcError) as e:
        rpc.create(VOLUME, "v", inputs)
    assert "import" in e.value.details() and "already exists" in e.value.details(), e.value.details()
    left = _volumes(dying_sim, "taken-later")
    assert [a["id"] for a in left] == [theirs["id"]]  # theirs, not adopted, not deleted


def test_a_create_whose_plugin_was_killed_is_adopted_by_the_next_plugin(dying_sim, tmp_path):
    """`pulumi up` interrupted (the plugin SIGKILLed) after the POST: Pulumi keeps a pending
    create and the next `up` calls Create again in a new plugin process, which adopts the
    object its predecessor made (the record is on disk), instead of failing with 409."""
    with _plugin(tmp_path, dying_sim) as (proc, first):
        inputs = plain(first.check(VOLUME, "v", {"name": "killed-mid-create", "size": 1}).inputs)
        t = threading.Thread(target=lambda: pytest.raises(grpc.RpcError, first.create, VOLUME,
                                                          "v", inputs))
        t.start()
        wait_until(lambda: _created(dying_sim), 60, "the POST")
        proc.kill()  # SIGKILL: the create's answer never reaches the engine
        proc.wait(10)
        t.join(30)
    made = _volumes(dying_sim, "killed-mid-create")
    assert len(made) == 1 and len(_intents(tmp_path)) == 1, (made, _intents(tmp_path))
    with _plugin(tmp_path, dying_sim) as (_, second):
        got = second.create(VOLUME, "v", inputs)
    assert got.id.rsplit("/", 1)[1] == made[0]["id"]
    assert len(_volumes(dying_sim, "killed-mid-create")) == 1  # no twin
