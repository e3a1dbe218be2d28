"""A userspace iSCSI initiator path: libiscsi's tools and qemu-img's libiscsi driver.

Where no kernel initiator exists (containers without iscsi_tcp, CI machines, this
project's own test VMs), a volume can still be read and written over iSCSI from userspace:

* ``iscsi-ls`` / ``iscsi-inq`` / ``iscsi-readcapacity16`` (apt ``libiscsi-bin``) for
  discovery, login checks, inquiry data and capacity;
* ``qemu-img`` with its ``iscsi`` block driver (apt ``qemu-block-extra``) to copy images to
  and from a LUN. The CHAP secret goes to qemu-img in a 0600 file (``--object secret``),
  never in argv.

libiscsi's tools get the CHAP user in the URL and the secret in ``LIBISCSI_CHAP_PASSWORD``
(never argv); the runner masks it in any log line or error all the same.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from datera_iac.errors import CommandFailed, NodeError
from datera_iac.node.iscsi import Chap
from datera_iac.node.runner import LocalRunner, Result, Runner

__all__ = ["IscsiLun", "LibIscsi"]

#: libiscsi tools exit 10 on a failed login; stderr says why.
_AUTH_FAIL = "Authentication failure"
_NOT_FOUND = "Target not found"


@attrs.frozen
class IscsiLun:
    """One LUN reached over one portal, with the initiator name to present."""

    portal: str
    iqn: str
    lun: int
    initiator: str
    chap: Chap | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.chap.secrets if self.chap else ()

    @property
    def env(self) -> dict[str, str]:
        """libiscsi reads the CHAP secret from the environment, so it is never in argv
        (and needs no URL quoting, which libiscsi does not decode)."""
        return {"LIBISCSI_CHAP_PASSWORD": self.chap.secret} if self.chap else {}

    def url(self, *, with_lun: bool = True) -> str:
        auth = f"{self.chap.username}@" if self.chap else ""
        tail = f"/{self.iqn}/{self.lun}" if with_lun else ""
        return f"iscsi://{auth}{self.portal}{tail}"


class LibIscsi:
    """libiscsi-bin and qemu-img through a runner."""

    def __init__(self, runner: Runner | None = None, *, timeout: float = 30.0) -> None:
        self.run = runner or LocalRunner()
        self.timeout = timeout

    def _check(self, e: CommandFailed, lun: IscsiLun) -> NodeError:
        text = e.stderr
        if _AUTH_FAIL in text:
            return NodeError(f"CHAP authentication to {lun.iqn} on {lun.portal} failed")
        if _NOT_FOUND in text:
            return NodeError(f"{lun.iqn} on {lun.portal} refused {lun.initiator}: target not "
                             "found (not in its ACL, or offline)")
        return NodeError(f"iSCSI access to {lun.iqn} on {lun.portal} failed: {e}")

    def _run(self, lun: IscsiLun, argv: list[str], **kw: Any) -> Result:
        """Run a tool against ``lun`` with its secrets; a failure becomes :meth:`_check`'s
        NodeError."""
        try:
            return self.run.run(argv, secrets=lun.secrets, **kw)
        except CommandFailed as e:
            raise self._check(e, lun) from None

    def discover(self, portal: str, initiator: str, chap: Chap | None = None) -> list[str]:
        """Target IQNs the portal offers to ``initiator`` (sendtargets + login)."""
        probe = IscsiLun(portal, "", 0, initiator, chap)
        res = self.run.run(["iscsi-ls", "-i", initiator, probe.url(with_lun=False)],
                           ok_codes=range(-64, 256), secrets=probe.secrets, env=probe.env,
                           timeout=self.timeout)
        if res.code != 0 and ("Connection refused" in res.stderr
                              or "No route" in res.stderr or "timed out" in res.stderr):
            raise NodeError(f"portal {portal} unreachable: {res.stderr.strip()}")
        # Any other failure (tgt refuses a discovery session when it serves no target for
        # this initiator) means: nothing offered.
        return re.findall(r"Target:(\S+)", res.stdout)

    def serial(self, lun: IscsiLun) -> str:
        """The unit serial number (VPD page 0x80): a login plus an INQUIRY."""
        res = self._run(lun, ["iscsi-inq", "-i", lun.initiator, "-e", "1", "-c", "128",
                              lun.url()], env=lun.env, timeout=self.timeout)
        m = re.search(r"Unit Serial Number:\[\s*([^\]]*?)\s*\]", res.stdout)
        if not m:
            raise NodeError(f"no unit serial in the inquiry data of {lun.iqn}/{lun.lun}")
        return m.group(1)

    def inquiry(self, lun: IscsiLun) -> dict[str, str]:
        """Standard INQUIRY: vendor and product identification."""
        res = self._run(lun, ["iscsi-inq", "-i", lun.initiator, lun.url()], env=lun.env,
                        timeout=self.timeout)
        out = {}
        for key, name in (("Vendor:", "vendor"), ("Product:", "product")):
            m = re.search(re.escape(key) + r"(.*)", res.stdout)
            if m:
                out[name] = m.group(1).strip()
        return out

    def capacity(self, lun: IscsiLun) -> int:
        """The LUN size in bytes (READ CAPACITY 16)."""
        res = self._run(lun, ["iscsi-readcapacity16", "-i", lun.initiator, lun.url()],
                        env=lun.env, timeout=self.timeout)
        m = re.search(r"Total size:(\d+)", res.stdout)
        if not m:
            raise NodeError(f"cannot parse READ CAPACITY of {lun.iqn}: {res.stdout[:200]}")
        return int(m.group(1))

    # ---- qemu-img over libiscsi --------------------------------------------------------

    @contextmanager
    def _image_opts(self, lun: IscsiLun, size: int | None = None
                    ) -> Iterator[tuple[list[str], str]]:
        """(extra qemu-img args, image-opts string) with the CHAP secret in a 0600 file.

        With ``size``, the LUN is wrapped in qemu's raw driver limited to that many bytes,
        so reading an image back does not read the whole (possibly huge) volume."""
        pre = "file." if size is not None else ""
        opts = [f"{pre}driver=iscsi,{pre}transport=tcp,{pre}portal={lun.portal},"
                f"{pre}target={lun.iqn},{pre}lun={lun.lun},{pre}initiator-name={lun.initiator}"]
        if size is not None:
            opts.insert(0, f"driver=raw,size={int(size)}")
        args: list[str] = []
        path = None
        try:
            if lun.chap:
                fd, path = tempfile.mkstemp(prefix="datera-chap-")
                with os.fdopen(fd, "w") as f:
                    f.write(lun.chap.secret)
                args = ["--object", f"secret,id=chap0,file={path}"]
                opts.append(f"{pre}user={lun.chap.username},{pre}password-secret=chap0")
            yield args, ",".join(opts)
        finally:
            if path:
                os.unlink(path)

    def write_image(self, source: str, lun: IscsiLun, *, fmt: str = "raw",
                    timeout: float = 3600.0) -> None:
        """Copy an image file (raw or qcow2...) onto the LUN with qemu-img."""
        with self._image_opts(lun) as (extra, opts):
            self._run(lun, ["qemu-img", "convert", "-n", "-f", fmt, *extra,
                            "--target-image-opts", source, opts], timeout=timeout)

    def read_image(self, lun: IscsiLun, dest: str, *, fmt: str = "raw",
                   size: int | None = None, timeout: float = 3600.0) -> None:
        """Copy the LUN (its first ``size`` bytes when given) into an image file."""
        with self._image_opts(lun, size) as (extra, opts):
            self._run(lun, ["qemu-img", "convert", *extra, "--image-opts", opts, "-O", fmt,
                            dest], timeout=timeout)
