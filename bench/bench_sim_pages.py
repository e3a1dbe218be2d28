#!/usr/bin/env python3
"""Cost of one list page of the bundled DSP simulator at 1,000 / 10,000 / 50,000 app_instances.

The simulator runs in its own process (``datera-iac dsp serve``); this process grows its
app_instances to each size (POSTs by 32 concurrent aiohttp workers), then times single
``GET /v2.2/app_instances`` pages one at a time: ``limit=100`` at the first, middle and last
offset, ``limit=1000`` at the first offset, and an equality filter on the name. Printed for
each: the median wall time of ``--reps`` pages and the simulator's CPU per page, and the
ratio of the largest size to the smallest (target: within 2x).

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


async def _time_pages(s: aiohttp.ClientSession, base: str, pid: int, params: dict[str, Any],
                      reps: int, expect: int) -> tuple[float, float]:
    """(median wall s, simulator CPU s per page) over ``reps`` sequential pages."""
    walls = []
    c0 = cpu_seconds(pid)
    for _ in range(reps):
        t = time.perf_counter()
        async with s.get(f"{base}/v2.2/app_instances", params=params) as r:
            body = await r.json()
        walls.append(time.perf_counter() - t)
        assert r.status == 200, body
        assert len(body["data"]) == expect, (params, len(body["data"]))
    return statistics.median(walls), (cpu_seconds(pid) - c0) / reps


async def bench(base: str, pid: int, sizes: list[int], reps: int) -> dict[int, dict[str, tuple[float, float]]]:
    out: dict[int, dict[str, tuple[float, float]]] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as s:
        async with s.put(f"{base}/v2.2/login", json={"name": "admin", "password": "password"}) as r:
            key = (await r.json())["key"]
        s.headers.update({"Auth-Token": key, "tenant": "/root"})
        have = 0
        for n in sizes:
            t = time.perf_counter()
            first = have
            await run_phase(s, n - have, 32, lambda i: _create(base, first + i))
            have = n
            grow = time.perf_counter() - t
            async with s.get(f"{base}/v2.2/app_instances", params={"limit": 1}) as r:
                total = (await r.json())["metadata"]["total_count"]
            assert total == n, (total, n)
            await _time_pages(s, base, pid, {"limit": 100}, 3, 100)  # warm
            row: dict[str, tuple[float, float]] = {}
            for label, params, expect in (
                ("limit=100 offset=0", {"limit": 100, "offset": 0}, 100),
                ("limit=100 offset=N/2", {"limit": 100, "offset": n // 2}, 100),
                ("limit=100 offset=N-100", {"limit": 100, "offset": n - 100}, 100),
                ("limit=1000 offset=0", {"limit": 1000, "offset": 0}, 1000),
                ("filter name=<one>", {"filter": f"name=page-{n // 3:06d}"}, 1),
            ):
                row[label] = await _time_pages(s, base, pid, params, reps, expect)
            out[n] = row
            print(f"  grew to {n:6d} app_instances in {grow:5.1f} s", flush=True)
    return out


def measure(sizes: list[int], reps: int) -> dict[int, dict[str, tuple[float, float]]]:
    """:func:`bench` on a simulator process of its own, stopped afterwards."""
    proc, base = start_server()
    try:
        return asyncio.run(bench(base, proc.pid, sizes, reps))
    finally:
        proc.send_signal(signal.SIGTERM)
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
