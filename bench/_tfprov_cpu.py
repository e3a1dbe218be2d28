"""Launcher entry for bench_terraform.py: the real provider (``datera_iac_tf.main``), which
appends the CPU seconds it used to ``$BENCH_PROVIDER_CPU_LOG`` when it exits, so the bench
can tell the provider's CPU from Terraform's."""

from __future__ import annotations

import os
import resource


def main() -> int:
    log = os.environ.get("BENCH_PROVIDER_CPU_LOG")
    real_exit = os._exit

    def exit_(code: int) -> None:
        if log:
            r = resource.getrusage(resource.RUSAGE_SELF)
            with open(log, "a") as f:
                f.write(f"{r.ru_utime + r.ru_stime:.3f}\n")
        real_exit(code)

    os._exit = exit_  # the provider leaves with os._exit (see datera_iac_tf._serve)
    from datera_iac_tf.main import main as provider_main

    return provider_main()
