"""Image bytes: fetch, probe and copy an image to or from a block device.

Node code only moves bytes; which volume to attach, the image cache and the Volume's
``source_image`` are the resource layer's (:mod:`datera_iac.resources.imaging`).

* :func:`fetch_image` gives a local copy of a path or an http(s) URL, with its SHA-256,
  format and virtual size (``qemu-img info``; raw only without qemu-img).
* :func:`sniff_image` reads the format from a file's header, without qemu-img.
* :func:`write_device` / :func:`read_device` copy between an image file and a device
  (qemu-img, or dd for raw images) through a node runner.
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
import struct

import attrs

from datera_iac.errors import InputError, NodeError
from datera_iac.node.runner import LocalRunner, Runner

__all__ = ["GIB", "LocalImage", "fetch_image", "read_device", "sha256_file", "sniff_image",
           "write_device"]

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


def sha256_file(path: str) -> str:
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
            digest = sha256_file(path)
        fmt, vsize = _probe_format(path, runner)
        yield LocalImage(path, source, digest, fmt, vsize)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


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


def write_device(runner: Runner, image: LocalImage, device: str) -> None:
    """Copy ``image`` (a file where ``runner`` runs) onto ``device``, then flush it."""
    if runner.which("qemu-img"):
        runner.run(["qemu-img", "convert", "-n", "-f", image.format, "-O", "raw",
                    image.path, device], timeout=3600)
    elif image.format == "raw":
        runner.run(["dd", f"if={image.path}", f"of={device}", "bs=4M",
                    "oflag=direct", "conv=fsync,notrunc"], timeout=3600)
    else:
        raise NodeError(f"{image.format} images need qemu-img on {runner.where}")
    runner.run(["blockdev", "--flushbufs", device], timeout=120)


def read_device(runner: Runner, device: str, dest: str, fmt: str, size: int | None) -> None:
    """Copy ``device`` (its first ``size`` bytes, when given) into ``dest`` as ``fmt``."""
    argv = ["qemu-img", "convert", "-f", "raw", "-O", fmt, device, dest]
    if size is not None:
        argv = ["qemu-img", "convert", "--image-opts",
                f"driver=raw,size={int(size)},file.driver=host_device,"
                f"file.filename={device}", "-O", fmt, dest]
    runner.run(argv, timeout=3600)
