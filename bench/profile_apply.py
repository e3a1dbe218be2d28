"""Profile the engine's ``up`` of N volumes (cProfile, in this process) against the
simulator in a child process; prints the top functions by cumulative and own time.

All threads: py-spy record -f speedscope -o up.json -- python bench/profile_apply.py --no-cprofile

Usage: python bench/profile_apply.py [--volumes 500] [--latency-ms 20] [--parallel 10]
                                     [--preview]  (profile a no-op preview of --volumes instead)
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_engine import SimProcess, stack, workspace  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--volumes", type=int, default=500)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--parallel", type=int, default=10)
    ap.add_argument("--preview", action="store_true")
    ap.add_argument("--top", type=int, default=35)
    ap.add_argument("--yappi", action="store_true",
                    help="yappi CPU profile of every thread (pip install yappi)")
    ap.add_argument("--no-cprofile", action="store_true",
                    help="no cProfile (it sees only the main thread): run under py-spy instead")
    args = ap.parse_args()
    os.environ.update(DATERA_SAN_LOGIN="admin", DATERA_SAN_PASSWORD="password")
    sim = SimProcess()
    try:
        f = Path(tempfile.mkdtemp(prefix="prof-")) / "Pulumi.yaml"
        f.write_text(stack(args.volumes, tenant=False))
        if args.preview:
            with workspace(f, sim, args.parallel) as ws:
                ws.up(quiet=True)
        with workspace(f, sim, args.parallel) as ws:
            ws.preview()
            if not args.preview:
                sim.faults(latency_ms=args.latency_ms)
            prof = cProfile.Profile()
            t, cpu = time.perf_counter(), time.process_time()
            if args.yappi:
                import yappi

                yappi.set_clock_type("cpu")
                yappi.start()
            elif not args.no_cprofile:
                prof.enable()
            if args.preview:
                ws.preview()
            else:
                ws.up(quiet=True)
            prof.disable()
            if args.yappi:
                yappi.stop()
            print(f"wall {time.perf_counter() - t:.2f} s, CPU {time.process_time() - cpu:.2f} s "
                  f"(under the profiler), load {os.getloadavg()[0]:.1f}")
    finally:
        sim.stop()
    if args.yappi:
        stats = yappi.get_func_stats()
        for key in ("ttot", "tsub"):
            stats.sort(key, "desc")
            print(f"-- by {key} (CPU seconds, all threads)")
            for f in list(stats)[:args.top]:
                print(f"{f.ttot:8.3f} {f.tsub:8.3f} {f.ncall:7d}  {f.module.split('site-packages/')[-1]}:{f.lineno} {f.name}")
        return 0
    if args.no_cprofile:
        return 0
    st = pstats.Stats(prof)
    st.sort_stats("cumulative").print_stats(args.top)
    st.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
