"""A scripted fake node for tests: the kernel iSCSI / dm-multipath edge, simulated.

Kernel iSCSI login, udev links and dm-multipath cannot run on CI machines (no modules,
no device-mapper). :class:`FakeNode` is a :class:`~datera_iac.node.runner.Runner` that
answers ``iscsiadm``, ``multipath``, ``multipathd``, ``blockdev``, ``blkid``, ``wipefs``,
``mkfs.*``, ``mount`` and ``umount`` with the real tools' output formats and exit codes, and
keeps a fake ``/dev``, ``/sys``, ``/etc/iscsi`` and ``/proc`` tree under a temporary root,
so the helper's real path logic (links, holders, WWIDs, sysfs deletes) runs unchanged.

It records every command (``commands``: raw argv lists) so tests assert exact sequences.
The storage side is a small fabric: :meth:`add_target` declares what each portal serves.
Other engineers' tests may use it to drive a NodeAttachment without a kernel.
"""

from __future__ import annotations

import os
import shutil
import functools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from datera_iac.node import codes
from datera_iac.node.iscsi import IscsiHelper
from datera_iac.node.runner import Runner

__all__ = ["FakeLun", "FakeTarget", "FakeNode", "LoopbackNode"]


@attrs.define
class FakeLun:
    wwid: str
    serial: str
    size: int = 1 << 30
    signature: str | None = None  #: filesystem / partition table on it (None = blank)
    fs_size: int | None = None  #: bytes the filesystem spans (set by mkfs, grown by resize)


@attrs.define
class FakeTarget:
    iqn: str
    portals: list[str]
    luns: dict[int, FakeLun]
    acl: set[str] | None = None  #: allowed initiator IQNs; None = any
    chap: tuple[str, str] | None = None  #: (user, secret) the target requires
    mutual: tuple[str, str] | None = None  #: (user, secret) it answers mutual CHAP with; None = not checked


