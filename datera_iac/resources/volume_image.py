"""Images as declarations: the Cinder driver's "copy image to volume" and "copy volume to
image".

* **Image to volume** is the Volume kind's ``source_image`` input (with
  ``source_image_checksum``, ``source_image_format`` and ``image_node``). The helpers here
  check it at plan time (no API call: the local file exists, its header matches the
  declared format, the format is one qemu-img converts, the image fits ``size``) and
  :func:`create_volume_from_image` runs the create: fetch and verify the image *before*
  any DSP write, then either clone the image cache's snapshot
  (``datera_enable_image_cache``) or create an empty volume and fill it through
  :mod:`datera_iac.node.image`.
* **Volume to image** is a kind of its own, :class:`VolumeImage`: an image file is an
  object with a lifetime (create = export, delete = remove the file, read = its size and
  SHA-256), and a separate resource lets an operator export the same volume several
  times, or re-export on demand by changing ``revision``.

Which machine copies (``image_node``): unset or ``local`` attaches the volume to the
machine running datera-iac with the kernel initiator (a temporary NodeAttachment honouring
``Context.runner``), ``libiscsi://<initiator iqn>`` copies from the same machine with
qemu-img's userspace iSCSI initiator (containers, CI: no kernel iSCSI needed). A
``?port=<n>&lun=<n>`` query overrides Datera's 3260 / LUN 0. Image files are always on
the machine running datera-iac (``ssh://`` nodes are refused: the node helper would look
for the file on the remote node).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import tempfile
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import attrs

from datera_iac.errors import InputError, NotFound
from datera_iac.node.iscsi import IQN_RE
from datera_iac.resources._util import NamesResource, volume_ref
from datera_iac.resources.base import (
    Context,
    Diff,
    FieldChange,
    Kind,
    Observed,
    diff_specs,
    out_field,
    register,
    spec_field,
)

if TYPE_CHECKING:  # pragma: no cover
    from datera_iac.node.image import LocalImage, Transport
    from datera_iac.resources.volume import Volume, VolumeSpec

__all__ = [
    "EXPORT_FORMATS",
    "IMAGE_FORMATS",
    "ImageNode",
    "VolumeImage",
    "VolumeImageOutputs",
    "VolumeImageSpec",
    "check_source_image",
    "create_volume_from_image",
    "parse_image_node",
    "sniff_image",
    "transport_for",
]

log = logging.getLogger(__name__)

GIB = 1 << 30
#: Formats an image may have (qemu-img names; Glance's ``vhd`` is qemu's ``vpc``).
IMAGE_FORMATS = ("raw", "qcow2", "vmdk", "vdi", "vhdx", "vpc")
_FORMAT_ALIASES = {"vhd": "vpc", "img": "raw"}
#: Formats a volume can be exported to.
EXPORT_FORMATS = ("raw", "qcow2")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_NODE_FIX = ("write 'local' (kernel iSCSI on this machine) or 'libiscsi://<initiator iqn>' "
             "(qemu-img's userspace initiator), optionally with ?port=<n>&lun=<n>")


# ---- field converters / validators (pure, cheap: they run on every spec) --------------------


def normalize_format(kind: str, field: str, allowed: tuple[str, ...]) -> Any:
    """A format name, lower-cased, aliases resolved; an unknown one is an InputError."""

    def convert(value: Any) -> str | None:
        if value is None:
            return None
        text = str(value).strip().lower()
        text = _FORMAT_ALIASES.get(text, text)
        if text not in allowed:
            raise InputError(f"image format {value!r} is not supported", kind=kind, field=field,
                             fix="use one of " + ", ".join(allowed))
        return text

    return convert


def normalize_checksum(value: Any) -> str | None:
    """``sha256:<hex>`` or ``<hex>`` -> lower-case hex; other algorithms are refused."""
    if value is None:
        return None
    text = str(value).strip().lower()
    algo, sep, digest = text.partition(":")
    if not sep:
        algo, digest = "sha256", text
    if algo != "sha256" or not _SHA256_RE.match(digest):
        raise InputError(f"{value!r} is not a SHA-256 checksum", kind="Volume",
                         field="source_image_checksum",
                         fix="write 'sha256:<64 hex digits>' (sha256sum <file>)")
    return digest


def image_ref(kind: str, field: str) -> Any:
    """attrs validator: an http(s) URL or a path (its existence is checked at plan by
    :func:`check_source_image`, not here: a refresh must not depend on the file)."""

    def validate(_inst: Any, _attr: Any, value: Any) -> None:
        if value is None:
            return
        fix = "give an absolute local path, file:///path or an http(s) URL"
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{value!r} is not an image reference", kind=kind, field=field,
                             fix=fix)
        parts = urlsplit(value)
        if parts.scheme in ("http", "https"):
            if not parts.hostname:
                raise InputError(f"{value!r} has no host", kind=kind, field=field, fix=fix)
            if parts.password:
                raise InputError("a password in the image URL would be stored in state",
                                 kind=kind, field=field,
                                 fix="use a URL without credentials (a pre-signed URL, or a "
                                 "local copy)")
            return
        if parts.scheme not in ("", "file"):
            raise InputError(f"image scheme {parts.scheme!r} is not supported", kind=kind,
                             field=field, fix=fix)

    return validate


@attrs.frozen
class ImageNode:
    """Where a copy runs: ``mode`` "local" (kernel attach) or "libiscsi" (userspace)."""

    mode: str
    initiator_iqn: str | None = None
    port: int = 3260
    lun: int = 0


def parse_image_node(value: str | None, *, kind: str = "Volume",
                     field: str = "image_node") -> ImageNode:
    """Parse ``image_node``; InputError naming ``field`` for anything else."""
    text = (value or "local").strip()
    base, _, query = text.partition("?")
    q = parse_qs(query, keep_blank_values=True)
    unknown = set(q) - {"port", "lun"}
    if unknown:
        raise InputError(f"unknown image_node parameter(s) {', '.join(sorted(unknown))}",
                         kind=kind, field=field, fix=_NODE_FIX)
    nums: dict[str, Any] = {}
    for key, lo, hi in (("port", 1, 65535), ("lun", 0, 16383)):
        if key in q:
            raw = q[key][-1]
            if not raw.isdigit() or not lo <= int(raw) <= hi:
                raise InputError(f"image_node {key} {raw!r} is not a number in {lo}..{hi}",
                                 kind=kind, field=field, fix=_NODE_FIX)
            nums[key] = int(raw)
    if base == "local":
        return ImageNode("local", **nums)
    if base.startswith("libiscsi://"):
        iqn = base[len("libiscsi://"):]
        # the node URL's query is split off above, so '?' cannot reach the IQN
        if not IQN_RE.match(iqn) or "?" in iqn:
            raise InputError(f"{iqn!r} is not an initiator IQN", kind=kind, field=field,
                             fix="e.g. libiscsi://iqn.2024-01.org.example:imager")
        return ImageNode("libiscsi", iqn, **nums)
    if base.startswith("ssh://"):
        raise InputError("image copies run on the machine running datera-iac; an ssh:// node "
                         "is not supported for images", kind=kind, field=field, fix=_NODE_FIX)
    raise InputError(f"image_node {value!r} is not understood", kind=kind, field=field,
                     fix=_NODE_FIX)


def transport_for(node: ImageNode, chap: Any = None) -> Transport:
    """The node helper's transport for an :class:`ImageNode`."""
    from datera_iac.node.image import NodeTransport, UserspaceTransport

    if node.mode == "libiscsi":
        assert node.initiator_iqn is not None
        return UserspaceTransport(node.initiator_iqn, port=node.port, lun=node.lun, chap=chap)
    return NodeTransport("local", port=node.port, lun=node.lun, chap=chap)


