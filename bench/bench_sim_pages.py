#!/usr/bin/env python3
"""Cost of one list page of the bundled DSP simulator at 1,000 / 10,000 / 50,000 app_instances.

Each size gets a simulator process of its own (``datera-iac dsp serve``), grown to that
many app_instances (POSTs by 32 concurrent aiohttp workers). Then single ``GET
/v2.2/app_instances`` pages are timed one at a time, **alternating between the sizes**
page by page: ``limit=100`` at the first, middle and last offset, ``limit=1000`` at the
first offset, and an equality filter on the name. On a shared machine the load moves
within seconds; timing every size in turn means each ratio compares pages that saw the
same load (timed one size after the other, with a 15 s growth in between, the ratio at
load ~5 moved between 1.1x and 4x from run to run with no change in the simulator).
Printed for each: the median wall time of ``--reps`` pages and the simulator's CPU per
page, and the ratio of the largest size to the smallest (target: within 2x).

    python bench/bench_sim_pages.py [--sizes 1000,10000,50000] [--reps 31]

Exits 1 if the largest size's ``limit=100`` page costs more than 2x the smallest's
(median wall), unless ``--no-check``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sim import cpu_seconds, run_phase, start_server  # noqa: E402

TARGET_RATIO = 2.0


def _create(base: str, i: int) -> tuple[str, str, dict[str, Any]]:
    return ("POST", f"{base}/v2.2/app_instances", {
        "name": f"page-{i:06d}", "create_mode": "openstack", "access_control_mode": "deny_all",
        "storage_instances": [{"name": "storage-1", "ip_pool": {"path": "/access_network_ip_pools/default"},
                               "volumes": [{"name": "volume-1", "size": 1, "replica_count": 3,
                                            "snapshot_policies": []}]}],
    })


def _pages(n: int) -> list[tuple[str, dict[str, Any], int]]:
    """(label, query, expected item count) of each timed page at size ``n``."""
    return [
        ("limit=100 offset=0", {"limit": 100, "offset": 0}, 100),
        ("limit=100 offset=N/2", {"limit": 100, "offset": n // 2}, 100),
        ("limit=100 offset=N-100", {"limit": 100, "offset": n - 100}, 100),
        ("limit=1000 offset=0", {"limit": 1000, "offset": 0}, 1000),
        ("filter name=<one>", {"filter": f"name=page-{n // 3:06d}"}, 1),
    ]


async def _grow(s: aiohttp.ClientSession, base: str, n: int) -> None:
    """Log ``s`` in to the simulator at ``base`` and grow that to ``n`` app_instances."""
    async with s.put(f"{base}/v2.2/login", json={"name": "admin", "password": "password"}) as r:
        s.headers.update({"Auth-Token": (await r.json())["key"], "tenant": "/root"})
    t = time.perf_counter()
    await run_phase(s, n, 32, lambda i: _create(base, i))
    async with s.get(f"{base}/v2.2/app_instances", params={"limit": 1}) as r:
        total = (await r.json())["metadata"]["total_count"]
    assert total == n, (total, n)
    print(f"  grew to {n:6d} app_instances in {time.perf_counter() - t:5.1f} s", flush=True)


async def _page(s: aiohttp.ClientSession, base: str, params: dict[str, Any], expect: int) -> float:
    t = time.perf_counter()
    async with s.get(f"{base}/v2.2/app_instances", params=params) as r:
        body = await r.json()
    took = time.perf_counter() - t
    assert r.status == 200, body
    assert len(body["data"]) == expect, (params, len(body["data"]))
    return took


async def bench(sims: dict[int, tuple[str, int]], reps: int) -> dict[int, dict[str, tuple[float, float]]]:
    """``sims``: size -> (base URL, pid) of a fresh simulator. Per size and page: (median
    wall s, simulator CPU s per page), the sizes timed in turn page by page."""
    out: dict[int, dict[str, tuple[float, float]]] = {n: {} for n in sims}
    sessions = {n: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) for n in sims}
    try:
        for n, (base, _) in sims.items():
            await _grow(sessions[n], base, n)
        for i, (label, _, _) in enumerate(_pages(1)):
            walls: dict[int, list[float]] = {n: [] for n in sims}
            cpu: dict[int, float] = dict.fromkeys(sims, 0.0)
            for rep in range(reps + 3):  # the first three of each are warm-up, not counted
                for n, (base, pid) in sims.items():
                    _, params, expect = _pages(n)[i]
                    c0 = cpu_seconds(pid)
                    took = await _page(sessions[n], base, params, expect)
                    if rep >= 3:
                        walls[n].append(took)
                        cpu[n] += cpu_seconds(pid) - c0
            for n in sims:
                out[n][label] = (statistics.median(walls[n]), cpu[n] / reps)
    finally:
        for sess in sessions.values():
            await sess.close()
    return out


def measure(sizes: list[int], reps: int) -> dict[int, dict[str, tuple[float, float]]]:
    """:func:`bench` on a simulator process per size, stopped afterwards."""
    procs: dict[int, subprocess.Popen[str]] = {}
    sims: dict[int, tuple[str, int]] = {}
    try:
        for n in sizes:
            proc, base = start_server()
            procs[n], sims[n] = proc, (base, proc.pid)
        return asyncio.run(bench(sims, reps))
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--reps", type=int, default=31, help="pages timed per figure (median)")
    ap.add_argument("--no-check", action="store_true")
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; simulator in its own process")
    res = measure(sizes, args.reps)
    lo, hi = sizes[0], sizes[-1]
    print(f"\none GET /v2.2/app_instances page: median wall ms (simulator CPU ms per page); "
          f"load average {os.getloadavg()[0]:.2f}")
    labels = list(res[lo])
    print(f"  {'page':24s}" + "".join(f"{n:>20,d}" for n in sizes) + f"   ratio {hi:,}/{lo:,}")
    for label in labels:
        cells = "".join(f"{res[n][label][0] * 1e3:11.2f} ({res[n][label][1] * 1e3:5.2f})" for n in sizes)
        ratio = res[hi][label][0] / res[lo][label][0]
        print(f"  {label:24s}{cells}   {ratio:5.2f}")
    worst = max(res[hi][k][0] / res[lo][k][0] for k in labels if k.startswith("limit=100"))
    ok = worst <= TARGET_RATIO
    print(f"target: a limit=100 page at {hi:,} within {TARGET_RATIO:g}x of {lo:,}: worst ratio {worst:.2f} "
          f"-> {'met' if ok else 'MISSED'}")
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
