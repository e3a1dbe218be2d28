"""The provider's functions (Invoke) over gRPC against the simulator, and Handshake.

Each listing function must give the rows of the one listing implementation
(``resources.queries.LISTINGS``: what ``datera-iac ls`` and the Terraform data sources
show), camelCased; the lookups give what ``kind.adopt`` reads; the Cinder emitters give what
a VolumeType resource and ``datera-iac cinder conf`` give."""

from __future__ import annotations

import json

from pulumi.runtime.proto import provider_pb2 as pb

from datera_iac.pulumi._codec import Secret
from datera_iac.pulumi.testing import plain, struct
from datera_iac.resources.base import camel

V = "datera:index:Volume"
S = "datera:index:Snapshot"
VT = "datera:index:VolumeType"


def configure(rpc, sim):
    return rpc.configure(endpoint=sim.http_url, sanLogin="admin",
                         sanPassword=Secret(sim.users["admin"]), datera503Timeout=5)


def invoke(rpc, tok, **args):
    resp = rpc.Invoke(pb.InvokeRequest(tok=tok, args=struct(args)))
    return plain(getattr(resp, "return")), list(resp.failures)


def create(rpc, token, rname, props):
    inputs = plain(rpc.check(token, rname, props).inputs)
    got = rpc.create(token, rname, inputs)
    return got.id, plain(got.properties)


def _ctx(sim):
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient
    from datera_iac.resources.base import Context

    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": sim.users["admin"]})
    return Context(client=DspClient(cfg), config=cfg)


def _camel_rows(rows):
    return [{camel(k): v for k, v in r.items()} for r in rows]


def test_handshake_and_schema_functions(plugin):
    rpc, _ = plugin
    hs = rpc.Handshake(pb.ProviderHandshakeRequest(engine_address="127.0.0.1:1"))
    assert hs.accept_secrets and hs.supports_autonaming_configuration
    schema = json.loads(rpc.GetSchema(pb.GetSchemaRequest()).schema)
    fns = schema["functions"]
    for tok in ("listVolumes", "listSnapshots", "listVolumeTypes", "listTenants",
                "listManageableVolumes", "listManageableSnapshots", "getVolume",
                "getSnapshot", "getVolumeType", "cinderVolumeType", "cinderConf"):
        assert f"datera:index:{tok}" in fns, tok
    lv = fns["datera:index:listVolumes"]
    assert set(lv["inputs"]["properties"]) >= {"tenant", "nameRegex", "volumeType", "metadata"}
    ref = lv["outputs"]["properties"]["items"]["items"]["$ref"]
    assert ref == "#/types/datera:index:VolumesItem" and "datera:index:VolumesItem" in schema["types"]
    # secrets never appear in a listing row or a lookup's outputs
    assert "chapSecret" not in schema["types"]["datera:index:VolumesItem"]["properties"]
    assert "chapSecret" not in fns["datera:index:getVolume"]["outputs"]["properties"]


