"""The NodeAttachment kind against the simulator over real HTTP.

The control plane (initiators, ACL, CHAP, online, op_state) is the real simulator; the node
is a FakeNode (kernel iSCSI and dm-multipath cannot run here), or, in the ``tgt`` tests, a
LoopbackNode whose sendtargets and logins go to the simulator's tgtd data plane through
libiscsi, so ACL and CHAP decisions come from a live target.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.errors import InputError, NodeError
from datera_iac.node.iscsi import wwid_for_serial
from datera_iac.node.testing import FakeLun, FakeNode, FakeTarget, LoopbackNode
from datera_iac.resources.attachment import (
    NodeAttachment,
    attachment_id,
    parse_attachment_id,
)
from datera_iac.resources.base import Context, Timeouts, kind_for
from datera_iac.resources.volume import Volume
from datera_iac.sim import SimServer
from datera_iac.sim.dataplane import TgtDataPlane
from tests.tools import require

KIND = NodeAttachment()
SECRET = "Chap-Secret-01"


def make_ctx(server: Any, runner: Any = None) -> Context:
    cfg = DateraConfig.from_mapping({"endpoint": server.http_url, "san_login": "admin",
                                     "san_password": "password"})
    return Context(client=DspClient(cfg), config=cfg, runner=runner,
                   timeouts=Timeouts(create=20, update=20, delete=20, read=20))


def make_volume(ctx: Context, name: str = "vol-a", size: int = 1, **extra: Any) -> str:
    vk = Volume()
    return vk.create(ctx, vk.spec_from({"name": name, "size": size, **extra})).id


def si_of(ctx: Context, volume_id: str) -> dict[str, Any]:
    ai_id = volume_id.rsplit("/", 1)[-1]
    return ctx.client.get(f"/app_instances/{ai_id}/storage_instances/storage-1")


def ai_of(ctx: Context, volume_id: str) -> dict[str, Any]:
    return ctx.client.get(f"/app_instances/{volume_id.rsplit('/', 1)[-1]}")


def acl(ctx: Context, volume_id: str) -> list[str]:
    return sorted(i["path"].rsplit("/", 1)[-1]
                  for i in si_of(ctx, volume_id)["acl_policy"]["initiators"])


def fake_fabric(ctx: Context, volume_id: str, *nodes: FakeNode, port: int = 3260) -> None:
    """Make the fake nodes' fabric serve the simulator's target for the volume."""
    si = si_of(ctx, volume_id)
    serial = si["volumes"][0]["uuid"]
    for n in nodes:
        n.add_target(FakeTarget(si["access"]["iqn"],
                                [f"{ip}:{port}" for ip in si["access"]["ips"]],
                                {0: FakeLun(wwid_for_serial(serial), serial.replace("-", ""))}))


@pytest.fixture
def node(tmp_path):
    return FakeNode(tmp_path / "node1", initiator_iqn="iqn.1993-08.org.debian:01:node1")


def test_registered_and_ids():
    """Registered under its three names; ids round-trip, with node-side settings."""
    assert kind_for("NodeAttachment") is kind_for("datera_node_attachment")
    assert kind_for("datera:index:NodeAttachment").name == "NodeAttachment"
    spec = KIND.spec_from({"volume_id": "/root/abc", "node": "ssh://root@10.0.0.5:2222",
                           "lun": 1, "port": 3261, "filesystem": "ext4",
                           "mount_point": "/mnt/d", "multipath": False})
    i = attachment_id(spec, "/root/abc", "iqn.1993-08.org.debian:01:x")
    vol, iqn, opts = parse_attachment_id(i)
    assert (vol, iqn) == ("/root/abc", "iqn.1993-08.org.debian:01:x")
    assert opts == {"node": "ssh://root@10.0.0.5:2222", "port": 3261, "lun": 1,
                    "mount_point": "/mnt/d", "filesystem": "ext4", "multipath": False}
    plain = attachment_id(KIND.spec_from({"volume_id": "/root/abc"}), "/root/abc",
                          "iqn.1993-08.org.debian:01:x")
    assert plain == "/root/abc:iqn.1993-08.org.debian:01:x"


def test_input_errors_name_field_and_fix():
    """Bad input is rejected before any call, naming the field and the fix."""
    cases = [
        ({"volume_id": "/root/a", "initiator_iqn": "nope"}, "initiator_iqn"),
        ({"volume_id": "/root/a", "node": "ftp://x"}, "node"),
        ({"volume_id": "/root/a", "node": "ssh://u:pw@h"}, "node"),
        ({"volume_id": "/root/a", "chap_username": "user1"}, "chap_secret"),
        ({"volume_id": "/root/a", "chap_username": "user1", "chap_secret": "short"},
         "chap_secret"),
        ({"volume_id": "/root/a", "mount_point": "/mnt/x"}, "filesystem"),
        ({"volume_id": "/root/a", "filesystem": "ntfs"}, "filesystem"),
        ({"volume_id": "/root/a", "port": 0}, "port"),
        ({"volume_id": "/root/a", "colour": "red"}, "colour"),
    ]
    for data, field in cases:
        with pytest.raises(InputError) as ei:
            KIND.spec_from(data, resource="att")
        assert ei.value.field == field, (data, str(ei.value))
        assert ei.value.fix
    s = KIND.spec_from({"volume_id": "/root/a", "chap_username": "user1",
                        "chap_secret": SECRET})
    assert SECRET not in repr(s)


def test_create_read_delete_on_fake_node(sim, node):
    """Create registers the initiator, adds it to the ACL, onlines, logs in on both portals
    and returns the by-id path; delete detaches, removes it from the ACL and offlines."""
    ctx = make_ctx(sim, node)
    vid = make_volume(ctx)
    fake_fabric(ctx, vid, node)
    obs = KIND.create(ctx, KIND.spec_from({"volume_id": vid}))
    assert obs.id == f"{vid}:{node.initiator_iqn}"
    out = obs.outputs
    si = si_of(ctx, vid)
    wwid = wwid_for_serial(si["volumes"][0]["uuid"])
    assert out.device_path == f"{node.dev_root}/disk/by-id/dm-uuid-mpath-{wwid}"
    assert os.path.exists(out.device_path)
    assert out.wwid == wwid and out.map_name == wwid and out.lun == 0
    assert out.portals == [f"{ip}:3260" for ip in si["access"]["ips"]]
    assert out.paths_up == len(out.portals) == len(node.sessions) == 2
    assert out.iqn == si["access"]["iqn"] and out.initiator_iqn == node.initiator_iqn
    assert acl(ctx, vid) == [node.initiator_iqn]
    assert ctx.client.get(f"/initiators/{node.initiator_iqn}")["id"] == node.initiator_iqn
    assert ai_of(ctx, vid)["admin_state"] == "online"
    assert si["op_state"] == "available"
    # read and import give the same picture; the plan after import is empty
    again = KIND.read(ctx, obs.id)
    assert again is not None and again.outputs == out
    adopted = KIND.adopt(ctx, obs.id)
    assert not KIND.diff(adopted.spec, KIND.spec_from({"volume_id": vid})).changed
    KIND.delete(ctx, obs.id)
    assert node.sessions == {} and node.records == {}
    assert acl(ctx, vid) == []
    assert ai_of(ctx, vid)["admin_state"] == "offline"
    assert KIND.read(ctx, obs.id) is None
    KIND.delete(ctx, obs.id)  # already gone: success


def test_three_nodes_share_a_volume(sim, tmp_path):
    """Three attachments of one volume: the ACL holds three initiators; deleting one
    leaves the other two logged in and the volume online."""
    nodes = {f"ssh://root@node{i}:22": FakeNode(tmp_path / f"n{i}",
                                                 initiator_iqn=f"iqn.2024-01.org.example:n{i}")
             for i in range(3)}
    ctx = make_ctx(sim, nodes)
    vid = make_volume(ctx)
    fake_fabric(ctx, vid, *nodes.values())
    ids = [KIND.create(ctx, KIND.spec_from({"volume_id": vid, "node": n})).id for n in nodes]
    assert acl(ctx, vid) == sorted(n.initiator_iqn for n in nodes.values())
    KIND.delete(ctx, ids[0])
    assert acl(ctx, vid) == sorted(n.initiator_iqn for n in list(nodes.values())[1:])
    assert ai_of(ctx, vid)["admin_state"] == "online"
    first, *rest = nodes.values()
    assert first.sessions == {} and all(len(n.sessions) == 2 for n in rest)
    assert all(KIND.read(ctx, i) is not None for i in ids[1:])
    assert KIND.read(ctx, ids[0]) is None


def test_failed_login_leaves_nothing_behind(sim, node):
    """When the node cannot attach (no portal reachable), the ACL entry is removed again."""
    ctx = make_ctx(sim, node)
    vid = make_volume(ctx)
    fake_fabric(ctx, vid, node)
    for p in node.targets[next(iter(node.targets))].portals:
        node.unreachable[p] = 4
    with pytest.raises(NodeError, match="could not log in"):
        KIND.create(ctx, KIND.spec_from({"volume_id": vid}))
    assert acl(ctx, vid) == []


def test_chap_is_set_on_the_storage_instance(sim, node):
    """Declared CHAP is written to the SI's auth; the node logs in with it; the secret
    appears in no request log entry, plan diff or output."""
    ctx = make_ctx(sim, node)
    vid = make_volume(ctx)
    fake_fabric(ctx, vid, node)
    next(iter(node.targets.values())).chap = ("chapuser", SECRET)
    obs = KIND.create(ctx, KIND.spec_from({"volume_id": vid, "chap_username": "chapuser",
                                           "chap_secret": SECRET}))
    auth = si_of(ctx, vid)["auth"]
    assert auth["type"] == "chap" and auth["target_user_name"] == "chapuser"
    assert obs.spec.chap_username == "chapuser"
    assert SECRET not in repr(obs) and SECRET not in str(sim.request_log())
    # an attachment without CHAP on a CHAP volume is refused with the fix
    other = FakeNode(node.root.parent / "n2", initiator_iqn="iqn.2024-01.org.example:n2")
    fake_fabric(ctx, vid, other)
    with pytest.raises(InputError, match="requires CHAP"):
        KIND.create(make_ctx(sim, other), KIND.spec_from({"volume_id": vid}))


def test_format_and_mount_only_blank_devices(sim, node):
    """filesystem+mount_point: a blank device is formatted and mounted; a device that
    already has a filesystem is never formatted."""
    ctx = make_ctx(sim, node)
    vid = make_volume(ctx)
    fake_fabric(ctx, vid, node)
    spec = KIND.spec_from({"volume_id": vid, "filesystem": "ext4", "mount_point": "/mnt/a"})
    obs = KIND.create(ctx, spec)
    assert any(c[0] == "mkfs.ext4" for c in node.commands)
    assert obs.outputs.mounted_at == "/mnt/a"
    KIND.delete(ctx, obs.id)
    assert node.mounts == {}
    # the volume now carries ext4: re-attaching must not run mkfs again
    node.commands.clear()
    obs = KIND.create(ctx, spec)
    assert not any(c[0].startswith("mkfs") for c in node.commands)
    KIND.delete(ctx, obs.id)
    # another signature (xfs) with ext4 requested: refused, nothing formatted
    next(iter(node.targets.values())).luns[0].signature = "xfs"
    node.commands.clear()
    with pytest.raises(NodeError, match="refusing to format"):
        KIND.create(ctx, spec)
    assert not any(c[0].startswith("mkfs") for c in node.commands)
    assert node.sessions == {} and acl(ctx, vid) == []


def test_probe_error_is_never_a_reason_to_format(sim, node):
    """blkid failing (exit 4) aborts the attach; mkfs never runs."""
    ctx = make_ctx(sim, node)
    vid = make_volume(ctx)
    fake_fabric(ctx, vid, node)
    node.probe_error = True
    with pytest.raises(Exception, match="blkid"):
        KIND.create(ctx, KIND.spec_from({"volume_id": vid, "filesystem": "ext4"}))
    assert not any(c[0].startswith("mkfs") for c in node.commands)


def test_missing_volume_is_an_input_error(sim, node):
    ctx = make_ctx(sim, node)
    with pytest.raises(InputError, match="does not exist"):
        KIND.create(ctx, KIND.spec_from({"volume_id": "/root/no-such-volume"}))


# ---- against a live tgtd target ---------------------------------------------------------



@pytest.fixture(scope="module")
def tgt_sim(tmp_path_factory):
    require("tgtd", "tgtadm", "iscsi-ls", "iscsi-inq", "iscsi-readcapacity16")
    dp = TgtDataPlane(portals=["127.0.0.1", "127.0.0.2"],
                      data_dir=tmp_path_factory.mktemp("tgt-luns"))
    dp.start()
    server = SimServer(dataplane=dp, portals=["127.0.0.1", "127.0.0.2"]).start()
    try:
        yield server, dp
    finally:
        server.stop()
        dp.stop()


@pytest.mark.tgt
def test_live_target_chap_acl_detach(tgt_sim, tmp_path):
    """Against tgtd: the attachment's CHAP login succeeds; a wrong secret fails with exit 24
    mapped to a CHAP error; a node outside the ACL cannot see the target; after delete the
    node's initiator can no longer log in."""
    server, dp = tgt_sim
    server.reset()
    dp.reset()
    n1 = LoopbackNode(tmp_path / "n1", initiator_iqn="iqn.2024-01.org.example:live1")
    n2 = LoopbackNode(tmp_path / "n2", initiator_iqn="iqn.2024-01.org.example:live2")
    ctx = make_ctx(server, {"ssh://root@n1:22": n1, "ssh://root@n2:22": n2})
    vid = make_volume(ctx, "live-vol")
    base = {"volume_id": vid, "port": dp.port, "lun": 1, "chap_username": "chapuser",
            "chap_secret": SECRET}
    obs = KIND.create(ctx, KIND.spec_from({**base, "node": "ssh://root@n1:22"}))
    si = si_of(ctx, vid)
    assert obs.outputs.wwid == wwid_for_serial(si["volumes"][0]["uuid"])
    assert obs.outputs.paths_up == 2 and obs.outputs.portals == dp.portals
    # the real target said yes to n1 with CHAP; n2 is not in the ACL: tgt hides the target
    from datera_iac.node.userspace import IscsiLun, LibIscsi
    from datera_iac.node.iscsi import Chap
    li = LibIscsi()
    assert si["access"]["iqn"] not in li.discover(dp.portals[0], n2.initiator_iqn)
    # a wrong secret on n2 (even once it is in the ACL) is a CHAP failure from tgtd
    with pytest.raises(NodeError, match="CHAP authentication .* failed"):
        KIND.create(ctx, KIND.spec_from({**base, "node": "ssh://root@n2:22",
                                         "chap_secret": "Wrong-Secret-1"}))
    assert acl(ctx, vid) == [n1.initiator_iqn]  # the failed attach cleaned up after itself
    lun = IscsiLun(dp.portals[0], si["access"]["iqn"], 1, n1.initiator_iqn,
                   Chap("chapuser", SECRET))
    assert li.serial(lun) == si["volumes"][0]["uuid"].replace("-", "")
    KIND.delete(ctx, obs.id)
    with pytest.raises(NodeError):
        li.serial(lun)  # detached: ACL removed and the volume offline
    assert n1.sessions == {} and acl(ctx, vid) == []


