"""Start-up time of `datera-iac --help` and `--version` beside `python -c pass`.

Each command runs N times as a fresh process (the console script's own interpreter, the
working tree's code); the figures are the best wall time and the mean CPU time (user+sys),
side by side, with the ratio to a bare interpreter. The goal (issue 14): under 0.15 s, met
by importing subcommands lazily (``--help`` lists them from ``datera_iac.cli.SUMMARIES``).

    python3 bench/bench_startup.py [N]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = "from datera_iac.cli import main; import sys; sys.exit(main())"  # = the console script
CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "datera-iac --help": [sys.executable, "-c", CLI, "--help"],
    "datera-iac --version": [sys.executable, "-c", CLI, "--version"],
}


def measure(argv: list[str], n: int) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    walls, cpus = [], []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(walls), sum(cpus) / n


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    res = {name: measure(argv, n) for name, argv in CASES.items()}
    base_wall, base_cpu = res["python -c pass"]
    print(f"{'command':24} {'best wall s':>11} {'mean cpu s':>10} {'wall/pass':>9} {'cpu/pass':>8}"
          f"   (n={n}, load {os.getloadavg()[0]:.1f})")
    for name, (wall, cpu) in res.items():
        print(f"{name:24} {wall:11.3f} {cpu:10.3f} {wall / base_wall:9.2f} {cpu / base_cpu:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
