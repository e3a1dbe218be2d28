"""The simulator in a child process, for benchmarks that must not share its CPU.

``SimProcess()`` runs ``datera-iac dsp serve --no-https`` on a free port on 127.0.0.1 and
talks to it through its ``/_sim`` admin API (counters, requests, reset, faults); ``stop()`` ends it by
PID. Used by bench_engine, bench_terraform, bench_client and profile_apply.
``SimProcess(data_dir=D)`` keeps the store in SQLite under D, so ``kill()`` (SIGKILL, a DSP
that dies) then ``restart()`` (same port, same data) brings the same DSP back (hostile_dsp,
tests/fault/test_dsp_dies.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimProcess:
    """``datera-iac dsp serve`` in a child process, driven through its /_sim admin API."""

    def __init__(self, data_dir: str | Path | None = None, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.argv = [sys.executable, "-m", "datera_iac.cli", "dsp", "serve", "--no-https",
                     "--http-port", str(self.port), *args]
        if data_dir is not None:
            self.argv += ["--data", str(data_dir)]
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while True:
            try:
                self.counters()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start within 60 s") from None
                time.sleep(0.1)

    def _call(self, method: str, path: str, body: dict | None = None) -> object:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def counters(self) -> dict[str, int]:
        c = self._call("GET", "/_sim/counters")
        return dict(c.get("data", c) if isinstance(c, dict) else {})  # type: ignore[union-attr]

    def request_log(self) -> list[dict]:
        """Handled requests (method, template, status...), as ``SimServer.request_log``."""
        return list(self._call("GET", "/_sim/requests"))  # type: ignore[call-overload]

    def reset(self) -> None:
        self._call("POST", "/_sim/reset", {})

    def faults(self, **knobs: float) -> None:
        self._call("PUT", "/_sim/faults", knobs)

    def cpu_s(self) -> float:
        """CPU time (user + system) the simulator process has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self) -> None:
        """SIGKILL: the DSP dies mid-request (what SQLite committed survives)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def restart(self) -> None:
        """Start again on the same port (with ``data_dir``: the same store)."""
        self._start()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