def test_parallel_attachments_of_one_volume(sim, tmp_path):
    """Three attachments created at the same time (an engine with parallelism): all three
    initiators end up in the ACL, each node logged in on both portals."""
    from concurrent.futures import ThreadPoolExecutor

    nodes = {f"ssh://root@p{i}:22": FakeNode(tmp_path / f"p{i}",
                                              initiator_iqn=f"iqn.2024-01.org.example:p{i}")
             for i in range(3)}
    ctx = make_ctx(sim, nodes)
    vid = make_volume(ctx)
    fake_fabric(ctx, vid, *nodes.values())
    with ThreadPoolExecutor(3) as pool:
        done = list(pool.map(lambda n: KIND.create(ctx, KIND.spec_from(
            {"volume_id": vid, "node": n})), nodes))
    assert len({o.id for o in done}) == 3
    assert acl(ctx, vid) == sorted(n.initiator_iqn for n in nodes.values())
    assert all(len(n.sessions) == 2 for n in nodes.values())


def test_grow_while_attached(sim, node):
    """volume_size bound to the Volume's size: growing the volume, then the attachment,
    rescans every path and resizes the map in place; sessions stay, the node sees it."""
    ctx = make_ctx(sim, node)
    vk = Volume()
    vol = vk.create(ctx, vk.spec_from({"name": "grow-vol", "size": 1}))
    fake_fabric(ctx, vol.id, node)
    spec1 = KIND.spec_from({"volume_id": vol.id, "volume_size": 1})
    obs = KIND.create(ctx, spec1)
    assert obs.outputs.size_bytes == 1 << 30
    sessions = dict(node.sessions)
    vk.update(ctx, vol.id, vol.spec, vk.spec_from({"name": "grow-vol", "size": 2}))
    next(iter(node.targets.values())).luns[0].size = 2 << 30  # the array grew the LUN
    spec2 = KIND.spec_from({"volume_id": vol.id, "volume_size": 2})
    d = KIND.diff(obs.spec, spec2)
    assert d.fields == ("volume_size",) and not d.replace
    node.commands.clear()
    new = KIND.update(ctx, obs.id, obs.spec, spec2)
    assert new.outputs.size_bytes == 2 << 30 and node.sessions == sessions
    assert ["multipathd", "resize", "map", obs.outputs.map_name] in node.commands
    assert sum(c[0] == "write" and c[1].endswith("/device/rescan") for c in node.commands) == 2
    # the node not seeing the new size is an error naming the likely cause
    with pytest.raises(NodeError, match="still sees"):
        KIND.update(ctx, obs.id, spec2, KIND.spec_from({"volume_id": vol.id,
                                                        "volume_size": 3}))


