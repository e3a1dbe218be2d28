"""The iSCSI/multipath helper against a scripted fake node: exact command sequences.

Kernel iSCSI and dm-multipath cannot run on this machine; FakeNode answers the commands
with iscsiadm's formats and exit codes and keeps fake /dev and /sys trees.
"""

from __future__ import annotations

import logging

import pytest

from datera_iac.errors import CommandFailed, InputError, NodeError, WaitTimeout
from datera_iac.node.iscsi import (
    Chap,
    Target,
    normalize_wwid,
    parse_discovery,
    parse_sessions,
    validate_iqn,
    wwid_for_serial,
)
from datera_iac.node.runner import MASK, LocalRunner, mask_argv
from datera_iac.node.testing import FakeLun, FakeNode, FakeTarget

IQN = "iqn.2013-05.com.daterainc:tc:01:sn:0123456789abcdef"
P1, P2 = "172.28.41.63:3260", "172.29.41.29:3260"
SERIAL = "5f3d2a1b-9c8e-4d7f-a6b5-c4d3e2f1a0b9"
WWID = wwid_for_serial(SERIAL)
SECRET = "s3cr3t-chap-Pa55"
MSECRET = "mutual-Secr3t-99"


@pytest.fixture
def node(tmp_path):
    n = FakeNode(tmp_path)
    n.add_target(FakeTarget(IQN, [P1, P2], {0: FakeLun(WWID, SERIAL.replace("-", ""))}))
    return n


def target(chap=None, portals=(P1, P2)):
    return Target(IQN, portals, 0, chap=chap, serial=SERIAL)


def iscsiadm_seq(node):
    return [c for c in node.commands if c[0] != "write"]


def login_seq(portal, chap=None):
    node_ = ["iscsiadm", "-m", "node", "-T", IQN, "-p", portal]
    seq = [
        ["iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", portal],
        node_,
    ]
    if chap:
        seq += [
            [*node_, "--op", "update", "-n", "node.session.auth.authmethod", "-v", "CHAP"],
            [*node_, "--op", "update", "-n", "node.session.auth.username", "-v", chap.username],
            [*node_, "--op", "update", "-n", "node.session.auth.password", "-v", chap.secret],
        ]
        if chap.mutual_username:
            seq += [
                [*node_, "--op", "update", "-n", "node.session.auth.username_in", "-v",
                 chap.mutual_username],
                [*node_, "--op", "update", "-n", "node.session.auth.password_in", "-v",
                 chap.mutual_secret],
            ]
    seq += [
        [*node_, "--login"],
        [*node_, "--op", "update", "-n", "node.startup", "-v", "automatic"],
    ]
    return seq


def test_attach_multipath_exact_sequence(node):
    """Two portals: multipathd check, session check, per-portal discovery/record/login/
    startup, then the map; the device is the WWID-named dm link."""
    att = node.helper().attach(target())
    assert iscsiadm_seq(node) == [
        ["multipathd", "show", "status"],
        ["iscsiadm", "-m", "session"],
        *login_seq(P1),
        *login_seq(P2),
        ["multipath", "-a", WWID],
        ["multipathd", "add", "path", node.dev_root + "/sda"],
        ["multipathd", "add", "path", node.dev_root + "/sdb"],
        ["blockdev", "--getsize64", f"{node.dev_root}/disk/by-id/dm-uuid-mpath-{WWID}"],
    ]
    assert att.device_path == f"{node.dev_root}/disk/by-id/dm-uuid-mpath-{WWID}"
    assert att.wwid == WWID and WWID.startswith("36001405")
    assert att.map_name == WWID
    assert att.devices == (node.dev_root + "/sda", node.dev_root + "/sdb")
    assert [p.state for p in att.paths] == ["up", "up"] and not att.degraded
    assert node.records[(P1, IQN)]["node.startup"] == "automatic"


def test_reattach_is_idempotent(node):
    """A second attach sees both sessions and logs in nowhere; same device."""
    h = node.helper()
    first = h.attach(target())
    node.commands.clear()
    again = h.attach(target())
    assert iscsiadm_seq(node) == [
        ["multipathd", "show", "status"], ["iscsiadm", "-m", "session"],
        ["blockdev", "--getsize64", first.device_path]]
    assert again.device_path == first.device_path and again.devices == first.devices


