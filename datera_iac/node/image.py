"""Images to volumes and volumes to images, with the Cinder driver's image cache.

* :func:`fill_volume` writes an image (a local file or an http(s) URL; raw, or qcow2 and
  the other qemu formats when ``qemu-img`` is installed) onto an existing volume through a
  temporary attachment, and checks that it fits.
* :func:`export_volume` reads a volume into an image file (raw or qcow2).
* :func:`cached_snapshot_for` implements ``datera_enable_image_cache``: the first volume
  made from an image fills a cache volume (named after the image, typed
  ``datera_image_cache_volume_type_id``) and snapshots it; later volumes clone that
  snapshot; an image whose content changed (different SHA-256) replaces the cache.

For the Volume kind's ``source_image`` field::

    snap = cached_snapshot_for(ctx, image, tenant=tenant)     # None: cache disabled
    if snap: create with snapshot_id=snap (clone_snapshot_src), then grow to size
    else:    create empty, then fill_volume(ctx, volume_id, image)

A *transport* moves the bytes. :class:`NodeTransport` (the default) attaches the volume to
a node with a NodeAttachment (kernel iSCSI, multipath, WWID check) and writes the device;
:class:`UserspaceTransport` grants an initiator access on the control plane and copies with
qemu-img's libiscsi driver, no kernel initiator needed (containers, CI, this project's
tests against the simulator's tgtd data plane).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from datera_iac.errors import InputError, NodeError
from datera_iac.node.iscsi import Chap
from datera_iac.node.runner import LocalRunner, Runner
from datera_iac.node.userspace import IscsiLun, LibIscsi

if TYPE_CHECKING:  # pragma: no cover
    from datera_iac.resources.base import Context

__all__ = [
    "LocalImage",
    "fetch_image",
    "Transport",
    "NodeTransport",
    "UserspaceTransport",
    "fill_volume",
    "export_volume",
    "cached_snapshot_for",
    "volume_from_image",
    "cache_name",
]

log = logging.getLogger(__name__)

GIB = 1 << 30
_QCOW_MAGIC = b"QFI\xfb"
_CHUNK = 4 << 20


@attrs.frozen
class LocalImage:
    """An image available as a local file, with what was learned about it."""

    path: str
    source: str
    sha256: str
    format: str
    virtual_size: int

    @property
    def size_gib(self) -> int:
        """The smallest volume size (GiB) that holds the image."""
        return max(1, math.ceil(self.virtual_size / GIB))


def _sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _probe_format(path: str, runner: Runner) -> tuple[str, int]:
    """(format, virtual size) from ``qemu-img info``; without qemu-img only raw is
    understood (a qcow2 header is then an error, never copied as if it were raw)."""
    if shutil.which("qemu-img"):
        res = runner.run(["qemu-img", "info", "--output=json", path], timeout=60)
        info = json.loads(res.stdout)
        return str(info["format"]), int(info["virtual-size"])
    with open(path, "rb") as f:
        if f.read(4) == _QCOW_MAGIC:
            raise NodeError(f"{path} is a qcow2 image: install qemu-img (apt qemu-utils) "
                            "to convert it")
    return "raw", os.path.getsize(path)


@contextmanager
def fetch_image(source: str, *, timeout: float = 600.0,
                runner: Runner | None = None) -> Iterator[LocalImage]:
    """A local copy of ``source`` (a path, or an http(s) URL downloaded to a temporary
    file removed afterwards), its SHA-256, format and virtual size."""
    runner = runner or LocalRunner()
    tmpdir = None
    try:
        if source.startswith(("http://", "https://")):
            import requests

            tmpdir = tempfile.mkdtemp(prefix="datera-image-")
            path = os.path.join(tmpdir, "image")
            h = hashlib.sha256()
            try:
                with requests.get(source, stream=True, timeout=(10, timeout)) as r:
                    if r.status_code != 200:
                        raise NodeError(f"downloading image {source}: HTTP {r.status_code}")
                    with open(path, "wb") as f:
                        for chunk in r.iter_content(_CHUNK):
                            h.update(chunk)
                            f.write(chunk)
            except requests.RequestException as e:
                raise NodeError(f"downloading image {source}: {e}") from None
            digest = h.hexdigest()
        else:
            path = source[len("file://"):] if source.startswith("file://") else source
            if not os.path.isfile(path):
                raise InputError(f"image {source!r} is not a file or an http(s) URL",
                                 kind="Volume", field="source_image",
                                 fix="give a local path or an http(s) URL")
            digest = _sha256_file(path)
        fmt, vsize = _probe_format(path, runner)
        yield LocalImage(path, source, digest, fmt, vsize)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


# ---- transports ----------------------------------------------------------------------------


class Transport(Protocol):
    """Moves bytes between an image file and a volume."""

    def write(self, ctx: "Context", volume_id: str, image: LocalImage) -> None: ...

    def read(self, ctx: "Context", volume_id: str, dest: str, fmt: str,
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
    def _lun(self, ctx: "Context", volume_id: str) -> Iterator[IscsiLun]:
        from datera_iac.resources.attachment import grant_access, revoke_access

        target, added = grant_access(ctx, volume_id, self.initiator_iqn, port=self.port,
                                     lun=self.lun, chap=self.chap)
        try:
            yield IscsiLun(target.portals[0], target.iqn, self.lun, self.initiator_iqn,
                           self.chap)
        finally:
            if added:
                revoke_access(ctx, volume_id, self.initiator_iqn)

    def write(self, ctx: "Context", volume_id: str, image: LocalImage) -> None:
        with self._lun(ctx, volume_id) as lun:
            LibIscsi(self.runner).write_image(image.path, lun, fmt=image.format)

    def read(self, ctx: "Context", volume_id: str, dest: str, fmt: str,
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
    def _device(self, ctx: "Context", volume_id: str) -> Iterator[tuple[str, Runner]]:
        from datera_iac.resources.attachment import NodeAttachment, runner_for

        kind = NodeAttachment()
        data: dict[str, Any] = {"volume_id": volume_id, "node": self.node, "port": self.port,
                                "lun": self.lun}
        if self.chap:
            data.update(chap_username=self.chap.username, chap_secret=self.chap.secret)
        obs = kind.create(ctx, kind.spec_from(data))
        try:
            yield str(obs.outputs.device_path), runner_for(ctx, self.node)
        finally:
            kind.delete(ctx, obs.id)

    def write(self, ctx: "Context", volume_id: str, image: LocalImage) -> None:
        with self._device(ctx, volume_id) as (device, runner):
            if runner.which("qemu-img"):
                runner.run(["qemu-img", "convert", "-n", "-f", image.format, "-O", "raw",
                            image.path, device], timeout=3600)
            elif image.format == "raw":
                runner.run(["dd", f"if={image.path}", f"of={device}", "bs=4M",
                            "oflag=direct", "conv=fsync,notrunc"], timeout=3600)
            else:
                raise NodeError(f"{image.format} images need qemu-img on {runner.where}")
            runner.run(["blockdev", "--flushbufs", device], timeout=120)

    def read(self, ctx: "Context", volume_id: str, dest: str, fmt: str,
             size: int | None) -> None:
        with self._device(ctx, volume_id) as (device, runner):
            argv = ["qemu-img", "convert", "-f", "raw", "-O", fmt, device, dest]
            if size is not None:
                argv = ["qemu-img", "convert", "--image-opts",
                        f"driver=raw,size={int(size)},file.driver=host_device,"
                        f"file.filename={device}", "-O", fmt, dest]
            runner.run(argv, timeout=3600)


# ---- operations ------------------------------------------------------------------------------


def _volume_size_gib(ctx: "Context", volume_id: str) -> int:
    from datera_iac.resources.volume import Volume

    obs = Volume().read(ctx, volume_id)
    if obs is None:
        raise InputError(f"volume {volume_id} does not exist", kind="Volume", field="id",
                         fix="create the volume first")
    return int(obs.spec.size)


def fill_volume(ctx: "Context", volume_id: str, image: str | LocalImage, *,
                transport: Transport | None = None) -> LocalImage:
    """Write ``image`` onto the volume. Refuses an image larger than the volume."""
    transport = transport or NodeTransport()
    if isinstance(image, LocalImage):
        return _fill(ctx, volume_id, image, transport)
    with fetch_image(image) as img:
        return _fill(ctx, volume_id, img, transport)


def _fill(ctx: "Context", volume_id: str, img: LocalImage, transport: Transport
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


def export_volume(ctx: "Context", volume_id: str, dest: str, *, fmt: str = "raw",
                  size: int | None = None, transport: Transport | None = None) -> str:
    """Read the volume (its first ``size`` bytes, when given) into ``dest``; returns the
    SHA-256 of the written file."""
    if fmt not in ("raw", "qcow2"):
        raise InputError(f"image format {fmt!r} is not supported", kind="Volume",
                         field="format", fix="raw or qcow2")
    (transport or NodeTransport()).read(ctx, volume_id, dest, fmt, size)
    return _sha256_file(dest)


def cache_name(image: str) -> str:
    """The cache volume's name for an image reference (stable, valid as an AI name)."""
    return "image-cache-" + hashlib.sha256(image.encode()).hexdigest()[:24]


def cached_snapshot_for(ctx: "Context", image: str | LocalImage, *,
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


def _cached(ctx: "Context", img: LocalImage, tenant: str | None, transport: Transport
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


def volume_from_image(ctx: "Context", spec: dict[str, Any], image: str, *,
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
