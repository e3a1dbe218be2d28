"""Issue 16 in the Pulumi provider, over gRPC against the simulator: a volume's Delete
never takes snapshots with it that the stack did not delete first (case 5), and a tenant's
Delete names what it still holds instead of failing with the DSP's 409 (case 10)."""

from __future__ import annotations

import grpc
import pytest

from datera_iac.pulumi.testing import plain

V = "datera:index:Volume"
S = "datera:index:Snapshot"
T = "datera:index:Tenant"


@pytest.fixture
def dsp(sim):
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    return DspClient(DateraConfig.from_mapping({
        "endpoint": sim.http_url, "san_login": "admin", "san_password": sim.users["admin"]},
        use_env=False))


def _configure(rpc, sim):
    from datera_iac.pulumi._codec import Secret

    rpc.configure(endpoint=sim.http_url, sanLogin="admin",
                  sanPassword=Secret(sim.users["admin"]), datera503Timeout=5)


def _writes(sim) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "DELETE") and "/v2." in k and "login" not in k)


def test_case5_volume_delete_refuses_snapshots_made_elsewhere(plugin, sim, dsp):
    """Pulumi deletes the stack's snapshot first; the one made with the DSP's API stays,
    so the volume's Delete is refused, naming it, with no write (main deleted both). With
    cascade recorded in the volume's state, the Delete goes ahead."""
    rpc, _ = plugin
    _configure(rpc, sim)
    vol = rpc.create(V, "data", plain(rpc.check(V, "data", {"size": 2}).inputs))
    vstate = plain(vol.properties)
    snap = rpc.create(S, "snap", plain(rpc.check(S, "snap", {"volumeId": vol.id}).inputs))
    url = (f"/app_instances/{vstate['aiId']}/storage_instances/storage-1/volumes/volume-1/"
           "snapshots")
    theirs = str(dsp.post(url, {"uuid": "3f0c1a2b-4d5e-4f60-8a7b-9c0d1e2f3a4b"})["timestamp"])
    rpc.delete(S, "snap", snap.id, plain(snap.properties))
    before = _writes(sim)
    with pytest.raises(grpc.RpcError) as e:
        rpc.delete(V, "data", vol.id, vstate)
    msg = e.value.details()
    assert f"Snapshot {theirs} of volume data" in msg and "cascade" in msg
    assert "Traceback" not in msg
    assert _writes(sim) == before
    assert [str(s["timestamp"]) for s in dsp.list(url)] == [theirs]
    rpc.delete(V, "data", vol.id, {**vstate, "cascade": True})
    assert list(dsp.list("/app_instances")) == []


def test_case10_tenant_delete_names_what_it_holds(plugin, sim, dsp):
    """A tenant still holding a volume someone else made: the Delete names it (no 409)."""
    rpc, _ = plugin
    _configure(rpc, sim)
    t = rpc.create(T, "team", plain(rpc.check(T, "team", {"name": "team-p"}).inputs))
    dsp.post("/app_instances", {"name": "their-vol", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 1, "replica_count": 1}]}]},
        tenant="/root/team-p")
    before = _writes(sim)
    with pytest.raises(grpc.RpcError) as e:
        rpc.delete(T, "team", t.id, plain(t.properties))
    assert "Volume their-vol" in e.value.details() and "state rm" in e.value.details()
    assert _writes(sim) == before


def test_case9c_clone_below_its_sources_live_size_is_refused_at_preview(plugin, sim, dsp):
    """A clone declared smaller than its source's live size is refused by the preview's
    Create (what `pulumi preview`/`up` runs first), naming the live size, before any write;
    a Create without preview (`up --skip-preview`) refuses it before its POST too."""
    rpc, _ = plugin
    _configure(rpc, sim)
    ai = dsp.post("/app_instances", {"name": "pu-src", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 2, "replica_count": 1}]}]})
    dsp.put(ai["storage_instances"][0]["volumes"][0]["path"], {"size": 4})  # grown since
    inputs = plain(rpc.check(V, "clone", {"name": "pu-clone", "size": 3,
                                          "cloneOf": f"/root/{ai['id']}"}).inputs)
    before = _writes(sim)
    for preview in (True, False):
        with pytest.raises(grpc.RpcError) as e:
            rpc.create(V, "clone", inputs, preview=preview)
        assert f"source volume /root/{ai['id']} is 4 GiB, the clone declares 3 GiB" in \
            e.value.details(), e.value.details()
    assert _writes(sim) == before


