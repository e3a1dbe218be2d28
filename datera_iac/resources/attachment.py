"""The NodeAttachment kind: one volume attached to one node (initiator), usable.

Create does the control plane, then the node:

1. register the node's initiator (``POST /initiators`` with ``force`` when only a parent
   tenant knows it, 409 = already there),
2. add it to the storage instance's ACL (``acl_policy/initiators`` op ``add``),
3. turn CHAP on for the storage instance when the attachment declares it and the
   volume has none (an existing secret is never overwritten: other attachments use it),
4. online the app_instance and wait (bounded) for the storage instance's ``op_state``
   ``available``,
5. log the node in on every portal through :class:`~datera_iac.node.iscsi.IscsiHelper`
   (idempotent, multipath, WWID-verified), then format (only a provably blank device) and
   mount when ``filesystem`` / ``mount_point`` are set.

A failure after step 2 undoes what this attachment added (node detach, ACL removal) before
re-raising, so a failed create leaves nothing behind. Delete runs the reverse: unmount,
node detach, ACL removal, and offline only when no initiator remains (other attachments
of the same volume keep working). Each step skips what is already gone, so a delete
interrupted anywhere (a logout that times out) finishes when run again.

**Broken but not gone**: ``read`` returns None only when nothing of the attachment is
left. While the node still holds a session, node record, device, map or mount of the
target, or the volume's ACL still lists the initiator, ``read`` returns it with
``repair_needed`` saying why (``paths_up 0 of 2 (left: 2 sessions, ...)``), so a re-run
destroy still calls ``delete`` and a plan shows an update that re-attaches it. A
multipath attachment with a path of its map down (``paths_up 1 of 2 (down: ...)``) needs
repair too: the update logs in again on the missing portals and reuses the map; while a
portal stays unreachable the update succeeds degraded and the drift stays visible.

Several attachments of one volume on several nodes are independent resources.

**Ids** are ``<volume id>:<initiator iqn>`` (``/root/3f2a...:iqn.1993-08.org.debian:01:ab``),
importable. Because ``read`` and ``delete`` get only the id, node-side settings that are
not the defaults travel in the id as a query: ``?node=ssh://...&port=3261&lun=1&
mount_point=/mnt/x&filesystem=ext4&multipath=false``. Secrets never do.

**Which node**: ``node`` is ``local`` (the machine running datera-iac) or
``ssh://user@host:port`` (paramiko). ``Context.runner`` may override how a node is
reached: a :class:`~datera_iac.node.runner.Runner` (used for ``local``), a mapping
``{node: Runner}``, or a callable ``node -> Runner`` (tests use fake nodes this way).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import re
import threading
from collections.abc import Callable, Collection, Mapping
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import parse_qs, quote, urlencode

import attrs

from datera_iac.errors import Conflict, DspError, InputError, NodeError, NotFound
from datera_iac import validators as rules
from datera_iac.node import fs as nodefs
from datera_iac.node.iscsi import (
    IQN_RE,
    Attachment,
    Chap,
    IscsiHelper,
    Remains,
    Target,
    wwid_for_serial,
)
from datera_iac.node.remote import SshRunner, parse_node
from datera_iac.node.runner import LocalRunner, Runner
from datera_iac.resources._util import strict_spec, volume_ref, wait_for
from datera_iac.resources.layout import ai_url, first_si_vol, parse_volume_id, si_path
from datera_iac.resources.base import (
    Context,
    Diff,
    Kind,
    Observed,
    diff_specs,
    out_field,
    register,
    spec_field,
)

__all__ = [
    "NodeAttachmentSpec",
    "NodeAttachmentOutputs",
    "NodeAttachment",
    "attachment_id",
    "parse_attachment_id",
    "runner_for",
    "grant_access",
    "revoke_access",
]

log = logging.getLogger(__name__)

KIND = "NodeAttachment"


def _check_iqn(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if value is not None and not IQN_RE.match(str(value)):
        raise InputError(f"{value!r} is not a valid iSCSI name", kind=KIND, field=attr.name,
                         fix="use iqn.YYYY-MM.reversed.domain:identifier, or leave it unset "
                             "to read the node's /etc/iscsi/initiatorname.iscsi")


def _check_node(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    parse_node(value, field=attr.name)


def _check_fs(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if value is not None and value not in nodefs.SUPPORTED_FILESYSTEMS:
        raise InputError(f"filesystem {value!r} is not supported", kind=KIND,
                         field=attr.name,
                         fix=f"one of {', '.join(nodefs.SUPPORTED_FILESYSTEMS)}")


def _check_mount(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    text = str(value)
    if not text.startswith("/") or text == "/":
        raise InputError(f"mount point {value!r} must be an absolute path other than /",
                         kind=KIND, field=attr.name, fix="e.g. /mnt/data")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError(f"mount point {value!r} holds whitespace or control characters",
                         kind=KIND, field=attr.name, fix="e.g. /mnt/data")
    if posixpath.normpath(text) != text.rstrip("/") or ".." in text.split("/"):
        raise InputError(f"mount point {value!r} is not a normalized path",
                         kind=KIND, field=attr.name,
                         fix=f"write it without '.', '..' or '//' segments, e.g. "
                             f"{posixpath.normpath(text)!r}")


def _whole(what: str, lo: int, hi: int | None, fix: str, *, optional: bool = False
           ) -> Callable[[Any, attrs.Attribute, Any], None]:
    """An attrs validator: an int (not a bool) from ``lo`` to ``hi`` (None: no upper
    bound), or None when ``optional``; the error says the value is not ``what``."""

    def check(_inst: Any, attr: attrs.Attribute, value: Any) -> None:
        if value is None and optional:
            return
        if (not isinstance(value, int) or isinstance(value, bool) or value < lo
                or (hi is not None and value > hi)):
            raise InputError(f"{value!r} is not {what}", kind=KIND, field=attr.name, fix=fix)

    return check


@strict_spec
@attrs.frozen(kw_only=True)
class NodeAttachmentSpec:
    """Inputs of a NodeAttachment."""

    volume_id: str = spec_field(
        doc="The Volume to attach (its id).", replace=True, reference="Volume",
        validator=volume_ref(KIND, forbid=(":iqn.", "?")),  # the attachment id's separators
    )
    node: str = spec_field(
        doc="Where to attach: 'local' or ssh://user@host[:port][?key=<file>&known_hosts=<file>].",
        default="local", replace=True, validator=_check_node,
    )
    initiator_iqn: str | None = spec_field(
        doc="The node's initiator IQN; unset reads /etc/iscsi/initiatorname.iscsi on the node.",
        default=None, replace=True, validator=_check_iqn,
    )
    multipath: bool = spec_field(
        doc="Log in on every portal and use a dm-multipath map (single path when off).",
        default=True, replace=True,
    )
    enforce_multipath: bool = spec_field(
        doc="Fail instead of falling back to one path when multipathd is not running.",
        default=False,
    )
    chap_user: str | None = spec_field(
        doc="CHAP user name (the Volume's chap_user); sets CHAP on the volume's storage "
        "instance when it has none.", default=None, replace=True, aliases=("chap_username",),
        validator=rules.chap_user(KIND),
    )
    chap_secret: str | None = spec_field(
        doc=f"CHAP secret of chap_user ({rules.CHAP_SECRET_RULE}).", default=None,
        sensitive=True, replace=True, validator=rules.chap_secret(KIND),
    )
    chap_initiator_user: str | None = spec_field(
        doc="Mutual CHAP: the user name the target presents to the initiator (the Volume's "
        "chap_initiator_user).", default=None, replace=True,
        aliases=("chap_mutual_username",), validator=rules.chap_user(KIND),
    )
    chap_initiator_secret: str | None = spec_field(
        doc=f"Mutual CHAP: the secret the target presents ({rules.CHAP_SECRET_RULE}; not "
        "the chap_secret).", default=None, sensitive=True, replace=True,
        aliases=("chap_mutual_secret",), validator=rules.chap_secret(KIND),
    )
    filesystem: str | None = spec_field(
        doc="Create this filesystem if the device is provably blank (never formats data).",
        default=None, replace=True, validator=_check_fs,
    )
    mount_point: str | None = spec_field(
        doc="Mount the volume here (needs filesystem).", default=None, replace=True,
        validator=_check_mount,
    )
    port: int = spec_field(
        doc="iSCSI port of the portals (Datera: 3260).", default=3260, replace=True,
        validator=_whole("a TCP port", 1, 65535, "1..65535 (Datera listens on 3260)"),
    )
    lun: int = spec_field(
        doc="LUN of the volume on its target (Datera: 0; the simulator's tgtd: 1).",
        default=0, replace=True,
        validator=_whole("a LUN", 0, 16383, "0..16383 (Datera serves each volume as LUN 0)"),
    )
    volume_size: int | None = spec_field(
        doc="Bind to the Volume's size (${vol.size}, GiB): when it grows, the node rescans "
            "its paths and resizes the map in place, keeping the sessions (and, with "
            "grow_filesystem, grows the mounted filesystem).",
        default=None,
        validator=_whole("a size in GiB", 1, None,
                         "bind it to the Volume's size, e.g. ${my_volume.size}", optional=True),
    )
    min_paths: int | None = spec_field(
        doc="Paths that must be up for a multipath attachment to count as healthy (default: "
            "every portal). Fewer, with a portal's session gone, is drift that a plan "
            "repairs by logging in there again; a node that reaches only some of the DSP's "
            "portal networks sets how many it can reach.",
        default=None,
        validator=_whole("a whole number of paths from 1 to 64", 1, 64,
                         "e.g. 1 for a node on one network", optional=True),
    )
    grow_filesystem: bool = spec_field(
        doc="When volume_size grows and the filesystem is mounted at mount_point, grow it "
            "online to fill the volume (resize2fs, xfs_growfs or btrfs filesystem resize); "
            "false: only the block device is rescanned.",
        default=True,
    )

    @property
    def chap(self) -> Chap | None:
        if not self.chap_user and not self.chap_secret:
            return None
        return Chap(self.chap_user or "", self.chap_secret or "",
                    self.chap_initiator_user, self.chap_initiator_secret)


@attrs.frozen(kw_only=True)
class NodeAttachmentOutputs:
    """What an attachment looks like on the node."""

    device_path: str | None = out_field(
        doc="Stable device path: /dev/disk/by-id/dm-uuid-mpath-<wwid> (or scsi-<wwid>).")
    portals: list[str] | None = out_field(doc="The target's portals, 'ip:port'.")
    iqn: str | None = out_field(doc="The target IQN.")
    lun: int | None = out_field(doc="The LUN.")
    map_name: str | None = out_field(doc="dm-multipath map name (None when single path).")
    wwid: str | None = out_field(doc="The device's WWID (matches the volume's serial).")
    initiator_iqn: str | None = out_field(doc="The node's initiator IQN.")
    paths_up: int | None = out_field(doc="Paths logged in with a device (== portals when healthy).")
    mounted_at: str | None = out_field(doc="Where the filesystem is mounted, if anywhere.")
    size_bytes: int | None = out_field(doc="The device size as the node sees it (bytes).")
    repair_needed: str | None = out_field(
        doc="Why the attachment is not usable although something of it is left, or is "
            "degraded (None when healthy), e.g. 'paths_up 0 of 2 (left: 2 sessions, ...)' or "
            "'paths_up 1 of 2 (down: ...)': a plan re-attaches it (logging in again on the "
            "missing portals), a destroy finishes its detach.")


# ---- ids ---------------------------------------------------------------------------------

_ID_DEFAULTS: dict[str, Any] = {"node": "local", "port": 3260, "lun": 0, "mount_point": None,
                                "filesystem": None, "multipath": True}


def attachment_id(spec: NodeAttachmentSpec, volume_id: str, iqn: str) -> str:
    """``<volume id>:<iqn>`` plus a query of the node-side settings that differ from the
    defaults (read and delete need them and get only the id)."""
    extra = {k: getattr(spec, k) for k, d in _ID_DEFAULTS.items() if getattr(spec, k) != d}
    if "multipath" in extra:
        extra["multipath"] = "true" if extra["multipath"] else "false"
    tail = "?" + urlencode(extra, quote_via=quote, safe="/:@") if extra else ""
    return f"{volume_id}:{iqn}{tail}"


def parse_attachment_id(value: str) -> tuple[str, str, dict[str, Any]]:
    """(volume id, initiator iqn, node-side settings) of an attachment id."""
    text = (value or "").strip()
    fix = "use <volume id>:<initiator iqn>, e.g. /root/3f2a...:iqn.1993-08.org.debian:01:ab"
    head, _, query = text.partition("?")
    cut = -1
    for marker in (":iqn.", ":eui."):
        cut = head.find(marker)
        if cut > 0:
            break
    if cut <= 0:
        raise InputError(f"{value!r} is not an attachment id", kind=KIND, field="id", fix=fix)
    vol, iqn = head[:cut], head[cut + 1:]
    if not IQN_RE.match(iqn):
        raise InputError(f"{iqn!r} in {value!r} is not an iSCSI name", kind=KIND, field="id",
                         fix=fix)
    opts: dict[str, Any] = dict(_ID_DEFAULTS)
    for k, vals in parse_qs(query, keep_blank_values=True).items():
        if k not in _ID_DEFAULTS:
            raise InputError(f"unknown setting {k!r} in attachment id", kind=KIND, field="id",
                             fix=f"allowed: {', '.join(_ID_DEFAULTS)}")
        v: Any = vals[-1]
        if k in ("port", "lun"):
            v = int(v)
        elif k == "multipath":
            v = v.lower() not in ("false", "0", "no", "off")
        opts[k] = v
    parse_node(opts["node"])
    return vol, iqn, opts


# ---- reaching the node ---------------------------------------------------------------------


def runner_for(ctx: Context, node: str) -> Runner:
    """The Runner for ``node``, honouring ``ctx.runner`` (Runner / mapping / callable)."""
    r = ctx.runner
    if isinstance(r, Mapping):
        if node in r:
            return r[node]
        raise NodeError(f"no runner configured for node {node!r}")
    if callable(r) and not isinstance(r, Runner):
        return r(node)
    url = parse_node(node)
    if url is None:
        return r if isinstance(r, Runner) else LocalRunner()
    return SshRunner(url)


def _helper(runner: Runner) -> IscsiHelper:
    make = getattr(runner, "helper", None)  # FakeNode: its roots and clock
    return make() if callable(make) else IscsiHelper(runner)


_NODE_LOCKS: dict[str, threading.Lock] = {}
_NODE_LOCKS_GUARD = threading.Lock()


def _node_lock(node: str) -> threading.Lock:
    with _NODE_LOCKS_GUARD:
        return _NODE_LOCKS.setdefault(node, threading.Lock())


@contextmanager
def _node(ctx: Context, node: str) -> Iterator[tuple[Runner, IscsiHelper]]:
    """The node's runner and helper, holding the node's lock: parallel attachments (an
    engine applying with parallelism) never run iscsiadm logins or map changes on one node
    at the same time (concurrent logins are known to crash iscsiadm)."""
    runner = runner_for(ctx, node)
    try:
        with _node_lock(node):
            yield runner, _helper(runner)
    finally:
        if isinstance(runner, SshRunner) and runner is not ctx.runner:
            runner.close()


# ---- DSP helpers ---------------------------------------------------------------------------


def _load(ctx: Context, volume_id: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(tenant, app_instance, storage instance) of a volume; NotFound when gone. The
    volume id is parsed and put in the URL as the Volume kind does (tenant boundary,
    one escaped path segment)."""
    tenant, leaf = parse_volume_id(ctx, volume_id, kind=KIND, field="volume_id")
    ai = ctx.client.get(ai_url(leaf, kind=KIND, field="volume_id"), tenant=tenant)
    si = first_si_vol(ai)[0]
    if si is None:
        raise NotFound(f"volume {volume_id} has no storage instance")
    return tenant, ai, si