def test_image_through_a_temporary_attachment(sim, node, tmp_path):
    """NodeTransport: attach, qemu-img convert onto the stable by-id path, flush, detach;
    the volume's ACL is empty again afterwards and the image size was checked first."""
    from datera_iac.resources.imaging import NodeTransport, fill_volume

    ctx = make_ctx(sim, node)
    vid = make_volume(ctx, "img-target")
    fake_fabric(ctx, vid, node)
    node.installed.add("qemu-img")
    img = tmp_path / "disk.raw"
    img.write_bytes(b"\x01" * 4096)
    fill_volume(ctx, vid, str(img), transport=NodeTransport())
    wwid = wwid_for_serial(si_of(ctx, vid)["volumes"][0]["uuid"])
    dev = f"{node.dev_root}/disk/by-id/dm-uuid-mpath-{wwid}"
    cmds = [c for c in node.commands if c[0] in ("qemu-img", "blockdev", "multipath")
            or "--login" in c or "--logout" in c]
    first_write = cmds.index(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw",
                              str(img), dev])
    assert sum("--login" in c for c in cmds[:first_write]) == 2
    assert cmds[first_write + 1] == ["blockdev", "--flushbufs", dev]
    assert ["multipath", "-f", wwid] in cmds[first_write:]
    assert sum("--logout" in c for c in cmds[first_write:]) == 2
    assert acl(ctx, vid) == [] and node.sessions == {}


