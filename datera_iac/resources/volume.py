"""The Volume kind: one app_instance holding storage instance ``storage-1`` with volume
``volume-1`` (the Cinder driver's layout, so Cinder can manage what we make and we can
adopt what Cinder made).

Why it looks the way it does:

* **One POST.** A plain volume is created with everything nested in one
  ``POST /app_instances`` (storage instance, ip_pool, CHAP auth, volume, placement,
  replicas, snapshot policies and the performance_policy), not the ten calls of the Cinder
  driver. Metadata is one more PUT, made only when there is metadata to record.
* **Bulk reads.** :meth:`Volume.read_many` refreshes N volumes with the paged
  ``GET /app_instances`` list of each tenant: the list embeds storage instances and
  volumes, so a refresh of 1,000 volumes is about ten requests.
* **The policy is declared, not inferred.** ``extra_specs`` are the Cinder ``DF:`` specs
  (prefix optional, normalized by :mod:`datera_iac.cinder`). ``read`` reports the live
  policy explicitly (``DF:replica_count``, placement, ip_pool, template, QoS ``*_max``);
  :meth:`Volume.diff` compares the *attributes you declared*: an attribute you leave out
  keeps whatever the DSP has (Terraform's optional+computed), so writing a subset of keys,
  or QoS as ``iops_per_gb``, does not show a change after a refresh. A key *removed* from
  the declaration goes back to its default (:meth:`Volume.declare_removed`, given the last
  declaration by the caller), as a Cinder retype re-applies the whole type.
* **CHAP a declaration leaves out is not managed.** ``chap_user`` unset leaves the storage
  instance's CHAP as the DSP has it: a NodeAttachment turns CHAP on for the volume it
  attaches, and the Volume's next run must not turn it off under the attachment.
  ``chap_user: ""`` turns CHAP off, and so does removing ``chap_user`` from a declaration
  that had it (:meth:`Volume.declare_removed`).
* **Calls are data.** An update's DSP calls are chosen by :func:`volume_calls` from what
  was read (:class:`LiveVolume`) and the declaration, without I/O; ``update`` only sends
  them (:func:`~datera_iac.resources.calls.send_calls`), so a preview lists the same calls
  (:meth:`Volume.calls`) and tests/resources/test_volume_calls.py checks every rule.
* **Unknown is not a change.** The DSP never returns CHAP secrets, a volume's source
  (clone, snapshot, template) or, in a bulk read, its metadata; ``read`` reports those as
  None and ``diff`` compares such fields only when both sides know them.

Ids, URLs and the storage-1/volume-1 layout are :mod:`datera_iac.resources.layout`'s
(shared with every kind that reaches a volume).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Collection, Iterable, Mapping
from typing import Any

import attrs

from datera_iac import cinder
from datera_iac.errors import (
    Conflict,
    DspError,
    InputError,
    NotFound,
    Unreachable,
    ValidationFailed,
    WaitTimeout,
)
from datera_iac.fields import REPLACE, SENSITIVE
from datera_iac import validators as rules
from datera_iac.resources._util import (
    NAME_FIX,
    NAME_RE,
    ROOT,
    SNAP_TS_RE,
    NamesResource,
    check,
    check_tenant,
    delete_app_instance,
    join_id,
    normalize_tenant,
    path_tail,
    pattern,
    restore_timestamp,
    str_list,
    str_map,
    strict_spec,
    to_gib,
    to_int,
    wait_for,
)
from datera_iac.resources import imaging as _image
from datera_iac.resources.batching import Rows, listed, lookup
from datera_iac.resources.calls import Call, offline_around, send_calls
from datera_iac.resources.layout import (
    AI_NAME_RE,
    SI_NAME,
    VOL_NAME,
    ai_url,
    default_tenant,
    first_si_vol,
    logged_in,
    parse_volume_id,
    same_volume,
    si_path,
    volume_id_parts,
    volume_ref_parts,
)
from datera_iac.resources.base import (
    create_token,
    token_uuid,
    Context,
    Dependent,
    Diff,
    FieldChange,
    Kind,
    Observed,
    diff_specs,
    out_field,
    register,
    spec_field,
)

__all__ = [
    "MAX_SIZE_GIB",
    "SNAPSHOT_INTERVALS",
    "Volume",
    "VolumeOutputs",
    "VolumeSpec",
    "LiveVolume",
    "carry_unknown",
    "entity_calls",
    "facts_of",
    "live_volume",
    "metadata_calls",
    "revert_calls",
    "volume_calls",
    "restore_timestamp",
]

log = logging.getLogger(__name__)

KIND = "Volume"
MAX_SIZE_GIB = 32768
#: Public snapshot-policy intervals (the schema's enum minus its internal 1min/2min).
SNAPSHOT_INTERVALS = ("15min", "1hour", "1day", "1week", "1month", "1year")
#: Metadata key under which the volume type name is recorded.
META_VOLUME_TYPE = "volume_type"
_QOS_KEYS = frozenset(cinder.QOS_MAX_KEYS) | {"iops_per_gb", "bandwidth_per_gb"}
#: Policy keys whose removal from a declaration changes nothing (see declare_removed).
_KEEP_ON_REMOVE = frozenset({"round_robin", "template"})


# ---- inputs -------------------------------------------------------------------------------


def _extra_specs(value: Any) -> dict[str, str]:
    raw = str_map(KIND, "extra_specs")(value) if not isinstance(value, Mapping) else dict(value)
    norm = cinder.normalize_extra_specs(raw, kind=KIND)
    norm.pop(cinder.BACKEND_KEY, None)  # the backend name means nothing on the DSP itself
    return norm


def _volume_type(value: Any) -> Any:
    """A type given by id or by name is one spec: a VolumeType's id is its name, or
    ``/app_templates/<name>`` when materialized, and the volume records the name."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("/app_templates/"):
            return text[len("/app_templates/"):].strip("/")
        return text
    return value


def _tenant(value: Any) -> str | None:
    return normalize_tenant(value, kind=KIND, field="tenant")


def _snapshot_policies(value: Any) -> list[str]:
    """``name:interval:retention`` items, sorted by name (order has no meaning on the DSP)."""
    items = str_list(KIND, "snapshot_policies")(value)
    seen: dict[str, str] = {}
    for i, item in enumerate(items):
        field = f"snapshot_policies[{i}]"
        parts = item.split(":")
        fix = ("write 'name:interval:retention', e.g. 'daily:1day:7'; interval one of "
               + ", ".join(SNAPSHOT_INTERVALS) + "; retention 1..256")
        check(KIND, field, len(parts) == 3, f"{item!r} is not name:interval:retention", fix)
        name, interval, retention = (p.strip() for p in parts)
        check(KIND, field, bool(NAME_RE.match(name)), f"policy name {name!r} is not allowed",
              fix)
        check(KIND, field, interval in SNAPSHOT_INTERVALS, f"interval {interval!r} is unknown",
              fix)
        count = to_int(KIND, field, lo=1, hi=256)(retention)
        check(KIND, field, name not in seen, f"policy {name!r} is given twice",
              "give each snapshot policy a distinct name")
        seen[name] = f"{name}:{interval}:{count}"
    return [seen[k] for k in sorted(seen)]