def test_case1_an_object_of_another_dsp_is_refused(plugin, sim):
    """A volume made on one DSP records it in its outputs; with the provider pointed at
    another DSP, a refresh (Read), a diff, an update and a delete of it refuse, naming both
    DSPs, with 0 writes (before: the refresh read it as gone and `pulumi up --refresh`
    created it again on the other DSP)."""
    from datera_iac.sim import SimServer

    rpc, _ = plugin
    _configure(rpc, sim)
    inputs = plain(rpc.check(V, "v", {"name": "dsp-bound", "size": 1}).inputs)
    made = rpc.create(V, "v", inputs)
    state = plain(made.properties)
    assert state["__dsp"]["endpoint"].rstrip("/") == sim.http_url.rstrip("/")
    other = SimServer(name="other-dsp").start()
    try:
        _configure(rpc, other)
        before = (_writes(sim), _writes(other))
        bigger = {**inputs, "size": 2}
        for call in (lambda: rpc.read(V, "v", made.id, state, inputs),
                     lambda: rpc.diff(V, "v", made.id, state, bigger, old_inputs=inputs),
                     lambda: rpc.update(V, "v", made.id, state, bigger, old_inputs=inputs),
                     lambda: rpc.delete(V, "v", made.id, state)):
            with pytest.raises(grpc.RpcError) as e:
                call()
            assert "belongs to another DSP" in e.value.details() and \
                other.http_url.rstrip("/") in e.value.details(), e.value.details()
        assert (_writes(sim), _writes(other)) == before
    finally:
        other.stop()
    _configure(rpc, sim)  # its own DSP: read as before
    assert plain(rpc.read(V, "v", made.id, state, inputs).properties)["size"] == 1
    rpc.delete(V, "v", made.id, state)


def test_bench_foreign_objects_section_pulumi():
    """The fault report's Pulumi figures (bench/foreign_objects.py, the real Pulumi CLI and
    YAML programs): same-named Tenant, Volume, VolumeType and Snapshot of someone else
    neither adopted nor deleted; `pulumi up` and `pulumi up --refresh` against another DSP
    refused with 0 writes; `pulumi destroy` without --yes on a non-TTY stdin refused."""
    import sys

    from tests.pulumi.cli import ROOT

    sys.path.insert(0, str(ROOT / "bench"))
    from foreign_objects import measure_pulumi

    fig = measure_pulumi(1)
    for kind in ("Tenant", "Volume", "VolumeType", "Snapshot"):
        assert fig["objects"][kind] == {"adopted": 0, "deleted": 0, "trials": 1}, fig
    assert fig["refused"]["wrong_dsp"] == [2, 2, 0], fig
    assert fig["refused"]["non_tty_destroy"] == [1, 1], fig
    assert fig["refused"]["live_lock"].startswith("n/a: "), fig


# ---- case 9: converge in one run, through the real Pulumi CLI ----------------------------

#: the engine's case 9a stack (tests/engine/test_convergence.py), run by the Pulumi CLI
from tests.engine.test_convergence import VT_STACK as VT_PROGRAM  # noqa: E402


def _cli_stack(tmp_path, sim, program: str):
    from tests.pulumi.cli import PulumiCli

    prog = tmp_path / "prog"
    prog.mkdir(exist_ok=True)
    (prog / "Pulumi.yaml").write_text(program)
    cli = PulumiCli(tmp_path)
    cli.run("stack", "init", "dev", cwd=prog)
    cli.config("datera:endpoint", sim.http_url, cwd=prog)
    cli.config("datera:sanLogin", "admin", cwd=prog)
    cli.config("datera:sanPassword", sim.users["admin"], secret=True, cwd=prog)
    cli.config("datera:datera503Timeout", "5", cwd=prog)
    return cli, prog