class FakeNode(Runner):
    """A fake Linux node. ``root`` is a temporary directory it owns."""

    where = "fake-node"

    def __init__(self, root: str | os.PathLike[str], *,
                 initiator_iqn: str = "iqn.1993-08.org.debian:01:fakenode",
                 machine_id: str | None = "0123456789abcdef0123456789abcdef",
                 multipathd: bool = True,
                 installed: Iterable[str] = ("iscsiadm", "multipath", "multipathd", "blkid",
                                             "wipefs", "mkfs.ext4", "mkfs.xfs", "blockdev", "mount",
                                             "umount", "resize2fs", "xfs_growfs", "btrfs")):
        self.root = Path(root)
        self.dev_root = str(self.root / "dev")
        self.sys_root = str(self.root / "sys")
        self.iscsi_root = str(self.root / "etc/iscsi")
        self.proc_root = str(self.root / "proc")
        for d in (self.dev_root + "/disk/by-path", self.dev_root + "/disk/by-id",
                  self.dev_root + "/mapper", self.sys_root + "/block", self.iscsi_root,
                  self.proc_root):
            os.makedirs(d, exist_ok=True)
        self.initiator_iqn = initiator_iqn
        Path(self.iscsi_root, "initiatorname.iscsi").write_text(
            f"## DO NOT EDIT\nInitiatorName={initiator_iqn}\n")
        Path(self.proc_root, "mounts").write_text("")
        self.machine_id_path = str(self.root / "etc/machine-id")
        if machine_id is not None:
            Path(self.machine_id_path).write_text(machine_id + "\n")
        self.multipathd = multipathd
        self.installed = set(installed)
        self.targets: dict[str, FakeTarget] = {}
        #: portal -> exit code its connections fail with (4 refused, 8 timeout)
        self.unreachable: dict[str, int] = {}
        self.sessions: dict[tuple[str, str], int] = {}
        self.records: dict[tuple[str, str], dict[str, str]] = {}
        self.commands: list[list[str]] = []
        #: devices appear only after this many polls of their by-path link (0 = at once);
        #: None = never (a LUN that never shows up).
        self.device_delay: int | None = 0
        #: portals whose sessions come up without a block device (a scan that never ends)
        self.no_device_portals: set[str] = set()
        self.mounts: dict[str, str] = {}
        #: a substring of the joined argv -> the (exit code, stderr) that command returns
        self.fail: dict[str, tuple[int, str]] = {}
        self._next_sid = 1
        self._next_sd = 0
        self._next_dm = 0
        self._pending: list[tuple[int, Callable[[], None]]] = []
        self.probe_error = False

    # ---- fabric ------------------------------------------------------------------------

    def add_target(self, target: FakeTarget) -> FakeTarget:
        self.targets[target.iqn] = target
        return target

    def helper(self, **kw) -> IscsiHelper:
        """An IscsiHelper wired to this node's roots, with a no-op sleep."""
        opts: dict[str, Any] = dict(dev_root=self.dev_root, sys_root=self.sys_root, iscsi_root=self.iscsi_root,
                    machine_id_path=self.machine_id_path,
                    device_timeout=2.0, multipath_timeout=2.0, poll_interval=0.1,
                    clock=self.clock, sleep=self.sleep)
        opts.update(kw)
        return IscsiHelper(self, **opts)

    # a fake clock: each sleep advances it, and runs delayed kernel events
    now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        due = [(n - 1, f) for n, f in self._pending]
        self._pending = []
        for n, f in due:
            if n <= 0:
                f()
            else:
                self._pending.append((n, f))

    # ---- Runner: files (under the fake root; absolute paths are used as given) ----------

    def read_text(self, path: str) -> str | None:
        try:  # undecodable bytes replaced, as the Local and SSH runners do
            return Path(path).read_text(errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def write_text(self, path: str, data: str) -> None:
        self.commands.append(["write", path, data])
        p = Path(path)
        if p.name == "delete" and p.parent.name == "device" and data.strip() == "1":
            self._remove_sd(p.parent.parent.name)
            return
        if p.name == "rescan":
            return
        p.write_text(data)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def realpath(self, path: str) -> str | None:
        return os.path.realpath(path) if os.path.exists(path) else None

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def makedirs(self, path: str) -> None:
        """Only under the fake root; a mount point like /mnt/x is recorded, not created."""
        if os.path.abspath(path).startswith(str(self.root) + os.sep):
            os.makedirs(path, exist_ok=True)
        else:
            self.commands.append(["mkdir", "-p", path])

    def which(self, program: str) -> bool:
        return program in self.installed

    # ---- Runner: commands -------------------------------------------------------------

    def _execute(self, argv: list[str], *, timeout: float, input: str | None,
                 env: Any = None):
        self.commands.append(list(argv))
        joined = " ".join(argv)
        for key, (code, err) in self.fail.items():
            if key in joined:
                return code, "", err
        if argv[0] not in self.installed:
            from datera_iac.errors import NodeError
            raise NodeError(f"{argv[0]} is not installed on this node")
        handler = getattr(self, "_cmd_" + argv[0].replace(".", "_").replace("-", "_"), None)
        if handler is None:
            return 0, "", ""
        return handler(argv[1:])

    def _opt(self, args: list[str], *names: str) -> str | None:
        for i, a in enumerate(args):
            if a in names and i + 1 < len(args):
                return args[i + 1]
        return None

    def _cmd_iscsiadm(self, args: list[str]):
        mode = self._opt(args, "-m", "--mode")
        if mode == "session" and ("--rescan" in args or "-R" in args):
            sid = int(self._opt(args, "-r", "--sid") or 0)
            key = next((k for k, v in self.sessions.items() if v == sid), None)
            if key is None:
                return codes.ISCSI_ERR_NO_OBJS_FOUND, "", "iscsiadm: No session found.\n"
            portal, iqn = key
            t = self.targets.get(iqn)
            for lun, spec in (t.luns if t else {}).items():
                link = f"{self.dev_root}/disk/by-path/ip-{portal}-iscsi-{iqn}-lun-{lun}"
                if not self.realpath(link) and portal not in self.no_device_portals:
                    self._later(functools.partial(self._add_sd, portal, iqn, lun, spec))
            return 0, f"Rescanning session [sid: {sid}, target: {iqn}, portal: {portal}]\n", ""
        if mode == "session":
            if not self.sessions:
                return codes.ISCSI_ERR_NO_OBJS_FOUND, "", "iscsiadm: No active sessions.\n"
            lines = [f"tcp: [{sid}] {p},1 {iqn} (non-flash)"
                     for (p, iqn), sid in sorted(self.sessions.items(), key=lambda x: x[1])]
            return 0, "\n".join(lines) + "\n", ""
        if mode == "discovery":
            return self._discovery(self._opt(args, "-p", "--portal") or "")
        if mode == "node" and len(args) == 2:  # `iscsiadm -m node`: list every record
            if not self.records:
                return codes.ISCSI_ERR_NO_OBJS_FOUND, "", "iscsiadm: No records found\n"
            return 0, "".join(f"{p},1 {iqn}\n" for p, iqn in sorted(self.records)), ""
        if mode == "node":
            iqn = self._opt(args, "-T", "--targetname") or ""
            portal = self._opt(args, "-p", "--portal") or ""
            key = (portal, iqn)
            op = self._opt(args, "--op", "-o")
            if op == "new":
                self.records[key] = {"node.startup": "manual"}
                return 0, f"New iSCSI node [tcp:[hw=,ip=,net_if=,iscsi_if=default] {portal},-1 {iqn}] added\n", ""
            if op == "update":
                if key not in self.records:
                    return codes.ISCSI_ERR_NO_OBJS_FOUND, "", "iscsiadm: No records found\n"
                self.records[key][self._opt(args, "-n", "--name") or ""] = (
                    self._opt(args, "-v", "--value") or "")
                return 0, "", ""
            if op == "delete":
                if key not in self.records:
                    return codes.ISCSI_ERR_NO_OBJS_FOUND, "", "iscsiadm: No records found\n"
                del self.records[key]
                return 0, "", ""
            if "--login" in args or "-l" in args:
                return self._login(portal, iqn)
            if "--logout" in args or "-u" in args:
                if key not in self.sessions:
                    return codes.ISCSI_ERR_NO_OBJS_FOUND, "", (
                        "iscsiadm: No matching sessions found\n")
                del self.sessions[key]
                for n in self.listdir(self.dev_root + "/disk/by-path"):
                    if n.startswith(f"ip-{portal}-iscsi-{iqn}-lun-"):
                        real = self.realpath(f"{self.dev_root}/disk/by-path/{n}")
                        if real:
                            self._remove_sd(os.path.basename(real))
                return 0, f"Logout of [sid: 1, target: {iqn}, portal: {portal}] successful.\n", ""
            if key in self.records:
                return 0, "\n".join(f"{k} = {v}" for k, v in self.records[key].items()), ""
            return codes.ISCSI_ERR_NO_OBJS_FOUND, "", "iscsiadm: No records found\n"
        return 1, "", f"fake iscsiadm: unsupported {args}\n"

    def _discovery(self, portal: str) -> tuple[int, str, str]:
        """sendtargets against ``portal``: what the fabric offers this initiator."""
        if portal in self.unreachable:
            return self.unreachable[portal], "", (
                f"iscsiadm: cannot make connection to {portal}: Connection refused\n")
        lines = []
        for t in self.targets.values():
            if portal in t.portals and self._allowed(t):
                for p in t.portals:
                    lines.append(f"{p},1 {t.iqn}")
        return self._discovered(lines)

    def _discovered(self, lines: list[str]) -> tuple[int, str, str]:
        for line in lines:
            p, iqn = line.split(",", 1)[0], line.split()[1]
            self.records.setdefault((p, iqn), {"node.startup": "manual"})
        if not lines:
            return codes.ISCSI_ERR_NO_OBJS_FOUND, "", "iscsiadm: No portals found\n"
        return 0, "\n".join(lines) + "\n", ""

    def _allowed(self, t: FakeTarget) -> bool:
        return t.acl is None or self.initiator_iqn in t.acl

    def _login(self, portal: str, iqn: str):
        key = (portal, iqn)
        if key in self.sessions:
            return codes.ISCSI_ERR_SESS_EXISTS, "", "iscsiadm: default: 1 session requested, but 1 already present.\n"
        if key not in self.records:
            return codes.ISCSI_ERR_NO_OBJS_FOUND, "", "iscsiadm: No records found\n"
        code, err, luns = self._authorize(portal, iqn, self.records[key])
        if code != 0:
            return code, "", err
        sid = self._next_sid
        self._next_sid += 1
        self.sessions[key] = sid
        for lun, spec in (luns or {}).items():
            if portal in self.no_device_portals:
                continue
            self._later(functools.partial(self._add_sd, portal, iqn, lun, spec))
        return 0, f"Login to [iface: default, target: {iqn}, portal: {portal}] successful.\n", ""

    def _authorize(self, portal: str, iqn: str, rec: dict[str, str]
                   ) -> tuple[int, str, dict[int, FakeLun] | None]:
        """The login decision: (exit code, stderr, the LUNs the session carries)."""
        if portal in self.unreachable:
            return self.unreachable[portal], (
                f"iscsiadm: Could not login to [iface: default, target: {iqn}, portal: {portal}].\n"
                "iscsiadm: initiator reported error (8 - connection timed out)\n"), None
        t = self.targets.get(iqn)
        if t is None or portal not in t.portals or not self._allowed(t):
            return codes.ISCSI_ERR_FATAL_LOGIN, "iscsiadm: initiator reported error (19 - encountered non-retryable iSCSI login failure)\n", None
        if t.chap:
            if (rec.get("node.session.auth.authmethod") != "CHAP"
                    or rec.get("node.session.auth.username") != t.chap[0]
                    or rec.get("node.session.auth.password") != t.chap[1]):
                return codes.ISCSI_ERR_LOGIN_AUTH_FAILED, "iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)\n", None
        want_in = (rec.get("node.session.auth.username_in"), rec.get("node.session.auth.password_in"))
        if t.chap and t.mutual and any(want_in) and want_in != t.mutual:
            # the initiator refuses a target that does not prove the mutual secret; a real
            # iscsiadm reports this with exit 19, like an ACL rejection (seen in the VM test)
            return codes.ISCSI_ERR_FATAL_LOGIN, "iscsiadm: initiator reported error (19 - encountered non-retryable iSCSI login failure)\n", None
        return 0, "", t.luns

    def _later(self, f: Callable[[], None]) -> None:
        if self.device_delay is None:
            return
        if self.device_delay == 0:
            f()
        else:
            self._pending.append((self.device_delay, f))

    def _add_sd(self, portal: str, iqn: str, lun: int, spec: FakeLun) -> None:
        if (portal, iqn) not in self.sessions:
            return
        name = "sd" + chr(ord("a") + self._next_sd)
        self._next_sd += 1
        Path(self.dev_root, name).write_text("")
        dev = Path(self.sys_root, "block", name, "device")
        dev.mkdir(parents=True)
        Path(self.sys_root, "block", name, "holders").mkdir()
        (dev / "wwid").write_text("naa." + spec.wwid[1:] + "\n")
        # the page as the kernel exposes it: a binary 4-byte header (device type, page
        # code 0x80, length), then the serial
        (dev / "vpd_pg80").write_bytes(bytes([0, 0x80, 0, len(spec.serial)])
                                       + spec.serial.encode())
        link = Path(self.dev_root, "disk/by-path", f"ip-{portal}-iscsi-{iqn}-lun-{lun}")
        link.symlink_to(f"../../{name}")
        byid = Path(self.dev_root, "disk/by-id", f"scsi-{spec.wwid}")
        if not byid.is_symlink():
            byid.symlink_to(f"../../{name}")

    def _remove_sd(self, name: str) -> None:
        shutil.rmtree(Path(self.sys_root, "block", name), ignore_errors=True)
        Path(self.dev_root, name).unlink(missing_ok=True)
        for d in ("disk/by-path", "disk/by-id"):
            for n in self.listdir(f"{self.dev_root}/{d}"):
                p = Path(self.dev_root, d, n)
                if p.is_symlink() and os.readlink(p).endswith("/" + name):
                    p.unlink()

    def _cmd_multipathd(self, args: list[str]):
        if not self.multipathd:
            return 1, "", "error receiving packet\n"
        if args[:2] == ["show", "status"]:
            return 0, "path checker states:\nup 2\npaths: 2\nbusy: False\n", ""
        if args[:2] == ["add", "path"]:
            name = os.path.basename(args[2])
            wwid = "3" + (self.read_text(f"{self.sys_root}/block/{name}/device/wwid") or "")[4:].strip()
            dm = self._dm_for(wwid)
            Path(self.sys_root, "block", name, "holders", dm).write_text("")
            return 0, "ok\n", ""
        if args[:2] == ["resize", "map"] or args[:2] == ["disablequeueing", "map"]:
            return 0, "ok\n", ""
        return 1, "", f"fake multipathd: unsupported {args}\n"

    def _dm_for(self, wwid: str) -> str:
        for dm in self.listdir(self.sys_root + "/block"):
            if dm.startswith("dm-") and self.read_text(
                    f"{self.sys_root}/block/{dm}/dm/name") == wwid + "\n":
                return dm
        dm = f"dm-{self._next_dm}"
        self._next_dm += 1
        Path(self.sys_root, "block", dm, "dm").mkdir(parents=True)
        Path(self.sys_root, "block", dm, "dm/name").write_text(wwid + "\n")
        Path(self.dev_root, dm).write_text("")
        Path(self.dev_root, "mapper", wwid).symlink_to(f"../{dm}")
        Path(self.dev_root, "disk/by-id", f"dm-uuid-mpath-{wwid}").symlink_to(f"../../{dm}")
        return dm

    def _cmd_multipath(self, args: list[str]):
        if args[:1] == ["-a"]:
            return 0, f"wwid '{args[1]}' added\n", ""
        if args[:1] == ["-f"]:
            name = args[1]
            for dm in self.listdir(self.sys_root + "/block"):
                if dm.startswith("dm-") and self.read_text(
                        f"{self.sys_root}/block/{dm}/dm/name") == name + "\n":
                    shutil.rmtree(Path(self.sys_root, "block", dm))
                    Path(self.dev_root, dm).unlink(missing_ok=True)
                    Path(self.dev_root, "mapper", name).unlink(missing_ok=True)
                    Path(self.dev_root, "disk/by-id", f"dm-uuid-mpath-{name}").unlink(
                        missing_ok=True)
                    for sd in self.listdir(self.sys_root + "/block"):
                        Path(self.sys_root, "block", sd, "holders", dm).unlink(missing_ok=True)
                    return 0, "", ""
            return 1, "", f"{name}: map does not exist\n"
        if args[:1] == ["-F"]:
            raise AssertionError("multipath -F flushes every map on the node: never run it")
        return 0, "", ""

    def _all_luns(self) -> Iterable[FakeLun]:
        for t in self.targets.values():
            yield from t.luns.values()

    def _lun_for(self, device: str) -> FakeLun | None:
        real = os.path.realpath(device)
        name = os.path.basename(real)
        wwid = None
        if name.startswith("dm-"):
            wwid = (self.read_text(f"{self.sys_root}/block/{name}/dm/name") or "").strip()
        else:
            raw = self.read_text(f"{self.sys_root}/block/{name}/device/wwid")
            wwid = "3" + raw.strip()[4:] if raw else None
        for lun in self._all_luns():
            if lun.wwid == wwid:
                return lun
        return None

    def _cmd_blockdev(self, args: list[str]):
        if args[0] == "--getsize64":
            lun = self._lun_for(args[1])
            return (0, f"{lun.size}\n", "") if lun else (1, "", "no such device\n")
        return 0, "", ""

    def _cmd_blkid(self, args: list[str]):
        if self.probe_error:
            return 4, "", "blkid: error: cannot read the device\n"
        lun = self._lun_for(args[-1])
        if lun is None:
            return 4, "", f"blkid: error: {args[-1]}: No such file or directory\n"
        if lun.signature is None:
            return codes.BLKID_NOTHING, "", ""
        if lun.signature.startswith("partition table "):
            return 0, f"DEVNAME={args[-1]}\nPTTYPE={lun.signature.split()[-1]}\n", ""
        return 0, f"DEVNAME={args[-1]}\nTYPE={lun.signature}\n", ""

    def _cmd_wipefs(self, args: list[str]):
        lun = self._lun_for(args[-1])
        return 0, (lun.signature + "\n" if lun and lun.signature else ""), ""

    def _mkfs(self, fstype: str, args: list[str]):
        lun = self._lun_for(args[-1])
        if lun is None:
            return 1, "", "no device\n"
        lun.signature = fstype
        lun.fs_size = lun.size
        return 0, "", ""

    def _grow(self, lun: FakeLun | None, want: tuple[str, ...], what: str):
        if lun is None or lun.signature not in want:
            return 1, "", f"{what}: no {'/'.join(want)} filesystem found\n"
        if lun.fs_size is not None and lun.fs_size >= lun.size:
            return 0, "The filesystem is already as large as the device. Nothing to do!\n", ""
        lun.fs_size = lun.size
        return 0, f"The filesystem is now {lun.size} bytes long.\n", ""

    def _mounted_lun(self, mount_point: str) -> FakeLun | None:
        device = self.mounts.get(mount_point.rstrip("/") or "/")
        return self._lun_for(device) if device else None

    def _cmd_resize2fs(self, args: list[str]):
        # online when mounted, like the real tool; unmounted it wants a forced fsck first
        lun = self._lun_for(args[-1])
        if lun is not None and os.path.realpath(args[-1]) not in {
                os.path.realpath(d) for d in self.mounts.values()}:
            return 1, "", f"Please run 'e2fsck -f {args[-1]}' first.\n"
        return self._grow(lun, ("ext4", "ext3", "ext2"), "resize2fs")

    def _cmd_xfs_growfs(self, args: list[str]):
        return self._grow(self._mounted_lun(args[-1]), ("xfs",), "xfs_growfs")

    def _cmd_btrfs(self, args: list[str]):
        if args[:3] != ["filesystem", "resize", "max"]:
            return 1, "", "btrfs: unsupported command in this fake\n"
        return self._grow(self._mounted_lun(args[-1]), ("btrfs",), "btrfs")

    def _cmd_mkfs_ext4(self, args: list[str]):
        return self._mkfs("ext4", args)

    def _cmd_mkfs_xfs(self, args: list[str]):
        return self._mkfs("xfs", args)

    def _cmd_mount(self, args: list[str]):
        self.mounts[args[-1]] = args[-2]
        self._write_mounts()
        return 0, "", ""

    def _cmd_umount(self, args: list[str]):
        if self.mounts.pop(args[-1], None) is None:
            return 32, "", f"umount: {args[-1]}: not mounted.\n"
        self._write_mounts()
        return 0, "", ""

    def _write_mounts(self) -> None:
        Path(self.proc_root, "mounts").write_text(
            "".join(f"{d} {m} ext4 rw 0 0\n" for m, d in self.mounts.items()))


class LoopbackNode(FakeNode):
    """A FakeNode whose network half is real: sendtargets and login go to a real iSCSI
    target (the simulator's tgtd data plane) over loopback through libiscsi, with the CHAP
    credentials of the node record. Only the kernel half (sd devices, udev links, dm maps)
    stays simulated, so the attach code runs against a live target's ACL and CHAP.

    ``luns``: the LUNs a session is checked for (the data plane serves LUN 1).
    """

    where = "loopback-node"

    def __init__(self, root: str | os.PathLike[str], *, luns: Iterable[int] = (1,), **kw):
        super().__init__(root, **kw)
        from datera_iac.node.userspace import LibIscsi

        self.li = LibIscsi(timeout=15)
        self.luns = tuple(luns)
        self._seen: dict[str, FakeLun] = {}

    def _all_luns(self) -> Iterable[FakeLun]:
        yield from self._seen.values()

    def _discovery(self, portal: str) -> tuple[int, str, str]:
        from datera_iac.errors import NodeError

        if portal in self.unreachable:
            return super()._discovery(portal)
        try:
            iqns = self.li.discover(portal, self.initiator_iqn)
        except NodeError as e:
            return codes.ISCSI_ERR_TRANS, "", f"iscsiadm: {e}\n"
        return self._discovered([f"{portal},1 {iqn}" for iqn in iqns])

    def _authorize(self, portal: str, iqn: str, rec: dict[str, str]
                   ) -> tuple[int, str, dict[int, FakeLun] | None]:
        from datera_iac.errors import NodeError
        from datera_iac.node.iscsi import Chap, wwid_for_serial
        from datera_iac.node.userspace import IscsiLun

        chap = None
        if rec.get("node.session.auth.authmethod") == "CHAP":
            chap = Chap(rec.get("node.session.auth.username", ""),
                        rec.get("node.session.auth.password", ""))
        found: dict[int, FakeLun] = {}
        for lun in self.luns:
            where = IscsiLun(portal, iqn, lun, self.initiator_iqn, chap)
            try:
                serial = self.li.serial(where)
                size = self.li.capacity(where)
            except NodeError as e:
                text = str(e)
                if "CHAP" in text:
                    return codes.ISCSI_ERR_LOGIN_AUTH_FAILED, f"iscsiadm: {text}\n", None
                if "not found" in text:
                    return codes.ISCSI_ERR_FATAL_LOGIN, f"iscsiadm: {text}\n", None
                return codes.ISCSI_ERR_TRANS_TIMEOUT, f"iscsiadm: {text}\n", None
            found[lun] = self._seen.setdefault(serial, FakeLun(wwid_for_serial(serial),
                                                               serial, size))
        return 0, "", found
