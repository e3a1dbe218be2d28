"""Coalesce a front end's per-resource reads into the kinds' bulk reads.

Terraform refreshes every resource with its own ``ReadResource`` call, up to
``-parallelism`` (10) at a time, all in one provider process; the Pulumi engine's refresh
calls ``Read`` the same way. A kind that overrides :meth:`Kind.read_many` reads many
objects with a paged list call; :class:`ReadBatcher` gathers the reads that arrive together
(a short window) and makes one ``read_many`` for them.

Batching alone does not make a refresh cheap: with ten reads in flight, a refresh of 1,000
volumes is a hundred batches, and each batch's ``read_many`` would page through the whole
tenant again. :class:`SharedListings` lets the batches of one *refresh wave* share one
listing per collection: a list call a batch makes is kept and served to the following
batches while reads keep arriving (no gap longer than :data:`IDLE`), for at most
:data:`MAX_AGE`, and never across a write made through the same front end
(:meth:`SharedListings.writing`). So a read sees the DSP as the wave's listing saw it -
the same view one list call gives the engine's refresh - and a refresh of 1,000 volumes
costs one listing (one page of 1,000) instead of a hundred.

What the bulk read does not show (an object that is gone, or a VolumeType that exists only
as a declaration) is asked once more with ``read_known``, as the engine's refresh does; a
bulk read that fails makes every waiting read fall back to ``read_known`` on its own, so
batching can only save requests, never change an answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from typing import Any

import attrs

from datera_iac.resources.base import Context, Kind, Observed

__all__ = ["CHECK_MAX_AGE", "IDLE", "MAX_AGE", "MAX_BATCH", "WINDOW", "DeleteChecks",
           "ReadBatcher", "Rows", "SharedListings", "listed", "lookup", "read_one"]

#: How long the first read of a batch waits for others to join (seconds), unless the wave
#: already holds a listing (then the batch is served at once).
WINDOW = 0.05
MAX_BATCH = 100
#: A wave's listing is dropped when no read used it for this long (seconds) ...
IDLE = 2.0
#: ... or when it is this old (seconds), whichever comes first.
MAX_AGE = 60.0
#: The oldest listing a delete's dependents check may answer from (seconds,
#: :class:`DeleteChecks`): a snapshot made on the DSP while a destroy runs is seen by the
#: deletes after the next listing. A destroy of 1,000 volumes lists the tenant a few times
#: instead of reading each volume.
CHECK_MAX_AGE = 10.0


def read_one(kind: Kind[Any, Any], batcher: ReadBatcher | None, ctx: Context, obj_id: str,
             recorded: Mapping[str, Any]) -> Observed[Any, Any] | None:
    """A front end's refresh of one object: through the shared bulk read when the kind has
    one, else - and with ``refresh = "full"``, which also sees what a bulk read leaves out
    (a volume's metadata) - its own ``read_known``. ``recorded``: the inputs its state
    holds (plain data), which let a kind answer what the DSP cannot report (a VolumeType
    that lives only as a declaration, secrets, sources); a state the core no longer
    accepts is read without them."""
    known = kind.spec_or_none(recorded)
    if batcher is not None and getattr(ctx.config, "refresh", "fast") != "full":
        return batcher.read(ctx, obj_id, known)
    return kind.read_known(ctx, obj_id, known)


class Rows(list):  # type: ignore[type-arg]
    """The rows of one listing, with the lookups built over them (:func:`lookup`): a
    listing shared by many batches is indexed once, not once per batch."""

    def __init__(self, rows: Iterable[Any] = ()) -> None:
        super().__init__(rows)
        self.lookups: dict[str, dict[str, Any]] = {}


def listed(rows: Iterable[Any]) -> Rows:
    """``rows`` (what ``client.list`` returned) as :class:`Rows`: a shared listing as it
    is, anything else read into a new one."""
    return rows if isinstance(rows, Rows) else Rows(rows)


def lookup(rows: Rows, field: str) -> dict[str, Any]:
    """``{str(row[field]): row}`` over ``rows`` (the first row for a value wins), built once
    per listing."""
    found = rows.lookups.get(field)
    if found is None:
        found = {}
        for row in rows:
            v = row.get(field)
            if v is not None:
                found.setdefault(v if isinstance(v, str) else str(v), row)
        rows.lookups[field] = found
    return found


class _Listing:
    __slots__ = ("done", "error", "generation", "rows", "taken", "used")

    def __init__(self, now: float, generation: int) -> None:
        self.taken = self.used = now
        self.generation = generation
        self.rows: Rows | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()


class SharedListings:
    """The list calls of one refresh wave, shared by its batches (thread-safe).

    One per provider process (shared by every kind's batcher). ``fetches`` counts the
    list calls really made, for tests and the bench."""

    def __init__(self, *, idle: float = IDLE, max_age: float = MAX_AGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle = idle
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._listings: dict[tuple[Any, ...], _Listing] = {}
        self._generation = 0
        self._writing = 0
        self.fetches = 0

    def _fresh(self, item: _Listing, now: float) -> bool:
        return (item.generation == self._generation and not self._writing
                and now - item.used <= self.idle and now - item.taken <= self.max_age)

    def warm(self) -> bool:
        """Whether the wave holds a fresh listing (a new batch need not wait for others)."""
        now = self._clock()
        with self._lock:
            return any(self._fresh(i, now) and i.rows is not None
                       for i in self._listings.values())

    def rows(self, client: Any, path: str, params: Mapping[str, Any]) -> Rows:
        """``list(client.list(path, **params))``, shared with the wave's other batches: a
        listing already made (or in progress) is used while fresh. The rows are shared:
        callers read them, never change them."""
        key = (id(client), path, tuple(sorted(params.items())))
        now = self._clock()
        with self._lock:
            item = self._listings.get(key)
            if item is not None and self._fresh(item, now) and item.error is None:
                item.used = now
                mine = False
            else:
                item = self._listings[key] = _Listing(now, self._generation)
                mine = True
        if mine:
            try:
                item.rows = Rows(client.list(path, **params))
                with self._lock:
                    self.fetches += 1
            except BaseException as e:
                item.error = e
                with self._lock:
                    if self._listings.get(key) is item:
                        del self._listings[key]
                raise
            finally:
                item.done.set()
        else:
            item.done.wait()
            if item.error is not None:
                raise item.error
        assert item.rows is not None
        return item.rows

    def client(self, client: Any) -> Any:
        """``client`` with its ``list`` served from the wave (everything else as is)."""
        return _ListingClient(client, self)

    def serving(self, ctx: Context) -> Context:
        """``ctx`` with its client's list calls served from the wave."""
        return attrs.evolve(ctx, client=self.client(ctx.client))

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a write through this front end: listings taken before or during it are
        not used afterwards."""
        with self._lock:
            self._writing += 1
            self._generation += 1
            self._listings.clear()
        try:
            yield
        finally:
            with self._lock:
                self._writing -= 1
                self._generation += 1
                self._listings.clear()

    def forget(self) -> None:
        """Drop every listing (the next batch lists again)."""
        with self._lock:
            self._generation += 1
            self._listings.clear()


class _ListingClient:
    """A DSP client whose ``list`` comes from a :class:`SharedListings`."""

    def __init__(self, client: Any, listings: SharedListings) -> None:
        self._client = client
        self._listings = listings

    def list(self, path: str, **params: Any) -> Rows:
        return self._listings.rows(self._client, path, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class ReadBatcher:
    """One per kind and front-end process; thread-safe. ``listings``: the wave's shared
    list calls (give every kind's batcher of one process the same one)."""

    def __init__(self, kind: Kind[Any, Any], *, window: float = WINDOW,
                 listings: SharedListings | None = None) -> None:
        self.kind = kind
        self.window = window
        self.listings = listings if listings is not None else SharedListings()
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
            if not self.listings.warm():
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
            shared = self.listings.serving(ctx)
            found = self.kind.read_many(shared, ids)
        except Exception as e:  # noqa: BLE001
            for futs in pending.values():
                for f in futs:
                    f.set_exception(e)
            return
        for i, futs in pending.items():
            for f in futs:
                f.set_result(found.get(i))


class DeleteChecks:
    """The listings a front end's deletes ask their dependents rule through
    (:meth:`Kind.dependents_many`), one per kind with a bulk answer; thread-safe.

    Unlike a refresh wave's :class:`SharedListings`, a kind's listing is kept across that
    kind's own deletes (deleting one volume changes no other volume's snapshots), so a
    destroy of N volumes lists their tenant once per :data:`CHECK_MAX_AGE` instead of
    reading each volume; it is dropped around every other write through the front end
    (a snapshot deleted or made, a volume created or changed): :meth:`writing`."""

    def __init__(self, kinds: Iterable[Kind[Any, Any]], *, max_age: float = CHECK_MAX_AGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._by_kind = {k.name: SharedListings(max_age=max_age, clock=clock)
                         for k in kinds if k.has_bulk_dependents}

    def context(self, kind: Kind[Any, Any], ctx: Context) -> Context | None:
        """``ctx`` with its list calls served from ``kind``'s listing (for
        ``delete_or_unmanage(check_ctx=)``); None for a kind without a bulk answer."""
        listings = self._by_kind.get(kind.name)
        if listings is None:
            return None
        return listings.serving(ctx)

    @contextmanager
    def writing(self, kind: Kind[Any, Any] | None, *, deleting: bool) -> Iterator[None]:
        """Around a write of ``kind`` through the front end: every listing is dropped,
        except ``kind``'s own when the write is one of its deletes."""
        with ExitStack() as stack:
            for name, listings in self._by_kind.items():
                if not (deleting and kind is not None and name == kind.name):
                    stack.enter_context(listings.writing())
            yield
