"""The real Pulumi CLI (tools/pulumi/build.sh) deploying through pulumi-resource-datera to
the simulator: the root Pulumi.yaml (YAML language host) and examples/pulumi (Python SDK).

Missing CLI: these tests FAIL with the build command (see cli.pulumi_bin)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.pulumi.cli import ROOT, PulumiCli, changes, copy_program, ops

SAN_PASSWORD = "Sim-Adm1n-pw-7f3c9e"
CHAP_SECRET = "chapS3cr3t4b8d"


@pytest.fixture
def dsp_sim(make_sim):
    """A simulator whose admin password is distinctive enough to grep for."""
    return make_sim(users={"admin": SAN_PASSWORD})


def writes(sim) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "PATCH", "DELETE") and "/v2." in k)


def client(sim):
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    return DspClient(DateraConfig.from_mapping({
        "endpoint": sim.http_url, "san_login": "admin", "san_password": SAN_PASSWORD}))


def volumes(sim, tenant: str) -> dict[str, dict]:
    return {ai["name"]: ai for ai in client(sim).list("/app_instances", tenant=tenant)}


def _stack(cli: PulumiCli, sim, cwd: Path) -> None:
    cli.run("stack", "init", "dev", cwd=cwd)
    cli.config("datera:endpoint", sim.http_url, cwd=cwd)
    cli.config("datera:sanLogin", "admin", cwd=cwd)
    cli.config("datera:sanPassword", SAN_PASSWORD, secret=True, cwd=cwd)
    cli.config("datera:datera503Timeout", "5", cwd=cwd)


def _edit(path: Path, fn) -> None:
    doc = yaml.safe_load(path.read_text())
    fn(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _no_secret_anywhere(cli: PulumiCli, prog: Path, *secrets: str) -> None:
    export = json.dumps(cli.export(prog))
    files = "\n".join(p.read_text(errors="replace") for p in cli.state.rglob("*")
                      if p.is_file())
    stack_files = "\n".join(p.read_text() for p in cli.workdir.rglob("Pulumi.*.yaml"))
    for secret in secrets:
        assert secret not in export, "secret in `pulumi stack export`"
        assert secret not in files, "secret in the backend's state files"
        assert secret not in stack_files, "secret in a stack config file"
        assert secret not in cli.all_output(), "secret in the CLI's output"


def test_yaml_program_lifecycle(tmp_path, dsp_sim):
    """Root Pulumi.yaml: preview, up, no-op up, grow, retype, replace, refresh after
    out-of-band delete and resize, import, destroy; secrets stay encrypted."""
    prog = tmp_path / "demo"
    prog.mkdir()
    shutil.copy(ROOT / "Pulumi.yaml", prog / "Pulumi.yaml")
    # a CHAP-protected volume beside the demo's, its secret from `config set --secret`
    _edit(prog / "Pulumi.yaml", lambda d: d["resources"].update({"secure": {
        "type": "datera:index:Volume",
        "properties": {"name": "demo-secure", "size": 2, "tenant": "${tenant.id}",
                       "chapUser": "chapuser", "chapSecret": "${chapSecret}"}}})
        or d["config"].update({"chapSecret": {"type": "string", "secret": True}}))
    cli = PulumiCli(tmp_path)
    _stack(cli, dsp_sim, prog)
    cli.config("chapSecret", CHAP_SECRET, secret=True, cwd=prog)

    before = writes(dsp_sim)
    pre = cli.preview(prog)
    assert changes(pre) == {"create": 9}, pre.get("changeSummary")  # 8 + the stack
    assert writes(dsp_sim) == before, "preview wrote to the DSP"

    up = cli.up(prog)
    assert changes(up) == {"create": 9}
    vols = volumes(dsp_sim, "/root/demo")
    assert set(vols) == {"demo-db", "demo-logs", "demo-db-clone", "demo-secure"}
    outputs = cli.json("stack", "output", cwd=prog)
    assert outputs["dbVolumeId"].startswith("/root/demo/")

    # a no-op up: nothing changes, nothing is written
    before = writes(dsp_sim)
    noop = cli.up(prog)
    assert changes(noop) == {}, noop.get("changeSummary")
    assert writes(dsp_sim) == before

    # grow: an update in place (same id)
    db_id = outputs["dbVolumeId"]
    cli.config("volumeSize", "12", cwd=prog)
    pre = cli.preview(prog)
    assert ops(pre)["db"] == "update" and ops(pre)["dbClone"] == "update"
    cli.up(prog)
    assert cli.json("stack", "output", cwd=prog)["dbVolumeId"] == db_id
    assert volumes(dsp_sim, "/root/demo")["demo-db"]["storage_instances"][0]["volumes"][0][
        "size"] == 12

    # retype: an untyped volume gets a volume type (a write IOPS cap), in place
    def retype(d):
        p = d["resources"]["secure"]["properties"]
        p["volumeType"], p["extraSpecs"] = "${datera_iops.name}", "${datera_iops.extraSpecs}"
    _edit(prog / "Pulumi.yaml", retype)
    secure_id = volumes(dsp_sim, "/root/demo")["demo-secure"]["id"]
    assert ops(cli.preview(prog))["secure"] == "update"
    cli.up(prog)
    assert volumes(dsp_sim, "/root/demo")["demo-secure"]["id"] == secure_id

    # a replacing change: another tenant
    _edit(prog / "Pulumi.yaml",
          lambda d: d["resources"]["logs"]["properties"].update({"tenant": "/root"}))
    pre = cli.preview(prog)
    assert ops(pre)["logs"] == "replace", ops(pre)
    cli.up(prog)
    assert "demo-logs" in volumes(dsp_sim, "/root") and "demo-logs" not in volumes(
        dsp_sim, "/root/demo")

    # out of band: the clone deleted, db grown to 20; refresh takes both in
    dsp = client(dsp_sim)
    clone = volumes(dsp_sim, "/root/demo")["demo-db-clone"]
    dsp.put(f"/app_instances/{clone['id']}", {"admin_state": "offline", "force": True},
            tenant="/root/demo")
    dsp.delete(f"/app_instances/{clone['id']}", {"force": True}, tenant="/root/demo")
    db = volumes(dsp_sim, "/root/demo")["demo-db"]
    si, vol = db["storage_instances"][0], db["storage_instances"][0]["volumes"][0]
    dsp.put(f"/app_instances/{db['id']}/storage_instances/{si['name']}/volumes/{vol['name']}",
            {"size": 20}, tenant="/root/demo")
    refresh = cli.events("refresh", "--yes", "--skip-preview", cwd=prog)
    assert changes(refresh) in ({"delete": 1, "update": 1}, {"update": 2}), refresh
    state = {r["urn"].rsplit("::", 1)[-1]: r
             for r in cli.export(prog)["deployment"]["resources"]}
    assert "dbClone" not in state
    assert state["db"]["outputs"]["size"] == 20
    # 20 GiB on the DSP, 12 in the program: a shrink is a plan error, not a silent change
    failed = cli.run("preview", cwd=prog, check=False)
    assert failed.returncode != 0
    assert "property size value {12} has a problem: cannot shrink from 20 to 12 GiB" in \
        failed.stdout + failed.stderr
    cli.config("volumeSize", "20", cwd=prog)
    pre = cli.preview(prog)
    assert ops(pre)["dbClone"] == "create" and ops(pre).get("db", "same") == "same"
    cli.up(prog)

    # import a volume made outside, then the program that declares it previews empty
    made = dsp.post("/app_instances", {"name": "outside", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 3,
                                          "replica_count": 1}]}]}, tenant="/root/demo")
    vid = f"/root/demo/{made['id']}"
    code = tmp_path / "imported.yaml"
    cli.run("import", "datera:index:Volume", "outside", vid, "--yes", "--out", str(code),
            cwd=prog)
    imported = yaml.safe_load(code.read_text())["resources"]["outside"]
    assert imported["properties"]["size"] == 3
    # depend on the tenant (same value) so that destroy deletes the volume first
    assert imported["properties"]["tenant"] == "/root/demo"
    imported["properties"]["tenant"] = "${tenant.id}"
    _edit(prog / "Pulumi.yaml", lambda d: d["resources"].update({"outside": {
        "type": "datera:index:Volume", "properties": imported["properties"],
        "options": {"protect": False}}}))
    pre = cli.preview(prog)
    assert changes(pre) == {}, ops(pre)
    assert changes(cli.up(prog)) == {}  # and the import's protect flag is lifted

    _no_secret_anywhere(cli, prog, SAN_PASSWORD, CHAP_SECRET)

    # destroy: every volume and the tenant are gone
    cli.events("destroy", "--yes", "--skip-preview", cwd=prog)
    tenants = [t["name"] for t in dsp.list("/tenants", tenant="/root")]
    assert "demo" not in tenants
    assert "demo-logs" not in volumes(dsp_sim, "/root")
    _no_secret_anywhere(cli, prog, SAN_PASSWORD, CHAP_SECRET)


def _engine_plan(prog: Path, sim, *config: str) -> dict[str, str]:
    import os
    import subprocess
    import sys

    args = [sys.executable, "-m", "datera_iac.cli", "preview", "--json", "-f",
            str(prog / "Pulumi.yaml"), "--endpoint", sim.http_url,
            "-c", "datera:sanLogin=admin", "-c", "datera:datera_503_timeout=5"]
    for c in config:
        args += ["-c", c]
    env = {**os.environ, "DATERA_SAN_PASSWORD": SAN_PASSWORD,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    got = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert got.returncode == 0, got.stderr
    return {a["name"]: a["action"] for a in json.loads(got.stdout)["actions"]
            if a["action"] not in ("same", "noop", "none")}


def _engine_up(prog: Path, sim, *config: str) -> None:
    import os
    import subprocess
    import sys

    args = [sys.executable, "-m", "datera_iac.cli", "up", "--yes", "-f",
            str(prog / "Pulumi.yaml"), "--endpoint", sim.http_url,
            "-c", "datera:sanLogin=admin", "-c", "datera:datera_503_timeout=5"]
    for c in config:
        args += ["-c", c]
    env = {**os.environ, "DATERA_SAN_PASSWORD": SAN_PASSWORD,
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    got = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert got.returncode == 0, got.stdout + got.stderr


def _pulumi_plan(cli: PulumiCli, prog: Path) -> dict[str, str]:
    return {k: v for k, v in ops(cli.preview(prog)).items() if v != "same"}


def test_engine_and_pulumi_plan_the_same(tmp_path, make_sim):
    """The same YAML program planned by `datera-iac preview` and by `pulumi preview`, each
    against its own simulator: the same creates, then after the same edits the same
    updates and replaces."""
    sim_e, sim_p = make_sim(users={"admin": SAN_PASSWORD}), make_sim(users={"admin": SAN_PASSWORD})
    prog_e, prog_p = tmp_path / "engine", tmp_path / "pulumi"
    for p in (prog_e, prog_p):
        p.mkdir()
        shutil.copy(ROOT / "Pulumi.yaml", p / "Pulumi.yaml")
    cli = PulumiCli(tmp_path)
    _stack(cli, sim_p, prog_p)

    first_e, first_p = _engine_plan(prog_e, sim_e), _pulumi_plan(cli, prog_p)
    assert set(first_e.values()) == {"create"} and len(first_e) == 7
    assert first_p == first_e
    _engine_up(prog_e, sim_e)
    cli.up(prog_p)

    def edit(d):
        d["resources"]["logs"]["properties"]["tenant"] = "/root"  # replaces
        d["resources"]["dbClone"]["properties"]["volumeType"] = "${datera_iops.name}"  # retype
        d["resources"]["dbClone"]["properties"]["extraSpecs"] = "${datera_iops.extraSpecs}"
    for p in (prog_e, prog_p):
        _edit(p / "Pulumi.yaml", edit)
    cli.config("volumeSize", "12", cwd=prog_p)  # grows db and dbClone
    second_e = _engine_plan(prog_e, sim_e, "volumeSize=12")
    second_p = _pulumi_plan(cli, prog_p)
    assert second_e == {"db": "update", "dbClone": "update", "logs": "replace"}, second_e
    assert second_p == second_e


def test_python_program_lifecycle(tmp_path, dsp_sim):
    """examples/pulumi (Python SDK) under the real CLI and a Python language host, the
    plugin installed from its archive (`pulumi plugin install --file`): preview, up, a
    no-op up without DSP writes, grow in place, destroy; secrets stay encrypted."""
    import subprocess
    import sys

    prog = copy_program(ROOT / "examples" / "pulumi", tmp_path / "example")
    cli = PulumiCli(tmp_path)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "datera_iac.pulumi.package", "--out", str(dist)],
                   check=True, env=cli.env, capture_output=True)
    [archive] = dist.glob("pulumi-resource-datera-v*.tar.gz")
    version = archive.name.split("-v", 1)[1].split("-")[0]
    cli.run("plugin", "install", "resource", "datera", version, "--file", str(archive))
    assert (cli.home / "plugins" / f"resource-datera-v{version}").is_dir()
    cli.env["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"  # the installed plugin, not PATH's
    _stack(cli, dsp_sim, prog)
    cli.config("attachNode", "none", cwd=prog)

    before = writes(dsp_sim)
    pre = cli.preview(prog)
    assert changes(pre) == {"create": 8}, pre.get("changeSummary")  # 7 + the stack
    assert writes(dsp_sim) == before
    assert changes(cli.up(prog)) == {"create": 8}
    assert set(volumes(dsp_sim, "/root/apps")) == {
        "database", "logs", "database-restored", "database-scratch"}
    out = cli.json("stack", "output", cwd=prog)
    before = writes(dsp_sim)
    assert changes(cli.up(prog)) == {}
    assert writes(dsp_sim) == before
    cli.config("volumeSize", "11", cwd=prog)
    pre = cli.preview(prog)
    assert ops(pre)["db"] == "update", ops(pre)
    cli.up(prog)
    assert cli.json("stack", "output", cwd=prog)["db_id"] == out["db_id"]
    _no_secret_anywhere(cli, prog, SAN_PASSWORD)
    cli.events("destroy", "--yes", "--skip-preview", cwd=prog)
    assert "apps" not in [t["name"] for t in client(dsp_sim).list("/tenants", tenant="/root")]
