"""The real Pulumi CLI with pulumi-resource-datera next to the same CLI with a provider that
does nothing, for the same graph: one tenant and N volumes depending on it (issue 21).

Pulumi's own floor, like Terraform's ``terraform_data`` one (``bench_terraform.py``): the
``noop`` provider below (``--serve-noop``) answers every RPC from its request alone - Check
returns the inputs, Diff compares olds with news, Create returns a fresh id and the inputs,
no I/O - so what a ``pulumi up`` or ``preview`` of N of its resources costs is the CLI, the
YAML language host and one Python gRPC plugin. The ratio datera / noop is our provider's
overhead (its RPCs, the DSP calls through the simulator, its start-up).

Each size runs the two stacks alternately, step by step (noop up, datera up, noop preview,
datera preview, noop destroy, datera destroy), so both sides of a ratio see the same load;
the previews are timed ``--preview-runs`` times each (alternated) and the median counts.
The CLI is the one ``tools/pulumi/build.sh`` builds (``tests/pulumi/cli.py`` finds it);
plugins are never downloaded.

    python bench/bench_pulumi.py [--volumes 100,1000] [--preview-runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

USER, PASSWORD = "admin", "password"
NOOP_VERSION = "1.0.0"
NOOP_SCHEMA = {
    "name": "noop", "version": NOOP_VERSION,
    "resources": {"noop:index:Thing": {
        "description": "Does nothing: a floor for the Pulumi CLI's own per-resource cost.",
        "inputProperties": {"name": {"type": "string"}, "size": {"type": "integer"},
                            "tenant": {"type": "string"}},
        "properties": {"name": {"type": "string"}, "size": {"type": "integer"},
                       "tenant": {"type": "string"}},
    }},
}


# ---- the no-op provider (run by the Pulumi engine as pulumi-resource-noop) -----------------

def serve_noop() -> None:
    """``pulumirpc.ResourceProvider`` that does nothing; prints its port like any plugin."""
    import itertools
    import signal
    import threading
    from concurrent import futures

    import grpc
    from google.protobuf import empty_pb2
    from pulumi.runtime.proto import plugin_pb2, provider_pb2 as pb, provider_pb2_grpc

    ids = itertools.count(1)
    lock = threading.Lock()

    class Noop(provider_pb2_grpc.ResourceProviderServicer):
        def Handshake(self, request: Any, context: Any) -> Any:
            return pb.ProviderHandshakeResponse(accept_secrets=True)

        def GetPluginInfo(self, request: Any, context: Any) -> Any:
            return plugin_pb2.PluginInfo(version=NOOP_VERSION)

        def GetSchema(self, request: Any, context: Any) -> Any:
            return pb.GetSchemaResponse(schema=json.dumps(NOOP_SCHEMA))

        def CheckConfig(self, request: Any, context: Any) -> Any:
            return pb.CheckResponse(inputs=request.news)

        def DiffConfig(self, request: Any, context: Any) -> Any:
            return pb.DiffResponse()

        def Configure(self, request: Any, context: Any) -> Any:
            return pb.ConfigureResponse(acceptSecrets=True, supportsPreview=True)

        def Check(self, request: Any, context: Any) -> Any:
            return pb.CheckResponse(inputs=request.news)

        def Diff(self, request: Any, context: Any) -> Any:
            same = request.olds == request.news
            return pb.DiffResponse(changes=pb.DiffResponse.DIFF_NONE if same
                                   else pb.DiffResponse.DIFF_SOME)

        def Create(self, request: Any, context: Any) -> Any:
            if request.preview:
                return pb.CreateResponse(properties=request.properties)
            with lock:
                n = next(ids)
            return pb.CreateResponse(id=f"noop-{os.getpid()}-{n}", properties=request.properties)

        def Read(self, request: Any, context: Any) -> Any:
            return pb.ReadResponse(id=request.id, properties=request.properties,
                                   inputs=request.inputs)

        def Update(self, request: Any, context: Any) -> Any:
            return pb.UpdateResponse(properties=request.news)

        def Delete(self, request: Any, context: Any) -> Any:
            return empty_pb2.Empty()

        def Cancel(self, request: Any, context: Any) -> Any:
            return empty_pb2.Empty()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(Noop(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    server.wait_for_termination()


# ---- the bench ---------------------------------------------------------------------------------

def program(n: int, package: str) -> str:
    """Pulumi YAML: one tenant and n volumes depending on it (``package`` datera or noop)."""
    tenant, volume = (("datera:index:Tenant", "datera:index:Volume") if package == "datera"
                      else ("noop:index:Thing", "noop:index:Thing"))
    lines = [f"name: bench-{package}", "runtime: yaml", "resources:",
             "  bench:", f"    type: {tenant}", "    properties:", "      name: bench"]
    for i in range(n):
        lines += [f"  v{i:04d}:", f"    type: {volume}", "    properties:",
                  f"      name: bench-{i:04d}", "      size: 1", "      tenant: ${bench.id}"]
    return "\n".join(lines) + "\n"


class Stack:
    """One Pulumi project and stack in its own directory, run with the built CLI."""

    def __init__(self, package: str, n: int, sim_url: str) -> None:
        from tests.pulumi.cli import PulumiCli

        self.package = package
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-pulumi-{package}-"))
        plugins = self.dir / "plugins"
        plugins.mkdir()
        noop = plugins / "pulumi-resource-noop"
        noop.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} "
                        "--serve-noop \"$@\"\n")
        noop.chmod(0o755)
        self.cli = PulumiCli(self.dir, env={
            "PATH": os.pathsep.join([str(plugins), os.environ.get("PATH", "")])})
        self.cli.env["PATH"] = os.pathsep.join([str(self.cli.bin), str(plugins),
                                                self.cli.env["PATH"]])
        self.prog = self.dir / "prog"
        self.prog.mkdir()
        (self.prog / "Pulumi.yaml").write_text(program(n, package))
        self.cli.run("stack", "init", "dev", cwd=self.prog)
        if package == "datera":
            self.cli.config("datera:endpoint", sim_url, cwd=self.prog)
            self.cli.config("datera:sanLogin", USER, cwd=self.prog)
            self.cli.config("datera:sanPassword", PASSWORD, secret=True, cwd=self.prog)

    def run(self, *args: str) -> None:
        self.cli.outputs.clear()  # a 1,000-resource run prints a lot; keep nothing
        self.cli.run(*args, cwd=self.prog, timeout=3600)


def measure(n: int, preview_runs: int, sim: Any) -> dict[str, dict[str, float]]:
    """{step: {package: wall seconds}} for one size; prints each step as it ends."""
    stacks = {p: Stack(p, n, sim.url) for p in ("noop", "datera")}
    walls: dict[str, dict[str, list[float]]] = {}
    requests: dict[str, int] = {}

    def step(name: str, *args: str) -> None:
        for p, st in stacks.items():
            c0 = sim.counters()
            t = time.perf_counter()
            st.run(*args)
            wall = time.perf_counter() - t
            used = sum(sim.counters().values()) - sum(c0.values())
            walls.setdefault(name, {}).setdefault(p, []).append(wall)
            if p == "datera":
                requests[name] = used
            print(f"  {n} {p:6s} {name:8s} {wall:7.2f} s"
                  + (f"  {used} DSP requests" if p == "datera" else "")
                  + f"  (load {os.getloadavg()[0]:.1f})", flush=True)

    step("up", "up", "--yes", "--skip-preview")
    for _ in range(preview_runs):
        step("preview", "preview")
    step("destroy", "destroy", "--yes", "--skip-preview")
    out = {k: {p: statistics.median(v) for p, v in d.items()} for k, d in walls.items()}
    out["requests"] = {k: float(v) for k, v in requests.items()}
    return out


def report(results: dict[int, dict[str, dict[str, float]]]) -> None:
    print(f"\n{'volumes':>8} {'step':<8} {'noop s':>8} {'datera s':>9} {'ratio':>6} {'DSP requests':>13}")
    for n, r in results.items():
        for name in ("up", "preview", "destroy"):
            a, b = r[name]["noop"], r[name]["datera"]
            print(f"{n:8d} {name:<8} {a:8.2f} {b:9.2f} {b / a:6.2f} {int(r['requests'][name]):13d}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--volumes", default="100,1000")
    ap.add_argument("--preview-runs", type=int, default=3)
    ap.add_argument("--serve-noop", action="store_true", help=argparse.SUPPRESS)
    args, _ = ap.parse_known_args(argv)
    if args.serve_noop:
        serve_noop()
        return 0
    from _simproc import SimProcess

    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    sim = SimProcess()
    results = {}
    try:
        for n in (int(x) for x in args.volumes.split(",")):
            sim.reset()
            results[n] = measure(n, args.preview_runs, sim)
    finally:
        sim.stop()
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
