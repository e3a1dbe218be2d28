"""RetryPolicy alone: the Cinder 503 cadence, backoff and the deadline, with a fake clock."""

from datera_iac.config import DateraConfig
from datera_iac.dsp import CONNECTION, THROTTLED, UNAVAILABLE, RetryPolicy


def run(policy: RetryPolicy, reason: str, retry_after: float | None = None) -> list[float]:
    """Sleeps a caller makes until the policy gives up (always failing)."""
    elapsed, attempt, sleeps = 0.0, 0, []
    while (d := policy.next_delay(reason, attempt, elapsed, retry_after)) is not None:
        sleeps.append(d)
        elapsed += d
        attempt += 1
        assert attempt < 1000
    return sleeps


def test_defaults_from_config():
    """datera_503_interval / datera_503_timeout feed the policy (5 s / 120 s)."""
    cfg = DateraConfig(san_ip="h", san_password="p")
    assert RetryPolicy.from_config(cfg) == RetryPolicy(interval=5.0, timeout=120.0)


def test_503_every_interval_until_timeout():
    """503s retry every interval; the last try is at the deadline: 24 waits of 5 s in 120 s."""
    sleeps = run(RetryPolicy(interval=5, timeout=120), UNAVAILABLE)
    assert sleeps == [5.0] * 24
    assert sum(sleeps) == 120


def test_deadline_clips_last_wait():
    """A timeout that is not a multiple of the interval clips the last wait."""
    assert run(RetryPolicy(interval=5, timeout=12), UNAVAILABLE) == [5, 5, 2]


def test_zero_timeout_never_retries():
    """datera_503_timeout=0 means no retry at all."""
    assert run(RetryPolicy(interval=5, timeout=0), UNAVAILABLE) == []


def test_connection_backoff_capped_at_interval():
    """Connection errors back off 0.25, 0.5, 1, 2 ... capped at the interval."""
    sleeps = run(RetryPolicy(interval=3, timeout=10), CONNECTION)
    assert sleeps[:5] == [0.25, 0.5, 1.0, 2.0, 3.0]
    assert abs(sum(sleeps) - 10) < 1e-9


def test_throttled_honours_retry_after():
    """429 waits Retry-After when given, else the interval, within the deadline."""
    policy = RetryPolicy(interval=5, timeout=10)
    assert policy.next_delay(THROTTLED, 0, 0.0, retry_after=2) == 2
    assert policy.next_delay(THROTTLED, 0, 0.0) == 5
    assert policy.next_delay(THROTTLED, 0, 9.0, retry_after=7) == 1.0
    assert policy.next_delay(THROTTLED, 0, 10.0, retry_after=1) is None
