"""Format-on-attach with the real tools (blkid, wipefs, mkfs.ext4) on image files: what is
blank gets a filesystem, anything else is never formatted, a probe error is an error."""

from __future__ import annotations


import pytest

from datera_iac.errors import CommandFailed, NodeError
from datera_iac.node.fs import ensure_filesystem, is_mounted, probe_signature
from datera_iac.node.runner import LocalRunner
from tests.tools import needs, require

_needs = needs("blkid", "wipefs", "mkfs.ext4")


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
    # stacked mounts: the visible (last listed) one counts
    (tmp_path / "mounts").write_text(
        "/dev/dm-3 /mnt/data ext4 rw 0 0\n/dev/sdz /mnt/data xfs rw 0 0\n")
    assert is_mounted(r, "/mnt/data", proc_root=str(tmp_path)) == "/dev/sdz"


def _block_count(image: str) -> int:
    import subprocess

    out = subprocess.run(["dumpe2fs", "-h", image], capture_output=True, text=True,
                         check=True).stdout
    return int(next(line.split(":")[1] for line in out.splitlines()
                    if line.startswith("Block count:")))


def test_grow_filesystem_runs_the_real_resize2fs(blank, tmp_path):
    """The real resize2fs grows an ext4 to fill its grown device (offline here - this
    sandbox refuses the online-resize ioctl - so the image is checked first and
    /proc/mounts is a test file saying it is mounted); a second run is a no-op."""
    require("resize2fs", "e2fsck", "dumpe2fs")
    import subprocess

    from datera_iac.node.fs import grow_filesystem

    r = Recording()
    ensure_filesystem(r, blank, "ext4")
    before = _block_count(blank)
    with open(blank, "r+b") as f:
        f.truncate(64 << 20)
    subprocess.run(["e2fsck", "-fy", blank], capture_output=True, check=True)
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "mounts").write_text(f"{blank} /mnt/grow ext4 rw 0 0\n")
    assert grow_filesystem(r, blank, "ext4", "/mnt/grow", proc_root=str(proc))
    assert r.argvs[-1] == ["resize2fs", blank]
    assert _block_count(blank) == 2 * before
    assert grow_filesystem(r, blank, "ext4", "/mnt/grow", proc_root=str(proc))  # no-op
    assert _block_count(blank) == 2 * before


def test_grow_filesystem_needs_the_mount_and_reports_failures(blank, tmp_path):
    from datera_iac.node.fs import grow_argv, grow_filesystem

    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "mounts").write_text("")
    r = Recording()
    assert not grow_filesystem(r, blank, "ext4", "/mnt/grow", proc_root=str(proc))
    assert r.argvs == []  # not mounted: nothing run
    (proc / "mounts").write_text(f"{blank} /mnt/grow ext4 rw 0 0\n")
    with pytest.raises(NodeError, match="grow it by hand"):
        grow_filesystem(r, blank, "ext4", "/mnt/grow", proc_root=str(proc))  # never formatted
    assert grow_argv("xfs", "/dev/dm-1", "/mnt/x") == ["xfs_growfs", "/mnt/x"]
    assert grow_argv("btrfs", "/dev/dm-1", "/mnt/x") == ["btrfs", "filesystem", "resize", "max",
                                                         "/mnt/x"]
    assert grow_argv("ext3", "/dev/dm-1", "/mnt/x") == ["resize2fs", "/dev/dm-1"]