def test_listing_functions_match_the_listing(plugin, sim):
    from datera_iac.resources.queries import LISTINGS

    rpc, _ = plugin
    configure(rpc, sim)
    vt_id, vt = create(rpc, VT, "gold", {"name": "gold", "replicaCount": 2})
    ids = {}
    for name, size in (("db-1", 3), ("db-2", 4), ("logs", 5)):
        ids[name], _ = create(rpc, V, name, {
            "size": size, "volumeType": "gold", "extraSpecs": vt["extraSpecs"],
            "chapUser": "chapuser", "chapSecret": Secret("s3cr3t-chap-12")})
    snap_id, _ = create(rpc, S, "snap", {"volumeId": ids["db-1"]})
    create(rpc, "datera:index:ConsistencyGroup", "grp",
           {"name": "grp-1", "volumes": {"data": 2, "log": 1}})
    ctx = _ctx(sim)

    got, failures = invoke(rpc, "datera:index:listVolumes", nameRegex="^db-")
    assert not failures
    assert [r["name"] for r in got["items"]] == ["db-1", "db-2"]
    assert got["items"] == _camel_rows(LISTINGS["volumes"].rows(ctx, name_regex="^db-"))
    assert "s3cr3t" not in json.dumps(got)

    got, _ = invoke(rpc, "datera:index:listVolumes", volumeType="gold")
    assert [r["name"] for r in got["items"]] == ["db-1", "db-2", "logs"]
    assert got["items"] == _camel_rows(LISTINGS["volumes"].rows(ctx, volume_type="gold"))

    got, _ = invoke(rpc, "datera:index:listSnapshots", volume=ids["db-1"])
    assert [r["id"] for r in got["items"]] == [snap_id]
    assert got["items"] == _camel_rows(LISTINGS["snapshots"].rows(ctx, volume=ids["db-1"]))

    for listing, tok in (("manageable_volumes", "listManageableVolumes"),
                         ("manageable_snapshots", "listManageableSnapshots"),
                         ("tenants", "listTenants"), ("volume_types", "listVolumeTypes"),
                         ("consistency_groups", "listConsistencyGroups")):
        got, failures = invoke(rpc, f"datera:index:{tok}")
        assert not failures
        assert got["items"] == _camel_rows(LISTINGS[listing].rows(ctx)), tok
    groups, _ = invoke(rpc, "datera:index:listConsistencyGroups")
    assert [(g["name"], g["volumes"]) for g in groups["items"]] == [
        ("grp-1", {"data": 2, "log": 1})]
    mv, _ = invoke(rpc, "datera:index:listManageableVolumes")
    assert {r["name"]: r["safeToManage"] for r in mv["items"]} == {
        "db-1": True, "db-2": True, "logs": True, "grp-1": False}  # a group: another layout

    # lookups: what an import reads, every non-secret property
    vol, failures = invoke(rpc, "datera:index:getVolume", id=ids["db-2"])
    assert not failures and vol["id"] == ids["db-2"] and vol["size"] == 4
    assert "chapSecret" not in vol and vol["chapUser"] == "chapuser"
    snap, _ = invoke(rpc, "datera:index:getSnapshot", id=snap_id)
    assert snap["id"] == snap_id and snap["volumeId"] == ids["db-1"]

    # a bad argument is a check failure on that argument, not an internal error
    _, failures = invoke(rpc, "datera:index:listVolumes", nameRegex="(")
    assert [f.property for f in failures] == ["nameRegex"]
    _, failures = invoke(rpc, "datera:index:listVolumes", sizeGb=1)
    assert [f.property for f in failures] == ["sizeGb"]


def test_cinder_emitters(plugin, sim):
    from datera_iac.cinder_cli import render_conf
    from datera_iac.config import DateraConfig

    rpc, _ = plugin
    configure(rpc, sim)
    before = sum(sim.counters().values())
    vt, failures = invoke(rpc, "datera:index:cinderVolumeType", name="gold", replicaCount=3,
                          totalIopsMax=1000)
    assert not failures
    assert vt["extraSpecs"] == {"volume_backend_name": "datera", "DF:replica_count": "3",
                                "DF:total_iops_max": "1000"}
    assert vt["openstackCommand"].startswith("openstack volume type create gold")
    assert "openstack_blockstorage_volume_type_v3" in vt["terraformHcl"]
    # the same as a VolumeType resource declares
    _, state = create(rpc, VT, "gold", {"name": "gold", "replicaCount": 3,
                                         "totalIopsMax": 1000})
    assert {k: state[k] for k in vt} == vt

    conf, _ = invoke(rpc, "datera:index:cinderConf", backendName="datera-a")
    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": sim.users["admin"],
                                     "datera_503_timeout": 5})
    assert conf["conf"] == render_conf(cfg, backend_name="datera-a")
    assert "san_password = ********" in conf["conf"]
    shown, _ = invoke(rpc, "datera:index:cinderConf", showPassword=True)
    assert isinstance(shown["conf"], Secret)
    assert f"san_password = {sim.users['admin']}" in shown["conf"].value
    assert sum(sim.counters().values()) == before  # no DSP call for either emitter