def _si_url(ai: Mapping[str, Any], si: Mapping[str, Any]) -> str:
    return si_path(ai_url(ai["id"]), si["name"])


def _acl_iqns(si: Mapping[str, Any]) -> list[str]:
    items = (si.get("acl_policy") or {}).get("initiators") or []
    return [str(i.get("path", "")).rsplit("/initiators/", 1)[-1] for i in items]


def _serial(si: Mapping[str, Any]) -> str | None:
    vols = si.get("volumes") or []
    return vols[0].get("uuid") if vols else None


def _target(si: Mapping[str, Any], port: int, lun: int, chap: Chap | None = None) -> Target:
    access = si.get("access") or {}
    ips = access.get("ips") or []
    if not access.get("iqn"):
        raise NodeError(f"storage instance {si.get('name')} reports no target IQN "
                        "(is the volume online?)")
    return Target(access["iqn"], [f"{ip}:{port}" for ip in ips], lun, chap=chap,
                  serial=_serial(si))


def _degraded(att: Attachment, target: Target, min_paths: int | None) -> str | None:
    """Why a usable multipath attachment is degraded, or None (user-needs A17: a lost path
    must show as drift, not only as a lower ``paths_up``): fewer paths up than
    ``min_paths`` (default: every portal). A repair rescans a session that shows no
    device and logs in again on each portal without a session (bounded), and the path
    rejoins the map; while a portal stays unreachable the
    repair succeeds degraded (A1) and the drift stays. An attachment without a map (one
    path by design: multipathd was not running when it was made) is not degraded."""
    if att.map_name is None:
        return None
    gone = [p for p in att.paths if p.state != "up"]
    up = sum(p.state == "up" for p in att.paths)
    want = min(min_paths or len(target.portals), len(target.portals))
    if not gone or up >= want:
        return None
    detail = "; ".join(f"{p.portal}: {p.error}" for p in gone)
    return f"paths_up {up} of {len(target.portals)} (down: {detail})"