# ---- plan-time checks of a local image ---------------------------------------------------------


def local_path(ref: str) -> str | None:
    """The local path of an image reference, or None for an http(s) URL."""
    if ref.startswith(("http://", "https://")):
        return None
    return ref.removeprefix("file://")


def sniff_image(path: str) -> tuple[str | None, int | None]:
    """(format, virtual size) from the file's header, without qemu-img: qcow2 (with its
    virtual size), vmdk, vdi, vhdx and vhd are recognized; an ISO 9660 file is "iso";
    anything else is (None, file size), i.e. raw unless declared otherwise."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(0x8006)
        tail = b""
        if size >= 512:
            f.seek(size - 512)
            tail = f.read(512)
    if head[:4] == b"QFI\xfb" and len(head) >= 32:
        return "qcow2", struct.unpack(">Q", head[24:32])[0]
    if head[:4] == b"KDMV" or head.startswith(b"# Disk DescriptorFile"):
        return "vmdk", None
    if head[0x40:0x44] == b"\x7f\x10\xda\xbe":
        return "vdi", None
    if head[:8] == b"vhdxfile":
        return "vhdx", None
    if head[:8] == b"conectix" or tail[:8] == b"conectix":
        return "vpc", None
    if head[0x8001:0x8006] == b"CD001":
        return "iso", None
    return None, size


def check_source_image(spec: VolumeSpec) -> None:
    """Plan-time checks of ``source_image`` and its companions (no API call)."""
    if spec.source_image is None:
        for f in ("source_image_checksum", "source_image_format"):
            if getattr(spec, f) is not None:
                raise InputError(f"{f} is set without source_image", kind="Volume", field=f,
                                 fix="set source_image too, or drop " + f)
        if spec.image_node is not None:
            parse_image_node(spec.image_node)
        return
    other = [f for f in ("clone_of", "snapshot_id", "template") if getattr(spec, f)]
    if other:
        raise InputError(f"source_image and {other[0]} are both set", kind="Volume",
                         field="source_image",
                         fix="set one source: an image, a volume to clone, a snapshot or a "
                         "template")
    parse_image_node(spec.image_node)
    path = local_path(spec.source_image)
    if path is None:
        return  # a URL: format, size and checksum are checked after the download
    if not os.path.isfile(path):
        raise InputError(f"image file {path!r} does not exist", kind="Volume",
                         field="source_image",
                         fix="give the path of an image file on the machine running "
                         "datera-iac, or an http(s) URL")
    try:
        fmt, vsize = sniff_image(path)
    except OSError as e:
        raise InputError(f"cannot read image {path!r}: {e.strerror}", kind="Volume",
                         field="source_image",
                         fix="make the file readable by the user running datera-iac") from None
    check_format(spec.source_image, fmt, spec.source_image_format)
    if vsize is not None and (fmt == "qcow2" or spec.source_image_format in (None, "raw")):
        need = max(1, -(-vsize // GIB))
        if need > spec.size:
            raise InputError(f"image {spec.source_image} needs {need} GiB; size is "
                             f"{spec.size} GiB", kind="Volume", field="size",
                             fix=f"set size to at least {need}")


def check_format(source: str, found: str | None, declared: str | None, *,
                 resource: str | None = None) -> None:
    """A detected format must be supported and agree with the declared one."""
    if found == "iso" or (found is not None and found not in IMAGE_FORMATS):
        raise InputError(f"image {source} is an {found} image, which cannot become a volume",
                         kind="Volume", field="source_image_format", resource=resource,
                         fix="use a disk image: " + ", ".join(IMAGE_FORMATS))
    if declared is None:
        return
    if found is not None and found != declared:
        raise InputError(f"image {source} is {found}, not {declared}", kind="Volume",
                         field="source_image_format", resource=resource,
                         fix=f"set source_image_format to {found}, or leave it unset")
    if found is None and declared != "raw" and declared in ("qcow2", "vhdx", "vdi", "vmdk"):
        raise InputError(f"image {source} has no {declared} header", kind="Volume",
                         field="source_image_format", resource=resource,
                         fix="leave source_image_format unset (raw), or point at the "
                         f"{declared} file")


# ---- create a Volume from an image ----------------------------------------------------------


def _verify(spec: VolumeSpec, img: LocalImage) -> None:
    """Checks that need the fetched image (a URL's content); before any DSP write."""
    if spec.source_image_checksum and img.sha256 != spec.source_image_checksum:
        raise InputError(f"image {spec.source_image} has SHA-256 {img.sha256}, not "
                         f"{spec.source_image_checksum}", kind="Volume",
                         field="source_image_checksum", resource=spec.name,
                         fix="check the image (a changed or corrupted download?) or update "
                         "the checksum")
    check_format(spec.source_image or "", img.format, spec.source_image_format,
                 resource=spec.name)
    if img.size_gib > spec.size:
        raise InputError(f"image {spec.source_image} needs {img.size_gib} GiB; size is "
                         f"{spec.size} GiB", kind="Volume", field="size", resource=spec.name,
                         fix=f"set size to at least {img.size_gib}")


def _volume_chap(spec: VolumeSpec) -> Any:
    if spec.chap_user is None or spec.chap_secret is None:
        return None
    from datera_iac.node.iscsi import Chap

    return Chap(spec.chap_user, spec.chap_secret, spec.chap_initiator_user,
                spec.chap_initiator_secret)


_CACHE_LOCKS: dict[tuple[str, str | None], threading.Lock] = {}
_CACHE_LOCKS_GUARD = threading.Lock()


def _cache_lock(source: str, tenant: str | None) -> threading.Lock:
    """One lock per (image, tenant): volumes of one image created in parallel (an engine
    apply) must not race to fill the same cache volume (the loser's create would fail on
    the taken name); the first fills it, the others then clone its snapshot."""
    with _CACHE_LOCKS_GUARD:
        return _CACHE_LOCKS.setdefault((source, tenant), threading.Lock())


def filling_name(spec: VolumeSpec) -> str:
    """The name a volume has while it is being filled (deterministic per tenant and name,
    a valid app_instance name of 32 characters)."""
    key = f"{spec.tenant or ''}\0{spec.name}".encode()
    return "filling-" + hashlib.sha256(key).hexdigest()[:24]


def _create_and_fill(kind: Volume, ctx: Context, spec: VolumeSpec, img: LocalImage,
                     transport: Transport) -> Observed[Any, Any]:
    """Create the volume under :func:`filling_name`, fill it, then rename it to its name.

    Why: the engine's crash recovery looks a create up by name (``find``). Were the volume
    named at once, a run killed during the copy would leave a half-filled volume that the
    next run adopts as done. Under the filling name it is not found; the next run deletes
    that leftover and starts over. A failed fill deletes the volume (create stays
    transactional)."""
    from datera_iac.errors import Conflict
    from datera_iac.node.image import fill_volume

    temp = attrs.evolve(spec, name=filling_name(spec))
    leftover = kind.find(ctx, temp)
    if leftover is not None:
        log.warning("volume %s: removing %s left by an interrupted fill", spec.name, temp.name)
        kind.delete(ctx, leftover.id)
    obs = kind.create(ctx, temp)
    try:
        fill_volume(ctx, obs.id, img, transport=transport)
        try:
            ctx.client.put(str(obs.outputs.path), {"name": spec.name},
                           tenant=obs.outputs.tenant)
        except Conflict:
            raise Conflict(f"a volume named {spec.name!r} already exists in tenant "
                           f"{obs.outputs.tenant!r}; import it or choose another name",
                           path=str(obs.outputs.path)) from None
    except BaseException:
        log.warning("filling volume %s from %s failed; removing it", spec.name, img.source)
        try:
            kind.delete(ctx, obs.id)
        except Exception as e:  # noqa: BLE001  pragma: no cover - the original error wins
            log.error("could not remove the half-filled volume %s: %s", obs.id, e)
        raise
    found = kind.read(ctx, obs.id)
    if found is None:
        raise NotFound(f"volume {spec.name!r} vanished right after it was filled",
                       path=str(obs.outputs.path))
    return found


def create_volume_from_image(kind: Volume, ctx: Context, spec: VolumeSpec
                             ) -> Observed[Any, Any]:
    """Volume.create for a spec with ``source_image``.

    The image is fetched and verified (checksum, format, size) before anything is written
    on the DSP. With the image cache on, the volume is a clone of the cache's snapshot
    (the first volume of an image fills the cache); otherwise it is created empty and
    filled. A failed fill deletes the new volume (create stays transactional)."""
    from datera_iac.node.image import cached_snapshot_for, fetch_image

    assert spec.source_image is not None
    node = parse_image_node(spec.image_node)
    image_fields: dict[str, Any] = {"source_image": None, "source_image_checksum": None,
                                    "source_image_format": None, "image_node": None}
    with fetch_image(spec.source_image) as img:
        _verify(spec, img)
        with _cache_lock(spec.source_image, spec.tenant):
            snap = cached_snapshot_for(ctx, img, tenant=spec.tenant,
                                       transport=transport_for(node))
        if snap is not None:
            log.info("volume %s: cloning the image cache snapshot %s", spec.name, snap)
            obs = kind.create(ctx, attrs.evolve(spec, snapshot_id=snap, **image_fields))
        else:
            obs = _create_and_fill(kind, ctx, attrs.evolve(spec, **image_fields), img,
                                   transport_for(node, _volume_chap(spec)))
    keep = {f: getattr(spec, f) for f in image_fields}
    return attrs.evolve(obs, spec=attrs.evolve(obs.spec, **keep))


# ---- VolumeImage: export a volume to an image file -------------------------------------------

KIND = "VolumeImage"


def _abs_path(_inst: Any, _attr: Any, value: Any) -> None:
    if not isinstance(value, str) or not os.path.isabs(value) or value.endswith("/") \
            or "?" in value:
        raise InputError(f"{value!r} is not an absolute file path", kind=KIND, field="path",
                         fix="give an absolute path such as /var/lib/images/disk.qcow2 "
                         "(no '?')")


def _size_bytes(value: Any) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if isinstance(value, bool) or n < 512 or n % 512:
        raise InputError(f"size_bytes {value!r} is not a positive multiple of 512", kind=KIND,
                         field="size_bytes", fix="give a byte count that is a multiple of "
                         "512 (e.g. the source image's size), or leave it unset for the "
                         "whole volume")
    return n


@attrs.frozen(kw_only=True)
class VolumeImageSpec:
    """Inputs of a VolumeImage."""

    volume_id: str = spec_field(
        doc="The Volume to export (its id).", replace=True, reference="Volume",
        validator=volume_ref(KIND),
    )
    path: str = spec_field(
        doc="Absolute path of the image file on the machine running datera-iac; it must not "
        "exist yet. Destroy removes it.", replace=True, validator=_abs_path,
    )
    format: str = spec_field(
        doc="Image format: raw or qcow2.", default="raw", replace=True,
        converter=normalize_format(KIND, "format", EXPORT_FORMATS),
    )
    size_bytes: int | None = spec_field(
        doc="Export only the first N bytes (a multiple of 512, e.g. the source image's "
        "size); unset exports the whole volume.", default=None, replace=True,
        converter=_size_bytes,
    )
    revision: str | None = spec_field(
        doc="Any label; changing it exports the volume again (a new file replaces the old).",
        default=None, replace=True,
    )
    image_node: str | None = spec_field(
        doc="How the volume is read: 'local' (kernel iSCSI, default) or "
        "'libiscsi://<initiator iqn>' (userspace), optionally ?port=<n>&lun=<n>.",
        default=None,
    )
    chap_user: str | None = spec_field(
        doc="The volume's target CHAP user, when it has CHAP (the DSP never returns the "
        "secret, so the export needs it too).", default=None,
    )
    chap_secret: str | None = spec_field(
        doc="The volume's target CHAP secret.", default=None, sensitive=True,
    )


@attrs.frozen(kw_only=True)
class VolumeImageOutputs:
    """What the exported file is."""

    sha256: str | None = out_field(doc="SHA-256 of the image file.")
    file_size: int | None = out_field(doc="Size of the image file in bytes.")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


@register
class VolumeImage(NamesResource, Kind[VolumeImageSpec, VolumeImageOutputs]):
    """An image file exported from a volume ("copy volume to image").

    Id: the file's path, with the other inputs as a query
    (``/srv/img/disk.qcow2?volume_id=/root/3f2a...&format=qcow2``), so read, delete and
    import need nothing else. Read hashes the file (its SHA-256 is the output); a file
    that disappeared is gone, and the next apply exports it again."""

    name = KIND
    token = "datera:index:VolumeImage"
    tf_type = "datera_volume_image"
    Spec = VolumeImageSpec
    Outputs = VolumeImageOutputs
    import_id_doc = "<path>?volume_id=<volume id>[&format=qcow2][&size_bytes=N]"

    def validate(self, spec: VolumeImageSpec) -> None:
        parse_image_node(spec.image_node, kind=KIND)
        if (spec.chap_user is None) != (spec.chap_secret is None):
            raise InputError("chap_user and chap_secret go together", kind=KIND,
                             field="chap_secret" if spec.chap_user else "chap_user",
                             fix="set both (the volume's chap_user and chap_secret), or neither")
        parent = os.path.dirname(spec.path)
        if not os.path.isdir(parent):
            raise InputError(f"directory {parent!r} does not exist", kind=KIND, field="path",
                             fix=f"create {parent} first, or choose another path")

    # ---- ids ------------------------------------------------------------------------------

    @staticmethod
    def id_for(spec: VolumeImageSpec) -> str:
        q: dict[str, Any] = {"volume_id": spec.volume_id}
        if spec.format != "raw":
            q["format"] = spec.format
        if spec.size_bytes is not None:
            q["size_bytes"] = spec.size_bytes
        if spec.revision is not None:
            q["revision"] = spec.revision
        if spec.image_node is not None:
            q["image_node"] = spec.image_node
        if spec.chap_user is not None:
            q["chap_user"] = spec.chap_user  # never the secret: ids land in logs and state
        return f"{spec.path}?{urlencode(q)}"

    def spec_for_id(self, id: str) -> VolumeImageSpec:
        path, _, query = id.partition("?")
        q: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
        if "volume_id" not in q:
            raise InputError(f"{id!r} is not a VolumeImage id", kind=KIND, field="id",
                             fix="use " + self.import_id_doc)
        unknown = set(q) - ({f.name for f in attrs.fields(VolumeImageSpec)} - {"chap_secret"})
        if unknown:
            raise InputError(f"unknown VolumeImage id parameter(s) {sorted(unknown)}",
                             kind=KIND, field="id", fix="use " + self.import_id_doc)
        return VolumeImageSpec(path=path, **q)

    def diff(self, old: VolumeImageSpec, new: VolumeImageSpec) -> Diff:
        """The CHAP secret is compared only when both sides know it (a read cannot)."""
        d = diff_specs(old, new, ignore=("chap_secret",))
        if None not in (old.chap_secret, new.chap_secret) and old.chap_secret != new.chap_secret:
            return Diff(changes=(*d.changes, FieldChange("chap_secret", old.chap_secret,
                                                         new.chap_secret, sensitive=True)))
        return d

    # ---- behaviour -----------------------------------------------------------------------

    def read_known(self, ctx: Context, id: str, known: VolumeImageSpec | None
                   ) -> Observed[VolumeImageSpec, VolumeImageOutputs] | None:
        found = self.read(ctx, id)
        if found is None or known is None or known.chap_user != found.spec.chap_user:
            return found
        return attrs.evolve(found, spec=attrs.evolve(found.spec, chap_secret=known.chap_secret))

    def read(self, ctx: Context, id: str) -> Observed[VolumeImageSpec, VolumeImageOutputs] | None:
        spec = self.spec_for_id(id)
        if not os.path.isfile(spec.path):
            return None
        return Observed(id, spec, VolumeImageOutputs(sha256=_sha256(spec.path),
                                                     file_size=os.path.getsize(spec.path)))

    def create(self, ctx: Context, spec: VolumeImageSpec
               ) -> Observed[VolumeImageSpec, VolumeImageOutputs]:
        """Export into a temporary file next to ``path``, then rename it into place: a
        half-written image never appears under ``path``."""
        from datera_iac.node.image import export_volume

        node = parse_image_node(spec.image_node, kind=KIND)
        if os.path.lexists(spec.path):
            raise InputError(f"{spec.path} already exists", kind=KIND, field="path",
                             fix="remove the file, import it (datera-iac import), or choose "
                             "another path")
        from datera_iac.resources.volume import Volume

        if Volume().read(ctx, spec.volume_id) is None:
            raise NotFound(f"volume {spec.volume_id!r} does not exist (exporting to "
                           f"{spec.path})", path=spec.volume_id)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(spec.path)}.",
                                   suffix=".partial", dir=os.path.dirname(spec.path))
        os.close(fd)
        try:
            os.unlink(tmp)  # qemu-img creates the file itself
            chap = None
            if spec.chap_user and spec.chap_secret:
                from datera_iac.node.iscsi import Chap

                chap = Chap(spec.chap_user, spec.chap_secret)
            export_volume(ctx, spec.volume_id, tmp, fmt=spec.format, size=spec.size_bytes,
                          transport=transport_for(node, chap))
            os.replace(tmp, spec.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        found = self.read_known(ctx, self.id_for(spec), spec)
        assert found is not None
        return found

    def update(self, ctx: Context, id: str, old: VolumeImageSpec, new: VolumeImageSpec
               ) -> Observed[VolumeImageSpec, VolumeImageOutputs]:
        """Only ``image_node`` changes in place (it matters for the next export only)."""
        parse_image_node(new.image_node, kind=KIND)
        found = self.read_known(ctx, self.id_for(new), new)
        if found is None:
            raise NotFound(f"image file {new.path} is gone; refresh, then apply again",
                           path=new.path)
        return found

    def delete(self, ctx: Context, id: str) -> None:
        path = id.partition("?")[0]
        try:
            os.unlink(path)
        except FileNotFoundError:
            return

    def find(self, ctx: Context, spec: VolumeImageSpec
             ) -> Observed[VolumeImageSpec, VolumeImageOutputs] | None:
        return self.read(ctx, self.id_for(spec))

    def adopt(self, ctx: Context, ref: str) -> Observed[VolumeImageSpec, VolumeImageOutputs]:
        found = self.read(ctx, ref)
        if found is None:
            raise NotFound(f"no image file at {ref.partition('?')[0]}", path=ref)
        return found
