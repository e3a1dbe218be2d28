"""When to retry a DSP call, and how long to wait: the Cinder driver's 503 semantics.

Why a separate object: the policy is pure arithmetic over (reason, attempt, elapsed), so it
is tested alone with a fake clock and no real sleeping; the client only asks it.

* A 503 (or a 500 "REST server is still initializing") is retried every
  ``datera_503_interval`` seconds until ``datera_503_timeout`` seconds have passed since the
  call began (cinder.conf semantics; the last try is made at the deadline).
* A 429 waits for its ``Retry-After`` (when given), within the same deadline.
* A connection error backs off 0.25 s, 0.5 s, 1 s, ... capped at the interval, within the
  same deadline.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final, Protocol

import attrs

if TYPE_CHECKING:  # pragma: no cover
    from datera_iac.config import DateraConfig

__all__ = [
    "CONNECTION",
    "THROTTLED",
    "UNAVAILABLE",
    "Clock",
    "RetryPolicy",
    "SystemClock",
]

#: Reasons a call may be retried.
UNAVAILABLE: Final = "unavailable"  # 503, or 500 "still initializing"
THROTTLED: Final = "throttled"  # 429
CONNECTION: Final = "connection"  # refused / reset / timed out


class Clock(Protocol):
    """Time source and sleeper, injectable so tests never really sleep."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """Retry arithmetic. ``interval`` and ``timeout`` are seconds."""

    interval: float = 5.0
    timeout: float = 120.0
    backoff_first: float = 0.25
    #: how long a DSP that cannot be reached at all (connection refused, name not
    #: resolved, connect timed out) is retried before the client judges it unreachable
    unreachable: float = 5.0

    @classmethod
    def from_config(cls, config: DateraConfig) -> RetryPolicy:
        """From ``datera_503_interval`` / ``datera_503_timeout``."""
        return cls(
            interval=float(config.datera_503_interval),
            timeout=float(config.datera_503_timeout),
            unreachable=float(getattr(config, "unreachable_timeout", 5.0)),
        )

    def delay(self, reason: str, attempt: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        if reason == CONNECTION:
            return min(self.interval, self.backoff_first * (2.0**attempt))
        if reason == THROTTLED and retry_after is not None and retry_after >= 0:
            return retry_after
        return self.interval

    def next_delay(
        self, reason: str, attempt: int, elapsed: float, retry_after: float | None = None
    ) -> float | None:
        """How long to sleep before retrying, or None to give up (deadline reached).

        The wait is clipped to the deadline, so the last try happens at ``timeout``.
        """
        remaining = self.timeout - elapsed
        if remaining <= 0:
            return None
        return min(self.delay(reason, attempt, retry_after), remaining)