def test_login_exit_15_counts_as_success(node):
    """A session that appears between the check and the login (exit 15) is success."""
    h = node.helper()
    h.attach(target())
    node.commands.clear()
    node.sessions_hidden = True
    real = node._cmd_iscsiadm

    def session_blind(args):
        if args[:2] == ["-m", "session"]:
            return 21, "", "iscsiadm: No active sessions.\n"
        return real(args)

    node._cmd_iscsiadm = session_blind
    att = h.attach(target())
    logins = [c for c in node.commands if "--login" in c]
    assert len(logins) == 2 and not att.degraded


def test_chap_and_mutual_chap_records(node):
    """CHAP sets authmethod, username, password (and the _in pair for mutual CHAP) on the
    record before login; the target accepts."""
    node.targets[IQN].chap = ("chapuser", SECRET)
    chap = Chap("chapuser", SECRET, "targetuser", MSECRET)
    node.helper().attach(target(chap))
    assert iscsiadm_seq(node)[2:2 + 9] == login_seq(P1, chap)
    assert node.records[(P1, IQN)]["node.session.auth.password_in"] == MSECRET


def test_no_secret_in_logs_or_errors(node, caplog):
    """Every logged command shows the CHAP secrets masked; so does a failure's text."""
    caplog.set_level(logging.DEBUG)
    node.targets[IQN].chap = ("chapuser", SECRET)
    chap = Chap("chapuser", SECRET, "targetuser", MSECRET)
    node.helper().attach(target(chap))
    text = caplog.text
    assert SECRET not in text and MSECRET not in text
    assert f"node.session.auth.password -v {MASK}" in text
    assert f"node.session.auth.password_in -v {MASK}" in text
    # a failing command's error is masked too
    node.helper().detach(target())
    node.fail["--login"] = (1, f"iscsiadm: bad value {SECRET}")
    with pytest.raises(CommandFailed) as ei:
        node.helper().attach(target(Chap("chapuser", SECRET)))
    assert SECRET not in str(ei.value) and MASK in str(ei.value)


def test_mask_argv_without_explicit_secrets():
    """Password-named iscsiadm keys are masked even when the caller passed no secrets."""
    argv = ["iscsiadm", "-m", "node", "--op", "update", "-n",
            "discovery.sendtargets.auth.password", "-v", "pw1", "-n", "x", "-v", "y"]
    assert mask_argv(argv) == [*argv[:8], MASK, "-n", "x", "-v", "y"]


def test_wrong_chap_is_an_error_naming_the_fix(node):
    """Exit 24 (authorization failure) raises, pointing at the CHAP fields."""
    node.targets[IQN].chap = ("chapuser", SECRET)
    with pytest.raises(NodeError, match="CHAP authentication .* failed: check .*chap_secret"):
        node.helper().attach(target(Chap("chapuser", "wrong-secret-1")))
    assert node.sessions == {}
    # the node record that holds the (wrong) secret is not left behind either
    assert (P1, IQN) not in node.records and (P2, IQN) not in node.records, node.records


def test_wrong_mutual_chap_is_an_error_naming_the_mutual_fields(node):
    """The initiator refuses a target whose mutual CHAP answer does not match: a real
    iscsiadm exits 19 for that, as for an ACL rejection (seen on the VM's kernel), so the
    error names the mutual CHAP fields first; no session or node record is left."""
    node.targets[IQN].chap = ("chapuser", SECRET)
    node.targets[IQN].mutual = ("targetuser", "Target-Secret-2")
    with pytest.raises(NodeError, match="mutual CHAP secret .*chap_initiator_secret"):
        node.helper().attach(target(Chap("chapuser", SECRET, "targetuser", "Wrong-Secret-99")))
    assert node.sessions == {} and (P1, IQN) not in node.records
    att = node.helper().attach(target(Chap("chapuser", SECRET, "targetuser", "Target-Secret-2")))
    assert len(att.paths) == 2 and all(p.state == "up" for p in att.paths)


def test_one_portal_failing_attaches_degraded(node):
    """One VIP unreachable (exit 4): attach succeeds over the other path, reports it."""
    node.unreachable[P2] = 4
    att = node.helper().attach(target())
    assert [(p.portal, p.state) for p in att.paths] == [(P1, "up"), (P2, "failed")]
    assert att.degraded and att.devices == (node.dev_root + "/sda",)
    assert "portal unreachable" in att.paths[1].error
    assert att.map_name == WWID  # the map exists with one path; multipathd adds the 2nd later


