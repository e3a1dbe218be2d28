"""Format-on-attach that cannot destroy data, and mounting.

A populated volume formatted by mistake is the worst thing a node helper can do (QNAP CSI
and democratic-csi shipped that bug: the probe ran before the device settled and found
"nothing"). The rules here:

* probe only after the device has settled (all paths present: :meth:`IscsiHelper.attach`
  returns only then; ``udevadm settle`` is run when udev is there);
* two independent low-level probes, ``blkid -p`` and ``wipefs -n``, must both say "no
  signature" — any filesystem, RAID member, LVM PV or partition table means *not empty*;
* a probe that fails (any exit code other than "found" / "nothing found") is an error,
  never a reason to format;
* an existing filesystem of the requested type is used as is; another type is an error.
"""

from __future__ import annotations

import logging
import shlex

from datera_iac.errors import NodeError
from datera_iac.node import codes
from datera_iac.node.runner import Runner

__all__ = ["probe_signature", "ensure_filesystem", "is_mounted", "mount", "unmount",
           "SUPPORTED_FILESYSTEMS"]

log = logging.getLogger(__name__)

SUPPORTED_FILESYSTEMS = ("ext4", "ext3", "xfs", "btrfs")


def probe_signature(run: Runner, device: str, *, timeout: float = 60.0) -> str | None:
    """What is on ``device``: ``None`` if provably blank, else a description
    (``"ext4"``, ``"partition table gpt"``...). Raises NodeError when a probe fails."""
    if run.which("udevadm"):
        run.run(["udevadm", "settle", f"--timeout={int(timeout)}"], ok_codes=range(0, 256),
                timeout=timeout + 5)
    res = run.run(["blkid", "-p", "-o", "export", device],
                  ok_codes=(codes.BLKID_FOUND, codes.BLKID_NOTHING), timeout=timeout)
    if res.code == codes.BLKID_FOUND:
        props = dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)
        if "TYPE" in props:
            return props["TYPE"]
        if "PTTYPE" in props:
            return f"partition table {props['PTTYPE']}"
        return "an unknown signature"
    wipe = run.run(["wipefs", "--no-act", "--noheadings", "--output", "TYPE", device],
                   ok_codes=(0,), timeout=timeout)
    types = [t.strip() for t in wipe.stdout.splitlines() if t.strip()]
    if types:
        return types[0]
    return None


def ensure_filesystem(run: Runner, device: str, fstype: str, *, label: str | None = None,
                      timeout: float = 600.0) -> bool:
    """Make sure ``device`` carries ``fstype``. Returns True if it formatted now.

    Never formats a device that is not provably blank (see the module docstring)."""
    if fstype not in SUPPORTED_FILESYSTEMS:
        raise NodeError(f"filesystem {fstype!r} is not supported "
                        f"(choose one of {', '.join(SUPPORTED_FILESYSTEMS)})")
    found = probe_signature(run, device)
    if found == fstype:
        log.info("%s already carries %s; not formatting", device, fstype)
        return False
    if found is not None:
        raise NodeError(f"{device} already carries {found}, not {fstype}: refusing to "
                        "format a device that is not empty (wipe it yourself if you mean it)")
    argv = [f"mkfs.{fstype}"]
    if fstype.startswith("ext"):
        argv += ["-q", "-F"]  # -F: a whole device, not a partition; it was probed blank
    if label:
        argv += ["-L", label]
    argv.append(device)
    run.run(argv, timeout=timeout)
    return True


def is_mounted(run: Runner, mount_point: str, *, proc_root: str = "/proc") -> str | None:
    """The device mounted at ``mount_point`` according to ``/proc/mounts``, or None."""
    text = run.read_text(f"{proc_root}/mounts") or ""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and _unescape(parts[1]) == mount_point.rstrip("/") or (
            len(parts) >= 2 and mount_point == "/" and parts[1] == "/"
        ):
            return _unescape(parts[0])
    return None


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def mount(run: Runner, device: str, mount_point: str, fstype: str, *,
          proc_root: str = "/proc", timeout: float = 60.0) -> None:
    """Mount ``device`` at ``mount_point`` (idempotent)."""
    current = is_mounted(run, mount_point, proc_root=proc_root)
    if current is not None:
        log.info("%s is already mounted (%s)", mount_point, current)
        return
    run.makedirs(mount_point)
    run.run(["mount", "-t", fstype, device, mount_point], timeout=timeout)


def unmount(run: Runner, mount_point: str, *, proc_root: str = "/proc",
            timeout: float = 60.0) -> None:
    """Unmount ``mount_point`` if mounted. A busy mount is an error naming the fix."""
    if is_mounted(run, mount_point, proc_root=proc_root) is None:
        return
    res = run.run(["umount", mount_point], ok_codes=range(0, 256), timeout=timeout)
    if res.code != 0:
        raise NodeError(f"cannot unmount {mount_point}: {res.stderr.strip() or res.code} "
                        f"(stop what uses it: fuser -vm {shlex.quote(mount_point)})")
