"""examples/pulumi/__main__.py, run as a Pulumi program against the simulator.

The program runs under ``pulumi.runtime.set_mocks`` with :class:`EngineMocks`, which
forwards every registration over gRPC to the real provider (Check, Create; Diff/Update on a
re-run; Delete on destroy). The provider's kinds talk to the simulator over HTTP. The one
edge that cannot run here, the node's kernel iSCSI login, is a FakeNode whose fabric serves
whatever targets the simulator has. The test then checks that the DSP holds what the
program declares, that a second ``up`` changes nothing, and that destroy removes it all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.node.iscsi import wwid_for_serial
from datera_iac.pulumi.provider import DateraProvider, default_context_factory, serve
from datera_iac.pulumi.testing import EngineMocks, Rpc, run_program
from tests.needs.needkit import SimFabricNode

PROGRAM = Path(__file__).resolve().parents[2] / "examples" / "pulumi" / "__main__.py"
PROJECT = "datera-example"
NODE_IQN = "iqn.1993-08.org.debian:01:example-node"
CHAP = "Example-Chap-01"


def _config(sim: Any) -> dict[str, Any]:
    return {"endpoint": sim.http_url, "san_login": "admin", "san_password": sim.users["admin"]}


@pytest.fixture
def dsp(sim):
    return DspClient(DateraConfig.from_mapping(_config(sim)))


@pytest.fixture
def provider(sim, dsp, tmp_path):
    """The real provider over gRPC, its NodeAttachment reaching the fake node."""
    node = SimFabricNode(tmp_path / "node", dsp, tenants=("/root", "/root/apps"),
                         initiator_iqn=NODE_IQN)

    def factory(config):
        ctx = default_context_factory(config)
        ctx.runner = node
        return ctx

    server, port = serve(DateraProvider(context_factory=factory))
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Rpc(channel), node
    finally:
        channel.close()
        server.stop(grace=None)


def _volumes(dsp: DspClient, tenant: str) -> dict[str, dict[str, Any]]:
    return {ai["name"]: ai for ai in dsp.list("/app_instances", tenant=tenant)}


def test_example_up_again_and_destroy(provider, sim, dsp):
    """The DSP ends up with what the program declares; a second up is a no-op; destroy
    leaves nothing."""
    rpc, node = provider
    config = {f"{PROJECT}:volumeSize": "8", f"{PROJECT}:chapSecret": CHAP}
    provider_config = {"endpoint": sim.http_url, "sanLogin": "admin",
                       "sanPassword": sim.users["admin"]}
    up = EngineMocks(rpc, config=provider_config, project=PROJECT)
    out = run_program(str(PROGRAM), up, config=config, project=PROJECT)

    assert out["tenant"] == "/root/apps"
    vols = _volumes(dsp, "/root/apps")
    assert sorted(vols) == ["database", "database-restored", "database-scratch", "logs"]
    db_si = vols["database"]["storage_instances"][0]
    assert db_si["volumes"][0]["size"] == 8 and db_si["volumes"][0]["replica_count"] == 2
    assert db_si["auth"]["type"] == "chap" and db_si["auth"]["target_user_name"] == "dbnode"
    assert [i["path"].rsplit("/", 1)[-1] for i in db_si["acl_policy"]["initiators"]] == [NODE_IQN]
    assert vols["database-restored"]["storage_instances"][0]["volumes"][0]["size"] == 8
    snaps = dsp.get(f"{db_si['volumes'][0]['path']}/snapshots", tenant="/root/apps")
    assert out["snapshot_id"].rsplit("/", 1)[-1] in {str(s["timestamp"]) for s in snaps}
    assert out["db_iqn"] == db_si["access"]["iqn"]
    assert out["db_device"].endswith(f"dm-uuid-mpath-{wwid_for_serial(db_si['volumes'][0]['uuid'])}")
    assert "--property DF:replica_count=2" in out["gold_openstack_command"]
    assert len(node.sessions) == 2  # logged in on both portals
    assert CHAP not in str(sim.request_log())

    # a second `pulumi up` of the same program: every resource is unchanged, no DSP write
    writes_before = _writes(sim)
    again = EngineMocks(rpc, state=up.state, project=PROJECT)
    run_program(str(PROGRAM), again, config=config, project=PROJECT)
    again.finish()
    assert {op for op, _ in again.operations} == {"same"}, again.operations
    assert _writes(sim) == writes_before

    # a bigger size is an in-place update of the three volumes that follow volumeSize
    grow = EngineMocks(rpc, state=again.state, project=PROJECT)
    run_program(str(PROGRAM), grow, config={**config, f"{PROJECT}:volumeSize": "9"},
                project=PROJECT)
    updated = sorted(u.rsplit("::", 1)[-1] for op, u in grow.operations if op == "update")
    assert updated == ["db", "db-restored", "db-scratch"]
    assert _volumes(dsp, "/root/apps")["database"]["storage_instances"][0]["volumes"][0]["size"] == 9

    # destroy empties the tenant: the attachment removes the initiator it registered
    # (an emptied tenant holding initiators would be refused by the DSP)
    grow.destroy()
    assert grow.state == {}
    assert not _tenant_exists(dsp)
    assert node.sessions == {}


def _writes(sim: Any) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "DELETE") and "/v2." in k)


def _tenant_exists(dsp: DspClient) -> bool:
    from datera_iac.errors import NotFound

    try:
        dsp.get("/tenants/root/apps", tenant="/root")
    except NotFound:
        return False
    return True
