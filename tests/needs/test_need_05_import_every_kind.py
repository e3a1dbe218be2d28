"""user-needs §2.5: import for every kind, including attachments (composite id) and volume
types with all DF: specs/QoS, followed by a clean plan.

Acceptance: each kind is created out of band (the kinds driven directly, as another tool
would); the engine adopts them — ``options.import`` for most, ``Workspace.import_resource``
(``datera-iac import``) for one — with no write request, and the next plan is empty. The
Pulumi provider's Read imports each kind by id and its Diff against the read inputs is
empty. Terraform's ``import {}`` block, CLI ``import`` and ``-generate-config-out`` planning
empty are tests/terraform/test_sim_e2e.py::test_import_blocks_cli_import_and_data_sources
and ::test_generate_config_out_plans_clean.
"""

from __future__ import annotations

from needkit import client_for, configure, engine_ws, sim_fabric_node, writes_of

from datera_iac.config import DateraConfig
from datera_iac.resources.base import Context, Timeouts, kind_for

GOLD = {"name": "gold", "materialize": True, "replica_count": 2, "placement_mode": "hybrid",
        "read_iops_max": 900, "write_iops_max": 700, "total_iops_max": 1500,
        "read_bandwidth_max": 90000, "write_bandwidth_max": 70000,
        "total_bandwidth_max": 150000}


def _made_out_of_band(sim, node):
    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": "password"}, use_env=False)
    ctx = Context(client=client_for(sim), config=cfg, runner=node,
                  timeouts=Timeouts(create=20, update=20, delete=20, read=20))
    ids = {}
    k = kind_for("Tenant")
    ids["t"] = k.create(ctx, k.spec_from({"name": "imp-team"})).id
    k = kind_for("VolumeType")
    gold = k.create(ctx, k.spec_from(GOLD))
    ids["gold"] = gold.id
    k = kind_for("Volume")
    ids["v"] = k.create(ctx, k.spec_from({
        "name": "imp-vol", "size": 3, "tenant": "imp-team", "volume_type": "gold",
        "extra_specs": gold.outputs.extra_specs})).id
    k = kind_for("Snapshot")
    ids["s"] = k.create(ctx, k.spec_from({"volume_id": ids["v"]})).id
    k = kind_for("NodeAttachment")
    ids["a"] = k.create(ctx, k.spec_from({"volume_id": ids["v"]})).id
    return ids


def _stack(ids, *, skip_import=()):
    def opt(name):
        return "" if name in skip_import else f"    options:\n      import: \"{ids[name]}\"\n"
    q = "\n".join(f"        {k.replace('_', ' ').title().replace(' ', '')[0].lower()}"
                  f"{k.replace('_', ' ').title().replace(' ', '')[1:]}: {v}"
                  for k, v in GOLD.items() if k != "name")
    return f"""\
name: need05
runtime: yaml
resources:
  t:
    type: datera:index:Tenant
{opt("t")}    properties:
      name: imp-team
  gold:
    type: datera:index:VolumeType
{opt("gold")}    properties:
      name: gold
{q.replace("        ", "      ")}
  v:
    type: datera:index:Volume
{opt("v")}    properties:
      name: imp-vol
      size: 3
      tenant: ${{t.name}}
      volumeType: ${{gold.name}}
      extraSpecs: ${{gold.extraSpecs}}
  s:
    type: datera:index:Snapshot
{opt("s")}    properties:
      volumeId: ${{v.id}}
  a:
    type: datera:index:NodeAttachment
{opt("a")}    properties:
      volumeId: ${{v.id}}
"""


def test_engine_imports_every_kind_then_plans_empty(sim, dsp, tmp_path):
    node = sim_fabric_node(tmp_path / "node", dsp, tenants=("/root", "/root/imp-team"))
    ids = _made_out_of_band(sim, node)
    assert ":" in ids["a"] and "iqn." in ids["a"]  # the composite <volume id>:<iqn> id
    text = _stack(ids, skip_import=("a",))
    ws = engine_ws(sim, tmp_path / "stack", text, runner=node)
    before = writes_of(sim)
    # the attachment through the import command's code path (datera-iac import)
    ws.import_resource("a", "datera:index:NodeAttachment", ids["a"])
    plan, result = ws.up()
    assert not plan.errors and result.ok, (plan.errors, result.failures)
    assert {s.name: s.action for s in plan.changes} == {n: "import" for n in ("t", "gold", "v", "s")}
    assert writes_of(sim) == before  # adopting writes nothing
    again = engine_ws(sim, tmp_path / "stack", text, runner=node).preview()
    assert not again.changes and not again.drift and not again.errors
    assert engine_ws(sim, tmp_path / "stack", text, runner=node).load_state().resources["a"].id \
        == ids["a"]


def test_pulumi_read_imports_every_kind_with_empty_diff(plugin, sim, dsp, tmp_path):
    from pulumi.runtime.proto import provider_pb2 as pb

    from datera_iac.pulumi.testing import plain

    node = sim_fabric_node(tmp_path / "node", dsp, tenants=("/root", "/root/imp-team"))
    ids = _made_out_of_band(sim, node)
    configure(plugin, sim)
    for name, token in (("t", "Tenant"), ("gold", "VolumeType"), ("v", "Volume"),
                        ("s", "Snapshot")):
        t = f"datera:index:{token}"
        got = plugin.read(t, f"imp-{name}", ids[name])
        assert got.id == ids[name], (token, got.id)
        inputs = plain(plugin.check(t, f"imp-{name}", plain(got.inputs)).inputs)
        d = plugin.diff(t, f"imp-{name}", got.id, plain(got.properties), inputs)
        assert d.changes == pb.DiffResponse.DIFF_NONE, (token, list(d.diffs))
    vt = plain(plugin.read("datera:index:VolumeType", "g", ids["gold"]).inputs)
    assert {k: vt[k] for k in ("replicaCount", "totalIopsMax", "writeBandwidthMax")} == {
        "replicaCount": 2, "totalIopsMax": 1500, "writeBandwidthMax": 70000}