def _is_ours(where: str, target: Target, att: Attachment | None,
             remains: Remains | None) -> bool:
    """Whether the device mounted at a mount point (as /proc/mounts names it) is this
    volume's: its map or by-id link carries the volume's WWID, or it is one of its
    devices. Another filesystem mounted there is not a trace of this attachment."""
    wwids = {w for w in (att.wwid if att else None,
                         wwid_for_serial(target.serial) if target.serial else None) if w}
    devices = set(att.devices if att else ()) | set(remains.devices if remains else ())
    names = {n for n in (att.map_name if att else None,
                         remains.map_name if remains else None) if n}
    return (any(w in where for w in wwids) or where in devices
            or any(where.endswith("/" + n) for n in names))


def _initiator_name(iqn: str, host: str | None = None) -> str:
    """The name we register an initiator under: ``datera-iac-<iqn digest>``, plus the
    registering node's fingerprint (:meth:`IscsiHelper.host_id`) when it has one."""
    base = "datera-iac-" + hashlib.sha256(iqn.encode()).hexdigest()[:8]
    return f"{base}-{host}" if host else base


#: what a node sharing another host's initiator name must do (user-needs A12)
_OWN_NAME_FIX = ("give this node its own name - echo \"InitiatorName=$(iscsi-iname)\" > "
                 "/etc/iscsi/initiatorname.iscsi, then restart iscsid")


