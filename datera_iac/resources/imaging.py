"""Images and volumes: the orchestration that moves an image onto a volume and back.

The node helper moves bytes (:mod:`datera_iac.node.image`: fetch, probe, copy to or from a
device); this module decides which volume, attachment and snapshot are made for it:

* **Image to volume** is the Volume kind's ``source_image`` input (with
  ``source_image_checksum``, ``source_image_format`` and ``image_node``). The checks here
  run at plan time (no API call: the local file exists, its header matches the declared
  format, the format is one qemu-img converts, the image fits ``size``), and
  :func:`create_volume_from_image` runs the create: fetch and verify the image *before*
  any DSP write, then either clone the image cache's snapshot
  (``datera_enable_image_cache``) or create an empty volume and fill it.
* :func:`fill_volume` writes an image onto an existing volume through a temporary
  attachment, and checks that it fits; :func:`export_volume` reads a volume into an image
  file (the VolumeImage kind, :mod:`datera_iac.resources.volume_image`).
* :func:`cached_snapshot_for` implements ``datera_enable_image_cache``: the first volume
  made from an image fills a cache volume (named after the image, typed
  ``datera_image_cache_volume_type_id``) and snapshots it; later volumes clone that
  snapshot; an image whose content changed (different SHA-256) replaces the cache.

A *transport* moves the bytes. :class:`NodeTransport` (the default) attaches the volume to
a node with a NodeAttachment (kernel iSCSI, multipath, WWID check) and writes the device;
:class:`UserspaceTransport` grants an initiator access on the control plane and copies with
qemu-img's libiscsi driver, no kernel initiator needed (containers, CI, this project's
tests against the simulator's tgtd data plane).

Which machine copies (``image_node``): unset or ``local`` attaches the volume to the
machine running datera-iac with the kernel initiator (a temporary NodeAttachment honouring
``Context.runner``), ``libiscsi://<initiator iqn>`` copies from the same machine with
qemu-img's userspace iSCSI initiator (containers, CI: no kernel iSCSI needed). A
``?port=<n>&lun=<n>`` query overrides Datera's 3260 / LUN 0. Image files are always on
the machine running datera-iac (``ssh://`` nodes are refused: the node helper would look
for the file on the remote node).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, urlsplit

import attrs

from datera_iac.errors import Conflict, InputError, NotFound
from datera_iac.node.image import (
    GIB,
    LocalImage,
    fetch_image,
    read_device,
    sha256_file,
    sniff_image,
    write_device,
)
from datera_iac.node.iscsi import IQN_RE, Chap
from datera_iac.node.runner import LocalRunner, Runner
from datera_iac.node.userspace import IscsiLun, LibIscsi
from datera_iac.resources.base import Context, Observed

if TYPE_CHECKING:  # pragma: no cover
    from datera_iac.resources.volume import Volume, VolumeSpec

# The kinds this module creates (Volume, Snapshot, NodeAttachment) import it back for the
# Volume's source_image fields, so they are imported where used.

__all__ = [
    "EXPORT_FORMATS",
    "IMAGE_FORMATS",
    "ImageNode",
    "NodeTransport",
    "Transport",
    "UserspaceTransport",
    "cache_name",
    "cached_snapshot_for",
    "check_source_image",
    "create_volume_from_image",
    "export_volume",
    "fill_volume",
    "filling_name",
    "parse_image_node",
    "sniff_image",
    "transport_for",
    "volume_from_image",
]

log = logging.getLogger(__name__)

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


# ---- transports ----------------------------------------------------------------------------


class Transport(Protocol):
    """Moves bytes between an image file and a volume."""

    def write(self, ctx: Context, volume_id: str, image: LocalImage) -> None: ...

    def read(self, ctx: Context, volume_id: str, dest: str, fmt: str,
             size: int | None) -> None: ...


@attrs.define
class UserspaceTransport:
    """Control-plane access for ``initiator_iqn``, then qemu-img over libiscsi to the first
    portal; access is revoked afterwards (offline when no other initiator remains)."""

    initiator_iqn: str
    port: int = 3260
    lun: int = 0
    chap: Chap | None = None
    runner: Runner = attrs.field(factory=LocalRunner)

    @contextmanager
    def _lun(self, ctx: Context, volume_id: str) -> Iterator[IscsiLun]:
        from datera_iac.resources.attachment import grant_access, revoke_access

        target, added = grant_access(ctx, volume_id, self.initiator_iqn, port=self.port,
                                     lun=self.lun, chap=self.chap)
        try:
            yield IscsiLun(target.portals[0], target.iqn, self.lun, self.initiator_iqn,
                           self.chap)
        finally:
            if added:
                revoke_access(ctx, volume_id, self.initiator_iqn)

    def write(self, ctx: Context, volume_id: str, image: LocalImage) -> None:
        with self._lun(ctx, volume_id) as lun:
            LibIscsi(self.runner).write_image(image.path, lun, fmt=image.format)

    def read(self, ctx: Context, volume_id: str, dest: str, fmt: str,
             size: int | None) -> None:
        with self._lun(ctx, volume_id) as lun:
            LibIscsi(self.runner).read_image(lun, dest, fmt=fmt, size=size)


@attrs.define
class NodeTransport:
    """A temporary NodeAttachment on ``node`` (kernel iSCSI, multipath, WWID-checked), the
    copy to/from its stable device path, then detach. Image files are on that node."""

    node: str = "local"
    port: int = 3260
    lun: int = 0
    chap: Chap | None = None

    @contextmanager
    def _device(self, ctx: Context, volume_id: str) -> Iterator[tuple[str, Runner]]:
        from datera_iac.resources.attachment import NodeAttachment, runner_for

        kind = NodeAttachment()
        data: dict[str, Any] = {"volume_id": volume_id, "node": self.node, "port": self.port,
                                "lun": self.lun}
        if self.chap:
            data.update(chap_user=self.chap.username, chap_secret=self.chap.secret)
        obs = kind.create(ctx, kind.spec_from(data))
        try:
            yield str(obs.outputs.device_path), runner_for(ctx, self.node)
        finally:
            kind.delete(ctx, obs.id)

    def write(self, ctx: Context, volume_id: str, image: LocalImage) -> None:
        with self._device(ctx, volume_id) as (device, runner):
            write_device(runner, image, device)

    def read(self, ctx: Context, volume_id: str, dest: str, fmt: str,
             size: int | None) -> None:
        with self._device(ctx, volume_id) as (device, runner):
            read_device(runner, device, dest, fmt, size)


# ---- fill, export, cache ------------------------------------------------------------------------------


def _volume_size_gib(ctx: Context, volume_id: str) -> int:
    from datera_iac.resources.volume import Volume

    obs = Volume().read(ctx, volume_id)
    if obs is None:
        raise InputError(f"volume {volume_id} does not exist", kind="Volume", field="id",
                         fix="create the volume first")
    return int(obs.spec.size)


def fill_volume(ctx: Context, volume_id: str, image: str | LocalImage, *,
                transport: Transport | None = None) -> LocalImage:
    """Write ``image`` onto the volume. Refuses an image larger than the volume."""
    transport = transport or NodeTransport()
    if isinstance(image, LocalImage):
        return _fill(ctx, volume_id, image, transport)
    with fetch_image(image) as img:
        return _fill(ctx, volume_id, img, transport)


def _fill(ctx: Context, volume_id: str, img: LocalImage, transport: Transport
          ) -> LocalImage:
    size = _volume_size_gib(ctx, volume_id)
    if img.virtual_size > size * GIB:
        raise InputError(f"image {img.source} needs {img.size_gib} GiB; the volume has "
                         f"{size} GiB", kind="Volume", field="size",
                         fix=f"make the volume at least {img.size_gib} GiB")
    log.info("writing image %s (%s, %d bytes, sha256 %s) to %s", img.source, img.format,
             img.virtual_size, img.sha256[:12], volume_id)
    transport.write(ctx, volume_id, img)
    return img


def export_volume(ctx: Context, volume_id: str, dest: str, *, fmt: str = "raw",
                  size: int | None = None, transport: Transport | None = None) -> str:
    """Read the volume (its first ``size`` bytes, when given) into ``dest``; returns the
    SHA-256 of the written file."""
    if fmt not in ("raw", "qcow2"):
        raise InputError(f"image format {fmt!r} is not supported", kind="Volume",
                         field="format", fix="raw or qcow2")
    (transport or NodeTransport()).read(ctx, volume_id, dest, fmt, size)
    return sha256_file(dest)


def cache_name(image: str) -> str:
    """The cache volume's name for an image reference (stable, valid as an AI name)."""
    return "image-cache-" + hashlib.sha256(image.encode()).hexdigest()[:24]


