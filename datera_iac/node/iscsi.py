"""Attach, detach and extend an iSCSI volume on a Linux node, with dm-multipath.

This is the node half of a NodeAttachment. It follows the careful peers (os-brick's
``ISCSIConnector``, csi-lib-iscsi) and avoids their known failure modes:

* **idempotent login**: ``iscsiadm -m session`` first; a listed (portal, iqn) is reused,
  and login exit 15 ("session exists") counts as success;
* **explicit node records**: ``-m node --op new`` when missing, CHAP (one-way and mutual)
  by ``--op update``, then ``node.startup automatic`` so the node logs in again at boot;
* **per-portal failure is a degraded path, not a failed attach** (unreachable portal: exit 4
  or 8), while CHAP rejection (24) and ACL rejection (19) are errors naming the fix;
* **multipathd is checked before anything changes**: absent + ``enforce_multipath`` fails
  with no side effect; absent without it attaches single-path with a warning;
* **every wait is bounded** (by-path link, dm map, by-id link, device removal) and says what
  it waited for when it gives up;
* **the device is verified**: every path's WWID must agree, and match the volume's serial
  when one is given (a stale SCSI device of a reused LUN is never handed out);
* **detach is per volume**: flush only this map (``multipath -f <map>``, never ``-F``),
  flush and delete only this LUN's SCSI devices, log out only sessions that carry no other
  LUN, delete the node records; "nothing there" (21) is success, so detach is re-runnable.

All commands go through a :class:`~datera_iac.node.runner.Runner`; the ``/dev``, ``/sys``
and ``/etc/iscsi`` roots are parameters so tests run against a temporary tree.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence

import attrs

from datera_iac.errors import CommandFailed, InputError, NodeError, WaitTimeout
from datera_iac.node import codes
from datera_iac.node.fs import proc_root_of
from datera_iac.node.multipath import multipathd_running
from datera_iac.node.runner import Runner

__all__ = [
    "IQN_RE",
    "Chap",
    "Target",
    "Session",
    "PathState",
    "Attachment",
    "Remains",
    "IscsiHelper",
    "validate_iqn",
    "normalize_wwid",
    "wwid_for_serial",
    "parse_sessions",
    "parse_discovery",
]

log = logging.getLogger(__name__)

#: RFC 3720 iSCSI names: iqn.YYYY-MM.reversed.domain[:anything], or eui.<16 hex>.
IQN_RE = re.compile(r"^(iqn\.\d{4}-\d{2}\.[a-z0-9][a-z0-9.-]*(:[^\s]+)?|eui\.[0-9A-Fa-f]{16})\Z")

_SESSION_RE = re.compile(
    r"^(?P<transport>\w+):\s+\[(?P<sid>\d+)\]\s+(?P<portal>\S+?),(?P<tpgt>-?\d+)\s+(?P<iqn>\S+)"
)


def validate_iqn(iqn: str, *, what: str = "initiator IQN", field: str = "initiator_iqn") -> str:
    """Return ``iqn`` stripped if it is a valid iSCSI name; raise InputError otherwise."""
    value = (iqn or "").strip()
    if not IQN_RE.match(value):
        raise InputError(
            f"{what} {value!r} is not a valid iSCSI name",
            kind="NodeAttachment", field=field,
            fix="use the form iqn.YYYY-MM.reversed.domain:identifier (RFC 3720)",
        )
    return value


def normalize_wwid(raw: str) -> str:
    """A WWID in udev/multipath form (``36001405...``) from any of its spellings.

    The kernel's ``/sys/block/sdX/device/wwid`` says ``naa.6001405...``; ``scsi_id`` and
    multipath print ``36001405...`` (the leading 3 is the NAA designator type)."""
    s = raw.strip().lower()
    if s.startswith("naa."):
        return "3" + s[4:]
    if s.startswith("0x"):
        return "3" + s[2:]
    return s


def wwid_for_serial(serial: str) -> str:
    """The WWID a Datera (LIO) LUN reports for a unit serial.

    LIO builds an NAA type 6 designator from the IEEE OUI 00-14-05 followed by 25 hex digits
    taken from the unit serial; udev spells it ``3`` + ``6001405`` + those digits."""
    digits = "".join(c for c in serial.lower() if c in "0123456789abcdef")
    return "36001405" + digits[:25].ljust(25, "0")


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class Chap:
    """CHAP credentials. ``mutual_*`` are the target's credentials (mutual CHAP)."""

    username: str
    secret: str = attrs.field(repr=False)
    mutual_username: str | None = None
    mutual_secret: str | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if not self.username or not self.secret:
            raise InputError("CHAP needs a user name and a secret", kind="NodeAttachment",
                             field="chap_user", fix="set both chap_user and chap_secret")
        if bool(self.mutual_username) != bool(self.mutual_secret):
            raise InputError("mutual CHAP needs both a user name and a secret",
                             kind="NodeAttachment", field="chap_initiator_user",
                             fix="set both chap_initiator_user and chap_initiator_secret")
        if self.mutual_secret and self.mutual_secret == self.secret:
            raise InputError("the mutual CHAP secret must differ from the CHAP secret "
                             "(initiators reject identical secrets)", kind="NodeAttachment",
                             field="chap_initiator_secret", fix="choose a different secret")

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.secret, self.mutual_secret) if s)