def _initiator_url(iqn: str) -> str:
    return f"/initiators/{quote(iqn, safe=':')}"


def _get_initiator(ctx: Context, tenant: str, iqn: str) -> Mapping[str, Any] | None:
    """The initiator registration ``iqn`` in ``tenant`` (None when there is none)."""
    try:
        return ctx.client.get(_initiator_url(iqn), tenant=tenant)
    except NotFound:
        return None


def _registered_by(name: Any, iqn: str) -> tuple[bool, str | None]:
    """(whether ``name`` is one :func:`_initiator_name` gives ``iqn``, the node fingerprint
    it carries or None)."""
    base = _initiator_name(iqn)
    if name == base:
        return True, None
    if isinstance(name, str) and name.startswith(base + "-"):
        host = name[len(base) + 1:]
        if re.fullmatch(r"[0-9a-f]{8}", host):
            return True, host
    return False, None


# ---- control plane only (also used by image transfers) -----------------------------------


def grant_access(ctx: Context, volume_id: str, iqn: str, *, port: int = 3260, lun: int = 0,
                 chap: Chap | None = None) -> tuple[Target, bool]:
    """Register ``iqn``, put it in the volume's ACL, online the volume and wait until its
    target is available. Returns the target and whether the ACL entry was added now (so a
    caller undoes only what it did). No node-side action."""
    k: NodeAttachment = _kind()
    spec = NodeAttachmentSpec(volume_id=volume_id, initiator_iqn=iqn, port=port, lun=lun,
                              chap_user=chap.username if chap else None,
                              chap_secret=chap.secret if chap else None,
                              chap_initiator_user=chap.mutual_username if chap else None,
                              chap_initiator_secret=chap.mutual_secret if chap else None)
    tenant, ai, si = k._load_for(ctx, volume_id)
    k._register_initiator(ctx, tenant, iqn)
    added = k._acl_add(ctx, tenant, ai, si, iqn)
    try:
        k._set_chap(ctx, tenant, ai, si, spec)
        si = k._online(ctx, tenant, ai)
    except Exception:
        if added:
            k._acl_remove(ctx, tenant, ai, si, iqn)
        raise
    return _target(si, port, lun, chap), added


def revoke_access(ctx: Context, volume_id: str, iqn: str) -> None:
    """Remove ``iqn`` from the volume's ACL; offline the volume when no initiator is left."""
    k: NodeAttachment = _kind()
    try:
        tenant, ai, si = _load(ctx, volume_id)
    except NotFound:
        return
    k._revoke(ctx, tenant, ai, si, iqn)


def _kind() -> "NodeAttachment":
    """The registered NodeAttachment instance."""
    from datera_iac.resources.base import KINDS

    return KINDS["NodeAttachment"]  # type: ignore[return-value]


# ---- the kind ------------------------------------------------------------------------------