def test_no_probe_on_an_unsettled_device(sim, node):
    """One path logged in without its device (still scanning): with a filesystem requested
    the attachment fails without probing or formatting, and leaves nothing behind."""
    ctx = make_ctx(sim, node)
    vid = make_volume(ctx)
    fake_fabric(ctx, vid, node)
    node.no_device_portals.add(next(iter(node.targets.values())).portals[1])
    with pytest.raises(NodeError, match="has not settled"):
        KIND.create(ctx, KIND.spec_from({"volume_id": vid, "filesystem": "ext4"}))
    assert not any(c[0] in ("blkid", "wipefs") or c[0].startswith("mkfs")
                   for c in node.commands)
    assert node.sessions == {} and acl(ctx, vid) == []


_CHAP_STACK = """\
name: chapstack
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: chap-vol
      size: 1
{attachment}"""
_CHAP_ATT = """\
  a:
    type: datera:index:NodeAttachment
    properties:
      volumeId: ${{v.id}}
      node: "ssh://root@n1:22"
      port: {port}
      lun: 1
      chapUsername: chapuser
      chapSecret: {secret}
"""


@pytest.mark.tgt
def test_attachment_chap_survives_its_volume_in_one_stack(tgt_sim, tmp_path):
    """A stack whose Volume declares no CHAP and whose attachment does: the attachment turns
    CHAP on, and the Volume leaves it alone - the plan after up is empty, removing the
    attachment keeps the volume's CHAP, and a new attachment with a wrong secret is then
    refused by the target (tgtd) while the right one logs in. (Before: the Volume's next
    run put auth "none", so CHAP went off under the attachment and a later attachment
    with any secret set its own and logged in - what the real-kernel VM test saw.)"""
    from datera_iac.engine.core import Workspace

    server, dp = tgt_sim
    server.reset()
    dp.reset()
    n1 = LoopbackNode(tmp_path / "n1", initiator_iqn="iqn.2024-01.org.example:chapstack")
    ctx = make_ctx(server, {"ssh://root@n1:22": n1})
    f = tmp_path / "Pulumi.yaml"

    def ws(secret: str | None) -> Workspace:
        att = _CHAP_ATT.format(port=dp.port, secret=secret) if secret else ""
        f.write_text(_CHAP_STACK.format(attachment=att))
        return Workspace(stack_file=f, ctx=ctx, timeouts=ctx.timeouts)

    def auth() -> dict[str, Any]:
        [ai] = list(ctx.client.list("/app_instances", tenant="/root"))
        return ai["storage_instances"][0]["auth"]

    _, result = ws(SECRET).up()
    assert result is not None and result.ok, result.failures
    vid = ws(SECRET).load_state().resources["v"].id
    assert auth()["type"] == "chap" and auth()["target_user_name"] == "chapuser"
    assert not ws(SECRET).preview().changes
    _, result = ws(None).up()  # the attachment goes, the volume stays
    assert result is not None and result.ok, result.failures
    assert auth()["type"] == "chap"
    assert n1.sessions == {}
    _, result = ws("Wrong-Secret-99").up()
    assert result is not None and not result.ok
    msg = result.failures[0].message
    assert "CHAP authentication" in msg and "Wrong-Secret-99" not in msg, msg
    assert n1.sessions == {} and acl(ctx, vid) == []
    _, result = ws(SECRET).up()
    assert result is not None and result.ok, result.failures
    assert len(n1.sessions) == 2 and acl(ctx, vid) == [n1.initiator_iqn]
    assert not ws(SECRET).preview().changes
    _, result = ws(SECRET).up(destroy=True)
    assert result is not None and result.ok, result.failures
