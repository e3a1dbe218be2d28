#!/usr/bin/env python3
"""Every "Done when" figure of the scale issue (issue 21), measured in one run and printed
side by side with its target and the load average it was measured at.

It runs the pieces of the other benches, in this order, each on its own simulator process:

1. the simulator's page time at 1,000 and 50,000 app_instances (``bench_sim_pages``);
2. no-op ``preview`` of 1,000 and 10,000 volumes: requests, wall, engine CPU, peak RSS
   (``bench_engine.bench_previews``: the sizes in turn);
3. ``up`` of 5,000 creates at parallelism 10 with 20 ms latency per request, against the
   ideal 5,000 x 20 ms / 10, with the bare-POST floor beside it (``bench_engine``);
4. the Terraform provider's handshake, then Terraform's own floor (``terraform_data``) and
   Terraform with the datera provider in turn at each step - apply, apply, then the no-op
   plan of each ``--tf-plan-runs`` times, destroy, destroy - for 1,000 volumes, so each
   ratio compares runs made back to back (``bench_terraform.bench_side_by_side``);
5. the Pulumi provider plugin's start-up (the plugin archive's launcher, to the port line
   the Pulumi engine waits for), beside ``python -m datera_iac.pulumi`` and bare Python;
6. the real Pulumi CLI: ``up`` and no-op ``preview`` of 100 and 1,000 volumes with the
   datera provider against a stack of the same size of a no-op provider's resources, in
   turn (``bench_pulumi``).

    python bench/scale_report.py [--volumes 1000,10000] [--apply-volumes 5000]
                                 [--tf-volumes 1000] [--pages 1000,50000] [--skip-terraform]
                                 [--tf-wide-floor]
                                 [--pulumi-volumes 100,1000] [--skip-pulumi]

The machine is shared: each figure carries the 1-minute load average at its end, and the
targets that are ratios compare two sides measured in this same run. Exits 1 when a target
is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_engine  # noqa: E402
import bench_pulumi  # noqa: E402
import bench_sim_pages  # noqa: E402
import bench_terraform  # noqa: E402
from _simproc import SimProcess  # noqa: E402

ROWS: list[tuple[str, str, str, bool, float]] = []


def load() -> float:
    return os.getloadavg()[0]


def row(figure: str, measured: str, target: str, ok: bool) -> None:
    ROWS.append((figure, measured, target, ok, load()))
    print(f"  -> {figure}: {measured} (target {target}) {'met' if ok else 'MISSED'}", flush=True)


def sim_pages(sizes: list[int], reps: int) -> None:
    print(f"\n#### simulator pages at {sizes} (load {load():.1f})", flush=True)
    res = bench_sim_pages.measure(sizes, reps)
    lo, hi = sizes[0], sizes[-1]
    for label in res[lo]:
        print(f"  {label:24s} " + "  ".join(f"{n:,}: {res[n][label][0] * 1e3:7.2f} ms" for n in sizes))
    worst = max((res[hi][k][0] / res[lo][k][0], k) for k in res[lo] if k.startswith("limit="))
    row(f"sim page time {hi:,} / {lo:,} app_instances", f"{worst[0]:.2f}x (worst: {worst[1]})",
        "<= 2x", worst[0] <= 2.0)


def engine(sizes: list[int], apply_n: int, latency_ms: float, parallel: int) -> None:
    print(f"\n#### engine: no-op preview of {sizes} volumes (load {load():.1f})", flush=True)
    previews = bench_engine.bench_previews(sizes)
    sim = SimProcess()
    try:
        lo, hi = previews[sizes[0]], previews[sizes[-1]]
        big = sizes[-1]
        row(f"preview {big:,}: HTTP requests", str(hi["requests"]), "<= 15", hi["requests"] <= 15)
        row(f"preview {big:,}: wall (in-process, median of 5)", f"{hi['preview_s']:.2f} s", "<= 3 s",
            hi["preview_s"] <= 3.0)
        w, c = hi["preview_s"] / lo["preview_s"], hi["cpu_s"] / lo["cpu_s"]
        row(f"preview {big:,} / {sizes[0]:,}: wall", f"{w:.1f}x ({hi['preview_s']:.2f} / {lo['preview_s']:.2f} s)",
            "<= 10x", w <= 10)
        row(f"preview {big:,} / {sizes[0]:,}: engine CPU", f"{c:.1f}x ({hi['cpu_s']:.2f} / {lo['cpu_s']:.2f} s)",
            "<= 10x", c <= 10)
        row(f"preview {big:,} / {sizes[0]:,}: engine CPU per volume by phase (1.00: linear)",
            ", ".join(f"{k} {hi['phases'][k] * sizes[0] / big / lo['phases'][k]:.2f}"
                      for k in lo["phases"] if lo["phases"][k] > 0), "printed", True)
        row(f"preview {big:,}: peak RSS / state file", f"{hi['rss_mb']:.0f} MB / {hi['state_mb']:.1f} MB",
            "printed", True)
        print(f"\n#### engine: up of {apply_n} creates, parallelism {parallel}, {latency_ms:g} ms "
              f"(load {load():.1f})", flush=True)
        a = bench_engine.bench_apply(sim, apply_n, latency_ms, parallel, runs=1)
        floor = bench_engine.bench_floor(sim, apply_n, latency_ms, parallel)
        ideal = apply_n * latency_ms / 1000 / parallel
        row(f"up of {apply_n:,} at parallelism {parallel}, {latency_ms:g} ms: wall / ideal",
            f"{a['ratio']:.2f}x ({a['wall_s']:.1f} s; bare-POST floor {floor / ideal:.2f}x)",
            "<= 1.2x", a["ratio"] <= 1.2)
    finally:
        sim.stop()


def terraform(n: int, parallelism: int, plan_runs: int, wide: bool = False) -> None:
    print(f"\n#### Terraform, {n} volumes, floor and datera in turn (load {load():.1f})", flush=True)
    best, median = bench_terraform.handshake()
    row("Terraform provider handshake (best / median of 7)", f"{best:.3f} / {median:.3f} s",
        "<= 0.1 s", median <= 0.1)
    os.environ.update(CHECKPOINT_DISABLE="1")
    sim = SimProcess()
    step = bench_terraform.Step(sim)
    try:
        bench_terraform.bench_side_by_side(sim, step, n, parallelism, plan_runs, wide)
    finally:
        sim.stop()
    by = bench_terraform.medians(step)
    (fa, _), (ta, _) = by[("floor", "apply")], by[("terraform", "apply")]
    (fp, _), (tp, plan_used) = by[("floor", "no-op plan")], by[("terraform", "no-op plan")]
    (fd, _), (td, destroy_used) = by[("floor", "destroy")], by[("terraform", "destroy")]
    reqs = sum(plan_used.values())
    row(f"terraform plan of {n:,} (no-op): DSP requests", str(reqs), "<= 6", reqs <= 6)
    row(f"terraform plan of {n:,} (no-op) / floor's plan, median of {plan_runs} pairs",
        f"{tp / fp:.2f}x ({tp:.2f} / {fp:.2f} s)", "<= 3x", tp / fp <= 3)
    row(f"terraform apply of {n:,} / floor's apply, back to back",
        f"{ta / fa:.2f}x ({ta:.2f} / {fa:.2f} s)", "<= 2x", ta / fa <= 2)
    if wide:  # the same against a floor as wide as a volume (bench_terraform.WIDE_FLOOR_HCL)
        (wa, _), (wp, _) = by[("floor-wide", "apply")], by[("floor-wide", "no-op plan")]
        for what, ours, theirs in (("plan", tp, wp), ("apply", ta, wa)):
            row(f"terraform {what} of {n:,} / a volume-wide floor's {what}",
                f"{ours / theirs:.2f}x ({ours:.2f} / {theirs:.2f} s)", "printed", True)
    writes = bench_terraform._writes(destroy_used)
    reads = sum(k for r, k in destroy_used.items() if r == "GET /v2.2/app_instances/:id")
    pages = sum(k for r, k in destroy_used.items() if r == "GET /v2.2/app_instances")
    other = sum(destroy_used.values()) - writes - reads - pages
    row(f"terraform destroy of {n:,}+1: requests per object + paging",
        f"{(writes + reads) / (n + 1):.2f} ({writes} writes, {reads} reads by id; + {pages} list "
        f"pages, {other} logins/probes; floor's destroy {fd:.1f} s, ours {td:.1f} s)",
        "<= 2 + paging", writes + reads <= 2 * (n + 1) and other <= 12)
    bench_terraform.report(step, n)


def pulumi(sizes: list[int], preview_runs: int) -> None:
    """The real Pulumi CLI with the datera provider against the same CLI with a no-op
    provider's stack of the same size (``bench_pulumi``), the two in turn at each step."""
    print(f"\n#### Pulumi, {sizes} volumes, no-op provider and datera in turn (load {load():.1f})",
          flush=True)
    sim = SimProcess()
    results = {}
    try:
        for n in sizes:
            sim.reset()
            results[n] = bench_pulumi.measure(n, preview_runs, sim)
    finally:
        sim.stop()
    bench_pulumi.report(results)
    for n, r in results.items():
        for name in ("up", "preview"):
            a, b = r[name]["noop"], r[name]["datera"]
            row(f"pulumi {name} of {n:,} / no-op provider's" + (
                f" (median of {preview_runs} pairs)" if name == "preview" else ""),
                f"{b / a:.2f}x ({b:.2f} / {a:.2f} s; {int(r['requests'][name])} DSP requests)",
                "printed", True)


