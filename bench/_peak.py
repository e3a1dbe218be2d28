"""This process's own peak memory, for figures judged against a memory bound.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is not that figure in a child process: Linux
keeps the largest resident set of the process image an ``exec`` replaced, so a ``python -c``
started by pytest or a benchmark (``subprocess`` uses vfork, whose image is the parent's)
reports the parent's peak when it is larger (a 13 MB child of a 313 MB parent reads 313 MB;
``fault_report`` once printed 445.8 MB for a refusal that peaked at about 80 MB).
``RUSAGE_CHILDREN`` and ``wait4`` carry the same inherited value. ``VmHWM`` in
``/proc/self/status`` is the high-water mark of this image's own memory since ``exec``.
"""

from __future__ import annotations


def peak_rss_kb() -> int:
    """VmHWM of the calling process in KiB (Linux); raises ``RuntimeError`` where /proc has none."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line")