def test_all_portals_unreachable_is_an_error(node):
    """Exit 8 (timeout) on both portals: NodeError listing each portal's reason."""
    node.unreachable[P1] = 8
    node.unreachable[P2] = 4
    with pytest.raises(NodeError, match=r"any portal \(172.28.41.63:3260: discovery: "
                                        r"connection to the portal timed out; "
                                        r"172.29.41.29:3260: discovery: portal unreachable"):
        node.helper().attach(target())


def test_login_timeout_after_discovery_marks_path_failed(node):
    """A portal that answers discovery but times out on login is a failed path."""
    real = node._login

    def flaky(portal, iqn):
        if portal == P2:
            return 8, "", "iscsiadm: initiator reported error (8 - connection timed out)\n"
        return real(portal, iqn)

    node._login = flaky
    att = node.helper().attach(target())
    assert att.paths[1].state == "failed" and "timed out" in att.paths[1].error


def test_multipathd_absent_with_enforce_changes_nothing(node):
    """enforce_multipath + multipathd down: error before any iscsiadm call."""
    node.multipathd = False
    with pytest.raises(NodeError, match="multipath required .* not running"):
        node.helper().attach(target(), enforce_multipath=True)
    assert node.commands == [["multipathd", "show", "status"]]


def test_multipathd_absent_without_enforce_single_path(node, caplog):
    """multipathd down, not enforced: a warning and one path, stable scsi-<wwid> link."""
    node.multipathd = False
    att = node.helper().attach(target())
    assert iscsiadm_seq(node) == [
        ["multipathd", "show", "status"], ["iscsiadm", "-m", "session"], *login_seq(P1),
        ["blockdev", "--getsize64", f"{node.dev_root}/disk/by-id/scsi-{WWID}"]]
    assert att.device_path == f"{node.dev_root}/disk/by-id/scsi-{WWID}"
    assert att.map_name is None and len(att.paths) == 1
    assert "single path" in caplog.text


def test_multipath_tools_not_installed(node):
    """No multipathd binary counts as not running."""
    node.installed.discard("multipathd")
    with pytest.raises(NodeError, match="multipathd is not installed"):
        node.helper().attach(target(), enforce_multipath=True)


def test_device_never_appears_bounded(node):
    """Login succeeds but no block device: WaitTimeout naming the by-path links, bounded by
    device_timeout on the injected clock."""
    node.device_delay = None
    h = node.helper(device_timeout=5.0)
    with pytest.raises(WaitTimeout, match=r"timed out after 5s waiting for the block device "
                                          rf"of {IQN} lun 0 \(.*by-path/ip-{P1}"):
        h.attach(target())
    assert 5.0 <= node.now < 5.5


def test_devices_appearing_late_are_waited_for(node):
    """Devices that show up after a few polls are found; the wait is not a single check."""
    node.device_delay = 3
    att = node.helper().attach(target())
    assert len(att.devices) == 2 and node.now > 0


def test_wwid_mismatch_refuses_device(node):
    """A device whose WWID and serial do not match the volume is never handed out."""
    node.targets[IQN].luns[0] = FakeLun(wwid_for_serial("ffff" * 8), "ffff" * 8)
    with pytest.raises(NodeError, match="refusing to hand out another volume's disk"):
        node.helper().attach(target())


def test_serial_in_the_kernels_vpd_page_vouches_for_a_non_lio_wwid(node):
    """A LUN whose WWID is not LIO's (tgt, and any non-LIO target, builds its own NAA) is
    accepted when the unit serial is the volume's. The kernel's vpd_pg80 is the raw page:
    a binary header (page code 0x80, read as text: U+FFFD) before the serial; the real
    kernel showed the header used to end up in the serial, refusing the volume's own disk."""
    tgt_wwid = "360000000000000000e00000000010001"
    node.targets[IQN].luns[0] = FakeLun(tgt_wwid, SERIAL.replace("-", ""))
    att = node.helper().attach(target())
    assert att.wwid == tgt_wwid and len(att.devices) == 2
    assert node.helper().device_serial(att.devices[0]) == SERIAL.replace("-", "")


def test_initiator_outside_acl(node):
    """Discovery does not offer the target to a foreign initiator: all paths fail."""
    node.targets[IQN].acl = {"iqn.2000-01.com.example:other"}
    with pytest.raises(NodeError, match="not offered by sendtargets"):
        node.helper().attach(target())


