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
           "grow_filesystem", "SUPPORTED_FILESYSTEMS"]

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


def proc_root_of(run: Runner, proc_root: str | None = None) -> str:
    """Where ``run``'s node keeps /proc: ``proc_root`` when given, else the runner's own
    (a fake node's lives in its directory), else ``/proc``."""
    return proc_root or getattr(run, "proc_root", None) or "/proc"


def mounted_at(run: Runner, mount_point: str, *, proc_root: str | None = None) -> list[str]:
    """Every device mounted at ``mount_point`` per ``/proc/mounts``, bottom first (stacked
    mounts: the last is the visible one)."""
    text = run.read_text(f"{proc_root_of(run, proc_root)}/mounts") or ""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and (_unescape(parts[1]) == mount_point.rstrip("/")
                                or (mount_point == "/" and parts[1] == "/")):
            out.append(_unescape(parts[0]))
    return out


def is_mounted(run: Runner, mount_point: str, *, proc_root: str | None = None) -> str | None:
    """The device mounted at ``mount_point`` according to ``/proc/mounts``, or None. With
    mounts stacked there, the last one listed: the one visible at the path (and the one
    ``umount``, ``xfs_growfs`` or a resize act on)."""
    found = mounted_at(run, mount_point, proc_root=proc_root)
    return found[-1] if found else None


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")


def mount(run: Runner, device: str, mount_point: str, fstype: str, *,
          proc_root: str | None = None, timeout: float = 60.0) -> None:
    """Mount ``device`` at ``mount_point`` (idempotent)."""
    current = is_mounted(run, mount_point, proc_root=proc_root)
    if current is not None:
        log.info("%s is already mounted (%s)", mount_point, current)
        return
    run.makedirs(mount_point)
    run.run(["mount", "-t", fstype, device, mount_point], timeout=timeout)


def unmount(run: Runner, mount_point: str, *, proc_root: str | None = None,
            timeout: float = 60.0) -> None:
    """Unmount ``mount_point`` if mounted. A busy mount is an error naming the fix."""
    if is_mounted(run, mount_point, proc_root=proc_root) is None:
        return
    res = run.run(["umount", mount_point], ok_codes=range(0, 256), timeout=timeout)
    if res.code != 0:
        raise NodeError(f"cannot unmount {mount_point}: {res.stderr.strip() or res.code} "
                        f"(stop what uses it: fuser -vm {shlex.quote(mount_point)})")


def grow_argv(fstype: str, device: str, mount_point: str) -> list[str]:
    """The command that grows a mounted ``fstype`` to fill its (grown) device."""
    if fstype.startswith("ext"):
        return ["resize2fs", device]  # online when mounted (ext3/ext4 with resize_inode)
    if fstype == "xfs":
        return ["xfs_growfs", mount_point]  # xfs grows through its mount point only
    if fstype == "btrfs":
        return ["btrfs", "filesystem", "resize", "max", mount_point]
    raise NodeError(f"filesystem {fstype!r} is not supported "
                    f"(choose one of {', '.join(SUPPORTED_FILESYSTEMS)})")


def grow_filesystem(run: Runner, device: str, fstype: str, mount_point: str, *,
                    proc_root: str | None = None, timeout: float = 600.0) -> bool:
    """Grow the filesystem mounted at ``mount_point`` (from ``device``) to fill the
    device, online. Returns False, changing nothing, when nothing is mounted there (the
    next mount sees the old size: run this again once it is mounted). Growing a
    filesystem that already fills its device is a no-op for every tool. Never shrinks.

    Run only after the node sees the device's new size (rescan of every path and the
    multipath map's resize): before that the tools find nothing to grow."""
    if is_mounted(run, mount_point, proc_root=proc_root) is None:
        log.warning("%s is not mounted: its filesystem was not grown", mount_point)
        return False
    argv = grow_argv(fstype, device, mount_point)
    res = run.run(argv, ok_codes=range(0, 256), timeout=timeout)
    if res.code != 0:
        detail = (res.stderr or res.stdout or "").strip().splitlines()
        raise NodeError(f"growing the {fstype} filesystem on {mount_point} failed "
                        f"({shlex.join(argv)}: {detail[-1] if detail else res.code}); the "
                        "device already has its new size: grow it by hand, or fix the cause "
                        "and apply again")
    log.info("grew the %s filesystem on %s", fstype, mount_point)
    return True
