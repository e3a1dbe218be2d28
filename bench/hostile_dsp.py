#!/usr/bin/env python3
"""A failing or hostile DSP (issue #17 items 1-4): one line per figure, measured in this run.

* malformed answers to a create: N trials on a fake DSP (127.0.0.1) -> tracebacks, phantom
  ids (an id built from junk returned as created), orphans (the DSP made it, we lost it);
* body cap: peak RSS of a child process reading a 2 GB answer (announced by Content-Length,
  and streamed chunked without one);
* slow drip (a byte every 0.3 s) with request_timeout=2: how long the call lasts;
* unreachable endpoint (connection refused) at the default options: time to the one error;
* the simulator killed (SIGKILL) mid-``up`` of 200 volumes (20 ms latency, parallelism 10):
  time from the kill to the end of the run, against datera_503_timeout.

Usage: python bench/hostile_dsp.py [--trials 5]   (also run by bench/fault_report.py)
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from datera_iac.config import DateraConfig  # noqa: E402
from datera_iac.dsp import DspClient  # noqa: E402
from datera_iac.dsp.testing import RawServer, answer, split  # noqa: E402
from datera_iac.errors import DateraIacError  # noqa: E402

MALFORMED = [
    b"<html><body>proxy error</body></html>", b'{"data": {"name": "vol-a", "id": "1',
    b"null", b'{"data": null}', b'{"data": "nope"}', b'{"data": [1, 2, 3]}',
    b'{"data": {"name": "vol-a", "id": 12}}', b'{"data": {"name": "vol-a", "id": null}}',
    b'{"data": {}}', b'{"data": {"name": "other", "id": "7"}}',
    b'{"data": {"name": "vol-\xff", "id": "1"}}', b"[" * 200_000 + b"]" * 200_000, b"42", b"",
]


def _session(route):  # type: ignore[no-untyped-def]
    def script(conn: socket.socket, req: bytes) -> bytes | None:
        line = split(req)[0]
        if line.startswith(b"GET /api_versions"):
            return answer(b'{"api_versions": ["v2.2"]}')
        if line.startswith(b"PUT /v2.2/login"):
            return answer(b'{"key": "k1"}')
        return route(conn, req)
    return script


def _client(url: str, **opts: object) -> DspClient:
    return DspClient(DateraConfig.from_mapping(
        {"endpoint": url, "san_login": "a", "san_password": "p", **opts}, env={}))


def malformed(trials: int) -> str:
    tracebacks = phantoms = orphans = runs = 0
    real = {"name": "vol-a", "id": "0b1c", "uuid": "tok", "path": "/app_instances/0b1c"}
    for _ in range(trials):
        for body in MALFORMED:
            for exists in (False, True):
                runs += 1
                srv = RawServer(_session(lambda conn, req, b=body: answer(b)))
                try:
                    c = _client(srv.url)
                    try:
                        got = c.create("/app_instances", {"name": "vol-a", "uuid": "tok"},
                                       find=lambda e=exists: dict(real) if e else None)
                        if got != real:
                            phantoms += 1
                    except DateraIacError:
                        if exists:
                            orphans += 1
                    except Exception:  # noqa: BLE001 - counted
                        tracebacks += 1
                        traceback.print_exc()
                finally:
                    srv.close()
    return (f"{runs} malformed create answers ({len(MALFORMED)} kinds x {trials} trials x "
            f"made/not made): {tracebacks} tracebacks, {phantoms} phantom ids, {orphans} orphans")


_CHILD = r"""
import resource, socket, sys, threading
from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.dsp.testing import RawServer, answer, split
chunked = sys.argv[1] == "chunked"
def script(conn, req):
    line = split(req)[0]
    if line.startswith(b"GET /api_versions"):
        return answer(b'{"api_versions": ["v2.2"]}')
    if line.startswith(b"PUT /v2.2/login"):
        return answer(b'{"key": "k1"}')
    total = 2 * 1024 ** 3
    block = b"[" + b"1," * (1 << 19)
    if not chunked:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        sent = 0
        try:
            while sent < total:
                conn.sendall(block); sent += len(block)
        except OSError:
            pass
        return None
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    sent = 0
    try:
        while sent < total:
            conn.sendall(b"%x\r\n" % len(block) + block + b"\r\n"); sent += len(block)
    except OSError:
        pass
    return None
