"""The VolumeImage kind: the Cinder driver's "copy volume to image", as a declaration.

An image file is an object with a lifetime (create = export, delete = remove the file,
read = its size and SHA-256), and a separate resource lets an operator export the same
volume several times, or re-export on demand by changing ``revision``. The copy itself is
:func:`datera_iac.resources.imaging.export_volume`; ``image_node`` chooses which machine
copies, as for a Volume's ``source_image`` (see :mod:`datera_iac.resources.imaging`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from typing import Any
from urllib.parse import parse_qs, urlencode

import attrs

from datera_iac.errors import InputError, NotFound
from datera_iac.node.image import sha256_file
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
from datera_iac.resources.imaging import (
    EXPORT_FORMATS,
    export_volume,
    normalize_format,
    parse_image_node,
    transport_for,
)

__all__ = ["VolumeImage", "VolumeImageOutputs", "VolumeImageSpec"]

log = logging.getLogger(__name__)


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
        return Observed(id, spec, VolumeImageOutputs(sha256=sha256_file(spec.path),
                                                     file_size=os.path.getsize(spec.path)))

    def create(self, ctx: Context, spec: VolumeImageSpec
               ) -> Observed[VolumeImageSpec, VolumeImageOutputs]:
        """Export into a temporary file next to ``path``, then rename it into place: a
        half-written image never appears under ``path``."""

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