@register
class NodeAttachment(Kind[NodeAttachmentSpec, NodeAttachmentOutputs]):
    """A volume attached to a node: initiator in the ACL, sessions logged in, a verified
    device (and optionally a filesystem mounted)."""

    name = "NodeAttachment"
    token = "datera:index:NodeAttachment"
    tf_type = "datera_node_attachment"
    Spec = NodeAttachmentSpec
    Outputs = NodeAttachmentOutputs
    import_id_doc = "<volume id>:<initiator iqn>[?node=ssh://...&port=..&lun=..&mount_point=..]"

    def validate(self, spec: NodeAttachmentSpec) -> None:
        if bool(spec.chap_user) != bool(spec.chap_secret):
            raise InputError("CHAP needs both chap_user and chap_secret", kind=KIND,
                             field="chap_secret" if spec.chap_user else "chap_user",
                             fix="set both, or neither")
        if spec.chap_initiator_user and not spec.chap_user:
            raise InputError("mutual CHAP needs one-way CHAP too", kind=KIND,
                             field="chap_user", fix="set chap_user and chap_secret")
        if spec.chap_user or spec.chap_initiator_user:
            _ = spec.chap  # runs Chap's own checks (pairs, distinct secrets)
        if spec.mount_point and not spec.filesystem:
            raise InputError("mount_point needs filesystem", kind=KIND, field="filesystem",
                             fix="set filesystem (e.g. ext4); it is created only on a blank "
                                 "device")

    related_fields = ("volume_id",)
    checks_updates = True  # the Volume's CHAP may change while the attachment does not

    def check_plan(self, ctx: Context, spec: NodeAttachmentSpec, related: Mapping[str, Any], *,
                   creating: bool, pending: Collection[str] = ()) -> None:
        """A volume's CHAP has one owner. A Volume declared alongside that declares CHAP
        owns it, and its attachments must log in with exactly that (other credentials, or
        none, would be refused at login: the attachment never overwrites a volume's
        CHAP). A Volume that declares none leaves its CHAP to its attachments (the
        Volume's rule), so the attachment's is the one that holds. Refused at plan time."""
        from datera_iac.resources.volume import VolumeSpec

        vol = related.get("volume_id")
        if not isinstance(vol, VolumeSpec) or not vol.chap_user:
            return
        for field in ("chap_user", "chap_secret", "chap_initiator_user",
                      "chap_initiator_secret"):
            a, b = getattr(spec, field), getattr(vol, field)
            if a == b or ("secret" in field and (a is None or b is None)):
                continue  # (whether a secret is set at all follows from its user name)
            if spec.chap_user is None:
                why = (f"has no CHAP, and volume {vol.name!r} declares CHAP user "
                       f"{vol.chap_user!r}: the login would be refused")
                fix = "set chapUser/chapSecret to the Volume's (e.g. ${<volume>.chapSecret})"
            else:
                why = (f"{field} differs from volume {vol.name!r}'s: one target has one set "
                       "of CHAP credentials, the Volume's")
                fix = f"set {field} to the Volume's {field}"
            raise InputError(why, kind=KIND, field=field, fix=fix)

    def diff(self, old: NodeAttachmentSpec, new: NodeAttachmentSpec) -> Diff:
        """Field diff where unknowns are not changes: an unset initiator_iqn means "the
        node's own" (which a read reports), and CHAP secrets are never readable back."""
        ignore = []
        if new.initiator_iqn is None:
            ignore.append("initiator_iqn")
        if old.volume_size is None:  # not recorded (an import): unknown is not a change
            ignore.append("volume_size")
        if old.chap_secret is None and old.chap_user == new.chap_user:
            ignore.append("chap_secret")
        if old.chap_initiator_secret is None and (
                old.chap_initiator_user == new.chap_initiator_user):
            ignore.append("chap_initiator_secret")
        d = diff_specs(old, new, ignore=ignore)
        if d.replace:
            return Diff(d.changes, delete_before_replace=True,
                        reason="a node can hold one attachment of a volume at a time")
        return d

    # ---- create ---------------------------------------------------------------------

    def create(self, ctx: Context, spec: NodeAttachmentSpec
               ) -> Observed[NodeAttachmentSpec, NodeAttachmentOutputs]:
        tenant, ai, si = self._load_for(ctx, spec.volume_id)
        with _node(ctx, spec.node) as (runner, helper):
            iqn = spec.initiator_iqn or helper.initiator_iqn()
            host = helper.host_id()
            self._register_initiator(ctx, tenant, iqn, host)
            added = self._acl_add(ctx, tenant, ai, si, iqn)
            try:
                if not self._still_ours(ctx, tenant, iqn, host):
                    raise NodeError(
                        f"the initiator {iqn} was just registered by another host with the "
                        f"same initiator name (VMs cloned from one image?): {_OWN_NAME_FIX}")
                self._set_chap(ctx, tenant, ai, si, spec)
                si = self._online(ctx, tenant, ai)
                target = _target(si, spec.port, spec.lun, spec.chap)
                # attached already (a re-run after the state was lost): what is in use is
                # never undone by a failure of this run
                in_use = (helper.inspect(target) is not None
                          or self._still_mounted(runner, helper, target, spec))
                att = helper.attach(target, multipath=spec.multipath,
                                    enforce_multipath=spec.enforce_multipath,
                                    undo_on_failure=not in_use)
                try:
                    self._stage(runner, att, spec, helper)
                except Exception:
                    if not in_use:
                        helper.detach(target)
                    raise
            except Exception:
                if added:
                    try:
                        self._acl_remove(ctx, tenant, ai, si, iqn)
                    except DspError as e:  # the original error matters more
                        log.error("cleanup: could not remove %s from the ACL of %s: %s",
                                  iqn, spec.volume_id, e)
                raise
        obs = self._observe(ctx, attachment_id(spec, spec.volume_id, iqn), spec, iqn)
        if obs is None:
            raise NodeError(f"{spec.volume_id} was attached but cannot be read back")
        return obs

    def _load_for(self, ctx: Context, volume_id: str):
        try:
            return _load(ctx, volume_id)
        except NotFound:
            raise InputError(f"volume {volume_id} does not exist", kind=KIND,
                             field="volume_id", fix="create the Volume first") from None

    def _register_initiator(self, ctx: Context, tenant: str, iqn: str,
                            host: str | None = None) -> None:
        """Register ``iqn`` in ``tenant`` under our name for node ``host`` (its
        fingerprint). An initiator another node registered under our naming, still in an
        ACL of the tenant, means two hosts share one IQN: refused (user-needs A12)."""
        have = _get_initiator(ctx, tenant, iqn)
        if have is not None and have.get("tenant") in (None, tenant):
            self._claim(ctx, tenant, iqn, host, have)
            return
        body: dict[str, Any] = {"id": iqn, "name": _initiator_name(iqn, host)}
        if getattr(ctx.client, "api_version", "2.2") != "2.1":
            body["force"] = True  # a parent tenant's initiator is re-created here
        try:
            ctx.client.post("/initiators", body, tenant=tenant)
        except Conflict:
            # registered meanwhile (a concurrent attach, possibly a clone's): check it
            have = _get_initiator(ctx, tenant, iqn)
            if have is not None and have.get("tenant") in (None, tenant):
                self._claim(ctx, tenant, iqn, host, have)

    def _still_ours(self, ctx: Context, tenant: str, iqn: str, host: str | None) -> bool:
        """After this node's ACL add: whether the registration still names this node. Two
        clones attaching in the same instant can both pass :meth:`_claim` before either
        is in an ACL; the one whose fingerprint the registration no longer carries backs
        out. (Both can still pass if their checks interleave exactly; the DSP has no
        compare-and-set to close that.)"""
        if host is None:
            return True
        have = _get_initiator(ctx, tenant, iqn)
        if have is None:
            return True
        ours, other = _registered_by(have.get("name"), iqn)
        return not ours or other in (None, host)

    def _claim(self, ctx: Context, tenant: str, iqn: str, host: str | None,
               have: Mapping[str, Any]) -> None:
        """An existing registration of ``iqn``: refuse it when another node made it and an
        ACL still lists it; otherwise record this node on it (a registration of ours without
        a fingerprint, or a stale one of another node). Someone else's is left alone."""
        ours, other = _registered_by(have.get("name"), iqn)
        if not ours or host is None or other == host:
            return
        if other is not None and self._in_any_acl(ctx, tenant, iqn):
            raise NodeError(
                f"the initiator {iqn} is already in use by another host (node {other} "
                f"registered it; this node is {host}): two hosts with one initiator name "
                "(VMs cloned from one image) make sessions fail or data go to the wrong "
                f"host. To fix: {_OWN_NAME_FIX}; if the other host is gone, remove its "
                "attachments (or the IQN from those volumes' ACLs) first. Nothing was changed")
        try:
            ctx.client.put(_initiator_url(iqn), {"name": _initiator_name(iqn, host)},
                           tenant=tenant)
        except (NotFound, Conflict):
            pass  # gone or changed meanwhile: the ACL add that follows tells

    def _in_any_acl(self, ctx: Context, tenant: str, iqn: str) -> bool:
        return any(iqn in _acl_iqns(s) for ai in ctx.client.list("/app_instances", tenant=tenant)
                   for s in ai.get("storage_instances") or [])

    def _acl_add(self, ctx: Context, tenant: str, ai: dict[str, Any], si: dict[str, Any],
                 iqn: str) -> bool:
        if iqn in _acl_iqns(si):
            return False
        try:
            ctx.client.put(f"{_si_url(ai, si)}/acl_policy/initiators",
                           {"op": "add", "path": f"/initiators/{iqn}"}, tenant=tenant)
        except Conflict:
            return False  # added meanwhile (a concurrent attach): "already there" is success
        return True

    def _acl_remove(self, ctx: Context, tenant: str, ai: Mapping[str, Any],
                    si: Mapping[str, Any], iqn: str) -> None:
        try:
            ctx.client.put(f"{_si_url(ai, si)}/acl_policy/initiators",
                           {"op": "remove", "path": f"/initiators/{iqn}"}, tenant=tenant)
        except NotFound:
            pass  # not in the ACL (any more): the goal is reached

    def _set_chap(self, ctx: Context, tenant: str, ai: Mapping[str, Any],
                  si: Mapping[str, Any], spec: NodeAttachmentSpec) -> None:
        auth = si.get("auth") or {}
        kind = auth.get("type") or "none"
        chap = spec.chap
        if chap is None:
            if kind in ("chap", "mchap"):
                raise InputError(f"volume {spec.volume_id} requires CHAP (user "
                                 f"{auth.get('target_user_name')!r})", kind=KIND,
                                 field="chap_user",
                                 fix="set chap_user and chap_secret on the attachment")
            return
        if kind in ("chap", "mchap"):
            if auth.get("target_user_name") not in (None, "", chap.username):
                raise InputError(f"volume {spec.volume_id} already uses CHAP user "
                                 f"{auth.get('target_user_name')!r}", kind=KIND,
                                 field="chap_user",
                                 fix="every attachment of a volume shares its CHAP credentials")
            # Already on: never overwrite the secret (it would lock out the volume's other
            # attachments); the login proves whether ours is right. Rotate it on the Volume.
            return
        body: dict[str, Any] = {"type": "mchap" if chap.mutual_username else "chap",
                                "target_user_name": chap.username,
                                "target_pswd": chap.secret}
        if chap.mutual_username:
            body["initiator_user_name"] = chap.mutual_username
            body["initiator_pswd"] = chap.mutual_secret
        ctx.client.put(f"{_si_url(ai, si)}/auth", body, tenant=tenant)

    def _online(self, ctx: Context, tenant: str, ai: Mapping[str, Any]) -> dict[str, Any]:
        if ai.get("admin_state") != "online":
            ctx.client.put(ai_url(ai["id"]), {"admin_state": "online"}, tenant=tenant)
        seen: dict[str, Any] = {}

        def state() -> str:
            si = ctx.client.get(si_path(ai_url(ai["id"])), tenant=tenant)
            seen["si"] = si
            return str(si.get("op_state") or "unknown")

        wait_for(state, target={"available"}, what=f"storage instance of {ai['id']} to be "
                 "available", timeout=ctx.timeouts.create,
                 hint="see the volume's health and causes on the DSP")
        return seen["si"]

    def _stage(self, runner: Runner, att: Attachment, spec: NodeAttachmentSpec,
               helper: IscsiHelper) -> None:
        if not spec.filesystem:
            return
        if spec.mount_point:
            where = nodefs.is_mounted(runner, spec.mount_point)
            if where and _is_ours(where, att.target, att, None):
                return  # in use already (a repair): nothing to probe, make or mount
            if where:
                raise NodeError(f"{where} is mounted at {spec.mount_point}, not this volume: "
                                "unmount it or choose another mount_point (nothing is "
                                "mounted over it)")
        unsettled = [p.portal for p in att.paths if p.state != "up" and p.error
                     and "never appeared" in p.error]
        if unsettled:
            # a logged-in path without its device means udev/SCSI scan is still running:
            # a probe now could miss a signature, so it is not made at all
            raise NodeError(f"{att.device_path} has not settled (paths via "
                            f"{', '.join(unsettled)} are logged in without a device): "
                            "not probing it for a filesystem; retry the attachment")
        nodefs.ensure_filesystem(runner, att.device_path, spec.filesystem)
        if spec.mount_point:
            nodefs.mount(runner, att.device_path, spec.mount_point, spec.filesystem)

    # ---- read -----------------------------------------------------------------------

    def read(self, ctx: Context, id: str
             ) -> Observed[NodeAttachmentSpec, NodeAttachmentOutputs] | None:
        vol, iqn, opts = parse_attachment_id(id)
        spec = NodeAttachmentSpec(volume_id=vol, initiator_iqn=iqn, **opts)
        return self._observe(ctx, id, spec, iqn)

    def read_known(self, ctx: Context, id: str, known: NodeAttachmentSpec | None
                   ) -> Observed[NodeAttachmentSpec, NodeAttachmentOutputs] | None:
        """Read; the fields the DSP and node cannot report (CHAP secrets, enforce flag,
        an unset initiator_iqn) are carried over from the recorded spec."""
        vol, iqn, opts = parse_attachment_id(id)
        base = known or NodeAttachmentSpec(volume_id=vol, initiator_iqn=iqn, **opts)
        return self._observe(ctx, id, base, iqn)

    def _observe(self, ctx: Context, id: str, spec: NodeAttachmentSpec, iqn: str
                 ) -> Observed[NodeAttachmentSpec, NodeAttachmentOutputs] | None:
        """The attachment as the DSP and the node show it.

        None only when nothing of it is left: the volume is gone, or the ACL does not list
        the initiator and the node holds no session, node record, device, map or mount of
        the target. Anything less than a usable attachment that still leaves something
        behind (a detach interrupted at logout, an ACL entry removed out of band, an
        offlined volume) is returned with ``repair_needed`` saying why, so a destroy still
        deletes it (finishing each remaining step) and a plan repairs it."""
        try:
            tenant, ai, si = _load(ctx, spec.volume_id)
        except NotFound:
            return None
        listed = iqn in _acl_iqns(si)
        online = ai.get("admin_state") == "online"
        access = si.get("access") or {}
        if not access.get("iqn") or not access.get("ips"):
            # no target the node could hold: only the ACL entry can be left
            if not listed:
                return None
            return self._observed(id, spec, iqn, si, None, None, None, None,
                                  repair="the volume reports no iSCSI target (is it online?) "
                                         f"while its ACL still lists {iqn}")
        target = _target(si, spec.port, spec.lun)
        want = len(target.portals) if spec.multipath else 1
        with _node(ctx, spec.node) as (runner, helper):
            att = helper.inspect(target)
            if att is not None and listed and online:
                size = helper.size(att.device_path)
                mounted = None
                if spec.mount_point:
                    where = nodefs.is_mounted(runner, spec.mount_point)
                    mounted = (spec.mount_point if where and _is_ours(where, target, att, None)
                               else None)
                degraded = _degraded(att, target, spec.min_paths) if spec.multipath else None
                return self._observed(id, spec, iqn, si, target, att, size, mounted,
                                      repair=degraded)
            remains = helper.remains(target) if att is None else None
            mounted = None
            if spec.mount_point:
                where = nodefs.is_mounted(runner, spec.mount_point)
                if where and _is_ours(where, target, att, remains):
                    mounted = spec.mount_point
            size = helper.size(att.device_path) if att is not None else None
        if att is None and not remains and not mounted and not listed:
            return None  # fully detached (or never attached)
        reasons = []
        if att is None:
            left = [remains.describe()] if remains else []
            if mounted:
                left.append(f"a mount at {mounted}")
            if listed:
                left.append("the initiator in the volume's ACL")
            reasons.append(f"paths_up 0 of {want} (left: {', '.join(left)})")
        if not listed:
            reasons.append(f"the volume's ACL does not list the initiator {iqn}")
        if not online:
            reasons.append("the volume is offline")
        return self._observed(id, spec, iqn, si, target, att, size, mounted,
                              remains=remains, repair="; ".join(reasons))

    def _observed(self, id: str, spec: NodeAttachmentSpec, iqn: str, si: Mapping[str, Any],
                  target: Target | None, att: Attachment | None, size: int | None,
                  mounted: str | None, *, remains: Remains | None = None,
                  repair: str | None = None
                  ) -> Observed[NodeAttachmentSpec, NodeAttachmentOutputs]:
        """The Observed for what ``_observe`` saw. A mount point that is not mounted is
        drift (a replacement) on a usable attachment; on one that needs repair it is part
        of the repair, so the declared value is kept."""
        auth = si.get("auth") or {}
        seen_user = auth.get("target_user_name") or None
        keep_mount = mounted or not spec.mount_point or repair is not None
        observed_spec = attrs.evolve(
            spec,
            chap_user=seen_user if auth.get("type") in ("chap", "mchap") else None,
            chap_initiator_user=(auth.get("initiator_user_name") or None)
            if auth.get("type") == "mchap" else None,
            mount_point=spec.mount_point if keep_mount else None,
        )
        if observed_spec.chap_user is None:
            observed_spec = attrs.evolve(observed_spec, chap_secret=None,
                                         chap_initiator_secret=None)
        out = NodeAttachmentOutputs(
            device_path=att.device_path if att else None,
            portals=list(target.portals) if target else None,
            iqn=target.iqn if target else None, lun=target.lun if target else spec.lun,
            map_name=att.map_name if att else (remains.map_name if remains else None),
            wwid=att.wwid if att else None, initiator_iqn=iqn,
            paths_up=sum(p.state == "up" for p in att.paths) if att else 0,
            mounted_at=mounted, size_bytes=size, repair_needed=repair,
        )
        return Observed(id=id, spec=observed_spec, outputs=out)

    def needs_repair(self, outputs: NodeAttachmentOutputs) -> str | None:
        return outputs.repair_needed

    # ---- update / delete ------------------------------------------------------------

    def update(self, ctx: Context, id: str, old: NodeAttachmentSpec, new: NodeAttachmentSpec
               ) -> Observed[NodeAttachmentSpec, NodeAttachmentOutputs]:
        """In place: ``enforce_multipath`` (it matters at attach time only) and
        ``volume_size``: a grown volume is rescanned on the node (each path, then the
        multipath map) and the node must then see at least the new size.

        An attachment that needs repair (:meth:`needs_repair`) is repaired first: what is
        left of an interrupted detach is cleaned up on the node, then the initiator is
        granted access again and the node re-attaches (and re-mounts)."""
        current = self.read_known(ctx, id, new)
        if current is None:
            raise NotFound(f"attachment {id} is gone")
        if current.outputs.repair_needed:
            self._repair(ctx, id, new, current.outputs.repair_needed)
        if new.volume_size is not None and new.volume_size != old.volume_size:
            self._grow(ctx, id, new)
        obs = self.read_known(ctx, id, new)
        if obs is None:
            raise NotFound(f"attachment {id} is gone")
        return obs

    def _repair(self, ctx: Context, id: str, spec: NodeAttachmentSpec, why: str) -> None:
        """Make a broken attachment usable again. Re-runnable: each step is idempotent.

        Without a usable device the node's leftovers (sessions without devices, records,
        a map without paths) are detached first: a session whose LUN was deleted would
        never show a device again. If this raises, the attachment still exists (and still
        needs repair)."""
        _vol, iqn, opts = parse_attachment_id(id)
        log.info("repairing attachment %s: %s", id, why)
        tenant, ai, si = self._load_for(ctx, spec.volume_id)
        with _node(ctx, opts["node"]) as (runner, helper):
            self._register_initiator(ctx, tenant, iqn, helper.host_id())
            self._acl_add(ctx, tenant, ai, si, iqn)
            self._set_chap(ctx, tenant, ai, si, spec)
            si = self._online(ctx, tenant, ai)
            target = _target(si, opts["port"], opts["lun"], spec.chap)
            before = helper.inspect(target)
            usable = before is not None
            in_use = usable or self._still_mounted(runner, helper, target, spec)
            if not in_use:
                helper.detach(target)
            elif usable:
                if not [p for p in before.paths if p.state != "up"
                        and p.error in ("no session", "no block device")]:
                    # every lost path still has its session and device (blocked or offline
                    # while its portal is away): the kernel recovers them when the portal
                    # returns, and logging in again could not - nothing to do here
                    log.info("attachment %s: its lost paths wait for their portals (%s)",
                             id, why)
                    return
                helper.rescan_deviceless_sessions(target)  # their LUN comes back, if it can
            # A map that is usable or that the volume's filesystem is still mounted on is
            # kept as it is: it holds the writes queued while its paths were gone, and
            # logging in again puts the paths back into it. Flushing it (disablequeueing)
            # would fail those writes - also when this repair's own login goes wrong.
            # ... and keeps its shape: one in use without a map (one path by design,
            # multipathd was down when it was made) is not put under a new map now
            had_map = (before.map_name if before is not None
                       else helper.remains(target).map_name) is not None
            multipath = opts["multipath"] and (had_map or not in_use)
            att = helper.attach(target, multipath=multipath,
                                enforce_multipath=spec.enforce_multipath and multipath,
                                undo_on_failure=not in_use)
            self._stage(runner, att, spec, helper)

    @staticmethod
    def _still_mounted(runner: Runner, helper: Any, target: Target,
                       spec: NodeAttachmentSpec) -> bool:
        """Whether the volume's filesystem is mounted at the declared mount point on a
        device or map of this volume (sessions may be gone: its map then queues I/O)."""
        if not spec.mount_point:
            return False
        remains = helper.remains(target)
        # any of the mounts stacked there: ours under another one is still in use
        return any(_is_ours(where, target, None, remains)
                   for where in nodefs.mounted_at(runner, spec.mount_point))

    def _grow(self, ctx: Context, id: str, spec: NodeAttachmentSpec) -> None:
        _vol, _iqn, opts = parse_attachment_id(id)
        try:
            _tenant, _ai, si = _load(ctx, spec.volume_id)
        except NotFound:
            raise NotFound(f"attachment {id}: its volume is gone") from None
        target = _target(si, opts["port"], opts["lun"])
        want = int(spec.volume_size or 0) << 30
        with _node(ctx, opts["node"]) as (runner, helper):
            seen = helper.extend(target)
            if seen < want:
                raise NodeError(f"after a rescan the node still sees {seen} bytes for "
                                f"{spec.volume_id}, not {want}: was the Volume grown first "
                                "(make the attachment depend on it)?")
            if spec.grow_filesystem and spec.filesystem and spec.mount_point:
                self._grow_fs(runner, helper, target, spec)

    @staticmethod
    def _grow_fs(runner: Runner, helper: Any, target: Target, spec: NodeAttachmentSpec
                 ) -> None:
        """Grow the volume's filesystem at the declared mount point, online (user-needs
        A15: the device's new size is verified first). Only this volume's filesystem:
        another disk mounted there is left alone."""
        assert spec.filesystem and spec.mount_point
        att = helper.inspect(target)
        where = nodefs.is_mounted(runner, spec.mount_point)
        if att is None or not where or not _is_ours(where, target, att, None):
            log.warning("%s: the volume's filesystem is not mounted at %s; not grown "
                        "(it keeps its old size until grown)", spec.volume_id, spec.mount_point)
            return
        nodefs.grow_filesystem(runner, att.device_path, spec.filesystem, spec.mount_point)

    def delete(self, ctx: Context, id: str) -> None:
        vol, iqn, opts = parse_attachment_id(id)
        try:
            tenant, ai, si = _load(ctx, vol)
        except NotFound:
            return  # the volume is gone, and with it the ACL; nothing to undo on the DSP
        access = si.get("access") or {}
        with _node(ctx, opts["node"]) as (runner, helper):
            if access.get("iqn"):
                portals = [f"{ip}:{opts['port']}" for ip in access.get("ips") or []] or [
                    s.portal for s in helper.sessions() if s.iqn == access["iqn"]]
                target = Target(access["iqn"], portals, opts["lun"], serial=_serial(si))
                if opts["mount_point"]:
                    where = nodefs.is_mounted(runner, opts["mount_point"])
                    # only this volume's filesystem: another disk mounted there since (the
                    # volume detached out of band) is not ours to unmount
                    if where and _is_ours(where, target, helper.inspect(target),
                                          helper.remains(target)):
                        nodefs.unmount(runner, opts["mount_point"])
                if portals:
                    helper.detach(target)
        self._revoke(ctx, tenant, ai, si, iqn)

    def _revoke(self, ctx: Context, tenant: str, ai: Mapping[str, Any],
                si: Mapping[str, Any], iqn: str) -> None:
        if iqn in _acl_iqns(si):
            self._acl_remove(ctx, tenant, ai, si, iqn)
        try:
            fresh = ctx.client.get(f"{_si_url(ai, si)}/acl_policy", tenant=tenant)
        except NotFound:
            return
        if not (fresh.get("initiators") or fresh.get("initiator_groups")):
            if ai.get("admin_state") == "online":
                ctx.client.put(ai_url(ai["id"]), {"admin_state": "offline", "force": True},
                               tenant=tenant)
        self._unregister_initiator(ctx, tenant, iqn)

    def _unregister_initiator(self, ctx: Context, tenant: str, iqn: str) -> None:
        """Delete the initiator :meth:`_register_initiator` made once no ACL in its tenant
        lists it, so an emptied tenant can be deleted. One registered by someone else
        (another tenant's, or under another name) is left alone."""
        have = _get_initiator(ctx, tenant, iqn)
        if (have is None or have.get("tenant") not in (None, tenant)
                or not _registered_by(have.get("name"), iqn)[0]):
            return
        if self._in_any_acl(ctx, tenant, iqn):
            return
        try:
            ctx.client.delete(_initiator_url(iqn), tenant=tenant)
        except (NotFound, Conflict):
            pass  # gone already, or taken into use meanwhile: both fine

    # ---- find / adopt ----------------------------------------------------------------

    def find(self, ctx: Context, spec: NodeAttachmentSpec
             ) -> Observed[NodeAttachmentSpec, NodeAttachmentOutputs] | None:
        iqn = spec.initiator_iqn
        if iqn is None:
            with _node(ctx, spec.node) as (_runner, helper):
                iqn = helper.initiator_iqn()
        return self._observe(ctx, attachment_id(spec, spec.volume_id, iqn), spec, iqn)

    def adopt(self, ctx: Context, ref: str
              ) -> Observed[NodeAttachmentSpec, NodeAttachmentOutputs]:
        obs = self.read(ctx, ref)
        if obs is None:
            raise NotFound(f"no attachment {ref}: the initiator is not in the volume's ACL, "
                           "the volume is offline, or the node has no session to it")
        return obs