srv = RawServer(script)
c = DspClient(DateraConfig.from_mapping({"endpoint": srv.url, "san_login": "a",
                                         "san_password": "p", "datera_503_timeout": 0}, env={}))
try:
    c.get("/app_instances")
    print("read", end=" ")
except Exception as e:
    print(type(e).__name__, end=" ")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def body_cap() -> str:
    out = []
    for mode in ("content-length", "chunked"):
        t = time.monotonic()
        r = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
        what, _, rss = r.stdout.strip().rpartition(" ")
        out.append(f"{mode}: {what or r.stderr[-200:]}, peak RSS {rss} MB, "
                   f"{time.monotonic() - t:.1f} s")
    return "2 GB answer -> " + "; ".join(out) + " (limit < 200 MB)"


def slow_drip() -> str:
    stop = threading.Event()

    def route(conn: socket.socket, req: bytes) -> bytes | None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                return None
            stop.wait(0.3)
        return None

    srv = RawServer(_session(route))
    c = _client(srv.url, request_timeout=2, datera_503_timeout=0)
    c.login()
    t = time.monotonic()
    try:
        c.get("/app_instances")
        what = "read"
    except DateraIacError as e:
        what = type(e).__name__
    took = time.monotonic() - t
    stop.set()
    srv.close()
    return (f"slow drip (1 byte / 0.3 s), request_timeout=2: one request ended after "
            f"{took:.2f} s ({what}; limit request_timeout + 1 s = 3 s)")


def unreachable() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = _client(f"http://127.0.0.1:{port}")
    t = time.monotonic()
    try:
        c.get("/system")
        what = "answered?"
    except DateraIacError as e:
        what = type(e).__name__
    took = time.monotonic() - t
    t = time.monotonic()
    try:
        c.get("/app_instances")
    except DateraIacError:
        pass
    second = time.monotonic() - t
    return (f"unreachable endpoint at defaults: {what} after {took:.2f} s (limit 10 s); the "
            f"next call failed in {second * 1000:.1f} ms (breaker open)")


def killed_mid_up(n: int = 200) -> str:
    from _simproc import SimProcess
    from bench_engine import stack, workspace

    sim = SimProcess()
    d = Path(tempfile.mkdtemp(prefix="hostile-kill-"))
    f = d / "Pulumi.yaml"
    f.write_text(stack(n, tenant=False))
    sim.faults(latency_ms=20)
    result: dict[str, object] = {}

    def run() -> None:
        try:
            with workspace(f, sim) as ws:
                plan, res = ws.up(quiet=True)
                result["ok"] = bool(res is not None and res.ok)
                result["failures"] = len(res.failures) if res is not None else None
        except Exception as e:  # noqa: BLE001 - reported
            result["error"] = f"{type(e).__name__}: {str(e)[:120]}"
        result["end"] = time.monotonic()

    th = threading.Thread(target=run)
    th.start()
    while sim.counters().get("POST /v2.2/app_instances", 0) < n // 4:
        time.sleep(0.01)
    sim.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    th.join(600)
    sim.proc.wait(10)
    took = float(result.get("end", time.monotonic())) - killed  # type: ignore[arg-type]
    state = list((d / ".datera-iac").glob("*.json")) if (d / ".datera-iac").exists() else []
    lock = list((d / ".datera-iac").glob("*.lock*")) if (d / ".datera-iac").exists() else []
    cfg = DateraConfig.from_mapping({"endpoint": "http://127.0.0.1:1", "san_login": "a",
                                     "san_password": "p"}, env={})
    return (f"simulator SIGKILLed after {n // 4} of {n} creates: the up ended {took:.1f} s "
            f"after the kill (datera_503_timeout={cfg.datera_503_timeout:g} s; "
            f"unreachable_timeout={cfg.unreachable_timeout:g} s); "
            f"{result.get('failures', result.get('error'))} failed operations, state files "
            f"{len(state)}, lock files left {len(lock)}")


def report(trials: int) -> list[str]:
    lines = []
    for fn in (lambda: malformed(trials), body_cap, slow_drip, unreachable, killed_mid_up):
        try:
            lines.append(fn())
        except Exception as e:  # noqa: BLE001 - a figure that could not be measured
            lines.append(f"FAILED to measure: {type(e).__name__}: {e}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args(argv)
    print("A failing or hostile DSP (issue #17 items 1-4)")
    for line in report(args.trials):
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
