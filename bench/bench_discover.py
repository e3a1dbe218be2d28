"""Benchmark of listing and discovery against the bundled simulator: HTTP requests and
wall time to list N volumes (`ls volumes`), to discover them (`import --discover` reads
the list plus each volume's metadata), to write them as Pulumi YAML and as HCL, side by
side with the naive read (one adopt per volume: a GET and a metadata GET each).

    python bench/bench_discover.py [--count 1000] [--json]

Requests are counted by the simulator (``SimServer.counters()``); the client is logged in
and has probed the versions before the counting starts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.dsp._client import MAX_PAGE
from datera_iac.engine.discover import discover, to_hcl, to_pulumi_yaml
from datera_iac.resources import KINDS
from datera_iac.resources.base import Context
from datera_iac.resources.queries import LISTINGS
from datera_iac.sim import SimServer


def _total(sim: SimServer) -> int:
    return sum(sim.counters().values())


def _timed(sim: SimServer, fn: Any) -> tuple[Any, int, float]:
    base = _total(sim)
    t0 = time.perf_counter()
    out = fn()
    return out, _total(sim) - base, time.perf_counter() - t0


def run(count: int) -> dict[str, Any]:
    with SimServer() as sim:
        cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                         "san_password": "password"})
        ctx = Context(client=DspClient(cfg), config=cfg)
        ctx.client.login()
        _ = ctx.client.api_version, ctx.client.sw_version
        layout = {"storage_instances": [{"name": "storage-1", "volumes": [
            {"name": "volume-1", "size": 1}]}]}
        ids = []
        for i in range(count):
            ai = ctx.client.post("/app_instances", {"name": f"disc-{i:05d}", **layout})
            ids.append(f"/root/{ai['id']}")
        rows, list_req, list_s = _timed(sim, lambda: LISTINGS["volumes"].rows(ctx))
        assert len(rows) == count

        found, disc_req, disc_s = _timed(sim, lambda: discover(ctx))
        assert len(found) == count
        t0 = time.perf_counter()
        to_pulumi_yaml(found)
        yaml_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        to_hcl(found)
        hcl_s = time.perf_counter() - t0
        vol = KINDS["Volume"]
        _, naive_req, naive_s = _timed(sim, lambda: [vol.adopt(ctx, i) for i in ids])
        ctx.client.close()
    return {
        "count": count,
        "list": {"requests": list_req, "seconds": round(list_s, 3),
                 "pages": math.ceil(count / MAX_PAGE)},
        "discover": {"requests": disc_req, "seconds": round(disc_s, 3)},
        "write_yaml": {"requests": 0, "seconds": round(yaml_s, 3)},
        "write_hcl": {"requests": 0, "seconds": round(hcl_s, 3)},
        "naive_adopt_each": {"requests": naive_req, "seconds": round(naive_s, 3)},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    r = run(args.count)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    n = r["count"]
    print(f"{n} volumes on the simulator")
    print(f"{'':28}{'requests':>10}{'seconds':>10}")
    for label, key in (("ls volumes", "list"), ("discover (read)", "discover"),
                       ("  + write Pulumi YAML", "write_yaml"), ("  + write HCL", "write_hcl"),
                       ("adopt one by one (naive)", "naive_adopt_each")):
        print(f"{label:28}{r[key]['requests']:>10}{r[key]['seconds']:>10.3f}")
    naive, disc = r["naive_adopt_each"], r["discover"]
    print(f"list: {r['list']['requests']} requests for {r['list']['pages']} page(s) of "
          f"{MAX_PAGE}; "
          f"naive/discover: requests {naive['requests'] / max(1, disc['requests']):.2f}, "
          f"time {naive['seconds'] / max(1e-9, disc['seconds']):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
