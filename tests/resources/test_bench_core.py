"""bench/bench_core.py: the request-count targets hold (small N in CI; 1,000 when slow)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_core.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_core", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_bench_small():
    """120 volumes: one POST each (plus login/probes), refresh in one list page (pages of
    up to 1,000, the schema's maximum), no drift."""
    r = _bench().run(120)
    assert r["create_requests"] == 120 + 3
    assert r["refresh_requests"] == 1
    assert r["naive_refresh_requests"] == 240
    assert r["plans_with_drift_after_refresh"] == 0


@pytest.mark.slow
def test_bench_1000():
    """The issue #3 targets: <= 1,050 requests to create 1,000, <= 15 to refresh them."""
    r = _bench().run(1000)
    assert r["create_requests"] <= 1050 and r["refresh_requests"] <= 15
