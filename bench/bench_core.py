"""Benchmark of the resource core against the bundled simulator: HTTP requests and wall
time to create N volumes with QoS, and to refresh them, side by side with the naive
one-GET-per-volume refresh.

    python bench/bench_core.py [--count 1000] [--json]

Requests are counted by the simulator (``SimServer.counters()``), so they include the
client's login, version probe and ``/system`` read. Targets (issue #3): create 1,000
volumes with QoS in <= 1,050 requests; refresh 1,000 in <= 15.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.resources import KINDS
from datera_iac.resources.base import Context
from datera_iac.sim import SimServer

CREATE_TARGET = 1050
REFRESH_TARGET = 15


def _total(sim: SimServer) -> int:
    return sum(sim.counters().values())


def run(count: int) -> dict[str, Any]:
    volume = KINDS["Volume"]
    with SimServer() as sim:
        cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                         "san_password": "password"})
        ctx = Context(client=DspClient(cfg), config=cfg)
        specs = [volume.spec_from({
            "name": f"bench-{i:05d}", "size": 1 + i % 50,
            "extra_specs": {"DF:replica_count": 2, "DF:total_iops_max": 1000 + i,
                            "DF:read_bandwidth_max": 2048},
        }) for i in range(count)]

        base = _total(sim)
        t0 = time.perf_counter()
        ids = [volume.create(ctx, s).id for s in specs]
        create_s = time.perf_counter() - t0
        create_req = _total(sim) - base
        by_route = {k: v for k, v in sim.counters().items() if v}

        base = _total(sim)
        t0 = time.perf_counter()
        bulk = volume.read_many(ctx, ids)
        refresh_s = time.perf_counter() - t0
        refresh_req = _total(sim) - base
        assert all(bulk[i] is not None for i in ids)
        drift = sum(volume.diff(bulk[i].spec, s).changed for i, s in zip(ids, specs))

        base = _total(sim)
        t0 = time.perf_counter()
        single = {i: volume.read(ctx, i) for i in ids}
        naive_s = time.perf_counter() - t0
        naive_req = _total(sim) - base
        assert all(single[i] is not None for i in ids)
        ctx.client.close()
    return {
        "count": count,
        "create_requests": create_req, "create_seconds": round(create_s, 3),
        "create_target": CREATE_TARGET * count // 1000,
        "refresh_requests": refresh_req, "refresh_seconds": round(refresh_s, 3),
        "refresh_target": REFRESH_TARGET,
        "naive_refresh_requests": naive_req, "naive_refresh_seconds": round(naive_s, 3),
        "refresh_request_ratio": round(naive_req / max(refresh_req, 1), 1),
        "refresh_time_ratio": round(naive_s / max(refresh_s, 1e-9), 1),
        "plans_with_drift_after_refresh": drift,
        "create_requests_by_route": by_route,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    a = p.parse_args(argv)
    r = run(a.count)
    if a.json:
        print(json.dumps(r, indent=2))
    else:
        n = r["count"]
        print(f"create {n} volumes with QoS: {r['create_requests']} requests "
              f"(target <= {r['create_target']}), {r['create_seconds']:.2f}s "
              f"({1000 * r['create_seconds'] / n:.1f} ms/volume)")
        print(f"refresh {n} volumes (read_many): {r['refresh_requests']} requests "
              f"(target <= {r['refresh_target']}), {r['refresh_seconds']:.2f}s")
        print(f"refresh {n} volumes one read each: {r['naive_refresh_requests']} requests, "
              f"{r['naive_refresh_seconds']:.2f}s  -> read_many is "
              f"{r['refresh_request_ratio']}x fewer requests, {r['refresh_time_ratio']}x faster")
        print(f"volumes whose refreshed spec diffs against the declaration: "
              f"{r['plans_with_drift_after_refresh']}")
        print("create requests by route: " + ", ".join(
            f"{k}={v}" for k, v in sorted(r["create_requests_by_route"].items())))
    ok = (r["create_requests"] <= r["create_target"]
          and r["refresh_requests"] <= r["refresh_target"]
          and r["plans_with_drift_after_refresh"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
