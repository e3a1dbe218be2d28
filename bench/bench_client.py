"""Client-side cost of one DSP call: CPU time per GET and per POST in this process
(the simulator runs in a child process, so its work is not counted here).

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    sim = SimProcess()
    try:
        cfg = DateraConfig.from_mapping({"endpoint": sim.url, "san_login": "admin",
                                         "san_password": "password"})
        with DspClient(cfg) as c:
            c.get("/system")
            t, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.calls):
                c.get("/system")
            wall, used = time.perf_counter() - t, time.process_time() - cpu
            t2, cpu2 = time.perf_counter(), time.process_time()
            n = max(1, args.calls // 4)
            for i in range(n):
                c.post("/app_instances", {"name": f"bc-{i}", "create_mode": "openstack"})
            wall2, used2 = time.perf_counter() - t2, time.process_time() - cpu2
    finally:
        sim.stop()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"GET  x{args.calls}: client CPU {used / args.calls * 1e6:7.0f} us/call   "
          f"wall {wall / args.calls * 1e6:7.0f} us/call")
    print(f"POST x{n}: client CPU {used2 / n * 1e6:7.0f} us/call   wall {wall2 / n * 1e6:7.0f} us/call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
