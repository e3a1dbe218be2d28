"""SharedListings (datera_iac.resources.batching): the list calls one refresh wave's
batches share - reused while reads keep coming, dropped after an idle gap, at a maximum
age, and around a write."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from datera_iac.resources.batching import SharedListings


class Counting:
    """A client whose list counts its calls (and can be made to fail or block)."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate: threading.Event | None = None

    def list(self, path: str, **params: Any) -> Any:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise RuntimeError("the DSP said no")
        return iter([{"id": str(i), "path": path, **params} for i in range(3)])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reused_while_reads_keep_coming_then_dropped_after_idle_or_age() -> None:
    clock, c = Clock(), Counting()
    shared = SharedListings(idle=2.0, max_age=10.0, clock=clock)
    client = shared.client(c)
    rows = list(client.list("/app_instances", tenant="/root/a"))
    for _ in range(8):  # reads every 1.5 s: within the idle gap each time, up to the max age
        clock.now += 1.5
        assert list(client.list("/app_instances", tenant="/root/a")) == rows
    assert c.calls == 2  # 12 s in: past max_age once
    list(client.list("/app_instances", tenant="/root/b"))  # another tenant: its own listing
    assert c.calls == 3
    clock.now += 2.5  # an idle gap: a new wave
    list(client.list("/app_instances", tenant="/root/a"))
    assert c.calls == 4 and shared.fetches == 4


def test_a_write_drops_the_listing_even_one_taken_during_it() -> None:
    clock, c = Clock(), Counting()
    shared = SharedListings(clock=clock)
    client = shared.client(c)
    list(client.list("/app_instances"))
    with shared.writing():
        list(client.list("/app_instances"))  # during the write: not reused
        list(client.list("/app_instances"))
        assert c.calls == 3
    list(client.list("/app_instances"))
    list(client.list("/app_instances"))
    assert c.calls == 4


def test_concurrent_batches_wait_for_one_listing_and_share_its_failure() -> None:
    c = Counting()
    c.gate = threading.Event()
    c.fail = True
    shared = SharedListings()
    client = shared.client(c)
    errors: list[BaseException] = []

    def read() -> None:
        try:
            list(client.list("/app_instances"))
        except RuntimeError as e:
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(5)]
    for t in threads:
        t.start()
    c.gate.set()
    for t in threads:
        t.join(5)
    assert len(errors) == 5 and c.calls == 1
    c.fail = False
    c.gate = None
    assert len(list(client.list("/app_instances"))) == 3  # a failure is not kept
    assert c.calls == 2


def test_other_client_calls_pass_through() -> None:
    class Client(Counting):
        def get(self, path: str) -> str:
            return f"got {path}"

    client = SharedListings().client(Client())
    assert client.get("/system") == "got /system"
    with pytest.raises(AttributeError):
        client.nothing  # noqa: B018