def test_detach_exact_sequence(node):
    """Detach: flush this map only, flush + delete each sd, wait for removal, then per
    portal startup manual, logout, delete record."""
    h = node.helper()
    h.attach(target())
    node.commands.clear()
    h.detach(target())
    n1 = ["iscsiadm", "-m", "node", "-T", IQN, "-p", P1]
    n2 = ["iscsiadm", "-m", "node", "-T", IQN, "-p", P2]
    sys = node.sys_root
    assert node.commands == [
        ["iscsiadm", "-m", "session"],
        ["multipathd", "disablequeueing", "map", WWID],
        ["multipath", "-f", WWID],
        ["blockdev", "--flushbufs", node.dev_root + "/sda"],
        ["write", f"{sys}/block/sda/device/delete", "1"],
        ["blockdev", "--flushbufs", node.dev_root + "/sdb"],
        ["write", f"{sys}/block/sdb/device/delete", "1"],
        [*n1, "--op", "update", "-n", "node.startup", "-v", "manual"],
        [*n1, "--logout"],
        [*n1, "--op", "delete"],
        [*n2, "--op", "update", "-n", "node.startup", "-v", "manual"],
        [*n2, "--logout"],
        [*n2, "--op", "delete"],
    ]
    assert node.sessions == {} and node.records == {}
    assert not (node.root / "dev/disk/by-id" / f"dm-uuid-mpath-{WWID}").exists()


def test_detach_again_is_nothing_to_do(node):
    """A second detach finds nothing (exit 21 everywhere) and succeeds."""
    h = node.helper()
    h.attach(target())
    h.detach(target())
    node.commands.clear()
    h.detach(target())
    n1 = ["iscsiadm", "-m", "node", "-T", IQN, "-p", P1]
    n2 = ["iscsiadm", "-m", "node", "-T", IQN, "-p", P2]
    assert node.commands == [["iscsiadm", "-m", "session"], [*n1, "--op", "delete"],
                             [*n2, "--op", "delete"]]


def test_detach_keeps_session_with_other_luns(node):
    """A session that also carries LUN 1 is not logged out when LUN 0 is detached."""
    other = FakeLun(wwid_for_serial("ab" * 16), "ab" * 16)
    node.targets[IQN].luns[1] = other
    h = node.helper()
    h.attach(target())
    node.commands.clear()
    h.detach(target())
    assert not any("--logout" in c for c in node.commands)
    assert len(node.sessions) == 2
    assert (node.root / f"dev/disk/by-path/ip-{P1}-iscsi-{IQN}-lun-1").exists()


def test_extend_rescans_and_resizes_map(node):
    """Extend: rescan each path, resize this map, report the size the node sees."""
    h = node.helper()
    h.attach(target())
    node.targets[IQN].luns[0].size = 20 << 30
    node.commands.clear()
    size = h.extend(target())
    assert size == 20 << 30
    assert node.commands == [
        ["write", f"{node.sys_root}/block/sda/device/rescan", "1"],
        ["write", f"{node.sys_root}/block/sdb/device/rescan", "1"],
        ["multipathd", "resize", "map", WWID],
        ["blockdev", "--getsize64", f"{node.dev_root}/mapper/{WWID}"],
    ]


def test_initiator_iqn_read_and_validated(node, tmp_path):
    """The IQN comes from initiatorname.iscsi; a malformed one is an InputError."""
    assert node.helper().initiator_iqn() == node.initiator_iqn
    (node.root / "etc/iscsi/initiatorname.iscsi").write_text("InitiatorName=not an iqn\n")
    with pytest.raises(InputError, match="not a valid iSCSI name"):
        node.helper().initiator_iqn()
    (node.root / "etc/iscsi/initiatorname.iscsi").unlink()
    with pytest.raises(NodeError, match="missing"):
        node.helper().initiator_iqn()


def test_parsers_and_ids():
    """Session/discovery parsing, WWID spellings and IQN validation."""
    assert parse_sessions("tcp: [3] 10.0.0.1:3260,1 iqn.2013-05.com.daterainc:x (non-flash)\n")[0] \
        .portal == "10.0.0.1:3260"
    assert parse_discovery("10.0.0.1:3260,1 iqn.a.b:c\nnoise\n") == [("10.0.0.1:3260", "iqn.a.b:c")]
    assert normalize_wwid("naa.6001405abc") == "36001405abc"
    assert wwid_for_serial("ABCDEF") == "36001405abcdef" + "0" * 19
    assert len(wwid_for_serial(SERIAL)) == 33
    assert validate_iqn(" iqn.1993-08.org.debian:01:abc ") == "iqn.1993-08.org.debian:01:abc"
    for bad in ("iqn.93-08.org:x", "", "IQN.1993-08.org.x", "iqn.1993-08.org.x y"):
        with pytest.raises(InputError):
            validate_iqn(bad)