def _id_ref(field: str) -> Any:
    """A create source: a volume id (``clone_of``) or ``<volume id>/<timestamp>``
    (``snapshot_id``) whose app_instance part is one the DSP can hold (an id or a name of
    AI_NAME_RE), so a value that names nothing is refused before the plan reads the source."""
    what = "volume" if field == "clone_of" else "snapshot"

    def validate(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
        if value is None:
            return
        fix = "use the id output of the source resource"
        check(KIND, field, isinstance(value, str) and bool(value.strip())
              and not value.strip().endswith("/"), f"{value!r} is not a {what} id", fix)
        volume = value.strip()
        if field == "snapshot_id":
            volume = volume.rpartition("/")[0] or volume
        try:
            leaf = volume_id_parts(volume, kind=KIND, field=field)["app_instance"]
        except InputError as e:  # its tenant part: name this field, not "tenant"
            raise InputError(e.reason, kind=KIND, field=field, fix=e.fix) from None
        subject = (repr(value) if leaf == value.strip()
                   else f"{value!r} is not a {what} id: its volume part {leaf!r}")
        check(KIND, field, AI_NAME_RE.fullmatch(leaf) is not None,
              f"{subject} is neither an app_instance id nor a volume name the DSP accepts", fix)

    return validate


def _restore_point(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    check(KIND, "restore_point", isinstance(value, str)
          and bool(SNAP_TS_RE.match(restore_timestamp(value))),
          f"{value!r} is neither a snapshot timestamp nor a snapshot id",
          "use the snapshot's timestamp (e.g. 1446076293.118600738, see `datera-iac ls "
          "snapshots --volume <volume id>`) or a Snapshot's id")


#: What ``unmanage_on_delete`` may say ("" or unset: delete).
UNMANAGE_MODES = ("keep", "rename")


def _unmanage_on_delete(_inst: Any, _attr: attrs.Attribute, value: Any) -> None:
    check(KIND, "unmanage_on_delete", value in (None, "", *UNMANAGE_MODES),
          f"{value!r} is not one of 'keep', 'rename' or ''",
          "write 'keep' (unmanage, leave it as it is), 'rename' (unmanage as "
          "UNMANAGED-<name>) or '' (delete)")


@strict_spec
@attrs.frozen(kw_only=True)
class VolumeSpec:
    """Inputs of a Volume."""

    name: str = spec_field(
        doc="app_instance name, unique in its tenant; a change renames in place.",
        validator=pattern(KIND, "name", AI_NAME_RE, NAME_FIX),
    )
    size: int = spec_field(
        doc="Size in GiB (1..32768). Grows in place; a smaller value is a plan error.",
        converter=to_gib(KIND, "size", lo=1, hi=MAX_SIZE_GIB),
    )
    tenant: str | None = spec_field(
        doc="Tenant ('x' or '/root/x'); unset means the provider's tenant. Changing it "
        "re-creates the volume.",
        default=None, replace=True, converter=_tenant, reference="Tenant",
    )
    volume_type: str | None = spec_field(
        doc="Volume type name, recorded in the volume's metadata (its policy comes from "
        "extra_specs).",
        default=None, reference="VolumeType", converter=_volume_type,
        validator=pattern(KIND, "volume_type", NAME_RE, NAME_FIX, optional=True),
    )
    extra_specs: dict[str, str] = spec_field(
        doc="Cinder DF: extra specs (prefix optional): replica_count, placement, ip_pool, "
        "template, QoS. Changes are a retype, in place where the DSP allows it.",
        factory=dict, converter=_extra_specs,
    )
    clone_of: str | None = spec_field(
        doc="Create as a clone of this volume (its id). Set at create only.",
        default=None, replace=True, reference="Volume", validator=_id_ref("clone_of"),
    )
    snapshot_id: str | None = spec_field(
        doc="Create from this snapshot (its id). Set at create only.",
        default=None, replace=True, reference="Snapshot", validator=_id_ref("snapshot_id"),
    )
    template: str | None = spec_field(
        doc="Create from this app template (the size is applied through template_override).",
        default=None, replace=True,
        validator=pattern(KIND, "template", NAME_RE, NAME_FIX, optional=True),
    )
    chap_user: str | None = spec_field(
        doc="CHAP user name initiators log in with (the DSP's target_user_name); enables "
        "CHAP on the storage instance, \"\" turns it off.",
        default=None, validator=rules.chap_user(KIND, off=True),
    )
    chap_secret: str | None = spec_field(
        doc=f"CHAP secret of chap_user (the DSP's target_pswd; {rules.CHAP_SECRET_RULE}).",
        default=None, sensitive=True, validator=rules.chap_secret(KIND),
    )
    chap_initiator_user: str | None = spec_field(
        doc="Mutual CHAP: the user name the target presents to the initiator (the DSP's "
        "initiator_user_name).", default=None, validator=rules.chap_user(KIND),
    )
    chap_initiator_secret: str | None = spec_field(
        doc="Mutual CHAP: the secret the target presents (the DSP's initiator_pswd; "
        f"{rules.CHAP_SECRET_RULE}; not the chap_secret).",
        default=None, sensitive=True, validator=rules.chap_secret(KIND),
    )
    metadata: dict[str, str] | None = spec_field(
        doc="Free-form key/value metadata of the app_instance (not written when "
        "datera_disable_extended_metadata is set).",
        default=None, converter=lambda v: None if v is None else str_map(KIND, "metadata")(v),
    )
    snapshot_policies: list[str] = spec_field(
        doc="Snapshot schedules as 'name:interval:retention' (e.g. 'daily:1day:7').",
        factory=list, converter=_snapshot_policies,
    )
    source_image: str | None = spec_field(
        doc="Create holding this image: a local path or an http(s) URL (raw, or qcow2/vmdk/"
        "vdi/vhdx/vhd through qemu-img), through the image cache when "
        "datera_enable_image_cache is on. Set at create only.",
        default=None, replace=True, validator=_image.image_ref(KIND, "source_image"),
    )
    source_image_checksum: str | None = spec_field(
        doc="Expected SHA-256 of the image ('sha256:<hex>'), verified before the volume is "
        "created.", default=None, replace=True, converter=_image.normalize_checksum,
    )
    source_image_format: str | None = spec_field(
        doc="The image's format (raw, qcow2, vmdk, vdi, vhdx, vhd); unset: detected.",
        default=None,
        converter=_image.normalize_format(KIND, "source_image_format", _image.IMAGE_FORMATS),
    )
    image_node: str | None = spec_field(
        doc="Where the image copy runs: 'local' (kernel iSCSI here, default) or "
        "'libiscsi://<initiator iqn>' (userspace initiator), optionally ?port=<n>&lun=<n>.",
        default=None,
    )
    replace_on_retype: bool = spec_field(
        doc="Allow a policy change the DSP cannot make in place (a replica_count decrease) "
        "to re-create the volume (its data is lost); otherwise it is a plan error.",
        default=False,
    )
    cascade: bool | None = spec_field(
        doc="Let a delete or replacement of this volume delete its snapshots with it "
        "(Cinder's cascade). Without it, a plan that deletes a volume that still has "
        "snapshots on the DSP is refused, naming them. Recorded, never sent to the DSP.",
        default=None,
    )
    unmanage_on_delete: str | None = spec_field(
        doc="Unmanage instead of deleting (a retain option every front end honours): when "
        "this declaration is destroyed or removed, 'keep' stops managing the volume and leaves "
        "it on the DSP as it is, 'rename' also renames it UNMANAGED-<name> (the Cinder "
        "driver's unmanage); unset or '' deletes it. Recorded, never sent to the DSP.",
        default=None, validator=_unmanage_on_delete,
    )
    restore_point: str | None = spec_field(
        doc="Revert the volume in place to one of its snapshots (the snapshot's timestamp, "
        "or its id): a trigger - a new value plans a revert (an update; the data written "
        "since that snapshot is lost), the same value again or no value changes nothing. "
        "Refused while initiators are logged in to the volume unless force_restore is set.",
        default=None, validator=_restore_point,
    )
    force_restore: bool = spec_field(
        doc="Revert (restore_point) even while initiators are logged in to the volume: "
        "their I/O fails while the DSP takes the volume offline for the revert.",
        default=False,
    )

    @property
    def source(self) -> str | None:
        """Which create source is set: clone_of, snapshot_id, template, or None."""
        for f in ("clone_of", "snapshot_id", "template"):
            if getattr(self, f):
                return f
        return None


@attrs.resolve_types
@attrs.frozen(kw_only=True)
class VolumeOutputs:
    """What the DSP reports for a volume."""

    ai_id: str | None = out_field(doc="app_instance id (a UUID).")
    tenant: str | None = out_field(doc="Tenant path the volume lives in.")
    path: str | None = out_field(doc="app_instance path, e.g. /app_instances/<id>.")
    iqn: str | None = out_field(doc="iSCSI target IQN of the storage instance.")
    portals: list[str] | None = out_field(doc="iSCSI portals, 'ip:3260'.")
    op_state: str | None = out_field(doc="Storage instance op_state (available when ready).")
    admin_state: str | None = out_field(doc="app_instance admin_state (online/offline).")
    health: str | None = out_field(doc="app_instance health.")
    uuid: str | None = out_field(doc="app_instance uuid.")
    storage_instance: str | None = out_field(doc="Storage instance name (storage-1).")
    volume_name: str | None = out_field(doc="Volume name (volume-1).")
    volume_path: str | None = out_field(doc="Volume path (snapshots live under it).")
    volume_uuid: str | None = out_field(doc="Volume uuid.")
    replica_count: int | None = out_field(doc="Live replica count.")
    chap_auth: str | None = out_field(doc="Storage instance auth type (none, chap, mchap).")


# ---- the policy as the diff sees it -------------------------------------------------------


def _declared(specs: Mapping[str, str]) -> set[str]:
    return {k[len(cinder.PREFIX):] for k in specs if k.startswith(cinder.PREFIX)}


def _view(spec: VolumeSpec) -> dict[str, Any]:
    """The policy attributes a spec declares, with their effective values; QoS as the
    performance_policy it means at the spec's size (so ``iops_per_gb`` compares with a live
    ``total_iops_max``)."""
    declared = _declared(spec.extra_specs)
    pol = cinder.resolve_policy(spec.extra_specs, kind=KIND)
    out: dict[str, Any] = {n: getattr(pol, n) for n in declared - _QOS_KEYS}
    if declared & _QOS_KEYS:
        out["qos"] = pol.performance_policy(spec.size)
    return out


def _builtin(name: str) -> Any:
    pol = cinder.resolve_policy({}, kind=KIND)
    return {} if name == "qos" else getattr(pol, name)


def _policy_delta(old: VolumeSpec, new: VolumeSpec) -> dict[str, tuple[Any, Any]]:
    """Declared-in-new attributes whose value differs from old's (old's builtin default
    when old does not declare it). round_robin, invisible on the DSP, compares only when
    both declare it."""
    ov, nv = _view(old), _view(new)
    out = {}
    for name, value in nv.items():
        if name not in ov and name == "round_robin":
            continue
        before = ov[name] if name in ov else _builtin(name)
        if before != value:
            out[name] = (before, value)
    return out


#: The DSP refuses app_instance metadata longer than this once serialized as JSON; checked
#: when planning (with the volume_type key the engine adds), so nothing is half-written.
METADATA_MAX_CHARS = 2048


def _check_metadata(spec: VolumeSpec) -> None:
    """Metadata the DSP would refuse: a key holding NUL, or more than
    :data:`METADATA_MAX_CHARS` characters serialized (what is written: the user's keys and
    the volume type's)."""
    if not spec.metadata:
        return
    for k in spec.metadata:
        if "\x00" in k:
            raise InputError(f"the metadata key {k!r} holds a NUL character", kind=KIND,
                             field="metadata", fix="remove the NUL from the key")
    written = dict(spec.metadata)
    if spec.volume_type:
        written[META_VOLUME_TYPE] = spec.volume_type
    size = len(json.dumps(written))
    if size > METADATA_MAX_CHARS:
        raise InputError(f"metadata is {size:,} characters serialized; the DSP takes at most "
                         f"{METADATA_MAX_CHARS:,}", kind=KIND, field="metadata",
                         fix="shorten or drop keys, or keep long data elsewhere and store its name")


# ---- the kind -----------------------------------------------------------------------------

_SECRETS = ("chap_secret", "chap_initiator_secret")
#: Guards Volume._foreign (app_instances whose name refused one of our creates).
_FOREIGN_LOCK = threading.Lock()
_UNKNOWN_OK = ("tenant", "volume_type", "metadata", "clone_of", "snapshot_id", "template",
               "chap_secret", "chap_initiator_secret",
               # recorded by create/update, never shown by the DSP (None when read)
               "cascade", "unmanage_on_delete",
               # the DSP does not record an image source (compared when both sides know)
               "source_image", "source_image_checksum", "source_image_format", "image_node")


@register
class Volume(NamesResource, Kind[VolumeSpec, VolumeOutputs]):
    """A DSP volume (app_instance + storage-1 + volume-1).

    Import ids: ``<tenant path>/<app_instance id>``, an app_instance id or name (provider
    tenant), or the Cinder reference ``[tenant:]ai_name:si_name:vol_name``."""

    name = "Volume"
    token = "datera:index:Volume"
    tf_type = "datera_volume"
    Spec = VolumeSpec
    Outputs = VolumeOutputs
    import_id_doc = "<tenant>/<app_instance id> | <app_instance name> | [tenant:]ai:si:vol"

    # ---- plan ----------------------------------------------------------------------------

    def validate(self, spec: VolumeSpec) -> None:
        sources = [f for f in ("clone_of", "snapshot_id", "template") if getattr(spec, f)]
        check(KIND, sources[-1] if sources else "clone_of", len(sources) <= 1,
              f"only one source may be set, got {', '.join(sources)}",
              "set one of clone_of, snapshot_id or template (or none for an empty volume)")
        if spec.template and spec.extra_specs.get("DF:template") not in (None, "",
                                                                          spec.template):
            raise InputError("template and extra_specs DF:template disagree", kind=KIND,
                             field="template", fix="set the template in one place only")
        # A user without a secret is allowed here: it is what a read shows (the DSP never
        # returns secrets) and means "keep the secret the DSP has"; create and a change of
        # user name require the secret (checked before any API call).
        has_user, has_secret = bool(spec.chap_user), spec.chap_secret is not None
        check(KIND, "chap_user", has_user or not has_secret,
              "chap_secret is set without chap_user", "set chap_user too, or drop chap_secret")
        iu, isec = spec.chap_initiator_user is not None, spec.chap_initiator_secret is not None
        check(KIND, "chap_initiator_user", iu or not isec,
              "chap_initiator_secret is set without chap_initiator_user",
              "set chap_initiator_user too, or drop chap_initiator_secret")
        check(KIND, "chap_initiator_user", not iu or has_user,
              "mutual CHAP needs target CHAP", "also set chap_user and chap_secret")
        check(KIND, "chap_initiator_secret",
              not (isec and spec.chap_initiator_secret == spec.chap_secret),
              "the mutual CHAP secret equals the target secret (initiators reject this)",
              "choose different target and initiator secrets")
        _image.check_source_image(spec)  # file exists, format, fits; no API call
        if spec.metadata and META_VOLUME_TYPE in spec.metadata:
            raise InputError(f"the key {META_VOLUME_TYPE!r} is reserved", kind=KIND,
                             field=f"metadata.{META_VOLUME_TYPE}",
                             fix="set the volume_type field instead")
        _check_metadata(spec)

    def diff(self, old: VolumeSpec, new: VolumeSpec) -> Diff:
        """Per-field diff with the Volume's rules (pure, no API call).

        Raises InputError for a shrink, and for a replica_count decrease unless
        ``replace_on_retype`` is set."""
        # CHAP the declaration leaves out is not managed here (a NodeAttachment may have
        # turned it on); "" asks for it off, which is no change when it is off
        chap = (("chap_user", "chap_initiator_user") if new.chap_user is None
                or (new.chap_user == "" and old.chap_user is None) else ())
        base = diff_specs(old, new, ignore=("extra_specs", "clone_of", "snapshot_id",
                                            "replace_on_retype", "restore_point",
                                            "force_restore", *_UNKNOWN_OK, *chap))
        changes = list(base.changes)
        if _reverts(old, new):
            changes.append(FieldChange(name="restore_point", old=old.restore_point,
                                       new=new.restore_point))
        reasons: list[str] = []
        for f in _UNKNOWN_OK:
            a, b = getattr(old, f), getattr(new, f)
            if f in _SECRETS and a is None and b is not None and new.chap_user:
                # The DSP shows every secret as "(hidden)", so a read gives None. Report the
                # declared secret as a (sensitive) change and let the caller, which knows
                # what it last wrote, drop it when it matches: the engine compares it with
                # the salted digest in its state, the Terraform and Pulumi adapters keep the
                # written value as the old one. Without this a secret changed in the
                # configuration would never be applied (user-needs 2.9).
                changes.append(FieldChange(name=f, old=None, new=b, replace=False,
                                           sensitive=True))
                continue
            if a is None or b is None:
                continue
            same = same_volume(a, b) if f == "clone_of" else a == b
            if f == "snapshot_id" and not same:
                same = _same_snapshot(a, b)
            if not same:
                meta = attrs.fields_dict(VolumeSpec)[f].metadata
                changes.append(FieldChange(name=f, old=a, new=b,
                                           replace=bool(meta.get(REPLACE)),
                                           sensitive=bool(meta.get(SENSITIVE))))
                if meta.get(REPLACE):
                    reasons.append(f"{f} changed")
        delta = _policy_delta(old, new)
        if delta:
            replace = False
            for name, (a, b) in delta.items():
                if name == "replica_count" and b < a:
                    if not new.replace_on_retype:
                        raise InputError(
                            f"cannot lower replica_count from {a} to {b} in place",
                            kind=KIND, field="extra_specs.DF:replica_count", resource=new.name,
                            fix=f"keep DF:replica_count >= {a}, or set replace_on_retype: true "
                            "to re-create the volume (its data is lost)",
                        )
                    replace = True
                    reasons.append("replica_count decrease needs a new volume")
                elif name == "template":
                    replace = True
                    reasons.append("a volume cannot be re-bound to another template")
            changes.append(FieldChange(name="extra_specs", old=old.extra_specs,
                                       new=new.extra_specs, replace=replace))
        d = Diff(changes=tuple(changes))
        if new.size < old.size and not d.replace:
            # (a volume re-created for another reason may be any size)
            raise InputError(
                f"cannot shrink from {old.size} to {new.size} GiB", kind=KIND, field="size",
                resource=new.name,
                fix=f"DSP volumes only grow: keep size >= {old.size}, or create a new volume "
                "and copy the data",
            )
        if d.replace:
            return Diff(changes=d.changes,
                        delete_before_replace=old.name == new.name,
                        reason="; ".join(reasons) or None)
        return d

    def declare_removed(self, new: VolumeSpec, last: VolumeSpec | None,
                        config: Any = None) -> VolumeSpec:
        """``new`` with each policy key ``last`` declared and ``new`` does not, written at
        its default (the driver's, or ``datera_volume_type_defaults``).

        Why: :meth:`diff` compares only the ``DF:`` keys a declaration names, so a key
        you never wrote keeps what the DSP has (a clone's inherited policy, a config
        default) and a plan after apply or import stays empty. A key you *remove* is
        another thing: the Cinder driver's retype re-applies the whole policy of the new
        type, so a QoS key that is gone takes its limit off the performance_policy. Made
        explicit here, the removal is an ordinary declared change for :meth:`diff` (the
        plan shows it, a replica_count that would drop is the usual plan error) and for
        :meth:`update` (which writes it). Two keys are left alone: ``round_robin`` (no DSP
        state) and ``template`` (a volume cannot be re-bound; dropping the key does not
        re-create it)."""
        if last is None:
            return new
        if last.chap_user and new.chap_user is None:  # CHAP removed: off (unset: not managed)
            new = attrs.evolve(new, chap_user="", chap_secret=None, chap_initiator_user=None,
                               chap_initiator_secret=None)
        if last.cascade and new.cascade is None:
            new = attrs.evolve(new, cascade=False)  # cascade taken out: off again
        if last.unmanage_on_delete and new.unmanage_on_delete is None:
            new = attrs.evolve(new, unmanage_on_delete="")  # taken out: deleted again
        gone = _declared(last.extra_specs) - _declared(new.extra_specs) - _KEEP_ON_REMOVE
        if not gone:
            return new
        defaults = cinder.driver_defaults(config)
        specs = dict(new.extra_specs)
        for name in gone:
            specs[cinder.PREFIX + name] = defaults[name]
        return attrs.evolve(new, extra_specs=specs)

    related_fields = ("clone_of", "snapshot_id")

    def check_plan(self, ctx: Context, spec: VolumeSpec, related: Mapping[str, Any], *,
                   creating: bool, pending: Collection[str] = ()) -> None:
        """A clone (``clone_of``) or a volume from a snapshot (``snapshot_id``) starts as a
        copy of its source: at the source's size and replica count. The DSP only grows a
        volume and only raises its replica count, so a declaration below the source's
        live values would fail after the copy is made: refused here, naming them."""
        if not creating:
            return
        declared = _declared(spec.extra_specs)
        want_rc = (cinder.resolve_policy(spec.extra_specs, kind=KIND, resource=spec.name)
                   .replica_count if "replica_count" in declared else None)
        size = rc = None
        what = ""
        field = "clone_of" if spec.clone_of else "snapshot_id"
        if getattr(spec, field) and field not in pending:
            if spec.clone_of:
                tenant, leaf = parse_volume_id(ctx, spec.clone_of, field="clone_of")
                what = f"source volume {spec.clone_of}"
            else:
                from datera_iac.resources.snapshot import split_snapshot_id

                tenant, leaf, _ts = split_snapshot_id(ctx, spec.snapshot_id or "")
                what = f"the volume of snapshot {spec.snapshot_id}"
            try:
                ai = ctx.client.get(ai_url(leaf, field=field), tenant=tenant)
            except NotFound:
                raise InputError(f"{what} does not exist", kind=KIND, field=field,
                                 resource=spec.name,
                                 fix=f"point {field} at an existing object's id") from None
            _, vol = first_si_vol(ai)
            if vol is not None:
                rc = int(vol.get("replica_count") or 0) or None
                # a snapshot's copy has the snapshot's size, which the DSP does not show
                size = (int(vol.get("size") or 0) or None) if spec.clone_of else None
        src = related.get("clone_of") or related.get("snapshot_id")
        if isinstance(src, VolumeSpec):  # the source is declared alongside: its planned values
            what = what or f"source volume {src.name}"
            if "clone_of" in related:
                size = max(size or 0, src.size)
            if "replica_count" in _declared(src.extra_specs):
                src_rc = cinder.resolve_policy(src.extra_specs, kind=KIND,
                                               resource=src.name).replica_count
                rc = max(rc or 0, src_rc)
        if size is not None and spec.size < size:
            raise InputError(
                f"a clone cannot be smaller than its source: {what} is {size} GiB, the "
                f"clone declares {spec.size} GiB", kind=KIND, field="size", resource=spec.name,
                fix=f"declare size >= {size} (a volume only grows)")
        if want_rc is not None and rc is not None and want_rc < rc:
            raise InputError(
                f"DF:replica_count {want_rc} is lower than the {rc} replicas of {what}, which "
                "the copy starts with (the DSP only raises a replica count)", kind=KIND,
                field="extra_specs.DF:replica_count", resource=spec.name,
                fix=f"declare DF:replica_count >= {rc}, or leave it out")

    # ---- read ----------------------------------------------------------------------------

    def read(self, ctx: Context, id: str) -> Observed[VolumeSpec, VolumeOutputs] | None:
        tenant, leaf = parse_volume_id(ctx, id)
        try:
            ai = ctx.client.get(ai_url(leaf), tenant=tenant)
        except NotFound:
            return None
        meta = self.read_metadata(ctx, ai, tenant)
        return self.observe_entity(ctx, ai, tenant, meta)

    def read_known(self, ctx: Context, id: str, known: VolumeSpec | None
                   ) -> Observed[VolumeSpec, VolumeOutputs] | None:
        """Read, then keep from ``known`` (the recorded spec) what the DSP cannot show."""
        found = self.read(ctx, id)
        if found is None or known is None:
            return found
        return attrs.evolve(found, spec=carry_unknown(found.spec, known))

    def read_many(
        self, ctx: Context, ids: Iterable[str]
    ) -> dict[str, Observed[VolumeSpec, VolumeOutputs] | None]:
        """One paged ``GET /app_instances`` per tenant (pages of up to 1,000, the schema's maximum). Metadata is not
        fetched (it would cost a GET per volume): ``volume_type`` and ``metadata`` come
        back unknown (None), which :meth:`diff` does not count as a change. A caller that
        must see metadata drift reads each volume (the engine's ``--refresh=full``)."""
        wanted = list(ids)
        by_tenant: dict[str, list[tuple[str, str]]] = {}
        for i in wanted:
            tenant, leaf = parse_volume_id(ctx, i)
            by_tenant.setdefault(tenant, []).append((i, leaf))
        out: dict[str, Observed[VolumeSpec, VolumeOutputs] | None] = {}
        for tenant, items in by_tenant.items():
            try:
                source = ctx.client.list("/app_instances", tenant=tenant, prefetch=True)
                if not isinstance(source, Rows):
                    # the listing is ours alone: observe each wanted row as its page comes
                    # and keep no raw page (a 10,000-volume refresh held all ten)
                    out.update(self._observe_stream(ctx, source, tenant, items))
                    continue
            except NotFound:
                out.update((original, None) for original, _ in items)  # the tenant is gone
                continue
            # a front end's refresh serves many small batches from one shared listing:
            # its lookups are built once per listing (batching.lookup)
            by_id, by_name = lookup(source, "id"), lookup(source, "name")
            for original, leaf in items:
                ai = by_id.get(leaf) or by_name.get(leaf)  # a match by id wins
                out[original] = None if ai is None else self.observe_entity(ctx, ai, tenant, None)
        return out

    def _observe_stream(self, ctx: Context, rows: Iterable[Mapping[str, Any]], tenant: str,
                        items: list[tuple[str, str]]
                        ) -> dict[str, Observed[VolumeSpec, VolumeOutputs] | None]:
        """``read_many``'s answer for ``items`` (original id, leaf) from ``rows`` read once,
        in order: the same choice as the lookups (a match by id wins, else the first row
        of that name), each chosen row observed once, no row kept."""
        leaves: dict[str, list[str]] = {}
        for original, leaf in items:
            leaves.setdefault(leaf, []).append(original)
        by_id: dict[str, Observed[VolumeSpec, VolumeOutputs]] = {}
        by_name: dict[str, Observed[VolumeSpec, VolumeOutputs]] = {}
        for ai in rows:
            for field, found in (("id", by_id), ("name", by_name)):
                v = ai.get(field)
                key = v if isinstance(v, str) or v is None else str(v)
                if key in leaves and key not in found and (field == "id" or key not in by_id):
                    found[key] = self.observe_entity(ctx, ai, tenant, None)
        return {original: by_id.get(leaf) or by_name.get(leaf)
                for original, leaf in items}

    def observe_entity(
        self, ctx: Context, ai: Mapping[str, Any], tenant: str, meta: dict[str, str] | None
    ) -> Observed[VolumeSpec, VolumeOutputs]:
        """The Observed of an app_instance entity already read (``meta``: its metadata, or
        None when not read); the queries use it on the entities of one list call."""
        si, vol = first_si_vol(ai)
        auth = (si or {}).get("auth") or {}
        atype = auth.get("type") or "none"
        qos = _live_qos(ctx, vol, tenant)
        specs = _live_extra_specs(ai, si, vol, qos)
        user_meta = None
        vtype = None
        if meta is not None:
            user_meta = {k: v for k, v in meta.items() if k != META_VOLUME_TYPE}
            vtype = meta.get(META_VOLUME_TYPE) or None
        spec = _observed_spec(
            name=str(ai.get("name")),
            size=int((vol or {}).get("size") or 1),
            tenant=tenant,
            volume_type=vtype,
            extra_specs=specs,
            chap_user=(auth.get("target_user_name") or None) if atype in ("chap", "mchap")
            else None,
            chap_initiator_user=(auth.get("initiator_user_name") or None)
            if atype == "mchap" else None,
            metadata=user_meta,
            snapshot_policies=[
                f"{p.get('name')}:{p.get('interval')}:{p.get('retention_count')}"
                for p in (vol or {}).get("snapshot_policies") or []
                if isinstance(p, Mapping) and p.get("interval") in SNAPSHOT_INTERVALS
            ],
            # the snapshot the DSP last reverted the volume to ("" when never)
            restore_point=str((vol or {}).get("restore_point") or "") or None,
        )
        access = (si or {}).get("access") or {}
        outputs = VolumeOutputs(
            ai_id=str(ai.get("id")),
            tenant=tenant,
            path=ai.get("path"),
            iqn=access.get("iqn") or None,
            portals=[f"{ip}:3260" for ip in access.get("ips") or []],
            op_state=(si or {}).get("op_state"),
            admin_state=ai.get("admin_state"),
            health=ai.get("health"),
            uuid=ai.get("uuid"),
            storage_instance=(si or {}).get("name"),
            volume_name=(vol or {}).get("name"),
            volume_path=(vol or {}).get("path"),
            volume_uuid=(vol or {}).get("uuid"),
            replica_count=(vol or {}).get("replica_count"),
            chap_auth=atype,
        )
        return Observed(id=join_id(tenant, str(ai.get("id"))), spec=spec, outputs=outputs)

    # ---- create --------------------------------------------------------------------------

    def create(self, ctx: Context, spec: VolumeSpec) -> Observed[VolumeSpec, VolumeOutputs]:
        _require_secrets(spec, None)
        if spec.restore_point is not None:
            raise InputError(
                "restore_point reverts an existing volume to one of its snapshots; a volume "
                "being created has none", kind=KIND, field="restore_point", resource=spec.name,
                fix="create the volume without restore_point, then set it to revert")
        tenant = check_tenant(ctx, spec.tenant or default_tenant(ctx), kind=KIND, field="tenant")
        if spec.source_image:
            # fetch + verify the image, then clone the image cache or create and fill
            return _recorded(_image.create_volume_from_image(self, ctx, spec), spec)
        policy = _resolve(ctx, spec)
        template = spec.template or policy.template or None
        # A fresh uuid marks this create: after a lost response or a 409, only an
        # app_instance carrying it is ours (a name taken by someone else is a Conflict,
        # never silently adopted).
        token = token_uuid(create_token())
        body: dict[str, Any] = {"name": spec.name, "uuid": token}
        plain = False
        if template:
            body["app_template"] = {"path": f"/app_templates/{template}"}
            if not getattr(ctx.config, "datera_disable_template_override", False):
                body["template_override"] = {"storage_instances": {SI_NAME: {"volumes": {
                    VOL_NAME: {"size": str(spec.size)}}}}}
        elif spec.clone_of:
            body["clone_volume_src"] = {"path": self._volume_path(ctx, spec.clone_of)}
        elif spec.snapshot_id:
            from datera_iac.resources.snapshot import snapshot_path

            body["clone_snapshot_src"] = {"path": snapshot_path(ctx, spec.snapshot_id)}
        else:
            plain = True
            body.update(self._nested_body(ctx, spec, policy))

        def find() -> Any:
            found = self._find_raw(ctx, tenant, spec.name)
            return found if found is not None and found.get("uuid") == token else None

        try:
            ai = ctx.client.create("/app_instances", body, tenant=tenant, find=find)
        except Conflict as e:
            # The name belongs to an app_instance this create did not make (a lost response
            # is settled above by the uuid token). Remember it, so that find(), which
            # callers use after a failed create, never hands it back as ours: adopting it
            # would let a later destroy delete someone else's volume (user-needs 2.13).
            taken = self._find_raw(ctx, tenant, spec.name)
            if taken is not None:
                self._mark_foreign(join_id(tenant, str(taken.get("id"))))
            raise Conflict(
                f"a volume named {spec.name!r} already exists in tenant {tenant!r}; import it "
                f"(id {tenant}/<app_instance id>, or its name) or choose another name",
                method=e.method, path=e.path, name=e.name,
            ) from None
        except (NotFound, ValidationFailed) as e:
            raise type(e)(
                f"{e.message} (creating volume {spec.name!r} in tenant {tenant!r}: do the "
                "tenant, ip pool, placement policy, template and source exist?)",
                method=e.method, path=e.path, name=e.name,
            ) from None
        if not isinstance(ai, Mapping) or not isinstance(ai.get("id"), str) or not ai["id"]:
            ai = self._find_raw(ctx, tenant, spec.name) or {}
        if not isinstance(ai.get("id"), str) or not ai["id"]:
            raise DspError(f"creating volume {spec.name!r}: the DSP answered without an "
                           f"app_instance id and none was found under the name; nothing "
                           f"was recorded", method="POST", path="/app_instances")
        ai_id = ai["id"]
        oid = join_id(tenant, ai_id)
        try:
            # a clone / template volume: bring size, policy, auth and schedules to the spec
            live = None if plain else self.observe_entity(ctx, ai, tenant, {}).spec
            facts = self._facts(ctx, oid, ai, live, spec, {}, tenant)
            if plain:
                send_calls(ctx.client, metadata_calls(facts, spec), tenant=tenant)
            else:
                ai = self._converge(ctx, facts, ai, spec, policy, created=True)
            meta = metadata_after(facts, spec)
            ai = self._wait_ready(ctx, oid, ai, tenant, spec.name)
        except WaitTimeout:
            # The volume exists and is only slow to come online: keep it, so the caller
            # (the engine's find-after-failure) records its id and the next run resumes
            # instead of re-creating it (user-needs 2.8). Removing it here would throw
            # away a volume the DSP is still building.
            log.warning("volume %s (%s) was created but is not ready within the create "
                        "timeout; kept", spec.name, oid)
            raise
        except Unreachable:
            # The DSP stopped answering (the client's breaker is open): a removal cannot be
            # sent either. Keep it like a slow volume: the create intent names it, the next
            # run finds it once the DSP is back. The one "DSP unreachable" error says why.
            log.warning("volume %s (%s) was created, then the DSP became unreachable; kept",
                        spec.name, oid)
            raise
        except BaseException:
            log.warning("creating volume %s failed after its app_instance was made; removing "
                        "it", spec.name)
            try:
                self.delete(ctx, oid)
            except DspError as cleanup:  # pragma: no cover - reported, original re-raised
                log.error("could not remove the half-made volume %s: %s", oid, cleanup)
            raise
        return _recorded(self.observe_entity(ctx, ai, tenant, meta), spec)

    def _nested_body(self, ctx: Context, spec: VolumeSpec, policy: cinder.VolumePolicy
                     ) -> dict[str, Any]:
        vol: dict[str, Any] = {
            "name": VOL_NAME,
            "size": spec.size,
            "replica_count": policy.replica_count,
            "snapshot_policies": [_policy_body(p) for p in spec.snapshot_policies],
        }
        vol.update(_placement_fields(policy, _api(ctx), _sw(ctx)))
        if "placement_mode" in _declared(spec.extra_specs):
            # deprecated on 3.3+ but still honoured: send what the user declared
            vol["placement_mode"] = policy.placement_mode
        qos = policy.performance_policy(spec.size)
        if qos:
            vol["performance_policy"] = qos
        si: dict[str, Any] = {
            "name": SI_NAME,
            "ip_pool": {"path": policy.ip_pool_path(spec.name)},
            "volumes": [vol],
        }
        auth = _auth_body(spec)
        if auth["type"] != "none":
            si["auth"] = auth
        return {"access_control_mode": "deny_all", "storage_instances": [si]}

    def _volume_path(self, ctx: Context, volume_id: str) -> str:
        tenant, leaf = parse_volume_id(ctx, volume_id)
        try:
            ai = ctx.client.get(ai_url(leaf), tenant=tenant)
        except NotFound:
            raise InputError(f"source volume {volume_id!r} does not exist", kind=KIND,
                             field="clone_of", fix="point clone_of at an existing volume's id"
                             ) from None
        _, vol = first_si_vol(ai)
        if not vol or not vol.get("path"):
            raise InputError(f"source volume {volume_id!r} has no volume to clone",
                             kind=KIND, field="clone_of", fix="clone a volume with one volume")
        return str(vol["path"])

    def _wait_ready(self, ctx: Context, oid: str, ai: Mapping[str, Any], tenant: str,
                    name: str, *, timeout: float | None = None) -> Mapping[str, Any]:
        """Wait (bounded) while a clone runs or the storage instance comes online."""

        def ready(a: Mapping[str, Any]) -> bool:
            s, _ = first_si_vol(a)
            if a.get("op_state") == "cloning":
                return False
            if a.get("admin_state") == "online" and s is not None:
                return s.get("op_state") in (None, "available")
            return True

        if ready(ai):
            return ai
        latest: dict[str, Any] = {"ai": ai}

        def refresh() -> str:
            a = ctx.client.get(ai_url(str(ai.get("id"))), tenant=tenant)
            latest["ai"] = a
            return "ready" if ready(a) else str(a.get("op_state") or
                                                (first_si_vol(a)[0] or {}).get("op_state"))

        wait_for(refresh, target={"ready"},
                 timeout=ctx.timeouts.create if timeout is None else timeout,
                 what=f"volume {name!r} to become available", failed=("failed",),
                 hint=f"see the app_instance {oid} on the DSP")
        return latest["ai"]

    # ---- update --------------------------------------------------------------------------

    def update(
        self, ctx: Context, id: str, old: VolumeSpec, new: VolumeSpec
    ) -> Observed[VolumeSpec, VolumeOutputs]:
        _require_secrets(new, old)
        tenant, leaf = parse_volume_id(ctx, id)
        try:
            ai = ctx.client.get(ai_url(leaf), tenant=tenant)
        except NotFound:
            raise NotFound(f"volume {id!r} ({new.name!r}) is gone; refresh, then plan again",
                           path=ai_url(leaf)) from None
        if _reverts(old, new):
            # first, so a grow or a policy change in the same update applies to the
            # reverted data
            ai = self._revert(ctx, id, ai, new, tenant)
        meta = self.read_metadata(ctx, ai, tenant)
        live = self.observe_entity(ctx, ai, tenant, meta)
        facts = self._facts(ctx, id, ai, live.spec, new, meta, tenant)
        ai = self._converge(ctx, facts, ai, new, _resolve(ctx, new), created=False, old=old)
        self._wait_ready(ctx, id, ai, tenant, new.name, timeout=ctx.timeouts.update)
        found = self.read(ctx, id)
        if found is None:
            raise NotFound(f"volume {id!r} vanished during its update", path=ai_url(leaf))
        return _recorded(found, new)

    def _revert(self, ctx: Context, oid: str, ai: Mapping[str, Any], new: VolumeSpec,
                tenant: str) -> Mapping[str, Any]:
        """Revert the volume in place to the snapshot ``new.restore_point`` names
        (:func:`revert_calls`), then read it again."""
        facts = live_volume(ai, id=oid)
        send_calls(ctx.client, revert_calls(facts, new), tenant=tenant)
        log.info("volume %s (%s) reverted to snapshot %s", new.name, oid,
                 restore_timestamp(str(new.restore_point)))
        return ctx.client.get(facts.ai_path, tenant=tenant)

    def _facts(self, ctx: Context, oid: str, ai: Mapping[str, Any], live: VolumeSpec | None,
               new: VolumeSpec, meta: dict[str, str] | None, tenant: str) -> LiveVolume:
        """What :func:`volume_calls` needs of the live volume; its QoS is read (a GET on
        API 2.1 when the entity does not embed it) only when ``new`` declares QoS."""
        qos = (_live_qos(ctx, first_si_vol(ai)[1], tenant)
               if live is not None and _declared(new.extra_specs) & _QOS_KEYS else None)
        return live_volume(ai, id=oid, spec=live, qos=qos, metadata=meta,
                           write_metadata=_writes_metadata(ctx), sw_version=_sw(ctx),
                           api_version=_api(ctx))

    def _converge(
        self, ctx: Context, facts: LiveVolume, ai: Mapping[str, Any], new: VolumeSpec,
        policy: cinder.VolumePolicy, *, created: bool, old: VolumeSpec | None = None,
    ) -> Mapping[str, Any]:
        """Send what :func:`volume_calls` chose to make the live volume match ``new`` in
        place (name, size, policy, CHAP, snapshot policies), then its metadata. Returns
        the AI as last read (read again only when a call changed it)."""
        tenant = (facts.spec.tenant if facts.spec else None) or ROOT
        calls = entity_calls(facts, new, policy, old=old, created=created)
        if send_calls(ctx.client, calls, tenant=tenant):
            ai = ctx.client.get(facts.ai_path, tenant=tenant)
        send_calls(ctx.client, metadata_calls(facts, new), tenant=tenant)
        return ai

    def calls(self, ctx: Context, observed: Observed[VolumeSpec, VolumeOutputs] | None,
              spec: VolumeSpec) -> list[Call] | None:
        """The DSP calls an update from ``observed`` to ``spec`` would send (a revert
        first), or a plain create's (one nested POST, then its metadata); None for a create
        from a source or an image, whose calls depend on what the copy holds. Pure: reads
        only the client's versions and the configuration."""
        policy = _resolve(ctx, spec)
        if observed is None:
            if spec.source or spec.source_image or policy.template:
                return None
            body = {"name": spec.name, "uuid": "<create token>",
                    **self._nested_body(ctx, spec, policy)}
            made = LiveVolume(id="", ai_path="/app_instances/<id>", si_path="", vol_path="",
                              online=True, metadata={}, write_metadata=_writes_metadata(ctx),
                              sw_version=_sw(ctx), api_version=_api(ctx))
            return [Call(method="POST", path="/app_instances", body=body,
                         why="create, everything nested"), *metadata_calls(made, spec)]
        facts = facts_of(observed, write_metadata=_writes_metadata(ctx), sw_version=_sw(ctx),
                         api_version=_api(ctx))
        return volume_calls(facts, spec, policy, old=observed.spec)

    # ---- metadata ------------------------------------------------------------------------

    def read_metadata(self, ctx: Context, ai: Mapping[str, Any], tenant: str
                      ) -> dict[str, str] | None:
        """The app_instance's metadata (one GET; {} when it has none, None when extended
        metadata is turned off)."""
        if not _writes_metadata(ctx):
            return None
        url, wrapped = _meta_url(str(ai.get("path") or ai_url(str(ai.get("id")))), _sw(ctx))
        try:
            data = ctx.client.get(url, tenant=tenant)
        except NotFound:
            return {}
        if wrapped and isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
            data = data["data"]
        if not isinstance(data, Mapping):
            return {}
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()
                if k not in ("path", "tenant", "name")}

    # ---- delete / find / adopt / release ------------------------------------------------

    def delete(self, ctx: Context, id: str) -> None:
        """Offline (force), then delete (force); a volume already gone is success."""
        tenant, leaf = parse_volume_id(ctx, id)
        delete_app_instance(ctx.client, ai_url(leaf), tenant)

    def dependents(self, ctx: Context, id: str) -> list[Dependent]:
        """The volume's snapshots on the DSP (a delete with force removes them with it):
        one GET of the app_instance, whose volume entity lists them."""
        tenant, leaf = parse_volume_id(ctx, id)
        try:
            ai = ctx.client.get(ai_url(leaf), tenant=tenant)
        except NotFound:
            return []
        return self._snapshots_of(ctx, tenant, ai)

    has_bulk_dependents = True

    def dependents_many(self, ctx: Context, ids: Iterable[str]) -> dict[str, list[Dependent]]:
        """One paged ``GET /app_instances`` per tenant (or the listing a front end shares,
        ``batching.SharedListings``): each listed app_instance shows its volume's snapshots.
        A volume the listing does not show (made or renamed since) is asked alone
        (:meth:`dependents`): a listing never hides a snapshot that one GET would show."""
        by_tenant: dict[str, list[tuple[str, str]]] = {}
        for i in ids:
            tenant, leaf = parse_volume_id(ctx, i)
            by_tenant.setdefault(tenant, []).append((i, leaf))
        out: dict[str, list[Dependent]] = {}
        for tenant, items in by_tenant.items():
            try:
                rows = listed(ctx.client.list("/app_instances", tenant=tenant, prefetch=True))
            except NotFound:
                rows = listed(())
            by_id = lookup(rows, "id")
            for original, leaf in items:
                ai = by_id.get(leaf)
                out[original] = (self.dependents(ctx, original) if ai is None
                                 else self._snapshots_of(ctx, tenant, ai))
        return out

    def _snapshots_of(self, ctx: Context, tenant: str, ai: Mapping[str, Any]) -> list[Dependent]:
        _, vol = first_si_vol(ai)
        if vol is None:
            return []
        snaps = vol.get("snapshots")
        if not isinstance(snaps, list) or any(not isinstance(x, Mapping) for x in snaps):
            snaps = list(ctx.client.list(f"{vol.get('path')}/snapshots", tenant=tenant))
        vid = join_id(tenant, str(ai.get("id")))
        return [Dependent("Snapshot", f"{vid}/{x.get('timestamp')}",
                          f"{x.get('timestamp')} of volume {ai.get('name')}")
                for x in snaps if x.get("timestamp") is not None]

    def cascades(self, declared: Mapping[str, Any] | None) -> bool:
        return bool((declared or {}).get("cascade"))

    def unmanages(self, declared: Mapping[str, Any] | None) -> str | None:
        how = (declared or {}).get("unmanage_on_delete")
        return how if how in UNMANAGE_MODES else None

    def _mark_foreign(self, oid: str) -> None:
        with _FOREIGN_LOCK:
            self.__dict__.setdefault("_foreign", set()).add(oid)

    def _is_foreign(self, oid: str) -> bool:
        with _FOREIGN_LOCK:
            return oid in self.__dict__.get("_foreign", ())

    def find(self, ctx: Context, spec: VolumeSpec) -> Observed[VolumeSpec, VolumeOutputs] | None:
        """The volume of this name in its tenant, unless a create in this process was
        refused because that very app_instance already held the name (then it is someone
        else's and None is returned)."""
        tenant = check_tenant(ctx, spec.tenant or default_tenant(ctx), kind=KIND, field="tenant")
        ai = self._find_raw(ctx, tenant, spec.name)
        if ai is None or self._is_foreign(join_id(tenant, str(ai.get("id")))):
            return None
        return self.observe_entity(ctx, ai, tenant, self.read_metadata(ctx, ai, tenant))

    def find_own(self, ctx: Context, spec: VolumeSpec, token: str | None
                 ) -> Observed[VolumeSpec, VolumeOutputs] | None:
        """The volume of this name only when its app_instance uuid is ``token`` (what the
        interrupted create sent); a same-named volume of someone else is never adopted."""
        if not token or not token.strip("0"):  # (the DSP shows a zero uuid when none was sent)
            return None
        tenant = check_tenant(ctx, spec.tenant or default_tenant(ctx), kind=KIND, field="tenant")
        ai = self._find_raw(ctx, tenant, spec.name)
        if ai is None or str(ai.get("uuid") or "").lower() != token_uuid(token):
            return None
        return self.observe_entity(ctx, ai, tenant, self.read_metadata(ctx, ai, tenant))

    def _find_raw(self, ctx: Context, tenant: str, name: str) -> dict[str, Any] | None:
        for ai in ctx.client.list("/app_instances", tenant=tenant, filter=f"name={name}"):
            if ai.get("name") == name:
                return dict(ai)
        return None

    def adopt(self, ctx: Context, ref: str) -> Observed[VolumeSpec, VolumeOutputs]:
        """Import an existing app_instance by id, name or Cinder reference. Only the
        Cinder layout (one storage instance with one volume) can be managed."""
        tenant, ai = self.resolve_ref(ctx, ref)
        sis = ai.get("storage_instances") or []
        if len(sis) != 1 or len((sis[0] or {}).get("volumes") or []) != 1:
            raise InputError(
                f"app_instance {ai.get('name')!r} has {len(sis)} storage instance(s); only "
                "one storage instance with one volume can be managed", kind=KIND, field="id",
                resource=str(ai.get("name")),
                fix="manage it with the DSP tools, or split it into single-volume "
                "app_instances",
            )
        return self.observe_entity(ctx, ai, tenant, self.read_metadata(ctx, ai, tenant))

    def confine_ref(self, ctx: Context, ref: str, *, kind: str, field: str) -> None:
        volume_ref_parts(ctx, ref, kind=kind, field=field)

    def resolve_ref(self, ctx: Context, ref: str) -> tuple[str, dict[str, Any]]:
        """(tenant, app_instance) for an id, a name or a ``[tenant:]ai:si:vol`` reference.
        Raises NotFound when nothing matches."""
        tenant, name, cinder_ref = volume_ref_parts(ctx, ref)
        if cinder_ref is not None:
            si_name, vol_name = cinder_ref
            ai = self._get_ai(ctx, tenant, name)
            if ai is None:
                raise NotFound(f"no app_instance {name!r} in tenant {tenant!r}",
                               path=ai_url(name))
            names = {(s.get("name"), v.get("name")) for s in ai.get("storage_instances") or []
                     for v in s.get("volumes") or []}
            if (si_name, vol_name) not in names:
                raise NotFound(f"app_instance {name!r} has no {si_name}/{vol_name}",
                               path=ai_url(name))
            return tenant, ai
        ai = self._get_ai(ctx, tenant, name)
        if ai is None:
            raise NotFound(f"no volume {name!r} in tenant {tenant!r}", path=ai_url(name))
        return tenant, ai

    def _get_ai(self, ctx: Context, tenant: str, key: str) -> dict[str, Any] | None:
        try:
            return dict(ctx.client.get(ai_url(key), tenant=tenant))
        except NotFound:
            return self._find_raw(ctx, tenant, key)

    def release(self, ctx: Context, id: str, *, rename: bool = False) -> None:
        """Stop managing the volume; it stays on the DSP. ``rename`` renames it
        ``UNMANAGED-<name>`` (Cinder's unmanage convention) so nobody mistakes it for a
        managed one. A volume already gone is fine."""
        if not rename:
            return
        tenant, leaf = parse_volume_id(ctx, id)
        try:
            ai = ctx.client.get(ai_url(leaf), tenant=tenant)
        except NotFound:
            return
        name = str(ai.get("name"))
        if name.startswith("UNMANAGED-"):
            return
        new = f"UNMANAGED-{name}"[:64]
        ctx.client.put(str(ai.get("path") or ai_url(leaf)), {"name": new}, tenant=tenant)


def carry_unknown(seen: VolumeSpec, known: VolumeSpec) -> VolumeSpec:
    """``seen`` (from the DSP) with the values it cannot show taken from ``known``: the
    sources, the CHAP secrets (while the CHAP users are unchanged), the volume type and
    metadata when they were not read, and ``replace_on_retype`` (a plan-time option)."""
    upd: dict[str, Any] = {
        "clone_of": seen.clone_of or known.clone_of,
        "snapshot_id": seen.snapshot_id or known.snapshot_id,
        "template": seen.template or known.template,
        "replace_on_retype": known.replace_on_retype,
        "cascade": seen.cascade if seen.cascade is not None else known.cascade,
        "restore_point": seen.restore_point or known.restore_point,
        "force_restore": known.force_restore,
        "unmanage_on_delete": (seen.unmanage_on_delete if seen.unmanage_on_delete is not None
                               else known.unmanage_on_delete),
        "source_image": seen.source_image or known.source_image,
        "source_image_checksum": seen.source_image_checksum or known.source_image_checksum,
        "source_image_format": seen.source_image_format or known.source_image_format,
        "image_node": seen.image_node or known.image_node,
    }
    if seen.chap_user == known.chap_user:
        upd["chap_secret"] = known.chap_secret
    if seen.chap_initiator_user == known.chap_initiator_user:
        upd["chap_initiator_secret"] = known.chap_initiator_secret
    if seen.volume_type is None:
        upd["volume_type"] = known.volume_type
    if seen.metadata is None:
        upd["metadata"] = known.metadata
    if (upd.get("chap_secret") is None) != (seen.chap_user is None) or (
            upd.get("chap_initiator_secret") is None) != (seen.chap_initiator_user is None):
        upd.pop("chap_secret", None)
        upd.pop("chap_initiator_secret", None)
    return attrs.evolve(seen, **upd)


def _observed_spec(*, name: str, size: int, tenant: str, volume_type: str | None,
                   extra_specs: dict[str, str], chap_user: str | None,
                   chap_initiator_user: str | None, metadata: dict[str, str] | None,
                   snapshot_policies: list[str], restore_point: str | None = None
                   ) -> VolumeSpec:
    """The VolumeSpec of what the DSP shows, built without re-running the input checks.

    Runs for every volume read (twice per create), where the checks cost about a third of
    the read. Every value here comes from our own readers: ``extra_specs`` from
    :func:`_live_extra_specs` (normalised already), ``size`` an int, the names as the DSP
    stores them. The converters that can still change a value (tenant path, volume type,
    metadata to strings, snapshot schedules sorted) are applied, so the result equals
    ``VolumeSpec(...)`` with the same arguments (tests/engine/test_create_cpu.py checks
    it); user input always goes through the validating constructor."""
    spec = object.__new__(VolumeSpec)
    put = object.__setattr__  # the class is frozen
    put(spec, "name", name)
    put(spec, "size", size)
    put(spec, "tenant", _tenant(tenant))
    put(spec, "volume_type", _volume_type(volume_type))
    put(spec, "extra_specs", extra_specs)
    put(spec, "chap_user", chap_user)
    put(spec, "chap_initiator_user", chap_initiator_user)
    put(spec, "metadata", None if metadata is None else _METADATA_CONVERT(metadata))
    put(spec, "snapshot_policies", _snapshot_policies(snapshot_policies) if snapshot_policies
        else [])
    put(spec, "restore_point", restore_point)
    for fname, default in _OBSERVED_DEFAULTS:
        put(spec, fname, default)
    return spec


_METADATA_CONVERT: Any = attrs.fields(VolumeSpec).metadata.converter  # str_map, None kept
#: Fields the DSP never reports (create sources, secrets, image options): their defaults.
_OBSERVED_DEFAULTS: tuple[tuple[str, Any], ...] = tuple(
    (f.name, f.default) for f in attrs.fields(VolumeSpec)
    if f.name in ("clone_of", "snapshot_id", "template", "chap_secret",
                  "chap_initiator_secret", "source_image", "source_image_checksum",
                  "source_image_format", "image_node", "replace_on_retype", "cascade",
                  "force_restore", "unmanage_on_delete")
)


def _recorded(obs: Observed[VolumeSpec, VolumeOutputs], spec: VolumeSpec
              ) -> Observed[VolumeSpec, VolumeOutputs]:
    """What create/update return: the DSP's view plus the declared ``cascade``,
    ``force_restore`` and ``unmanage_on_delete`` (choices of this declaration the DSP does
    not hold), so every front end records them."""
    mine = {f: getattr(spec, f) for f in _DECLARED_ONLY}
    if all(getattr(obs.spec, f) == v for f, v in mine.items()):
        return obs
    return attrs.evolve(obs, spec=attrs.evolve(obs.spec, **mine))


#: The Volume's choices that only the declaration holds (recorded, never sent).
_DECLARED_ONLY = ("cascade", "force_restore", "unmanage_on_delete")


# ---- the calls an update sends, chosen without I/O -----------------------------------------


@attrs.frozen(kw_only=True)
class LiveVolume:
    """What :func:`volume_calls` knows of the live volume (read before; no I/O after).

    ``spec``: as the DSP shows it (None: not observed, enough for :func:`revert_calls`);
    ``qos``: its performance_policy (None: not read, only needed when QoS is declared);
    ``metadata``: what its metadata holds, volume type key included (None: not read, e.g.
    a bulk refresh); ``snapshots``/``initiators``: its snapshot timestamps and the
    initiators logged in (None: not read, the revert's checks wait for the update)."""

    id: str
    ai_path: str
    si_path: str
    vol_path: str
    online: bool
    spec: VolumeSpec | None = None
    qos: Mapping[str, int] | None = None
    metadata: Mapping[str, str] | None = None
    write_metadata: bool = True
    snapshots: frozenset[str] | None = None
    initiators: tuple[str, ...] | None = None
    sw_version: str | None = None
    api_version: str = "2.2"


def live_volume(ai: Mapping[str, Any], *, id: str, **facts: Any) -> LiveVolume:
    """The facts of an app_instance entity (its paths as the DSP gives them, else the
    Cinder layout's), plus ``facts`` (:class:`LiveVolume`'s other fields)."""
    ai_path = str(ai.get("path") or ai_url(str(ai.get("id"))))
    si, vol = first_si_vol(ai)
    si_at = str((si or {}).get("path") or si_path(ai_path))
    snaps = frozenset(str(s.get("timestamp")) for s in (vol or {}).get("snapshots") or []
                      if isinstance(s, Mapping))
    return LiveVolume(id=id, ai_path=ai_path, si_path=si_at,
                      vol_path=str((vol or {}).get("path") or f"{si_at}/volumes/{VOL_NAME}"),
                      online=ai.get("admin_state") == "online", snapshots=snaps,
                      initiators=logged_in(si), **facts)


def facts_of(observed: Observed[VolumeSpec, VolumeOutputs], **facts: Any) -> LiveVolume:
    """The facts of a volume already read (a plan's refresh): paths from its outputs, QoS
    from its live ``DF:`` specs; snapshots and initiators unknown."""
    out, spec = observed.outputs, observed.spec
    ai_path = out.path or ai_url(str(out.ai_id))
    si_at = si_path(ai_path, out.storage_instance or SI_NAME)
    qos = {k: int(v) for k in cinder.QOS_MAX_KEYS
           if (v := spec.extra_specs.get(cinder.PREFIX + k))}
    meta = None if spec.metadata is None else {
        **spec.metadata, **({META_VOLUME_TYPE: spec.volume_type} if spec.volume_type else {})}
    return LiveVolume(id=observed.id, ai_path=ai_path, si_path=si_at,
                      vol_path=out.volume_path or f"{si_at}/volumes/{VOL_NAME}",
                      online=out.admin_state == "online", spec=spec, qos=qos, metadata=meta,
                      **facts)


def volume_calls(live: LiveVolume, new: VolumeSpec, policy: cinder.VolumePolicy | None = None,
                 *, old: VolumeSpec | None = None, created: bool = False) -> list[Call]:
    """Every DSP call that makes ``live`` match ``new`` in place, in the order they are
    sent: a revert (when ``old`` to ``new`` is one), the entity's calls
    (:func:`entity_calls`), then the metadata (:func:`metadata_calls`). Pure.

    ``policy``: ``new``'s resolved policy (default: without a configuration's type
    defaults). Raises InputError for what the DSP cannot do in place (see
    :func:`entity_calls`, :func:`revert_calls`)."""
    policy = policy or cinder.resolve_policy(new.extra_specs, kind=KIND, resource=new.name)
    reverts = revert_calls(live, new) if old is not None and _reverts(old, new) else []
    return [*reverts, *entity_calls(live, new, policy, old=old, created=created),
            *metadata_calls(live, new)]


def entity_calls(live: LiveVolume, new: VolumeSpec, policy: cinder.VolumePolicy, *,
                 old: VolumeSpec | None = None, created: bool = False) -> list[Call]:
    """The calls that bring the app_instance to ``new``: name; size (grows only; offline
    first on a pre-3.3 DSP, and offline on an online refusal); the declared replica count
    (raised only), placement and ip_pool (``force``: changed online); the declared QoS at
    the new size; CHAP (only when declared; ``old`` tells a changed secret, ``created`` a
    copy that must get its auth); snapshot policies. Pure.

    Raises InputError for a shrink, a replica_count decrease, or a CHAP change without
    its secrets."""
    have = live.spec
    if have is None:
        raise ValueError("entity_calls needs the observed spec")
    ai, vol = live.ai_path, live.vol_path
    calls: list[Call] = []
    if new.name != have.name:
        calls.append(Call(method="PUT", path=ai, body={"name": new.name}, why="rename"))
    if new.size < have.size:
        raise InputError(f"cannot shrink from {have.size} to {new.size} GiB", kind=KIND,
                         field="size", resource=new.name,
                         fix=f"keep size >= {have.size} (DSP volumes only grow)")
    live_pol = cinder.resolve_policy(have.extra_specs, kind=KIND)
    declared = _declared(new.extra_specs)
    vol_body: dict[str, Any] = {}
    si_body: dict[str, Any] = {}
    # only declared attributes are applied: the rest keep what the DSP has (a clone
    # inherits its source's policy, as with the Cinder driver)
    if "replica_count" in declared:
        if policy.replica_count > live_pol.replica_count:
            vol_body["replica_count"] = policy.replica_count
        elif policy.replica_count < live_pol.replica_count:
            raise InputError(
                f"cannot lower replica_count from {live_pol.replica_count} to "
                f"{policy.replica_count} in place", kind=KIND,
                field="extra_specs.DF:replica_count", resource=new.name,
                fix="keep the replica count, or set replace_on_retype: true to re-create "
                "the volume")
    if "placement_policy" in declared and "placement_policy" in \
            _placement_fields(policy, live.api_version, live.sw_version) and \
            have.extra_specs.get("DF:placement_policy") != policy.placement_policy:
        vol_body["placement_policy"] = {"path": policy.placement_policy_path}
    if "placement_mode" in declared and \
            have.extra_specs.get("DF:placement_mode") != policy.placement_mode:
        vol_body["placement_mode"] = policy.placement_mode
    if "ip_pool" in declared and not (new.template or policy.template):
        if have.extra_specs.get("DF:ip_pool") != policy.ip_pool_for(new.name):
            # ``force``: the DSP refuses an online ip_pool change without it; the Cinder
            # driver's offline flip instead cut every session (driver 2.8.2 dropped
            # detaches on retype, and a retype must not take an attached volume down)
            si_body = {"ip_pool": {"path": policy.ip_pool_path(new.name)}, "force": True}
    # replica_count and ip_pool change online (user-needs 2.3: a retype keeps the volume
    # online and attached); only an extend on a pre-3.3 DSP needs the flip
    offline = new.size > have.size and not _online_resize(live.sw_version)
    inner: list[Call] = []
    if new.size > have.size:
        size = Call(method="PUT", path=vol, body={"size": new.size},
                    why=f"grow {have.size} -> {new.size} GiB")
        if not offline:  # this DSP may still refuse it online: the driver's offline flip
            size = attrs.evolve(size, unless="refused", instead=(
                offline_around(ai, "the DSP refused an online resize", then=(size,)),))
        inner.append(size)
    if vol_body:
        inner.append(Call(method="PUT", path=vol, body=vol_body,
                          why="policy: " + ", ".join(vol_body)))
    if si_body:
        inner.append(Call(method="PUT", path=live.si_path, body=si_body, why="ip_pool"))
    if offline and live.online:
        calls.append(offline_around(ai, "a pre-3.3 DSP resizes offline", then=tuple(inner)))
    else:
        calls += inner
    # QoS (recomputed on a resize too: iops_per_gb scales with the size)
    if declared & _QOS_KEYS:
        want_qos = policy.performance_policy(new.size)
        have_qos = dict(live.qos or {})
        if want_qos != have_qos:
            calls += _qos_calls(f"{vol}/performance_policy", have_qos, want_qos)
    calls += _auth_calls(live, have, new, old=old, created=created)
    if new.snapshot_policies != have.snapshot_policies:
        calls += _snapshot_policy_calls(f"{vol}/snapshot_policies", have.snapshot_policies,
                                        new.snapshot_policies)
    return calls


def _qos_calls(url: str, have: dict[str, int], want: dict[str, int]) -> list[Call]:
    """No limit left: DELETE (gone already is fine). Otherwise every ``*_max`` key (0: no
    limit): PUT the policy the volume has (POST it if the DSP lost it), POST a new one
    (PUT it when the DSP has one after all)."""
    if not want:
        return [Call(method="DELETE", path=url, why="QoS removed", unless="missing")]
    body = {k: want.get(k, 0) for k in cinder.QOS_MAX_KEYS}
    put = Call(method="PUT", path=url, body=body, why="QoS")
    post = Call(method="POST", path=url, body=body, why="QoS", unless="conflict",
                instead=(put,))
    return [attrs.evolve(put, unless="missing", instead=(post,)) if have else post]


def _auth_calls(live: LiveVolume, have: VolumeSpec, new: VolumeSpec, *,
                old: VolumeSpec | None, created: bool) -> list[Call]:
    """CHAP: unset in the declaration leaves it as the DSP has it (a NodeAttachment may
    have turned it on); "" turns it off; a changed user, type or secret is written."""
    want = _auth_body(new)
    live_type = "none" if have.chap_user is None else (
        "mchap" if have.chap_initiator_user else "chap")
    # a secret the caller could not read back (None: the engine passes the observed
    # spec, its digest check already decided this is a change) is written too
    secrets_changed = old is not None and (
        old.chap_secret != new.chap_secret and new.chap_secret is not None
        or old.chap_initiator_secret != new.chap_initiator_secret
        and new.chap_initiator_secret is not None)
    if new.chap_user is None or not (
            want["type"] != live_type or (new.chap_user or None) != have.chap_user
            or new.chap_initiator_user != have.chap_initiator_user or secrets_changed
            or (created and want["type"] != "none")):
        return []
    if want.get("target_pswd", "") is None or want.get("initiator_pswd", "") is None:
        raise InputError("changing CHAP needs the secrets", kind=KIND, field="chap_secret",
                         resource=new.name,
                         fix="set chap_secret (and chap_initiator_secret for mutual CHAP)")
    return [Call(method="PUT", path=f"{live.si_path}/auth", body=want,
                 why=f"CHAP {live_type} -> {want['type']}" if want["type"] != live_type
                 else "CHAP user or secret")]


def _snapshot_policy_calls(url: str, have: list[str], want: list[str]) -> list[Call]:
    """Removed schedules deleted (gone already is fine), new ones posted, changed ones put."""
    have_by = {p.split(":")[0]: p for p in have}
    want_by = {p.split(":")[0]: p for p in want}
    calls = [Call(method="DELETE", path=f"{url}/{name}", why="snapshot policy removed",
                  unless="missing") for name in sorted(have_by.keys() - want_by.keys())]
    for name, item in want_by.items():
        if name not in have_by:
            calls.append(Call(method="POST", path=url, body=_policy_body(item),
                              why="snapshot policy added"))
        elif have_by[name] != item:
            body = _policy_body(item)
            body.pop("name")
            calls.append(Call(method="PUT", path=f"{url}/{name}", body=body,
                              why="snapshot policy changed"))
    return calls


def revert_calls(live: LiveVolume, new: VolumeSpec) -> list[Call]:
    """Revert in place to the snapshot ``new.restore_point`` names: the DSP's restore
    point, a PUT of ``restore_point`` on the volume while its app_instance is offline (the
    DSP refuses it online; ``force`` when initiators are logged in), then online again.

    Raises InputError, before any call, when the snapshot is another volume's, or (when
    ``live`` knows them) not among its snapshots, or initiators are logged in and
    ``force_restore`` is not set."""
    point = str(new.restore_point)
    ts = restore_timestamp(point)
    head = point.strip().rpartition("/")[0]
    fix = f"name one of its snapshots (`datera-iac ls snapshots --volume {live.id}`)"
    if head and not same_volume(head, live.id):
        raise InputError(f"{point!r} is a snapshot of another volume", kind=KIND,
                         field="restore_point", resource=new.name, fix=fix)
    if live.snapshots is not None and ts not in live.snapshots:
        raise InputError(f"the volume has no snapshot {ts}", kind=KIND,
                         field="restore_point", resource=new.name, fix=fix)
    users = live.initiators or ()
    if users and not new.force_restore:
        raise InputError(
            f"the volume is in use: {len(users)} initiator(s) are logged in "
            f"({', '.join(sorted(users))}); a revert takes it offline under them",
            kind=KIND, field="restore_point", resource=new.name,
            fix="detach the volume (log the initiators out) and apply again, or set "
            "force_restore: true")
    put = Call(method="PUT", path=live.vol_path, body={"restore_point": ts},
               why=f"revert to snapshot {ts}")
    if not live.online:
        return [put]
    return [offline_around(live.ai_path, "the DSP reverts offline", (put,),
                           force=bool(users))]


def _metadata_body(have: Mapping[str, str], new: VolumeSpec) -> dict[str, str | None]:
    """What differs (keys removed from a declared ``metadata`` are sent as null, which
    removes them; ``metadata`` unset keeps what is there)."""
    want: dict[str, str] = dict(new.metadata or {})
    if new.volume_type:
        want[META_VOLUME_TYPE] = new.volume_type
    body: dict[str, str | None] = {k: v for k, v in want.items() if have.get(k) != v}
    if new.metadata is not None:
        for k in have:
            if k not in want and k != META_VOLUME_TYPE:
                body[k] = None
    return body


def metadata_calls(live: LiveVolume, new: VolumeSpec) -> list[Call]:
    """One PUT (a merge) of the metadata that differs; none when extended metadata is
    off. Metadata not read (a bulk refresh) is compared as empty: the whole declaration."""
    if not live.write_metadata:
        return []
    body = _metadata_body(live.metadata or {}, new)
    if not body:
        return []
    url, wrapped = _meta_url(live.ai_path, live.sw_version)
    return [Call(method="PUT", path=url, body={"data": body} if wrapped else body,
                 why="metadata" if live.metadata is not None else "metadata (not read)")]


def metadata_after(live: LiveVolume, new: VolumeSpec) -> dict[str, str] | None:
    """What the metadata holds once :func:`metadata_calls` were sent (None: not kept)."""
    if not live.write_metadata:
        return None
    merged = {**(live.metadata or {}), **_metadata_body(live.metadata or {}, new)}
    return {k: v for k, v in merged.items() if v is not None}


def _meta_url(ai_path: str, sw: str | None) -> tuple[str, bool]:
    """(url, wrapped): ``int_ecosystem_data`` with a ``{"data": ...}`` body on DSP 3.3+
    (what the SDK does), the legacy flat ``metadata`` before."""
    if _online_resize(sw):
        return f"{ai_path}/int_ecosystem_data", True
    return f"{ai_path}/metadata", False


def _resolve(ctx: Context, spec: VolumeSpec) -> cinder.VolumePolicy:
    """``spec``'s policy with the configuration's type defaults."""
    return cinder.resolve_policy(spec.extra_specs, config=ctx.config,
                                 typed=bool(spec.extra_specs or spec.volume_type),
                                 kind=KIND, resource=spec.name)


def _writes_metadata(ctx: Context) -> bool:
    return not getattr(ctx.config, "datera_disable_extended_metadata", False)


def _api(ctx: Context) -> str:
    return str(getattr(ctx.client, "api_version", "2.2"))


# ---- helpers on DSP shapes ----------------------------------------------------------------


def _sw(ctx: Context) -> str | None:
    return getattr(ctx.client, "sw_version", None)


def _placement_fields(policy: cinder.VolumePolicy, api_version: str, sw: str | None
                      ) -> dict[str, Any]:
    """placement_policy on API 2.2 with DSP 3.3+, placement_mode otherwise (the driver's
    2.1 path always sends placement_mode; the 2.1 schema has no placement_policy)."""
    if api_version == "2.1":
        return {"placement_mode": policy.placement_mode}
    return policy.placement_fields(sw)


def _online_resize(sw: str | None) -> bool:
    """DSP 3.3+ (and an unknown version, treated as current) changes sizes online and keeps
    metadata in int_ecosystem_data."""
    if sw is None:
        return True
    nums = [int(m.group()) if (m := re.match(r"\d+", p)) else 0 for p in str(sw).split(".")]
    return tuple((nums + [0, 0, 0, 0])[:4]) >= (3, 3, 0, 0)


def _live_qos(ctx: Context, vol: Mapping[str, Any] | None, tenant: str) -> dict[str, int]:
    """The volume's performance_policy as ``{key: value > 0}``. Read from the volume entity
    when the DSP embeds it, else with one GET (404 = none)."""
    if not vol:
        return {}
    if "performance_policy" in vol or getattr(ctx.client, "api_version", "2.2") != "2.1":
        # v2.2 embeds the policy in the volume entity when there is one (go-sdk's Volume)
        pp = vol.get("performance_policy") or {}
    else:
        try:
            pp = ctx.client.get(f"{vol.get('path')}/performance_policy", tenant=tenant) or {}
        except NotFound:
            pp = {}
    if not pp or not isinstance(pp, Mapping):
        return {}
    out = {}
    for k in cinder.QOS_MAX_KEYS:
        v = pp.get(k)
        if isinstance(v, (int, float)) and v > 0:
            out[k] = int(v)
    return out


def _live_extra_specs(ai: Mapping[str, Any], si: Mapping[str, Any] | None,
                      vol: Mapping[str, Any] | None, qos: Mapping[str, int]) -> dict[str, str]:
    """The live policy written as explicit DF: extra specs."""
    raw: dict[str, Any] = {}
    if vol:
        if vol.get("replica_count") is not None:
            raw["replica_count"] = int(vol["replica_count"])
        if vol.get("placement_mode"):
            raw["placement_mode"] = vol["placement_mode"]
        pp = vol.get("placement_policy")
        tail = path_tail(pp.get("path") if isinstance(pp, Mapping) else pp)
        if tail:
            raw["placement_policy"] = tail
    if si:
        pool = si.get("ip_pool")
        tail = path_tail(pool.get("path") if isinstance(pool, Mapping) else pool)
        if tail:
            raw["ip_pool"] = tail
    tmpl = ai.get("app_template")
    tail = path_tail(tmpl.get("path") if isinstance(tmpl, Mapping) else tmpl)
    if tail:
        raw["template"] = tail
    raw.update(qos)
    try:
        return cinder.normalize_extra_specs(raw, kind=KIND)
    except InputError:  # a value outside what we model: keep what normalizes
        out = {}
        for k, v in raw.items():
            try:
                out.update(cinder.normalize_extra_specs({k: v}, kind=KIND))
            except InputError:
                continue
        return out


def _require_secrets(new: VolumeSpec, old: VolumeSpec | None) -> None:
    """A new CHAP user needs its secret (the DSP cannot keep a secret for a new user)."""
    if new.chap_user and new.chap_secret is None and (
            old is None or old.chap_user != new.chap_user):
        raise InputError("chap_user needs chap_secret", kind=KIND, field="chap_secret",
                         resource=new.name, fix="set chap_secret (12-16 characters)")
    if new.chap_initiator_user is not None and new.chap_initiator_secret is None and (
            old is None or old.chap_initiator_user != new.chap_initiator_user):
        raise InputError("chap_initiator_user needs chap_initiator_secret", kind=KIND,
                         field="chap_initiator_secret", resource=new.name,
                         fix="set chap_initiator_secret (12-16 characters)")


def _auth_body(spec: VolumeSpec) -> dict[str, Any]:
    if not spec.chap_user:
        return {"type": "none"}
    body: dict[str, Any] = {"type": "chap", "target_user_name": spec.chap_user,
                            "target_pswd": spec.chap_secret}
    if spec.chap_initiator_user is not None:
        body.update(type="mchap", initiator_user_name=spec.chap_initiator_user,
                    initiator_pswd=spec.chap_initiator_secret)
    return body


def _policy_body(item: str) -> dict[str, Any]:
    name, interval, retention = item.split(":")
    return {"name": name, "interval": interval, "retention_count": int(retention)}


def _reverts(old: VolumeSpec, new: VolumeSpec) -> bool:
    """Whether going from ``old`` to ``new`` is a revert: a restore point is declared and it
    is not the one ``old`` holds (the DSP's last, or the one last applied)."""
    if new.restore_point is None:
        return False
    return old.restore_point is None or \
        restore_timestamp(old.restore_point) != restore_timestamp(new.restore_point)


def _same_snapshot(a: str, b: str) -> bool:
    va, _, ta = a.rpartition("/")
    vb, _, tb = b.rpartition("/")
    return ta == tb and bool(SNAP_TS_RE.match(ta)) and same_volume(va, vb)