def _cli_converged(cli, prog, sim, *extra: str) -> None:
    """`pulumi preview --expect-no-changes` succeeds and a `pulumi up` writes nothing
    (``extra``: e.g. ``--refresh``, so both compare with what the DSP holds)."""
    from tests.pulumi.cli import changes

    cli.run("preview", "--expect-no-changes", *extra, cwd=prog)
    before = _writes(sim)
    assert changes(cli.up(prog, *extra)) == {}
    assert _writes(sim) == before


def _qos(dsp, name: str) -> int | None:
    [ai] = [a for a in dsp.list("/app_instances") if a["name"] == name]
    vol = ai["storage_instances"][0]["volumes"][0]
    return dsp.get(f"{vol['path']}/performance_policy").get("total_iops_max")


def test_case9a_preview_update_gives_the_outputs_the_update_will_leave(plugin, sim):
    """A VolumeType's preview Update returns the extraSpecs its new inputs give (so the
    engine plans the volumes that read them), unknown while an input is unknown; before,
    the old extraSpecs came back and `pulumi preview` showed no volume update."""
    from datera_iac.pulumi._codec import UNKNOWN

    VT = "datera:index:VolumeType"
    rpc, _ = plugin
    _configure(rpc, sim)
    inputs = plain(rpc.check(VT, "vt", {"name": "gold", "totalIopsMax": 5000}).inputs)
    made = rpc.create(VT, "vt", inputs)
    state = plain(made.properties)
    assert state["extraSpecs"]["DF:total_iops_max"] == "5000"
    before = _writes(sim)
    news = {**inputs, "totalIopsMax": 7000}
    planned = plain(rpc.update(VT, "vt", made.id, state, news, preview=True,
                               old_inputs=inputs).properties)
    assert planned["extraSpecs"]["DF:total_iops_max"] == "7000", planned
    planned = plain(rpc.update(VT, "vt", made.id, state, {**inputs, "totalIopsMax": UNKNOWN},
                               preview=True, old_inputs=inputs).properties)
    assert planned["extraSpecs"] == UNKNOWN, planned
    assert _writes(sim) == before


def test_case9a_volume_type_change_updates_its_volumes_in_the_same_up(tmp_path, sim, dsp):
    """A VolumeType's QoS change whose extraSpecs feed two volumes: `pulumi preview` shows
    the three updates, one `pulumi up` makes them, and the stack is then converged
    (issue 16 case 9a: the volumes followed only on the next run)."""
    from tests.pulumi.cli import changes, ops

    cli, prog = _cli_stack(tmp_path, sim, VT_PROGRAM)
    assert changes(cli.up(prog)) == {"create": 4}
    _cli_converged(cli, prog, sim)
    assert _qos(dsp, "conv-vol") == 5000
    (prog / "Pulumi.yaml").write_text(VT_PROGRAM.replace("5000", "7000"))
    assert {k: v for k, v in ops(cli.preview(prog)).items() if v != "same"} == {
        "vt": "update", "v": "update", "w": "update"}
    assert changes(cli.up(prog)) == {"update": 3}
    assert _qos(dsp, "conv-vol") == 7000 and _qos(dsp, "conv-vol-2") == 7000
    _cli_converged(cli, prog, sim)


CHAP_PROGRAM = """\
name: conv
runtime: yaml
config:
  chapSecret:
    type: string
    secret: true
resources:
  # CHAP declared on the volume, and used by its attachment
  v:
    type: datera:index:Volume
    properties: {name: chap-vol, size: 1, chapUser: chapuser, chapSecret: "${chapSecret}"}
  a:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${v.id}
      node: local
      chapUsername: chapuser
      chapSecret: ${v.chapSecret}
  # the shape that flipped: the attachment turns CHAP on, the volume declares none
  u:
    type: datera:index:Volume
    properties: {name: nochap-vol, size: 1}
  b:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${u.id}
      node: local
      chapUsername: chapuser
      chapSecret: ${chapSecret}
"""


