#!/usr/bin/env python3
"""The "foreign objects" figures of the fault report (issue 16), for the engine front end.

Against a fresh simulator (127.0.0.1) it counts, over ``n`` trials each:

* same-named objects someone else created before a create (Tenant, Volume, VolumeType,
  Snapshot with a taken uuid): how many the run adopted into its state, and how many a
  following ``destroy --yes`` deleted;
* runs of a DSP's stack against another DSP or without an endpoint: refused, and the DSP
  writes they made;
* ``destroy`` without ``--yes`` on a non-TTY stdin: refused;
* ``--force-unlock`` of a lock whose holder is alive on this host: refused.

    python bench/foreign_objects.py [--trials N]
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


def report(fig: dict[str, Any]) -> str:
    lines = ["foreign objects (engine front end; Terraform and Pulumi not measured here)"]
    for kind, f in fig["objects"].items():
        lines.append(f"  same-named {kind:<10} created by someone else: adopted {f['adopted']}, "
                     f"deleted {f['deleted']} (of {f['trials']})")
    r = fig["refused"]
    lines.append(f"  wrong-DSP runs refused {r['wrong_dsp'][0]} of {r['wrong_dsp'][1]} with "
                 f"{r['wrong_dsp'][2]} writes")
    lines.append(f"  non-TTY destroys refused {r['non_tty_destroy'][0]} of {r['non_tty_destroy'][1]}")
    lines.append(f"  live-lock breaks refused {r['live_lock'][0]} of {r['live_lock'][1]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args(argv)
    print(report(measure(args.trials)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
