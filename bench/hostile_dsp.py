#!/usr/bin/env python3
"""A failing or hostile DSP (issue #17 items 1-4): one line per figure, measured in this run.

* malformed answers to a create: N trials on a fake DSP (127.0.0.1) -> tracebacks, phantom
  ids (an id built from junk returned as created), orphans (the DSP made it, we lost it);
* body cap: peak RSS of a child process reading a 2 GB answer (announced by Content-Length,
  and streamed chunked without one);
* slow drip (a byte every 0.3 s) with request_timeout=2: how long the call lasts;
* unreachable endpoint (connection refused) at the default options: time to the one error;
* the simulator killed (SIGKILL) mid-``up`` of 200 volumes (20 ms latency, `datera-iac up`
  in a child process): time from the kill to the end of the run, against datera_503_timeout;
  tracebacks, the lock, what the state holds against what the DSP made (the same DSP
  restarted from its data dir), and a re-run: twins, phantoms, orphans.

Every case has a hard time limit: one that hangs is reported as such, never waited for.

Usage: python bench/hostile_dsp.py [--trials 5] [--volumes 200]   (also run by bench/fault_report.py)
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
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


def _up(stack: Path, url: str, out: Path) -> subprocess.Popen[bytes]:
    """``datera-iac up --yes`` on ``stack`` in a child process (its output to ``out``.*)."""
    env = {**os.environ, "DATERA_SAN_LOGIN": "admin", "DATERA_SAN_PASSWORD": "password",
           "DATERA_ENDPOINT": url, "PYTHONPATH": str(ROOT)}
    env.pop("DATERA_SAN_IP", None)
    return subprocess.Popen(
        [sys.executable, "-m", "datera_iac.cli", "up", "--yes", "-f", str(stack), "--no-color"],
        cwd=stack.parent, env=env, stdout=out.with_suffix(".out").open("wb"),
        stderr=out.with_suffix(".err").open("wb"))


def _dsp_ids(url: str) -> list[tuple[str, str]]:
    """(id, name) of every app_instance on the DSP at ``url``."""
    c = _client(url, san_login="admin", san_password="password")
    try:
        return [(a["id"], a["name"]) for a in c.list("/app_instances", tenant="/root")]
    finally:
        c.close()


def _state_ids(stack: Path, url: str) -> tuple[set[str], set[str]]:
    """(app_instance ids of the Volumes in the state, names of the pending creates: intents
    journaled before the call, which the next run resolves by name)."""
    from datera_iac.engine.core import Workspace

    ws = Workspace(stack_file=stack, endpoint=url, embedded=False)
    try:
        st = ws.load_state()
    finally:
        ws.close()
    return ({r.id.rsplit("/", 1)[1] for r in st.resources.values() if r.type.endswith("Volume")},
            {str(p.spec.get("name")) for p in st.pending.values()})


def killed_mid_up(n: int = 200) -> str:
    """The simulator (SQLite data dir) SIGKILLed after n/4 volume POSTs of ``up``; the up
    must end within one datera_503_timeout window (hard limit: that window + 30 s, then it
    is killed and reported). Then the same DSP comes back and ``up`` runs again."""
    from _simproc import SimProcess
    from bench_engine import stack as stack_text

    cfg = DateraConfig.from_mapping({"endpoint": "http://127.0.0.1:1", "san_login": "a",
                                     "san_password": "p"}, env={})
    d = Path(tempfile.mkdtemp(prefix="hostile-kill-"))
    sim = SimProcess(d / "dsp")
    try:
        sim.faults(latency_ms=20)
        (d / "work").mkdir()
        f = d / "work" / "Pulumi.yaml"
        f.write_text(stack_text(n, tenant=False))
        proc = _up(f, sim.url, d / "up1")
        deadline = time.monotonic() + 120
        while sim.counters().get("POST /v2.2/app_instances", 0) < n // 4:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                return (f"FAILED to measure: the up ended (rc {proc.returncode}) or stalled "
                        f"before {n // 4} POSTs")
            time.sleep(0.01)
        sim.kill()
        killed = time.monotonic()
        try:
            rc = proc.wait(cfg.datera_503_timeout + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        took = time.monotonic() - killed
        err = (d / "up1.err").read_text(errors="replace") + (d / "up1.out").read_text(errors="replace")
        tracebacks = err.count("Traceback")
        lock = list((f.parent / ".datera-iac").rglob("*.lock"))
        held = sum(1 for p in lock if p.stat().st_size)  # unlock() truncates the holder
        in_state, pending = _state_ids(f, sim.url)
        sim.restart()
        made = _dsp_ids(sim.url)
        on_dsp = {i for i, _ in made}
        phantoms = len(in_state - on_dsp)
        not_recorded = [nm for i, nm in made if i not in in_state]
        lost = [nm for nm in not_recorded if nm not in pending]
        proc2 = _up(f, sim.url, d / "up2")
        try:
            rc2 = proc2.wait(300)
        except subprocess.TimeoutExpired:
            proc2.kill()
            rc2 = None
        after = _dsp_ids(sim.url)
        names = [nm for _, nm in after]
        in_state2, pending2 = _state_ids(f, sim.url)
        ids2 = {i for i, _ in after}
        said = err.count("cannot reach the DSP")
        ended = (f"ended {took:.1f} s after the kill" if rc is not None else
                 f"did NOT end within {cfg.datera_503_timeout + 30:g} s (killed)")
        return (f"simulator SIGKILLed after {n // 4} of {n} volume POSTs: the up {ended} "
                f"(rc {rc}; datera_503_timeout={cfg.datera_503_timeout:g} s, "
                f"unreachable_timeout={cfg.unreachable_timeout:g} s), {tracebacks} tracebacks, "
                f"the 'DSP unreachable' error printed {said} times (stdout + stderr), locks still "
                f"held {held}; state: {len(in_state)} volumes + {len(pending)} pending create "
                f"intents, the DSP had {len(on_dsp)} ({phantoms} phantoms; "
                f"{len(not_recorded)} made in flight, {len(not_recorded) - len(lost)} of them "
                f"under a pending intent, {len(lost)} lost); re-run rc {rc2}: "
                f"{len(set(names))} of {n} volumes, twins {len(names) - len(set(names))}, "
                f"phantoms {len(in_state2 - ids2)}, orphans {len(ids2 - in_state2)}, "
                f"pending {len(pending2)}")
    finally:
        sim.stop()


def _limited(fn: Callable[[], str], limit: float) -> str:
    """``fn()`` with a hard time limit: a case that hangs is reported, not waited for."""
    box: list[str] = []

    def run() -> None:
        try:
            box.append(fn())
        except Exception as e:  # noqa: BLE001 - a figure that could not be measured
            box.append(f"FAILED to measure: {type(e).__name__}: {e}")

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(limit)
    return box[0] if box else f"FAILED to measure: no result within {limit:g} s"


def report(trials: int, kill_volumes: int = 200) -> list[str]:
    cases: list[tuple[Callable[[], str], float]] = [
        (lambda: malformed(trials), 60 + 10 * trials), (body_cap, 300), (slow_drip, 30),
        (unreachable, 30), (lambda: killed_mid_up(kill_volumes), 600)]
    return [_limited(fn, limit) for fn, limit in cases]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--volumes", type=int, default=200, help="volumes of the killed up")
    args = ap.parse_args(argv)
    print("A failing or hostile DSP (issue #17 items 1-4)")
    for line in report(args.trials, args.volumes):
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
