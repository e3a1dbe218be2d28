#!/usr/bin/env python3
"""Throughput of the bundled DSP simulator: simple GETs/s and app_instance creates/s.

The simulator runs as its own process (``datera-iac dsp serve`` on free ports) and the load
comes from this process: an aiohttp client with keep-alive connections and N concurrent
workers. Targets on 2 cores: >= 1,500 GETs/s and >= 300 creates/s.

    python bench/bench_sim.py [--requests 6000] [--creates 2000] [--concurrency 32]

Exits 1 if a target is missed (use --no-check to only print).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp

TARGET_GETS = 1500.0
TARGET_CREATES = 300.0


def start_server(profile: str | None = None) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, "-m", "datera_iac.cli", "dsp", "serve", "--http-port", "0", "--https-port", "0"]
    if profile:  # sample the server with py-spy (pip install py-spy); raw stacks for flamegraph.pl
        argv = ["py-spy", "record", "-r", "250", "-f", "raw", "-o", profile, "--", *argv]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.strip().startswith("http:"):
            return proc, line.split()[1]
    proc.kill()
    raise SystemExit("the simulator did not start")


def cpu_seconds(pid: int) -> float:
    """User+system CPU time of a process (Linux /proc), to report server cost per request
    independently of how busy the machine is."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


async def run_phase(session: aiohttp.ClientSession, n: int, concurrency: int, make: Any) -> float:
    """Send ``n`` requests from ``concurrency`` workers; return requests per second."""
    counter = iter(range(n))
    errors: list[str] = []

    async def worker() -> None:
        for i in counter:
            method, url, body = make(i)
            async with session.request(method, url, json=body) as r:
                await r.read()
                if r.status != 200:
                    errors.append(f"{method} {url}: {r.status}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"{len(errors)} requests failed, first: {errors[0]}")
    return n / elapsed


async def bench(base: str, pid: int, gets: int, creates: int, concurrency: int) -> dict[str, tuple[float, float]]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as s:
        async with s.put(f"{base}/v2.2/login", json={"name": "admin", "password": "password"}) as r:
            key = (await r.json())["key"]
        s.headers.update({"Auth-Token": key, "tenant": "/root"})
        # warm-up: connections open, code paths hot
        await run_phase(s, 200, concurrency, lambda i: ("GET", f"{base}/v2.2/system", None))
        out: dict[str, tuple[float, float]] = {}

        async def measured(name: str, n: int, make: Any) -> None:
            c0 = cpu_seconds(pid)
            rate = await run_phase(s, n, concurrency, make)
            out[name] = (rate, (cpu_seconds(pid) - c0) / n * 1e6)

        await measured("GET /v2.2/system", gets, lambda i: ("GET", f"{base}/v2.2/system", None))

        def create(i: int) -> tuple[str, str, dict[str, Any]]:
            return ("POST", f"{base}/v2.2/app_instances", {
                "name": f"bench-{i:06d}", "create_mode": "openstack", "access_control_mode": "deny_all",
                "storage_instances": [{"name": "storage-1", "ip_pool": {"path": "/access_network_ip_pools/default"},
                                       "volumes": [{"name": "volume-1", "size": 1, "replica_count": 3,
                                                    "snapshot_policies": []}]}],
            })

        await measured("POST /v2.2/app_instances", creates, create)
        async with s.get(f"{base}/v2.2/app_instances", params={"limit": 1}) as r:
            total = (await r.json())["metadata"]["total_count"]
        assert total == creates, f"expected {creates} app instances, found {total}"
        await measured("GET /v2.2/app_instances/:id", gets,
                       lambda i: ("GET", f"{base}/v2.2/app_instances/bench-{i % creates:06d}", None))
        return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=6000, help="GETs per GET phase")
    ap.add_argument("--creates", type=int, default=2000, help="app_instance creates")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--no-check", action="store_true", help="print only; do not fail on missed targets")
    ap.add_argument("--profile", metavar="FILE", help="run the server under py-spy, raw stacks to FILE "
                    "(server CPU figures are then py-spy's own, not the server's)")
    args = ap.parse_args()
    proc, base = start_server(args.profile)
    try:
        res = asyncio.run(bench(base, proc.pid, args.requests, args.creates, args.concurrency))
    finally:
        # py-spy writes its profile on SIGINT (and stops the server it runs)
        proc.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"DSP simulator throughput ({os.cpu_count()} cores, load average {load:.1f}, "
          f"concurrency {args.concurrency}, keep-alive aiohttp client, server in its own process)")
    for name, (rate, cpu_us) in res.items():
        print(f"  {name:32s} {rate:8.0f} req/s   server CPU {cpu_us:6.0f} us/request"
              f" (= {1e6 / cpu_us:6.0f} req/s on one free core)")
    gets, creates = res["GET /v2.2/system"][0], res["POST /v2.2/app_instances"][0]
    ok = gets >= TARGET_GETS and creates >= TARGET_CREATES
    print(f"targets: >= {TARGET_GETS:.0f} GETs/s ({'met' if gets >= TARGET_GETS else 'MISSED'}), "
          f">= {TARGET_CREATES:.0f} creates/s ({'met' if creates >= TARGET_CREATES else 'MISSED'})")
    return 0 if ok or args.no_check else 1


if __name__ == "__main__":
    sys.exit(main())