@attrs.frozen
class Target:
    """An iSCSI target as the control plane reports it: IQN, portals ("ip:port"), LUN."""

    iqn: str
    portals: tuple[str, ...] = attrs.field(converter=_str_tuple)
    lun: int = 0
    chap: Chap | None = None
    #: The volume's unit serial (Datera: the volume uuid); checked against the device.
    serial: str | None = None

    def __attrs_post_init__(self) -> None:
        if not self.portals:
            raise NodeError(f"target {self.iqn} has no portal (is the volume online?)")
        for p in self.portals:
            if not re.match(r"^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]):\d+$", p):
                raise NodeError(f"portal {p!r} of {self.iqn} is not ip:port (use IPs: "
                                "udev by-path links carry IPs, not host names)")

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.chap.secrets if self.chap else ()


@attrs.frozen
class Session:
    """One line of ``iscsiadm -m session``."""

    sid: int
    portal: str
    iqn: str
    transport: str = "tcp"


@attrs.frozen
class PathState:
    """One portal's path: ``up`` with its SCSI device, or ``failed`` with the reason."""

    portal: str
    state: str
    device: str | None = None
    error: str | None = None


@attrs.frozen
class Attachment:
    """A usable attached volume on a node."""

    target: Target
    device_path: str  #: stable: /dev/disk/by-id/dm-uuid-mpath-<wwid> or .../scsi-<wwid>
    wwid: str
    devices: tuple[str, ...]  #: the SCSI devices (/dev/sdX), one per live path
    map_name: str | None  #: the dm-multipath map, None when single path
    paths: tuple[PathState, ...]

    @property
    def degraded(self) -> bool:
        return any(p.state != "up" for p in self.paths)


@attrs.frozen
class Remains:
    """What a node still holds of one LUN's attachment, whether or not it is usable: the
    portals with a session to the target, the portals with a node record, the SCSI
    devices of the LUN and the dm-multipath map. Empty when the LUN is fully detached."""

    sessions: tuple[str, ...] = ()
    records: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    map_name: str | None = None

    def __bool__(self) -> bool:
        return bool(self.sessions or self.records or self.devices or self.map_name)

    def describe(self) -> str:
        """A short list for plan output and errors: '2 sessions, 2 node records'."""
        parts = []
        for n, what in ((len(self.sessions), "session"), (len(self.records), "node record"),
                        (len(self.devices), "SCSI device")):
            if n:
                parts.append(f"{n} {what}{'s' if n > 1 else ''}")
        if self.map_name:
            parts.append(f"multipath map {self.map_name}")
        return ", ".join(parts) or "nothing"


def parse_sessions(text: str) -> list[Session]:
    """Parse ``iscsiadm -m session``: ``tcp: [3] 10.0.0.1:3260,1 iqn... (non-flash)``."""
    out = []
    for line in text.splitlines():
        m = _SESSION_RE.match(line.strip())
        if m:
            out.append(Session(int(m["sid"]), m["portal"], m["iqn"], m["transport"]))
    return out