def _auth_puts(sim) -> int:
    return sum(n for k, n in sim.counters().items() if k.startswith("PUT ") and k.endswith("/auth"))


def test_case9b_chap_attachments_converge_and_the_target_never_flips(tmp_path, sim, dsp):
    """Two CHAP attachments (through a pulumi-resource-datera whose node is a fake one,
    saved between plugin processes), one whose volume declares the CHAP and one whose
    volume declares none: after the `pulumi up`, `preview --expect-no-changes` succeeds and
    each later up makes 0 DSP writes, also with `--refresh` (which reads the CHAP the
    attachment turned on) - no auth PUT, so neither target is ever without CHAP (issue 16
    case 9b: every run turned the second volume's CHAP off and on again)."""
    import os
    import sys

    from tests.needs.needkit import SAVED_NODE_DSP_ENV, SAVED_NODE_ENV
    from tests.pulumi.cli import ROOT, changes

    cli, prog = _cli_stack(tmp_path, sim, CHAP_PROGRAM)
    cli.config("chapSecret", "s3cret-s3cret-1", secret=True, cwd=prog)
    plugin = tmp_path / "plugin-bin" / "pulumi-resource-datera"
    plugin.parent.mkdir()
    plugin.write_text(f"#!{sys.executable}\nimport sys\n"
                      f"sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests' / 'needs')!r}]\n"
                      "from needkit import pulumi_provider_with_saved_node\n"
                      "sys.exit(pulumi_provider_with_saved_node())\n")
    plugin.chmod(0o755)
    (tmp_path / "node").mkdir()
    cli.env.update({"PATH": os.pathsep.join([str(plugin.parent), cli.env["PATH"]]),
                    SAVED_NODE_ENV: str(tmp_path / "node"), SAVED_NODE_DSP_ENV: sim.http_url})
    assert changes(cli.up(prog)) == {"create": 5}
    auth = {ai["name"]: ai["storage_instances"][0]["auth"]["type"]
            for ai in dsp.list("/app_instances")}
    assert auth == {"chap-vol": "chap", "nochap-vol": "chap"}, auth
    puts = _auth_puts(sim)
    for extra in ((), ("--refresh",), ("--refresh",)):
        _cli_converged(cli, prog, sim, *extra)
    assert _auth_puts(sim) == puts
    assert {ai["name"]: ai["storage_instances"][0]["auth"]["type"]
            for ai in dsp.list("/app_instances")} == auth


def test_case6_an_imported_volume_not_declared_is_not_deleted_by_up(tmp_path, sim, dsp):
    """`pulumi import` of a volume made elsewhere, then `pulumi up` of a program that does
    not declare it: the import is protected (Pulumi's default), so the up refuses to delete
    it and nothing is written; the volume is still on the DSP (issue 16 case 6)."""
    cli, prog = _cli_stack(tmp_path, sim, VT_PROGRAM)
    made = dsp.post("/app_instances", {"name": "outside", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 3, "replica_count": 1}]}]})
    cli.run("import", "datera:index:Volume", "outside", f"/root/{made['id']}", "--yes",
            "--out", str(tmp_path / "imported.yaml"), cwd=prog)
    (prog / "Pulumi.yaml").write_text("name: conv\nruntime: yaml\nresources: {}\n")
    before = _writes(sim)
    for cmd in ("preview", "up"):
        got = cli.run(cmd, *(["--yes", "--skip-preview"] if cmd == "up" else []), cwd=prog,
                      check=False)
        assert got.returncode != 0 and "protected" in got.stdout + got.stderr, got.stdout
    assert _writes(sim) == before
    assert [a["name"] for a in dsp.list("/app_instances")] == ["outside"]
