"""Client-side cost of one DSP call: CPU time per GET and per POST in this process
(the simulator runs in a child process, so its work is not counted here), through the one
``requests`` transport, side by side in the same run for the client's default transport
(reads the environment's proxy and CA settings once, for its endpoint) and a transport
that lets ``requests`` read them on every call (what every front end did before session 8
but the engine, which had a session of its own for it).

Usage: python bench/bench_client.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import SimProcess  # noqa: E402

from datera_iac.config import DateraConfig  # noqa: E402
from datera_iac.dsp import DspClient  # noqa: E402
from datera_iac.dsp._transport import RequestsTransport  # noqa: E402


def measure(cfg: DateraConfig, transport: RequestsTransport | None, calls: int,
            tag: str) -> tuple[float, float, float, float]:
    """(GET CPU, GET wall, POST CPU, POST wall) per call, in microseconds."""
    with DspClient(cfg, transport=transport) as c:
        c.get("/system")
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            c.get("/system")
        get_wall, get_cpu = time.perf_counter() - t, time.process_time() - cpu
        n = max(1, calls // 4)
        t, cpu = time.perf_counter(), time.process_time()
        for i in range(n):
            c.post("/app_instances", {"name": f"bc-{tag}-{i}", "create_mode": "openstack"})
        post_wall, post_cpu = time.perf_counter() - t, time.process_time() - cpu
    return (get_cpu / calls * 1e6, get_wall / calls * 1e6, post_cpu / n * 1e6, post_wall / n * 1e6)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    sim = SimProcess()
    rows = []
    try:
        cfg = DateraConfig.from_mapping({"endpoint": sim.url, "san_login": "admin",
                                         "san_password": "password"})
        per_call = RequestsTransport(verify=cfg.verify, cert=cfg.client_cert)  # no base_url
        for label, transport in (("environment read once", None),
                                 ("environment per call", per_call)):
            rows.append((label, *measure(cfg, transport, args.calls, label[-4:])))
    finally:
        sim.stop()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; client CPU and wall per call")
    for label, get_cpu, get_wall, post_cpu, post_wall in rows:
        print(f"  {label:24s} GET  CPU {get_cpu:5.0f} us  wall {get_wall:5.0f} us   "
              f"POST CPU {post_cpu:5.0f} us  wall {post_wall:5.0f} us")
    (_, d_get, _, d_post, _), (_, r_get, _, r_post, _) = rows
    print(f"  ratio once/per call      GET CPU {d_get / r_get:.2f}   POST CPU {d_post / r_post:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
