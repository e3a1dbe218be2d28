"""The simulator's tgtd data plane, checked with the real libiscsi userspace initiator over
loopback: discovery, CHAP, ACL, offline/delete, data round trip, resize."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from datera_iac.errors import NodeError
from datera_iac.node.iscsi import Chap
from datera_iac.node.userspace import IscsiLun, LibIscsi
from datera_iac.sim.dataplane import DATA_LUN, TgtDataPlane
from tests.tools import needs

pytestmark = pytest.mark.tgt
_needs = needs("tgtd", "tgtadm", "iscsi-ls", "iscsi-inq", "iscsi-readcapacity16")

INIT = "iqn.2024-01.org.example:node1"
OTHER = "iqn.2024-01.org.example:node2"


@pytest.fixture(scope="module")
def dp(tmp_path_factory):
    plane = TgtDataPlane(portals=["127.0.0.1", "127.0.0.2"],
                         data_dir=tmp_path_factory.mktemp("luns"))
    plane.start()
    yield plane
    pid = plane.pid
    plane.stop()
    assert not plane.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: gone for good


def entities(acl=(INIT,), auth=None, size=1, admin="online", mode="deny_all"):
    ai_id = str(uuid.uuid4())
    vol_uuid = str(uuid.uuid4())
    si = {
        "name": "storage-1", "admin_state": admin, "access_control_mode": mode,
        "access": {"iqn": f"iqn.2013-05.com.daterainc:tc:01:sn:{uuid.uuid4().hex[:16]}",
                   "ips": ["127.0.0.1", "127.0.0.2"]},
        "acl_policy": {"initiators": [{"path": f"/initiators/{i}"} for i in acl],
                       "initiator_groups": []},
        "auth": auth or {"type": "none"},
        "volumes": [{"name": "volume-1", "size": size, "uuid": vol_uuid}],
    }
    ai = {"id": ai_id, "name": "vol", "admin_state": admin, "storage_instances": [si]}
    return ai, si


def lun(dp, si, initiator=INIT, chap=None, portal=0):
    return IscsiLun(dp.portals[portal], si["access"]["iqn"], DATA_LUN, initiator, chap)


@pytest.fixture
def li():
    return LibIscsi(timeout=15)


def test_online_si_is_a_datera_looking_target(dp, li):
    """An online SI is discoverable on both portals with DATERA/IBLOCK inquiry data, the
    volume uuid as unit serial and the volume size as capacity."""
    ai, si = entities(size=2)
    dp.si_changed("/root", ai, si)
    try:
        for p in dp.portals:
            assert si["access"]["iqn"] in li.discover(p, INIT)
        inq = li.inquiry(lun(dp, si, portal=1))
        assert inq == {"vendor": "DATERA", "product": "IBLOCK"}
        assert li.serial(lun(dp, si)) == si["volumes"][0]["uuid"].replace("-", "")
        assert li.capacity(lun(dp, si)) == 2 << 30
    finally:
        dp.si_deleted("/root", ai["id"], "storage-1")


def test_chap_login_and_wrong_secret(dp, li):
    """With CHAP, the right secret logs in, a wrong or missing one fails with a CHAP error."""
    ai, si = entities(auth={"type": "chap", "target_user_name": "chapuser1",
                            "target_pswd": "Secret-0123456"})
    dp.si_changed("/root", ai, si)
    try:
        good = Chap("chapuser1", "Secret-0123456")
        assert li.serial(lun(dp, si, chap=good))
        with pytest.raises(NodeError, match="CHAP authentication .* failed") as ei:
            li.serial(lun(dp, si, chap=Chap("chapuser1", "wrong-secret")))
        assert "wrong-secret" not in str(ei.value)
        with pytest.raises(NodeError):
            li.serial(lun(dp, si))
        # CHAP turned off again on the DSP: login without credentials works
        si["auth"] = {"type": "none"}
        dp.si_changed("/root", ai, si)
        assert li.serial(lun(dp, si))
    finally:
        dp.si_deleted("/root", ai["id"], "storage-1")


def test_acl_hides_target_from_other_initiators(dp, li):
    """An initiator outside the ACL neither discovers nor logs in; adding it grants access,
    removing it takes access away again."""
    ai, si = entities(acl=(INIT,))
    dp.si_changed("/root", ai, si)
    try:
        assert si["access"]["iqn"] not in li.discover(dp.portals[0], OTHER)
        with pytest.raises(NodeError, match="target not found"):
            li.serial(lun(dp, si, initiator=OTHER))
        si["acl_policy"]["initiators"].append({"path": f"/initiators/{OTHER}"})
        dp.si_changed("/root", ai, si)
        assert li.serial(lun(dp, si, initiator=OTHER))
        si["acl_policy"]["initiators"] = [{"path": f"/initiators/{INIT}"}]
        dp.si_changed("/root", ai, si)
        with pytest.raises(NodeError, match="target not found"):
            li.serial(lun(dp, si, initiator=OTHER))
        assert li.serial(lun(dp, si, initiator=INIT))
    finally:
        dp.si_deleted("/root", ai["id"], "storage-1")


def test_data_round_trip_survives_offline(dp, li, tmp_path):
    """Data written through the target reads back, also after an offline/online flip;
    offline removes access, delete removes the data."""
    ai, si = entities()
    dp.si_changed("/root", ai, si)
    src = tmp_path / "src.raw"
    src.write_bytes(os.urandom(3 << 20))
    li.write_image(str(src), lun(dp, si))
    ai["admin_state"] = "offline"
    dp.si_changed("/root", ai, si)
    assert si["access"]["iqn"] not in li.discover(dp.portals[0], INIT)
    ai["admin_state"] = "online"
    dp.si_changed("/root", ai, si)
    back = tmp_path / "back.raw"
    li.read_image(lun(dp, si, portal=1), str(back), size=3 << 20)
    got = back.read_bytes()
    assert len(got) == 3 << 20
    assert hashlib.sha256(got).digest() == hashlib.sha256(src.read_bytes()).digest()
    path = dp.lun_path(ai["id"])
    assert path.exists()
    dp.si_deleted("/root", ai["id"], "storage-1")
    assert not path.exists()
    assert si["access"]["iqn"] not in li.discover(dp.portals[0], INIT)


def test_grow_is_seen_by_the_initiator(dp, li):
    """Growing the volume re-adds the LU; the initiator reads the new capacity."""
    ai, si = entities(size=1)
    dp.si_changed("/root", ai, si)
    try:
        assert li.capacity(lun(dp, si)) == 1 << 30
        si["volumes"][0]["size"] = 3
        dp.si_changed("/root", ai, si)
        assert li.capacity(lun(dp, si)) == 3 << 30
    finally:
        dp.si_deleted("/root", ai["id"], "storage-1")


def test_allow_all_mode(dp, li):
    """access_control_mode allow_all lets any initiator in."""
    ai, si = entities(acl=(), mode="allow_all")
    dp.si_changed("/root", ai, si)
    try:
        assert li.serial(lun(dp, si, initiator=OTHER))
    finally:
        dp.si_deleted("/root", ai["id"], "storage-1")


def test_hidden_secret_is_refused(dp):
    """A store that passes '(hidden)' instead of the CHAP secret gets a clear error."""
    ai, si = entities(auth={"type": "chap", "target_user_name": "chapuser2",
                            "target_pswd": "(hidden)"})
    try:
        with pytest.raises(NodeError, match="not available to the data plane"):
            dp.si_changed("/root", ai, si)
    finally:
        dp.si_deleted("/root", ai["id"], "storage-1")


def test_reset_removes_every_target_and_its_data(dp, li):
    """reset() (the simulator's store was emptied) leaves no target and no LUN file."""
    ai, si = entities()
    dp.si_changed("/root", ai, si)
    assert dp.lun_path(ai["id"]).exists()
    dp.reset()
    assert dp.target_of(ai["id"]) is None and not dp.lun_path(ai["id"]).exists()
    assert si["access"]["iqn"] not in li.discover(dp.portals[0], INIT)


def test_url_quoted_secret_is_masked_too(dp, li, caplog):
    """A CHAP secret with URL-special characters works: libiscsi gets it from the
    environment, not the URL (it does not decode %XX); it never reaches the log."""
    import logging

    caplog.set_level(logging.DEBUG)
    secret = "Se/cr+et%01@x"
    ai, si = entities(auth={"type": "chap", "target_user_name": "chapuser3",
                            "target_pswd": secret})
    dp.si_changed("/root", ai, si)
    try:
        assert li.serial(lun(dp, si, chap=Chap("chapuser3", secret)))
        assert secret not in caplog.text and "chapuser3@127.0.0.1" in caplog.text
    finally:
        dp.si_deleted("/root", ai["id"], "storage-1")