def cached_snapshot_for(ctx: Context, image: str | LocalImage, *,
                        tenant: str | None = None,
                        transport: Transport | None = None) -> str | None:
    """The id of a snapshot holding ``image`` (creating or refreshing the cache), or None
    when ``datera_enable_image_cache`` is off.

    The cache volume is named after the image reference and records the image's SHA-256
    in its metadata (``type: cached_image``); a different SHA-256 (a newer image at the
    same URL or path) deletes the stale cache and fills a new one."""
    if not getattr(ctx.config, "datera_enable_image_cache", False):
        return None
    if isinstance(image, LocalImage):
        return _cached(ctx, image, tenant, transport or NodeTransport())
    with fetch_image(image) as img:
        return _cached(ctx, img, tenant, transport or NodeTransport())


def _cached(ctx: Context, img: LocalImage, tenant: str | None, transport: Transport
            ) -> str:
    from datera_iac.resources.snapshot import Snapshot
    from datera_iac.resources.volume import Volume

    vk, sk = Volume(), Snapshot()
    name = cache_name(img.source)
    probe = vk.spec_from({"name": name, "size": img.size_gib,
                          **({"tenant": tenant} if tenant else {})})
    found = vk.find(ctx, probe)
    if found is not None:
        meta = found.spec.metadata or {}
        snaps = [s for s in ctx.client.list(f"{found.outputs.volume_path}/snapshots",
                                            tenant=found.outputs.tenant)
                 if s.get("op_state") == "available"]
        if meta.get("image_sha256") == img.sha256 and snaps:
            log.info("image cache hit for %s (%s)", img.source, name)
            return f"{found.id}/{snaps[-1]['timestamp']}"
        log.info("image cache for %s is stale or incomplete; rebuilding", img.source)
        vk.delete(ctx, found.id)
    data: dict[str, Any] = {
        "name": name, "size": img.size_gib,
        "metadata": {"type": "cached_image", "image_sha256": img.sha256},
    }
    if tenant:
        data["tenant"] = tenant
    cache_type = getattr(ctx.config, "datera_image_cache_volume_type_id", None)
    if cache_type:
        data["metadata"]["volume_type_id"] = str(cache_type)
    cache = vk.create(ctx, vk.spec_from(data))
    try:
        _fill(ctx, cache.id, img, transport)
        snap = sk.create(ctx, sk.spec_from({"volume_id": cache.id}))
    except BaseException:
        try:
            vk.delete(ctx, cache.id)
        except Exception as e:  # noqa: BLE001  pragma: no cover - the original error wins
            log.error("could not remove the half-made image cache %s: %s", cache.id, e)
        raise
    return snap.id


def volume_from_image(ctx: Context, spec: dict[str, Any], image: str, *,
                      transport: Transport | None = None):
    """Create a Volume (``spec``: Volume inputs) holding ``image``: a clone of the cached
    snapshot when the cache is on, else an empty volume filled through ``transport``."""
    from datera_iac.resources.volume import Volume

    vk = Volume()
    with fetch_image(image) as img:
        if int(spec.get("size", 0)) < img.size_gib:
            raise InputError(f"image {image} needs {img.size_gib} GiB", kind="Volume",
                             field="size", fix=f"make the volume at least {img.size_gib} GiB")
        snap = cached_snapshot_for(ctx, img, tenant=spec.get("tenant"), transport=transport)
        if snap is not None:
            return vk.create(ctx, vk.spec_from({**spec, "snapshot_id": snap}))
        obs = vk.create(ctx, vk.spec_from(spec))
        try:
            _fill(ctx, obs.id, img, transport or NodeTransport())
        except BaseException:
            vk.delete(ctx, obs.id)
            raise
        return obs
