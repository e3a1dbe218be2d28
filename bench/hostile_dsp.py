#!/usr/bin/env python3
"""A failing or hostile DSP (issue #17 items 1-4): one line per figure, measured in this run.

* malformed answers to a create: N trials on a fake DSP (127.0.0.1) -> tracebacks, phantom
  ids (an id built from junk returned as created), orphans (the DSP made it, we lost it);
* body cap: peak RSS of a child process reading a 2 GB answer (announced by Content-Length,
  and streamed chunked without one); its own VmHWM, not ru_maxrss (bench/_peak.py);
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
import shutil
import signal
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
from datera_iac.dsp.testing import (  # noqa: E402
    MALFORMED_CREATES,
    MALFORMED_LISTS,
    RawServer,
    answer,
    split,
)
from datera_iac.errors import DateraIacError  # noqa: E402

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


def _counted(fn: Callable[[], object], counts: dict[str, int]) -> object:
    """``fn()``; an exception that is not one clean DateraIacError is a traceback."""
    try:
        return fn()
    except DateraIacError:
        raise
    except Exception:  # noqa: BLE001 - counted
        counts["tracebacks"] += 1
        traceback.print_exc()
        return None


def malformed(trials: int) -> tuple[bool, str]:
    """Every malformed create answer, the DSP having made the volume or not, and every
    malformed list answer, ``trials`` times each, on a fake DSP."""
    counts = {"tracebacks": 0, "phantoms": 0, "orphans": 0}
    creates = lists = 0
    real = {"name": "vol-a", "id": "0b1c", "uuid": "tok", "path": "/app_instances/0b1c"}
    for _ in range(trials):
        for body in MALFORMED_CREATES.values():
            for exists in (False, True):
                creates += 1
                srv = RawServer(_session(lambda conn, req, b=body: answer(b)))
                try:
                    c = _client(srv.url)
                    try:
                        got = _counted(lambda e=exists: c.create(
                            "/app_instances", {"name": "vol-a", "uuid": "tok"},
                            find=lambda: dict(real) if e else None), counts)
                        if got is not None and got != real:
                            counts["phantoms"] += 1  # an id built from the junk
                    except DateraIacError:
                        counts["orphans"] += exists  # made on the DSP, reported as failed
                finally:
                    srv.close()
        for body in MALFORMED_LISTS.values():
            lists += 1
            srv = RawServer(_session(lambda conn, req, b=body: answer(b)))
            try:
                c = _client(srv.url)
                try:
                    if _counted(lambda: list(c.list("/app_instances")), counts) is not None:
                        counts["phantoms"] += 1  # junk items passed on as entities
                except DateraIacError:
                    pass
            finally:
                srv.close()
    return (not any(counts.values()),
            f"{creates + lists} malformed answers ({creates} creates: {len(MALFORMED_CREATES)} "
            f"kinds x made/not made; {lists} lists: {len(MALFORMED_LISTS)} kinds; x {trials} "
            f"trials): {counts['tracebacks']} tracebacks, {counts['phantoms']} phantom ids, "
            f"{counts['orphans']} orphans")


_CHILD = r"""
import socket, sys, threading
from _peak import peak_rss_kb
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
print(peak_rss_kb() // 1024)
"""


#: the issue's bound for the peak RSS of a process handed a 2 GB answer
RSS_LIMIT_MB = 200


def body_cap() -> tuple[bool, str]:
    out, ok = [], True
    for mode in ("content-length", "chunked"):
        t = time.monotonic()
        r = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}"},
                           timeout=300)
        what, _, rss = r.stdout.strip().rpartition(" ")
        ok = ok and what == "DspError" and rss.isdigit() and int(rss) < RSS_LIMIT_MB
        out.append(f"{mode}: {what or r.stderr[-200:]}, peak RSS {rss} MB, "
                   f"{time.monotonic() - t:.1f} s")
    return ok, ("2 GB answer -> " + "; ".join(out) + f" (limit: refused, peak RSS < "
                f"{RSS_LIMIT_MB} MB)")


def slow_drip() -> tuple[bool, str]:
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
    return (what != "read" and took <= 3.0,
            f"slow drip (1 byte / 0.3 s), request_timeout=2: one request ended after "
            f"{took:.2f} s ({what}; limit request_timeout + 1 s = 3 s)")


def unreachable() -> tuple[bool, str]:
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
    return (what == "Unreachable" and took <= 10.0 and second < 1.0,
            f"unreachable endpoint at defaults: {what} after {took:.2f} s (limit 10 s); the "
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


def killed_mid_up(n: int = 200) -> tuple[bool, str]:
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
                return False, (f"FAILED to measure: the up ended (rc {proc.returncode}) or "
                               f"stalled before {n // 4} POSTs")
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
        twins = len(names) - len(set(names))
        phantoms2, orphans2 = len(in_state2 - ids2), len(ids2 - in_state2)
        ok = (rc is not None and rc != 0 and took <= cfg.datera_503_timeout and tracebacks == 0
              and said >= 1 and held == 0 and phantoms == 0 and not lost and rc2 == 0
              and len(set(names)) == n and twins == phantoms2 == orphans2 == 0 and not pending2)
        return ok, (f"simulator SIGKILLed after {n // 4} of {n} volume POSTs: the up {ended} "
                f"(rc {rc}; datera_503_timeout={cfg.datera_503_timeout:g} s, "
                f"unreachable_timeout={cfg.unreachable_timeout:g} s), {tracebacks} tracebacks, "
                f"the 'DSP unreachable' error printed {said} times (stdout + stderr), locks still "
                f"held {held}; state: {len(in_state)} volumes + {len(pending)} pending create "
                f"intents, the DSP had {len(on_dsp)} ({phantoms} phantoms; "
                f"{len(not_recorded)} made in flight, {len(not_recorded) - len(lost)} of them "
                f"under a pending intent, {len(lost)} lost); re-run rc {rc2}: "
                f"{len(set(names))} of {n} volumes, twins {twins}, "
                f"phantoms {phantoms2}, orphans {orphans2}, "
                f"pending {len(pending2)}")
    finally:
        sim.stop()
        shutil.rmtree(d, ignore_errors=True)


#: case name -> (what it measures, its hard time limit in seconds)
CASES: dict[str, float] = {"malformed": 0, "body_cap": 300, "slow_drip": 30,
                           "unreachable": 30, "killed_mid_up": 600}


def _case(name: str, trials: int, volumes: int) -> tuple[bool, str]:
    fns: dict[str, Callable[[], tuple[bool, str]]] = {
        "malformed": lambda: malformed(trials), "body_cap": body_cap, "slow_drip": slow_drip,
        "unreachable": unreachable, "killed_mid_up": lambda: killed_mid_up(volumes)}
    return fns[name]()


def limit_of(name: str, trials: int) -> float:
    return 60 + 10 * trials if name == "malformed" else CASES[name]


def run_case(name: str, trials: int, volumes: int, limit: float | None = None
             ) -> tuple[bool, str]:
    """One case in a child process of its own process group, with a hard time limit (its
    own unless ``limit`` is given): on expiry the whole group (the case, the simulator and
    ``up`` processes it started) is SIGKILLed and the case reported as hung, never waited for."""
    limit = limit_of(name, trials) if limit is None else limit
    proc = subprocess.Popen(
        [sys.executable, __file__, "--case", name, "--trials", str(trials),
         "--volumes", str(volumes)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return False, f"{name}: FAILED to measure: no result within {limit:g} s (killed)"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    try:  # the group's leftovers (a simulator the case did not stop) go with it
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    verdict, _, line = out.strip().rpartition("\n")[2].partition(" ")
    if verdict not in ("PASS", "FAIL"):
        return False, f"{name}: FAILED to measure (rc {proc.returncode}): {err.strip()[-500:]}"
    return verdict == "PASS", line


def report(trials: int, kill_volumes: int = 200) -> list[tuple[bool, str]]:
    """(held, figure line) per case, in the issue's order."""
    return [run_case(name, trials, kill_volumes) for name in CASES]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--volumes", type=int, default=200, help="volumes of the killed up")
    ap.add_argument("--case", choices=list(CASES), help="run one case here (no time limit)")
    args = ap.parse_args(argv)
    if args.case:
        ok, line = _case(args.case, args.trials, args.volumes)
        print(("PASS " if ok else "FAIL ") + line)
        return 0 if ok else 1
    print("A failing or hostile DSP (issue #17 items 1-4)")
    ok = True
    for held, line in report(args.trials, args.volumes):
        print(f"  [{'PASS' if held else 'FAIL'}] {line}")
        ok = ok and held
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