def parse_discovery(text: str) -> list[tuple[str, str]]:
    """Parse sendtargets output (``10.0.0.1:3260,1 iqn...``) into (portal, iqn) pairs."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].startswith(("iqn.", "eui.")):
            out.append((parts[0].rsplit(",", 1)[0], parts[1]))
    return out


class IscsiHelper:
    """The node-side operations. One instance per node (its runner and roots).

    ``clock``/``sleep`` are injectable so tests of the bounded waits run instantly.
    """

    def __init__(
        self,
        runner: Runner,
        *,
        dev_root: str = "/dev",
        sys_root: str = "/sys",
        iscsi_root: str = "/etc/iscsi",
        machine_id_path: str = "/etc/machine-id",
        device_timeout: float = 30.0,
        multipath_timeout: float = 20.0,
        poll_interval: float = 0.5,
        command_timeout: float = 30.0,
        login_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.run = runner
        self.dev_root = dev_root.rstrip("/") or "/"
        self.sys_root = sys_root.rstrip("/") or "/"
        self.iscsi_root = iscsi_root.rstrip("/")
        self.machine_id_path = machine_id_path
        self.device_timeout = device_timeout
        self.multipath_timeout = multipath_timeout
        self.poll_interval = poll_interval
        self.command_timeout = command_timeout
        self.login_timeout = login_timeout
        self.clock = clock
        self.sleep = sleep

    # ---- paths -------------------------------------------------------------------------

    def dev(self, rel: str) -> str:
        return f"{self.dev_root}/{rel.lstrip('/')}"

    def sys(self, rel: str) -> str:
        return f"{self.sys_root}/{rel.lstrip('/')}"

    def by_path(self, portal: str, iqn: str, lun: int) -> str:
        return self.dev(f"disk/by-path/ip-{portal}-iscsi-{iqn}-lun-{lun}")

    def _kernel_name(self, devpath: str) -> str:
        return devpath.rstrip("/").rsplit("/", 1)[-1]

    # ---- facts -------------------------------------------------------------------------

    def initiator_iqn(self) -> str:
        """The node's initiator name from ``initiatorname.iscsi``, validated."""
        path = f"{self.iscsi_root}/initiatorname.iscsi"
        text = self.run.read_text(path)
        if text is None:
            raise NodeError(f"{path} is missing on {self.run.where}: install open-iscsi "
                            "or set initiator_iqn")
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("InitiatorName="):
                return validate_iqn(line.split("=", 1)[1], what=f"InitiatorName in {path}")
        raise NodeError(f"{path} on {self.run.where} has no InitiatorName= line")

    def host_id(self) -> str | None:
        """A short fingerprint of this node: the SHA-256 of its ``/etc/machine-id`` (8 hex
        digits; the id itself is not disclosed), or None when it has none. Two nodes with
        one initiator name and different machine ids are two hosts sharing an IQN (VMs
        cloned from one image), which the DSP cannot tell apart (user-needs A12)."""
        text = self.run.read_text(self.machine_id_path)
        machine_id = (text or "").strip()
        if not machine_id:
            return None
        return hashlib.sha256(machine_id.encode()).hexdigest()[:8]

    def sessions(self) -> list[Session]:
        """Active sessions; exit 21 means none."""
        res = self._iscsiadm(["-m", "session"], ok=(0, codes.ISCSI_ERR_NO_OBJS_FOUND))
        return parse_sessions(res.stdout) if res.code == 0 else []

    def node_records(self) -> list[tuple[str, str]]:
        """(portal, target iqn) of every node record (``iscsiadm -m node``; 21 = none)."""
        res = self._iscsiadm(["-m", "node"], ok=(0, codes.ISCSI_ERR_NO_OBJS_FOUND))
        return parse_discovery(res.stdout) if res.code == 0 else []

    def multipath_state(self) -> tuple[bool, str]:
        return multipathd_running(self.run, timeout=self.command_timeout)

    # ---- commands ----------------------------------------------------------------------

    def _iscsiadm(self, args: Sequence[str], *, ok: Sequence[int] = (0,),
                  secrets: Sequence[str] = (), timeout: float | None = None):
        return self.run.run(["iscsiadm", *args], ok_codes=ok, secrets=secrets,
                            timeout=timeout or self.command_timeout, meanings=codes.MEANINGS)

    def _node(self, t: Target, portal: str, *args: str, ok: Sequence[int] = (0,),
              timeout: float | None = None):
        return self._iscsiadm(["-m", "node", "-T", t.iqn, "-p", portal, *args], ok=ok,
                              secrets=t.secrets, timeout=timeout)

    def _update(self, t: Target, portal: str, key: str, value: str,
                ok: Sequence[int] = (0,)) -> None:
        self._node(t, portal, "--op", "update", "-n", key, "-v", value, ok=ok)

    # ---- attach ------------------------------------------------------------------------

    def attach(self, t: Target, *, multipath: bool = True,
               enforce_multipath: bool = False, undo_on_failure: bool = True) -> Attachment:
        """Log in on every portal and return the usable, verified device.

        ``undo_on_failure``: a login that ends unusable (a wrong WWID, no device) removes
        everything of the LUN again (devices, map, sessions). A repair of a map that is in
        use (mounted, or usable with a path missing) passes False: its map and the
        sessions it already had must stay, whatever the new path does.

        Raises NodeError when no path came up (the message lists each portal's reason),
        when CHAP or the ACL rejected the login, when the device's WWID does not match
        the volume, or when ``enforce_multipath`` is set and multipathd is not running;
        WaitTimeout when a device or map never appears.
        """
        use_mp = False
        if multipath:
            running, why = self.multipath_state()
            if running:
                use_mp = True
            elif enforce_multipath:
                raise NodeError(f"multipath required (enforce_multipath) but {why} on "
                                f"{self.run.where}; nothing was changed")
            else:
                log.warning("%s on %s: attaching %s over a single path", why,
                            self.run.where, t.iqn)
        # Without a multipath map, one path only: two unmanaged sd devices of one LUN
        # would let a consumer write through both and corrupt data.
        portals = t.portals if use_mp else t.portals[:1]

        existing = {(s.portal, s.iqn) for s in self.sessions()}
        paths: list[PathState] = []
        try:
            for portal in portals:
                paths.append(self._login(t, portal, already=(portal, t.iqn) in existing))
        except NodeError:
            # refused (CHAP, ACL): no session of an earlier portal, and no node record
            # (it holds the CHAP secret we just wrote) stays behind
            if undo_on_failure:
                self._undo(t)
            raise
        if not any(p.state == "up" for p in paths):
            detail = "; ".join(f"{p.portal}: {p.error}" for p in paths)
            raise NodeError(f"could not log in to {t.iqn} on any portal ({detail})")

        try:
            att = self._settle(t, paths, use_mp)
        except BaseException:
            if not undo_on_failure:
                raise
            # Logged in but refused (wrong WWID) or never usable: leave nothing behind
            # for this LUN (its devices, map and sessions), then report the first error.
            self._undo(t)
            raise
        if att.degraded:
            log.warning("%s attached degraded: %d of %d paths up", t.iqn,
                        sum(p.state == "up" for p in paths), len(paths))
        return att

    def _undo(self, t: Target) -> None:
        """Remove what a failed attach left of this LUN; a cleanup error is only logged
        (the attach's own error is the one to report)."""
        try:
            self.detach(t)
        except Exception as undo:  # noqa: BLE001 - the original error matters more
            log.warning("cleanup after the failed attach of %s failed: %s", t.iqn, undo)

    def _login(self, t: Target, portal: str, *, already: bool) -> PathState:
        """Make one portal's session exist. Returns the path state; raises only on errors
        that no other portal can fix (CHAP / ACL rejection)."""
        if already:
            log.info("session to %s on %s exists; reusing it", t.iqn, portal)
            return PathState(portal, "up")
        try:
            found = self._iscsiadm(["-m", "discovery", "-t", "sendtargets", "-p", portal],
                                   timeout=self.login_timeout)
        except CommandFailed as e:
            if e.code in codes.UNREACHABLE:
                return PathState(portal, "failed", error=f"discovery: {e.meaning or e}")
            if e.code != codes.ISCSI_ERR_NO_OBJS_FOUND:
                raise
            found = None
        if found is None or t.iqn not in {iqn for _, iqn in parse_discovery(found.stdout)}:
            return PathState(portal, "failed", error=f"{t.iqn} not offered by sendtargets "
                             "(is this initiator in the volume's ACL?)")
        rec = self._node(t, portal, ok=(0, codes.ISCSI_ERR_NO_OBJS_FOUND))
        if rec.code == codes.ISCSI_ERR_NO_OBJS_FOUND:
            self._node(t, portal, "--interface", "default", "--op", "new")
        if t.chap:
            self._update(t, portal, "node.session.auth.authmethod", "CHAP")
            self._update(t, portal, "node.session.auth.username", t.chap.username)
            self._update(t, portal, "node.session.auth.password", t.chap.secret)
            if t.chap.mutual_username and t.chap.mutual_secret:
                self._update(t, portal, "node.session.auth.username_in",
                             t.chap.mutual_username)
                self._update(t, portal, "node.session.auth.password_in",
                             t.chap.mutual_secret)
        try:
            self._node(t, portal, "--login", ok=(0, codes.ISCSI_ERR_SESS_EXISTS),
                       timeout=self.login_timeout)
        except CommandFailed as e:
            if e.code in codes.UNREACHABLE:
                return PathState(portal, "failed", error=f"login: {e.meaning}")
            if e.code == codes.ISCSI_ERR_LOGIN_AUTH_FAILED:
                raise NodeError(f"CHAP authentication to {t.iqn} on {portal} failed: check "
                                "the attachment's chap_user / chap_secret against the "
                                "volume's CHAP settings") from None
            if e.code == codes.ISCSI_ERR_FATAL_LOGIN and t.chap and t.chap.mutual_username:
                # iscsiadm says 19 both when the target refuses the initiator (ACL) and
                # when the initiator refuses the target's mutual CHAP answer
                raise NodeError(f"login to {t.iqn} on {portal} rejected: the target did not "
                                "prove the mutual CHAP secret (check the attachment's "
                                "chap_initiator_user / chap_initiator_secret against the "
                                "volume's CHAP settings), or the initiator is not in the "
                                "volume's ACL") from None
            if e.code == codes.ISCSI_ERR_FATAL_LOGIN:
                raise NodeError(f"login to {t.iqn} on {portal} rejected: the initiator is "
                                "not in the volume's ACL") from None
            raise
        self._update(t, portal, "node.startup", "automatic")
        return PathState(portal, "up")

    def _wait_devices(self, t: Target, paths: list[PathState]) -> list[PathState]:
        """Wait (bounded) until every logged-in portal's by-path link resolves.

        All paths must be present before the device is used (a path appearing late is never
        cleaned up on detach, and a format probe on a half-settled device can lie). At the
        deadline, paths still missing are marked failed if at least one is present."""
        links = {p.portal: self.by_path(p.portal, t.iqn, t.lun) for p in paths
                 if p.state == "up"}
        deadline = self.clock() + self.device_timeout
        found: dict[str, str] = {}
        while True:
            for portal, link in links.items():
                if portal not in found:
                    real = self.run.realpath(link)
                    if real:
                        found[portal] = self.dev(self._kernel_name(real))
            if len(found) == len(links) or self.clock() >= deadline:
                break
            self.sleep(self.poll_interval)
        if not found:
            raise WaitTimeout(f"the block device of {t.iqn} lun {t.lun} "
                              f"({', '.join(links.values())})", self.device_timeout)
        out = []
        for p in paths:
            if p.state != "up":
                out.append(p)
            elif p.portal in found:
                out.append(PathState(p.portal, "up", found[p.portal]))
            else:
                out.append(PathState(p.portal, "failed",
                                     error=f"logged in but {links[p.portal]} never appeared"))
        return out

    def device_wwid(self, device: str) -> str | None:
        name = self._kernel_name(device)
        raw = self.run.read_text(self.sys(f"block/{name}/device/wwid"))
        return normalize_wwid(raw) if raw and raw.strip() else None

    def device_serial(self, device: str) -> str | None:
        raw = self.run.read_text(self.sys(f"block/{self._kernel_name(device)}/device/vpd_pg80"))
        if not raw:
            return None
        if len(raw) >= 4 and raw[0] == "\x00":
            # sysfs gives the whole VPD page: device type, page code 0x80 (read as text:
            # U+FFFD, a printable character) and a 2-byte length before the serial
            size = (ord(raw[2]) << 8) | ord(raw[3]) if raw[2] < "\x80" > raw[3] else len(raw)
            raw = raw[4:4 + size]
        return "".join(ch for ch in raw if ch.isprintable()).strip() or None

    def _verify_wwid(self, t: Target, devices: Sequence[str]) -> str:
        wwids = {d: self.device_wwid(d) for d in devices}
        if any(w is None for w in wwids.values()):
            missing = [d for d, w in wwids.items() if w is None]
            raise NodeError(f"cannot read the WWID of {', '.join(missing)} ({t.iqn}); "
                            "refusing to use a device that cannot be identified")
        distinct = set(wwids.values())
        if len(distinct) > 1:
            raise NodeError(f"the paths of {t.iqn} lun {t.lun} report different WWIDs "
                            f"({wwids}): a stale device of a reused LUN? detach and retry")
        wwid = distinct.pop()  # type: ignore[assignment]
        if t.serial:
            expected = wwid_for_serial(t.serial)
            serials = {self.device_serial(d) for d in devices}
            norm = t.serial.replace("-", "").lower()
            if wwid != expected and not any(s and s.replace("-", "").lower() == norm
                                            for s in serials):
                raise NodeError(f"device {', '.join(devices)} of {t.iqn} has WWID {wwid}, "
                                f"not the volume's {expected} (serial {t.serial}): refusing "
                                "to hand out another volume's disk")
        return wwid  # type: ignore[return-value]

    def _holder_map(self, device: str) -> str | None:
        """The dm device (``dm-N``) holding a SCSI device, if any."""
        holders = self.run.listdir(self.sys(f"block/{self._kernel_name(device)}/holders"))
        return next((h for h in holders if h.startswith("dm-")), None)

    def map_name(self, dm: str) -> str | None:
        name = self.run.read_text(self.sys(f"block/{dm}/dm/name"))
        return name.strip() if name else None

    def _ensure_map(self, wwid: str, devices: Sequence[str]) -> str:
        """Make multipathd build (or reuse) the map for ``devices``; return its name."""
        dm = self._holder_map(devices[0])
        if dm is None:
            self.run.run(["multipath", "-a", wwid], ok_codes=(0,),
                         timeout=self.command_timeout)
            for d in devices:
                self.run.run(["multipathd", "add", "path", d], ok_codes=(0,),
                             timeout=self.command_timeout)
            dm = self._wait(lambda: self._holder_map(devices[0]), self.multipath_timeout,
                            f"the dm-multipath map of {wwid} (holder of {devices[0]})")
        name = self._wait(lambda: self.map_name(dm), self.multipath_timeout,
                          f"the name of multipath map {dm}")
        return name

    # ---- read-only inspection -----------------------------------------------------------

    def inspect(self, t: Target) -> Attachment | None:
        """What is attached for ``t`` on this node right now (no change made), or None
        when no session to the target exists. Paths without a session or a device are
        reported failed, and so is a path whose SCSI device is not ``running`` (a lost
        portal: the session is in recovery and the device ``blocked``, then
        ``transport-offline``; the kernel brings it back when the portal returns)."""
        live = {s.portal for s in self.sessions() if s.iqn == t.iqn}
        if not live:
            return None
        paths, devices = [], []
        for portal in t.portals:
            real = self.run.realpath(self.by_path(portal, t.iqn, t.lun)) if portal in live \
                else None
            if real:
                kname = self._kernel_name(real)
                dev = self.dev(kname)
                devices.append(dev)
                state = (self.run.read_text(self.sys(f"block/{kname}/device/state")) or "").strip()
                if state and state != "running":
                    paths.append(PathState(portal, "failed", dev, error=f"device {state}"))
                else:
                    paths.append(PathState(portal, "up", dev))
            else:
                paths.append(PathState(portal, "failed", error="no session" if portal not in
                                       live else "no block device"))
        if not devices:
            return None
        wwid = self.device_wwid(devices[0]) or ""
        dm = self._holder_map(devices[0])
        name = self.map_name(dm) if dm else None
        device_path = self.dev(f"disk/by-id/dm-uuid-mpath-{wwid}" if name
                               else f"disk/by-id/scsi-{wwid}")
        return Attachment(t, device_path, wwid, tuple(devices), name, tuple(paths))

    def remains(self, t: Target) -> Remains:
        """What is left on this node of ``t``'s LUN, usable or not (no change made).

        Looks where :meth:`detach` cleans up, so what this reports is exactly what a
        detach removes: sessions to the target (any portal), node records on the target's
        portals, the LUN's SCSI devices and its map (found through a device, or, with the
        volume's serial, by its WWID when no device is left)."""
        sessions = tuple(s.portal for s in self.sessions() if s.iqn == t.iqn)
        records = tuple(p for p, iqn in self.node_records()
                        if iqn == t.iqn and p in t.portals)
        devices = []
        for portal in dict.fromkeys([*t.portals, *sessions]):
            real = self.run.realpath(self.by_path(portal, t.iqn, t.lun))
            if real:
                devices.append(self.dev(self._kernel_name(real)))
        dm = next((m for m in (self._holder_map(d) for d in devices) if m), None)
        if dm is None and t.serial:
            dm = self._map_by_wwid(wwid_for_serial(t.serial))
        name = (self.map_name(dm) or dm) if dm else None
        return Remains(sessions, records, tuple(devices), name)

    def _map_by_wwid(self, wwid: str) -> str | None:
        """The dm device (``dm-N``) of the multipath map of ``wwid``, even without paths
        (its by-id link is named by the WWID whatever the map's name)."""
        real = self.run.realpath(self.dev(f"disk/by-id/dm-uuid-mpath-{wwid}"))
        name = self._kernel_name(real) if real else ""
        return name if name.startswith("dm-") else None

    # ---- detach ------------------------------------------------------------------------

    def _settle(self, t: Target, paths: list[PathState], use_mp: bool) -> Attachment:
        """After login: wait for the devices, verify the WWID, build the map, wait until the
        stable path answers I/O."""
        paths = self._wait_devices(t, paths)
        devices = tuple(p.device for p in paths if p.device)
        wwid = self._verify_wwid(t, devices)
        map_name = None
        if use_mp:
            map_name = self._ensure_map(wwid, devices)
            device_path = self.dev(f"disk/by-id/dm-uuid-mpath-{wwid}")
        else:
            device_path = self.dev(f"disk/by-id/scsi-{wwid}")
        self._wait(lambda: self.run.exists(device_path), self.device_timeout,
                   f"the stable link {device_path} of {t.iqn} lun {t.lun}")
        # usable = it answers: a size read goes to the device (a map still being set up,
        # or a path that died after login, reports nothing or 0)
        self._wait(lambda: (self.size(device_path) or 0) > 0, self.device_timeout,
                   f"{device_path} ({t.iqn} lun {t.lun}) to answer I/O")
        return Attachment(t, device_path, wwid, devices, map_name, tuple(paths))

    def _map_users(self, dm: str, devices: Sequence[str]) -> list[str]:
        """What holds the map ``dm`` open: its holders (LVM, kpartx, a device stacked on
        it) and every mount of it or of its path devices, at any mount point."""
        users = [f"held by {h}" for h in self.run.listdir(self.sys(f"block/{dm}/holders"))]
        ours = {dm} | {self._kernel_name(d) for d in devices}
        for line in (self.run.read_text(f"{proc_root_of(self.run)}/mounts") or "").splitlines():
            parts = line.split()
            if len(parts) < 2 or not parts[0].startswith("/"):
                continue
            real = self.run.realpath(parts[0]) or parts[0]
            if self._kernel_name(real) in ours:
                users.append(f"mounted at {parts[1]}")
        return users

    def rescan_deviceless_sessions(self, t: Target) -> list[str]:
        """Rescan each session of ``t`` that shows no device for its LUN (``iscsiadm -m
        session -r SID --rescan``: the kernel scans that session's LUNs again), so a LUN
        the kernel dropped comes back on its path. Nothing is logged out or removed: the
        map and the paths that work are not touched. Returns the portals rescanned."""
        done = []
        for s in self.sessions():
            if s.iqn != t.iqn or s.portal not in t.portals:
                continue
            if self.run.realpath(self.by_path(s.portal, t.iqn, t.lun)):
                continue
            self._iscsiadm(["-m", "session", "-r", str(s.sid), "--rescan"],
                           ok=(0, codes.ISCSI_ERR_NO_OBJS_FOUND),
                           timeout=self.command_timeout)
            done.append(s.portal)
        return done

    def detach(self, t: Target) -> None:
        """Undo :meth:`attach` for this LUN only; safe to run again (nothing there = done)."""
        sessions = [s for s in self.sessions() if s.iqn == t.iqn]
        portals = list(dict.fromkeys([*t.portals, *(s.portal for s in sessions)]))
        devices: list[str] = []
        others: dict[str, list[str]] = {}
        for portal in portals:
            real = self.run.realpath(self.by_path(portal, t.iqn, t.lun))
            if real:
                devices.append(self.dev(self._kernel_name(real)))
            prefix = f"ip-{portal}-iscsi-{t.iqn}-lun-"
            others[portal] = [n for n in self.run.listdir(self.dev("disk/by-path"))
                              if n.startswith(prefix) and n != f"{prefix}{t.lun}"
                              and self.run.realpath(self.dev(f"disk/by-path/{n}"))]
        maps = list(dict.fromkeys(m for m in (self._holder_map(d) for d in devices) if m))
        if not maps and t.serial:
            # a map whose paths are all gone (a detach interrupted after the SCSI delete,
            # or paths lost) still holds the volume's WWID: it is this volume's map
            orphan = self._map_by_wwid(wwid_for_serial(t.serial))
            if orphan:
                maps.append(orphan)
        for dm in maps:
            users = self._map_users(dm, devices)
            if users:
                # Stopping the queueing of a map in use fails the writes it holds, and its
                # flush is refused anyway: touch nothing, say what holds it.
                name = self.map_name(dm) or dm
                raise NodeError(f"multipath map {name} of {t.iqn} is in use ({'; '.join(users)}): "
                                "unmount it and release its holders, then run again; "
                                "nothing was changed")
        for dm in maps:
            name = self.map_name(dm) or dm
            # A map whose paths are all dead queues I/O (no_path_retry): stop queueing first
            # so the flush cannot hang; failure here (multipathd gone) is not fatal.
            self.run.run(["multipathd", "disablequeueing", "map", name],
                         ok_codes=range(-64, 256), timeout=self.command_timeout)
            try:
                self.run.run(["multipath", "-f", name], ok_codes=(0,),
                             timeout=self.command_timeout)
            except CommandFailed as e:
                raise NodeError(f"cannot flush multipath map {name} of {t.iqn}: {e.stderr or e}"
                                f" (still in use? unmount it and release its holders: lsblk "
                                f"{self.dev('mapper/' + name)})") from None
        for d in devices:
            self.run.run(["blockdev", "--flushbufs", d], ok_codes=(0,),
                         timeout=self.command_timeout)
            self.run.write_text(self.sys(f"block/{self._kernel_name(d)}/device/delete"), "1")
        for d in devices:
            self._wait_gone(self.sys(f"block/{self._kernel_name(d)}"),
                            f"SCSI device {d} of {t.iqn} to be removed")
        live = {s.portal for s in sessions}
        for portal in portals:
            if others.get(portal):
                log.info("keeping the session to %s on %s: it carries other LUNs (%s)",
                         t.iqn, portal, ", ".join(others[portal]))
                continue
            nothing = (0, codes.ISCSI_ERR_NO_OBJS_FOUND)
            if portal in live:
                self._update(t, portal, "node.startup", "manual", ok=nothing)
                self._node(t, portal, "--logout", ok=nothing)
            self._node(t, portal, "--op", "delete", ok=nothing)

    # ---- extend ------------------------------------------------------------------------

    def extend(self, t: Target) -> int:
        """Make the node see a grown volume: rescan each path, resize the map. Returns the
        new size in bytes as the node sees it."""
        devices = []
        for portal in t.portals:
            real = self.run.realpath(self.by_path(portal, t.iqn, t.lun))
            if real:
                devices.append(self.dev(self._kernel_name(real)))
        if not devices:
            raise NodeError(f"{t.iqn} lun {t.lun} is not attached on {self.run.where}")
        for d in devices:
            self.run.write_text(self.sys(f"block/{self._kernel_name(d)}/device/rescan"), "1")
        dm = self._holder_map(devices[0])
        target = devices[0]
        if dm:
            name = self.map_name(dm) or dm
            self.run.run(["multipathd", "resize", "map", name], ok_codes=(0,),
                         timeout=self.command_timeout)
            target = self.dev(f"mapper/{name}")
        return self.size(target) or 0

    def size(self, device: str) -> int | None:
        """The size in bytes the node sees for ``device`` (None when it cannot tell)."""
        res = self.run.run(["blockdev", "--getsize64", device], ok_codes=range(0, 256),
                           timeout=self.command_timeout)
        text = res.stdout.strip()
        return int(text) if res.code == 0 and text.isdigit() else None

    # ---- waits -------------------------------------------------------------------------

    def _wait_gone(self, path: str, what: str) -> None:
        self._wait(lambda: not self.run.exists(path), self.device_timeout, what)

    def _wait(self, probe: Callable[[], object], timeout: float, what: str):
        """Poll ``probe`` until it returns a truthy value; bounded by ``timeout``."""
        deadline = self.clock() + timeout
        while True:
            value = probe()
            if value:
                return value
            if self.clock() >= deadline:
                raise WaitTimeout(what, timeout)
            self.sleep(self.poll_interval)
