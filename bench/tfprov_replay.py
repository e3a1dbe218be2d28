"""The provider's CPU per RPC of a no-op ``terraform plan``, without Terraform's noise.

``capture``: a simulator (its store kept under DIR), a real Terraform applying N volumes,
then one no-op ``terraform plan`` whose provider processes record every request they are
sent (``DIR/rpcs-<pid>.bin``); the largest recording is the refresh/plan process's.

``replay``: the same simulator again (same port, same store), the recorded requests of the
refresh/plan process sent ``--rounds`` times to a provider built in this process (the
methods of :class:`datera_iac_tf.servicer.Servicer`, no gRPC), CPU per call by RPC; or with
``--grpc`` to a provider process started by its launcher, over its TLS unix socket, from
10 client threads as Terraform does (the server process's CPU per call, gRPC included).
``--check`` instead compares each response with the first round's (a fast path must
answer what the full path answers). ``--callgrind``: zero and dump valgrind's counters
around the rounds after a warm one (run under ``valgrind --tool=callgrind``).

``plans``: ``--rounds`` rounds of a real no-op ``terraform plan`` on the captured working
directory, the providers of the ``--trees`` (source trees, e.g. a ``git archive`` of main
and this checkout) taking turns: the provider processes' CPU and the plan's wall time.

Usage: python bench/tfprov_replay.py capture DIR [--volumes 200]
       python bench/tfprov_replay.py replay DIR [--rounds 5] [--grpc] [--threads 10]
       python bench/tfprov_replay.py plans DIR --trees OLD,NEW [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "terraform"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _simproc  # noqa: E402
from bench_terraform import HCL  # noqa: E402 - the same configuration as the bench's

USER, PASSWORD = "admin", "password"
#: the RPCs replayed (the others of a plan are one-offs: schema, metadata, configure)
MEASURED = ("ValidateResourceConfig", "UpgradeResourceState", "ReadResource",
            "PlanResourceChange")


def provider_main() -> int:
    """Launcher entry: the real provider, recording each request to the servicer."""
    out = os.environ.get("BENCH_RPC_CAPTURE")
    if out:
        from datera_iac_tf import servicer as sv

        lock = threading.Lock()
        path = Path(out) / f"rpcs-{os.getpid()}.bin"

        def wrap(name: str) -> None:
            method = getattr(sv.Servicer, name)

            def recorded(self: Any, request: Any, context: Any) -> Any:
                with lock, path.open("ab") as f:
                    pickle.dump((name, request.SerializeToString()), f)
                return method(self, request, context)

            setattr(sv.Servicer, name, recorded)

        for name in (*MEASURED, "ConfigureProvider", "ValidateProviderConfig"):
            wrap(name)
    times = os.environ.get("BENCH_RPC_TIMES")
    if times:  # CPU of each handler on its thread, written at SIGTERM
        import signal

        from datera_iac_tf import servicer as sv

        spent: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])

        def timed(name: str) -> None:
            method = getattr(sv.Servicer, name)

            def call(self: Any, request: Any, context: Any) -> Any:
                t = time.thread_time()
                try:
                    return method(self, request, context)
                finally:
                    rec = spent[name]
                    rec[0] += time.thread_time() - t
                    rec[1] += 1

            setattr(sv.Servicer, name, call)

        for name in MEASURED:
            timed(name)
    if os.environ.get("BENCH_RPC_CANNED"):  # each answer computed once: gRPC's own cost
        from datera_iac_tf import servicer as sv

        def canned(name: str) -> None:
            method = getattr(sv.Servicer, name)
            answers: dict[bytes, Any] = {}

            def call(self: Any, request: Any, context: Any) -> Any:
                key = request.SerializeToString()
                if key not in answers:
                    answers[key] = method(self, request, context)
                return answers[key]

            setattr(sv.Servicer, name, call)

        for name in MEASURED:
            canned(name)

        def dump(*_: Any) -> None:
            r = os.times()
            Path(times).write_text(json.dumps({"handlers": spent, "process": r.user + r.system}))
            os._exit(0)

        signal.signal(signal.SIGTERM, dump)
    log = os.environ.get("BENCH_PROVIDER_CPU_LOG")
    if log:  # as bench/_tfprov_cpu.py, with user and system time apart
        import resource

        real_exit = os._exit

        def exit_(code: int) -> None:
            r = resource.getrusage(resource.RUSAGE_SELF)
            with open(log, "a") as f:
                f.write(f"{r.ru_utime:.3f}/{r.ru_stime:.3f}\n")
            real_exit(code)

        os._exit = exit_  # type: ignore[assignment]
    workers, options = os.environ.get("BENCH_GRPC_WORKERS"), os.environ.get("BENCH_GRPC_OPTIONS")
    if workers or options:  # a server setting to measure (experiments only)
        from concurrent import futures

        import grpc

        server = grpc.server

        def patched(thread_pool: Any = None, **kw: Any) -> Any:
            if workers:
                thread_pool = futures.ThreadPoolExecutor(max_workers=int(workers))
            if options:
                kw["options"] = [tuple(o.split("=", 1)) for o in options.split(",")]
                kw["options"] = [(k, int(v) if v.lstrip("-").isdigit() else v)
                                 for k, v in kw["options"]]
            return server(thread_pool=thread_pool, **kw)

        grpc.server = patched
    from datera_iac_tf.main import main

    return main()


def _sim(directory: Path, port: int | None = None) -> _simproc.SimProcess:
    if port is not None:
        _simproc.free_port = lambda: port  # type: ignore[assignment]
    return _simproc.SimProcess(directory / "sim")




def capture(directory: Path, n: int) -> None:
    from tfharness import Tf, write_shim

    from datera_iac_tf.install import install_dev_overrides

    directory.mkdir(parents=True, exist_ok=True)
    sim = _sim(directory)
    try:
        rc = install_dev_overrides(directory / "plugins", pythonpath=[str(ROOT), str(ROOT / "bench")],
                                   entry="tfprov_replay:provider_main")
        tf = Tf(write_shim(directory / "bin"), directory / "work", rc, env={
            "DATERA_ENDPOINT": sim.url, "DATERA_SAN_LOGIN": USER, "DATERA_SAN_PASSWORD": PASSWORD})
        tf.write(HCL.format(n=n))
        tf.run("apply", "-auto-approve", "-no-color", timeout=3600)
        tf.env["BENCH_RPC_CAPTURE"] = str(directory)
        p = tf.run("plan", "-detailed-exitcode", "-no-color", ok=(0,), timeout=3600)
        del tf.env["BENCH_RPC_CAPTURE"]
        (directory / "meta.json").write_text(json.dumps({"port": sim.port, "volumes": n}))
        print(p.stdout[-300:])
    finally:
        sim.stop()


def _load(directory: Path) -> list[tuple[str, Any]]:
    from tf.gen import tfplugin_pb2 as pb

    biggest = max(directory.glob("rpcs-*.bin"), key=lambda p: p.stat().st_size)
    out = []
    with biggest.open("rb") as f:
        while True:
            try:
                rec = pickle.load(f)
                name, raw = rec[0], rec[-1]
            except EOFError:
                break
            out.append((name, getattr(pb, name).Request.FromString(raw)))
    return out


def _servicer(rpcs: list[tuple[str, Any]]) -> Any:
    from datera_iac_tf.provider import DateraProvider
    from datera_iac_tf.servicer import Servicer

    s = Servicer(DateraProvider())
    for name, req in rpcs:
        if name == "ConfigureProvider":
            resp = s.ConfigureProvider(req, None)
            assert not resp.diagnostics, resp
    return s


def replay_inprocess(rpcs: list[tuple[str, Any]], rounds: int, callgrind: bool = False,
                     only: tuple[str, ...] = MEASURED) -> None:
    s = _servicer(rpcs)
    calls = [(n, r) for n, r in rpcs if n in only]
    per: dict[str, list[float]] = defaultdict(list)
    totals = []
    if callgrind:  # one warm round (the listing, first-use caches), not counted
        for name, req in calls:
            getattr(s, name)(req, None)
        subprocess.run(["callgrind_control", "--zero", str(os.getpid())], check=False)
    for _ in range(rounds):
        t_round = time.thread_time()
        for name, req in calls:
            t = time.thread_time()
            getattr(s, name)(req, None)
            per[name].append(time.thread_time() - t)
        totals.append(time.thread_time() - t_round)
    if callgrind:
        subprocess.run(["callgrind_control", "--dump", str(os.getpid())], check=False)
    count = {n: sum(1 for c, _ in calls if c == n) for n in MEASURED}
    print(f"{len(calls)} calls per round ({count}); CPU per round {min(totals):.3f} s best, "
          f"{statistics.median(totals):.3f} s median (load {os.getloadavg()[0]:.1f})")
    for name in MEASURED:
        v = per[name]
        k = count[name]
        if not k:
            continue
        rounds_ms = [sum(v[i * k:(i + 1) * k]) / k * 1e3 for i in range(rounds)]
        print(f"  {name:24s} {min(rounds_ms):.3f} ms best, {statistics.median(rounds_ms):.3f} "
              "ms median per call")


def check(rpcs: list[tuple[str, Any]], save: Path | None = None,
          against: Path | None = None) -> int:
    """Each response of round 2 against round 1 (the first fills any cache); ``save``:
    write round 2's responses there; ``against``: compare them with the ones saved there
    (by another version of the code)."""
    s = _servicer(rpcs)
    calls = [(n, r) for n, r in rpcs if n in MEASURED]
    first = [getattr(s, n)(r, None).SerializeToString(deterministic=True) for n, r in calls]
    second = [getattr(s, n)(r, None).SerializeToString(deterministic=True) for n, r in calls]
    bad = sum(a != b for a, b in zip(first, second))
    print(f"{len(calls)} calls, {bad} responses differ between rounds")
    if save is not None:
        save.write_bytes(pickle.dumps(second))
    if against is not None:
        theirs = pickle.loads(against.read_bytes())
        other = [i for i, (a, b) in enumerate(zip(second, theirs)) if a != b]
        print(f"{len(other)} of {len(calls)} responses differ from {against}"
              + (f" (first: {calls[other[0]][0]})" if other else ""))
        bad += len(other) + abs(len(theirs) - len(second))
    return 1 if bad else 0


def replay_grpc(rpcs: list[tuple[str, Any]], rounds: int, threads: int,
                canned: bool = False) -> None:
    """The calls over gRPC to a provider process, ``threads`` at a time."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from tf.gen import tfplugin_pb2_grpc as rpc

    from datera_iac_tf.install import install_dev_overrides

    d = Path(tempfile.mkdtemp(prefix="tfprov-replay-"))
    install_dev_overrides(d, pythonpath=[str(ROOT), str(ROOT / "bench")],
                          entry="tfprov_replay:provider_main")
    env = {**os.environ, "TF_PLUGIN_MAGIC_COOKIE":
           "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
           "PLUGIN_PROTOCOL_VERSIONS": "6"}
    times = d / "times.json"
    prefix = os.environ.get("BENCH_SERVER_PREFIX", "").split()  # e.g. valgrind --tool=callgrind
    p = subprocess.Popen([*prefix, str(d / "terraform-provider-datera")], stdout=subprocess.PIPE,
                         env={**env, "BENCH_RPC_TIMES": str(times),
                              **({"BENCH_RPC_CANNED": "1"} if canned else {})})
    try:
        line = p.stdout.readline().decode().strip()  # type: ignore[union-attr]
        _, _, _, sock, _, cert = line.split("|")
        import base64
        import ssl

        der = base64.b64decode(cert + "=" * (-len(cert) % 4))
        pem = ssl.DER_cert_to_PEM_cert(der).encode()
        channel = grpc.secure_channel(f"unix://{sock}", grpc.ssl_channel_credentials(pem),
                                      options=[("grpc.ssl_target_name_override", "localhost")])
        stub = rpc.ProviderStub(channel)
        for name, req in rpcs:
            if name == "ConfigureProvider":
                stub.ConfigureProvider(req)
        calls = [(n, r) for n, r in rpcs if n in MEASURED]
        stat = Path(f"/proc/{p.pid}/stat")

        def cpu() -> float:
            f = stat.read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda c: getattr(stub, c[0])(c[1]), calls))  # warm
            if prefix:
                subprocess.run(["callgrind_control", "--zero", str(p.pid)], check=False,
                               capture_output=True)
            per = []
            for _ in range(rounds):
                c0 = cpu()
                list(pool.map(lambda c: getattr(stub, c[0])(c[1]), calls))
                per.append((cpu() - c0) / len(calls) * 1e3)
            if prefix:
                subprocess.run(["callgrind_control", "--dump", str(p.pid)], check=False,
                               capture_output=True)
        print(f"{len(calls)} calls per round over gRPC ({threads} threads): server CPU per call "
              f"{min(per):.3f} ms best, {statistics.median(per):.3f} ms median "
              f"(load {os.getloadavg()[0]:.1f})")
        channel.close()
        h0 = json.loads(times.read_text()) if times.exists() else None
        p.terminate()
        p.wait(300 if prefix else 10)
        h = json.loads(times.read_text())
        n = len(calls) * (rounds + 1)
        total = sum(v[0] for v in h["handlers"].values())
        print(f"  whole run ({rounds + 1} rounds, {n} calls): process CPU {h['process']:.2f} s, "
              f"in the handlers {total:.2f} s ({total / n * 1e3:.3f} ms per call), outside "
              f"them {(h['process'] - total) / n * 1e3:.3f} ms per call (build and start included)")
        for name, (spent, count) in sorted(h["handlers"].items()):
            print(f"    {name:24s} {spent / count * 1e3:.3f} ms per call ({count} calls)")
        del h0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def plans(directory: Path, trees: list[Path], runs: int) -> None:
    """``runs`` rounds of one no-op ``terraform plan`` per tree (the provider of each
    source tree in turn, on the captured working directory and simulator): the provider
    processes' CPU (summed) and the plan's wall time, per tree."""
    from tfharness import Tf, write_shim

    from datera_iac_tf.install import install_dev_overrides

    meta = json.loads((directory / "meta.json").read_text())
    sim = _sim(directory, meta["port"])
    try:
        rcs = []
        for i, tree in enumerate(trees):
            rcs.append(install_dev_overrides(directory / f"plugins-{i}", pythonpath=[
                str(tree), str(tree / "bench")], entry="tfprov_replay:provider_main"))
        tf = Tf(write_shim(directory / "bin"), directory / "work", rcs[0], env={
            "DATERA_ENDPOINT": sim.url, "DATERA_SAN_LOGIN": USER,
            "DATERA_SAN_PASSWORD": PASSWORD})
        got: dict[int, list[tuple[float, float, int]]] = defaultdict(list)
        for _ in range(runs):
            for i, rc in enumerate(rcs):
                (tf.dir / "cli.tfrc").write_text(rc)
                log = directory / f"cpu-{i}.log"
                log.unlink(missing_ok=True)
                tf.env["BENCH_PROVIDER_CPU_LOG"] = str(log)
                t = time.perf_counter()
                tf.run("plan", "-detailed-exitcode", "-no-color", ok=(0,), timeout=3600)
                wall = time.perf_counter() - t
                us = [tuple(map(float, x.split("/"))) for x in log.read_text().split()]
                cpu = [u + s for u, s in us]
                got[i].append((sum(cpu), wall, len(cpu)))
                print(f"  {trees[i]}: provider CPU {sum(cpu):.2f} s in {len(cpu)} processes "
                      f"({', '.join(f'{u:.2f}+{s:.2f}' for u, s in us)} user+system), plan "
                      f"{wall:.2f} s (load {os.getloadavg()[0]:.1f})", flush=True)
        for i, tree in enumerate(trees):
            cpu = sorted(c for c, _, _ in got[i])
            print(f"{tree}: provider CPU per plan best {cpu[0]:.2f} s, median "
                  f"{statistics.median(cpu):.2f} s; plan wall median "
                  f"{statistics.median(w for _, w, _ in got[i]):.2f} s")
    finally:
        sim.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("capture", "replay", "check", "plans"))
    ap.add_argument("dir", type=Path)
    ap.add_argument("--volumes", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--grpc", action="store_true")
    ap.add_argument("--threads", type=int, default=10)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--trees", default=str(ROOT),
                    help="plans: source trees whose providers take turns (comma-separated)")
    ap.add_argument("--only", default=",".join(MEASURED),
                    help="in process: replay only these RPCs (comma-separated)")
    ap.add_argument("--save", type=Path, help="check: write the responses to this file")
    ap.add_argument("--against", type=Path,
                    help="check: compare the responses with the ones saved in this file")
    ap.add_argument("--canned", action="store_true",
                    help="with --grpc: the provider answers each request from the first "
                    "round's answer (what gRPC and protobuf cost alone)")
    a = ap.parse_args(argv)
    if a.mode == "capture":
        capture(a.dir, a.volumes)
        return 0
    if a.mode == "plans":
        plans(a.dir, [Path(t).resolve() for t in a.trees.split(",")], a.rounds)
        return 0
    meta = json.loads((a.dir / "meta.json").read_text())
    sim = _sim(a.dir, meta["port"])
    os.environ.update({"DATERA_ENDPOINT": sim.url, "DATERA_SAN_LOGIN": USER,
                       "DATERA_SAN_PASSWORD": PASSWORD})
    try:
        rpcs = _load(a.dir)
        if a.mode == "check":
            return check(rpcs, a.save, a.against)
        if a.grpc:
            replay_grpc(rpcs, a.rounds, a.threads, a.canned)
        else:
            replay_inprocess(rpcs, a.rounds, a.callgrind, tuple(a.only.split(",")))
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