def pulumi_startup(runs: int = 7) -> None:
    """Start of ``pulumi-resource-datera`` as the plugin archive holds it (what the engine
    runs after ``pulumi plugin install --file``) to the port line, beside ``python -m
    datera_iac.pulumi`` (what the pip console script costs: ``site`` reads every ``.pth``
    file first) and a bare interpreter's start, the three in turn."""
    import tarfile
    import tempfile

    from datera_iac.pulumi.package import EXECUTABLE, build_archive

    print(f"\n#### Pulumi provider start-up (load {load():.1f})", flush=True)
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))

    def once(argv: list[str], line: bool) -> float:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        if line:
            out = p.stdout.readline() if p.stdout else b""
            if not out.strip().isdigit():
                raise SystemExit(f"no port line from the Pulumi plugin: {out[:80]!r}")
            took = time.perf_counter() - t
            p.kill()
        else:
            p.wait()
            took = time.perf_counter() - t
        p.wait()
        return took

    plugin, module, bare = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-pulumi-plugin-") as tmp:
        # the archive's launcher, with this checkout on its path (as handshake() does for
        # Terraform's: bench_terraform.py), unpacked as `pulumi plugin install` does
        archive = build_archive(Path(tmp), pythonpath=[str(HERE.parent)])
        with tarfile.open(archive) as tar:
            tar.extractall(Path(tmp) / "plugin", filter="data")
        exe = str(Path(tmp) / "plugin" / EXECUTABLE)
        for _ in range(runs):
            plugin.append(once([exe], True))
            module.append(once([sys.executable, "-m", "datera_iac.pulumi"], True))
            bare.append(once([sys.executable, "-c", "pass"], False))
    pm, mm, bm = (statistics.median(x) for x in (plugin, module, bare))
    row(f"Pulumi plugin start to port line (median of {runs})",
        f"{pm:.3f} s (best {min(plugin):.3f} s; python -m datera_iac.pulumi {mm:.3f} s; "
        f"bare python {bm:.3f} s)", "<= 0.1 s (as Terraform's)", pm <= 0.1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", default="1000,10000")
    ap.add_argument("--apply-volumes", type=int, default=5000)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--parallel", type=int, default=10)
    ap.add_argument("--pages", default="1000,50000")
    ap.add_argument("--page-reps", type=int, default=21)
    ap.add_argument("--tf-volumes", type=int, default=1000)
    ap.add_argument("--tf-plan-runs", type=int, default=3)
    ap.add_argument("--skip-terraform", action="store_true")
    ap.add_argument("--tf-wide-floor", action="store_true",
                    help="Terraform: also a terraform_data floor as wide as a volume")
    ap.add_argument("--pulumi-volumes", default="100,1000")
    ap.add_argument("--pulumi-preview-runs", type=int, default=3)
    ap.add_argument("--skip-pulumi", action="store_true")
    args = ap.parse_args()
    os.environ.update(DATERA_SAN_LOGIN="admin", DATERA_SAN_PASSWORD="password")
    os.environ.pop("DATERA_SAN_IP", None)
    start = time.strftime("%H:%M:%S", time.gmtime())
    print(f"scale report (issue 21): started {start} UTC, load average {load():.2f} on {os.cpu_count()} cores")
    sim_pages(sorted(int(x) for x in args.pages.split(",")), args.page_reps)
    engine([int(x) for x in args.volumes.split(",")], args.apply_volumes, args.latency_ms, args.parallel)
    if not args.skip_terraform:
        terraform(args.tf_volumes, args.parallel, args.tf_plan_runs, args.tf_wide_floor)
    pulumi_startup()
    if not args.skip_pulumi:
        pulumi([int(x) for x in args.pulumi_volumes.split(",")], args.pulumi_preview_runs)
    print(f"\n==== issue 21 'Done when', one run ({start}-{time.strftime('%H:%M:%S', time.gmtime())} UTC)")
    w = max(len(r[0]) for r in ROWS)
    print(f"  {'figure':<{w}}  {'load':>5}  {'result':<7} {'target':<16} measured")
    for figure, measured, target, ok, ld in ROWS:
        print(f"  {figure:<{w}}  {ld:5.1f}  {'met' if ok else 'MISSED':<7} {target:<16} {measured}")
    missed = [r[0] for r in ROWS if not r[3]]
    print(f"\n{len(ROWS) - len(missed)} of {len(ROWS)} met" + (f"; missed: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
