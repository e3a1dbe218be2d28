"""Format-on-attach with the real tools (blkid, wipefs, mkfs.ext4) on image files: what is
blank gets a filesystem, anything else is never formatted, a probe error is an error."""

from __future__ import annotations

import shutil

import pytest

from datera_iac.errors import CommandFailed, NodeError
from datera_iac.node.fs import ensure_filesystem, is_mounted, probe_signature
from datera_iac.node.runner import LocalRunner

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("blkid", "wipefs", "mkfs.ext4")),
    reason="util-linux (blkid, wipefs) or e2fsprogs (mkfs.ext4) not installed")


class Recording(LocalRunner):
    def __init__(self) -> None:
        super().__init__()
        self.argvs: list[list[str]] = []

    def _execute(self, argv, *, timeout, input, env=None):
        self.argvs.append(list(argv))
        return super()._execute(argv, timeout=timeout, input=input, env=env)


@pytest.fixture
def blank(tmp_path):
    p = tmp_path / "disk.img"
    with open(p, "wb") as f:
        f.truncate(32 << 20)
    return str(p)


def test_blank_device_is_formatted_once(blank):
    """A blank device is probed (both probes say nothing), formatted; the second call
    sees ext4 and runs no mkfs."""
    r = Recording()
    assert probe_signature(r, blank) is None
    assert ensure_filesystem(r, blank, "ext4") is True
    assert probe_signature(r, blank) == "ext4"
    r.argvs.clear()
    assert ensure_filesystem(r, blank, "ext4") is False
    assert not any(a[0].startswith("mkfs") for a in r.argvs)


def test_other_filesystem_is_never_formatted(blank):
    """ext4 present, xfs requested: refused, and the ext4 superblock is untouched."""
    r = Recording()
    ensure_filesystem(r, blank, "ext4")
    with open(blank, "rb") as f:
        before = f.read(1 << 20)
    r.argvs.clear()
    with pytest.raises(NodeError, match="already carries ext4, not xfs: refusing"):
        ensure_filesystem(r, blank, "xfs")
    assert not any(a[0].startswith("mkfs") for a in r.argvs)
    with open(blank, "rb") as f:
        assert f.read(1 << 20) == before


def test_partition_table_counts_as_data(blank):
    """An MBR partition table without a filesystem is not blank."""
    with open(blank, "r+b") as f:
        f.seek(446)
        f.write(bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little")
                + (4096).to_bytes(4, "little"))
        f.seek(510)
        f.write(b"\x55\xaa")
    r = Recording()
    assert probe_signature(r, blank) == "partition table dos"
    with pytest.raises(NodeError, match="partition table dos"):
        ensure_filesystem(r, blank, "ext4")
    assert not any(a[0].startswith("mkfs") for a in r.argvs)


def test_probe_error_is_an_error(tmp_path):
    """A device that cannot be read makes the probe fail: an error, never a format."""
    r = Recording()
    with pytest.raises(CommandFailed):
        ensure_filesystem(r, str(tmp_path / "missing.img"), "ext4")
    assert not any(a[0].startswith("mkfs") for a in r.argvs)


def test_is_mounted_reads_proc_mounts(tmp_path):
    """Mount detection parses /proc/mounts, including escaped spaces."""
    (tmp_path / "mounts").write_text(
        "/dev/sda1 / ext4 rw 0 0\n/dev/dm-3 /mnt/my\\040data ext4 rw 0 0\n")
    r = LocalRunner()
    assert is_mounted(r, "/mnt/my data", proc_root=str(tmp_path)) == "/dev/dm-3"
    assert is_mounted(r, "/mnt/other", proc_root=str(tmp_path)) is None
