"""Fault injection: what a flaky or busy DSP does to clients.

Knobs (settable at start, by :meth:`SimServer.set_faults`, or ``PUT /_sim/faults``):

``latency_ms``             service time: every API answer (errors and dropped connections too)
                           leaves this long after its request arrived; the request is handled
                           at once, so the simulator's own work overlaps the wait
``fail_503_rate``          probability (0..1) that a request gets 503 instead of being handled
``fail_503_burst``         the next N requests get 503 (counts down)
``init_500``               the next N requests get 500 "REST server is still initializing"
``drop_after_write_rate``  probability that a write (POST/PUT/DELETE) is applied and then the
                           connection is closed without an answer (a lost response)
``drop_after_write_burst`` the next N writes are applied and then dropped
``expire_keys``            one-shot: expire every session key now (next request is a 401)
``key_ttl``                session lifetime in seconds (default 900)
``only``                   a regex on "METHOD /path": faults apply to matching requests only
``seed``                   seed of the random source used by the rates (reproducible runs)
``max_list_limit``         the largest ``limit`` a list accepts (default 1000, the schema's
                           maximum); a larger one is refused with 422, as an older DSP that
                           caps its pages would

Faults hit ``/v2.x/...`` and ``/api_versions``; the admin endpoints under ``/_sim`` never.
"""

from __future__ import annotations

import random
import re
from typing import Any

import attrs


def _rate(_inst: Any, attr: attrs.Attribute, value: float) -> None:  # type: ignore[type-arg]
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault {attr.name} must be between 0 and 1, got {value}")


def _nonneg(_inst: Any, attr: attrs.Attribute, value: float) -> None:  # type: ignore[type-arg]
    if value < 0:
        raise ValueError(f"fault {attr.name} must be >= 0, got {value}")


def _regex(_inst: Any, attr: attrs.Attribute, value: str | None) -> None:  # type: ignore[type-arg]
    if value is not None:
        try:
            re.compile(value)
        except re.error as e:
            raise ValueError(f"fault {attr.name}: bad regular expression: {e}") from None


@attrs.define
class Faults:
    """The current fault settings and their counters."""

    latency_ms: float = attrs.field(default=0.0, converter=float, validator=_nonneg)
    fail_503_rate: float = attrs.field(default=0.0, converter=float, validator=_rate)
    fail_503_burst: int = attrs.field(default=0, converter=int, validator=_nonneg)
    init_500: int = attrs.field(default=0, converter=int, validator=_nonneg)
    drop_after_write_rate: float = attrs.field(default=0.0, converter=float, validator=_rate)
    drop_after_write_burst: int = attrs.field(default=0, converter=int, validator=_nonneg)
    key_ttl: float = attrs.field(default=900.0, converter=float, validator=_nonneg)
    only: str | None = attrs.field(default=None, validator=_regex)
    seed: int | None = None
    max_list_limit: int = attrs.field(default=1000, converter=int, validator=_nonneg)
    rng: random.Random = attrs.field(factory=random.Random, repr=False, eq=False)

    KNOBS = (
        "latency_ms", "fail_503_rate", "fail_503_burst", "init_500", "drop_after_write_rate",
        "drop_after_write_burst", "key_ttl", "only", "seed", "max_list_limit", "expire_keys",
    )

    def __attrs_post_init__(self) -> None:
        if self.seed is not None:
            self.rng.seed(self.seed)

    def updated(self, **knobs: Any) -> Faults:
        """A copy with ``knobs`` applied (validated; ``expire_keys`` is handled by the caller)."""
        unknown = set(knobs) - set(self.KNOBS)
        if unknown:
            raise ValueError(f"unknown fault knob(s) {sorted(unknown)}; known: {list(self.KNOBS)}")
        knobs.pop("expire_keys", None)
        new = attrs.evolve(self, **{k: v for k, v in knobs.items() if k != "rng"})
        new.rng = self.rng
        if "seed" in knobs and knobs["seed"] is not None:
            new.rng.seed(knobs["seed"])
        return new

    def applies(self, method: str, path: str) -> bool:
        if self.only is None:
            return True
        return re.search(self.only, f"{method} {path}") is not None

    def take_init_500(self) -> bool:
        if self.init_500 > 0:
            self.init_500 -= 1
            return True
        return False

    def take_503(self) -> bool:
        if self.fail_503_burst > 0:
            self.fail_503_burst -= 1
            return True
        return self.fail_503_rate > 0 and self.rng.random() < self.fail_503_rate

    def take_drop(self) -> bool:
        if self.drop_after_write_burst > 0:
            self.drop_after_write_burst -= 1
            return True
        return self.drop_after_write_rate > 0 and self.rng.random() < self.drop_after_write_rate

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.KNOBS if k != "expire_keys"}