def test_chap_validation():
    """Mutual CHAP needs both halves and a different secret."""
    with pytest.raises(InputError, match="both"):
        Chap("u1x", "secret12345", "m", None)
    with pytest.raises(InputError, match="must differ"):
        Chap("u1x", "secret12345", "mutual", "secret12345")
    assert "secret12345" not in repr(Chap("u1x", "secret12345"))


def test_portal_must_be_ip_port():
    """Host names are refused: by-path links carry IPs."""
    with pytest.raises(NodeError, match="not ip:port"):
        Target(IQN, ["storage.example.com:3260"])


def test_local_runner_argv_only_and_timeout(tmp_path):
    """The real runner takes argv lists only, reports exit codes, and kills at the timeout."""
    r = LocalRunner()
    with pytest.raises(TypeError):
        r.run("echo hi")  # type: ignore[arg-type]
    assert r.run(["sh", "-c", "exit 3"], ok_codes=(3,)).code == 3
    with pytest.raises(CommandFailed, match="killed after the 0.2s timeout"):
        r.run(["sleep", "5"], timeout=0.2)
    with pytest.raises(NodeError, match="not installed"):
        r.run(["definitely-not-a-command-xyz"])


def test_detach_of_a_busy_map_names_the_fix(node):
    """multipath -f failing (map in use) stops the detach before any logout, with a hint."""
    h = node.helper()
    h.attach(target())
    node.fail["multipath -f"] = (1, f"{WWID}: map in use")
    with pytest.raises(NodeError, match="map in use.*unmount it and release its holders"):
        h.detach(target())
    assert len(node.sessions) == 2 and not any("--logout" in c for c in node.commands)


def test_remains_report_what_detach_removes(node):
    """remains(): everything of one LUN (sessions, records, devices, map) after attach;
    after a detach interrupted at logout: sessions and records, no device, no map; after
    the re-run: nothing (falsy). It changes nothing and lists records with one call."""
    from datera_iac.node.iscsi import Remains

    h = node.helper()
    assert not h.remains(target())
    h.attach(target())
    r = h.remains(target())
    assert r == Remains((P1, P2), (P1, P2), (node.dev_root + "/sda", node.dev_root + "/sdb"),
                        WWID)
    assert r.describe() == f"2 sessions, 2 node records, 2 SCSI devices, multipath map {WWID}"
    node.fail = {"--logout": (8, "iscsiadm: connection timed out\n")}
    with pytest.raises(CommandFailed):
        h.detach(target())
    node.fail = {}
    node.commands.clear()
    r = h.remains(target())
    assert r == Remains((P1, P2), (P1, P2), (), None) and r.describe() == "2 sessions, 2 node records"
    assert node.commands == [["iscsiadm", "-m", "session"], ["iscsiadm", "-m", "node"]]
    h.detach(target())
    assert not h.remains(target()) and h.remains(target()).describe() == "nothing"
    assert node.sessions == {} and node.records == {}


def test_records_of_other_targets_are_not_remains(node):
    """A node record of another target (or of a portal the target does not have) is not
    part of this LUN's remains."""
    node.records[(P1, "iqn.2013-05.com.daterainc:tc:01:sn:ffffffffffffffff")] = {}
    node.records[("10.9.9.9:3260", IQN)] = {}
    assert not node.helper().remains(target())


def test_detach_flushes_a_map_left_without_paths(node):
    """A map whose SCSI devices are gone (paths lost, or a detach interrupted after the sd
    delete) is found by the volume's WWID (the target's serial) and flushed before the
    logout."""
    h = node.helper()
    h.attach(target())
    for sd in ("sda", "sdb"):
        node.write_text(f"{node.sys_root}/block/{sd}/device/delete", "1")
    assert h.inspect(target()) is None
    assert h.remains(target()).map_name == WWID
    node.commands.clear()
    h.detach(target())
    assert ["multipath", "-f", WWID] in node.commands
    assert node.commands.index(["multipath", "-f", WWID]) < next(
        i for i, c in enumerate(node.commands) if "--logout" in c)
    assert not (node.root / "dev/disk/by-id" / f"dm-uuid-mpath-{WWID}").exists()
    assert not h.remains(target())
