"""Coalesce Terraform's per-resource reads into the kinds' bulk reads.

Terraform refreshes every resource with its own ``ReadResource`` call, up to
``-parallelism`` (10) at a time, all in one provider process. A kind that overrides
:meth:`Kind.read_many` reads many objects with a paged list call; :class:`ReadBatcher`
gathers the reads that arrive together (a short window) and makes one ``read_many`` for
them, so refreshing 100 volumes costs about a dozen list requests instead of 200 GETs.

What the bulk read does not show (an object that is gone, or a VolumeType that exists only
as a declaration) is asked once more with ``read_known``, as the engine's refresh does; a
bulk read that fails makes every waiting read fall back to ``read_known`` on its own, so
batching can only save requests, never change an answer. Nothing is cached: each read
sees the DSP as it is during its own window.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from datera_iac.resources.base import Context, Kind, Observed

__all__ = ["ReadBatcher", "batches"]

#: How long the first read of a batch waits for others to join (seconds).
WINDOW = 0.05
MAX_BATCH = 100


def batches(kind: Kind[Any, Any]) -> bool:
    """Whether the kind has a bulk read worth batching into."""
    return kind.has_bulk_read


class ReadBatcher:
    """One per kind and provider process; thread-safe."""

    def __init__(self, kind: Kind[Any, Any], *, window: float = WINDOW) -> None:
        self.kind = kind
        self.window = window
        self._lock = threading.Lock()
        self._pending: dict[str, list[Future[Any]]] = {}
        self._leader = False
        self._full = threading.Event()
        #: (ids in the batch) of every bulk read made, for tests and the bench
        self.batches: list[tuple[str, ...]] = []

    def read(self, ctx: Context, id: str, known: Any) -> Observed[Any, Any] | None:
        """The kind's ``read_known(ctx, id, known)``, served from a shared bulk read when
        the object shows up in it."""
        fut: Future[Any] = Future()
        with self._lock:
            self._pending.setdefault(id, []).append(fut)
            lead = not self._leader
            if lead:
                self._leader = True
                self._full.clear()
            elif len(self._pending) >= MAX_BATCH:
                self._full.set()
        if lead:
            self._full.wait(self.window)
            self._flush(ctx)
        try:
            obs = fut.result(timeout=max(ctx.timeouts.read, 1.0))
        except Exception:  # noqa: BLE001 - the bulk read failed or stalled: ask alone
            obs = None
        if obs is None:
            return self.kind.read_known(ctx, id, known)
        return obs

    def _flush(self, ctx: Context) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            self._leader = False
        ids = tuple(pending)
        self.batches.append(ids)
        try:
            found = self.kind.read_many(ctx, ids)
        except Exception as e:  # noqa: BLE001
            for futs in pending.values():
                for f in futs:
                    f.set_exception(e)
            return
        for i, futs in pending.items():
            for f in futs:
                f.set_result(found.get(i))
