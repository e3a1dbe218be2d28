"""multipath.conf generation, validated by the real multipath-tools (`multipath -t`) inside
a private mount namespace, so the host's /etc is never touched."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from datera_iac.node.cli import node
from datera_iac.node.multipath import multipath_conf
from tests.tools import needs

_needs = needs("multipath", "unshare", "mount")

# Runs inside `unshare -m`: overlay /etc with a dir holding our file, then `multipath -t`.
_IN_NS = r"""
import subprocess, sys
upper, work, out = sys.argv[1:4]
subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                f"lowerdir=/etc,upperdir={upper},workdir={work}", "/etc"], check=True)
p = subprocess.run(["multipath", "-t"], capture_output=True, text=True, timeout=30)
open(out, "w").write(p.stdout)
sys.stderr.write(p.stderr)
sys.exit(p.returncode)
"""


def merged_config(tmp_path, text: str) -> tuple[str, str]:
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    (upper / "multipath.conf").write_text(text)
    out = tmp_path / "merged"
    p = subprocess.run(["unshare", "-m", "--", sys.executable, "-c", _IN_NS, str(upper),
                        str(work), str(out)], capture_output=True, text=True, timeout=60)
    if p.returncode != 0 and "Operation not permitted" in p.stderr:
        pytest.skip(f"cannot make a private mount namespace here: {p.stderr.strip()}")
    assert p.returncode == 0, p.stderr
    return out.read_text(), p.stderr


def _device_block(merged: str) -> str:
    i = merged.index('vendor "DATERA"')
    return merged[i:merged.index("}", i)]


def test_generated_conf_accepted_by_multipath_tools(tmp_path):
    """multipath -t merges our DATERA/IBLOCK device section with no warning: no rejected
    (checker_timer) or ignored (getuid_callout) keyword."""
    merged, stderr = merged_config(tmp_path, multipath_conf())
    assert stderr.strip() == ""
    dev = _device_block(merged)
    for line in ('product "IBLOCK"', 'path_grouping_policy "group_by_prio"',
                 'path_selector "queue-length 0"', 'path_checker "tur"',
                 'hardware_handler "1 alua"', 'prio "alua"', "failback 5", "no_path_retry 24",
                 "fast_io_fail_tmo 5"):
        assert line in dev
    assert "checker_timeout 5" in merged
    assert 'user_friendly_names "no"' in merged
    assert 'vendor "DATERA.*"' in merged[merged.index("blacklist_exceptions"):]


def test_the_validation_catches_bad_keywords(tmp_path):
    """The check is real: the cinder doc's `checker_timer` and the old getuid_callout are
    reported by multipath-tools (so our file's silence means something)."""
    bad = multipath_conf().replace("checker_timeout", "checker_timer").replace(
        'vendor "DATERA"', 'vendor "DATERA"\n        getuid_callout "/lib/udev/scsi_id -g"', 1)
    _, stderr = merged_config(tmp_path, bad)
    assert "invalid keyword in the defaults section: checker_timer" in stderr
    assert "getuid_callout" in stderr


def test_options_and_cli():
    """--no-exclusive drops the blacklist; --no-path-retry is validated; the CLI prints it."""
    assert "blacklist" not in multipath_conf(exclusive=False)
    assert "no_path_retry fail" in multipath_conf(no_path_retry="fail")
    with pytest.raises(ValueError):
        multipath_conf(no_path_retry="forever")
    r = CliRunner().invoke(node, ["multipath-conf"])
    assert r.exit_code == 0 and r.output == multipath_conf()
    r = CliRunner().invoke(node, ["multipath-conf", "--no-path-retry", "forever"])
    assert r.exit_code != 0 and "no_path_retry" in r.output


def test_node_check_facts(tmp_path):
    """The preflight reports the initiator, tools, multipathd and the conf's DATERA
    section; a missing initiator name is a failure, a bad keyword a warning."""
    from datera_iac.node.check import check_node
    from datera_iac.node.testing import FakeNode

    n = FakeNode(tmp_path / "n", multipathd=False)
    conf = tmp_path / "multipath.conf"
    conf.write_text(multipath_conf())
    got = {c.name: c.status for c in check_node(n, iscsi_root=n.iscsi_root,
                                                 multipath_conf=str(conf))}
    assert got == {"initiator name": "ok", "iscsiadm": "ok", "blockdev": "ok",
                   "blkid": "ok", "multipathd": "warn", "multipath.conf": "ok"}
    conf.write_text(multipath_conf().replace("checker_timeout", "checker_timer"))
    (tmp_path / "n/etc/iscsi/initiatorname.iscsi").unlink()
    res = {c.name: c for c in check_node(n, iscsi_root=n.iscsi_root,
                                          multipath_conf=str(conf))}
    assert res["initiator name"].status == "fail"
    assert res["multipath.conf"].status == "warn" and "checker_timer" in res[
        "multipath.conf"].detail
    r = CliRunner().invoke(node, ["check", "--iscsi-root", str(tmp_path / "none"),
                                  "--multipath-conf", str(conf)])
    assert r.exit_code == 1 and "fail  initiator name" in r.output
