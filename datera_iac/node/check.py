"""Preflight of a node: can it attach Datera volumes the way NodeAttachment will?

Facts only, nothing changed (pyinfra's facts/operations split): the initiator name, the
tools, multipathd, and whether ``/etc/multipath.conf`` has a DATERA/IBLOCK device section
(multipath-tools ships none, so without it Datera LUNs get generic defaults).
"""

from __future__ import annotations

import re

import attrs

from datera_iac.errors import DateraIacError
from datera_iac.node.iscsi import IscsiHelper
from datera_iac.node.multipath import multipathd_running
from datera_iac.node.runner import Runner

__all__ = ["Check", "check_node"]

OK, WARN, FAIL = "ok", "warn", "fail"


@attrs.frozen
class Check:
    name: str
    status: str  #: ok, warn or fail
    detail: str


def check_node(runner: Runner, *, iscsi_root: str = "/etc/iscsi",
               multipath_conf: str = "/etc/multipath.conf") -> list[Check]:
    """Every check, in order. ``fail`` means an attachment will not work; ``warn`` means
    it works with less (single path, generic multipath settings)."""
    out: list[Check] = []
    try:
        iqn = IscsiHelper(runner, iscsi_root=iscsi_root).initiator_iqn()
        out.append(Check("initiator name", OK, iqn))
    except DateraIacError as e:
        out.append(Check("initiator name", FAIL, str(e)))
    for tool, why in (("iscsiadm", "open-iscsi"), ("blockdev", "util-linux"),
                      ("blkid", "util-linux (format-on-attach)")):
        ok = runner.which(tool)
        out.append(Check(tool, OK if ok else FAIL, "installed" if ok else
                         f"not installed (package {why})"))
    running, why = multipathd_running(runner)
    out.append(Check("multipathd", OK if running else WARN,
                     why if running else f"{why}: attachments fall back to one path "
                     "(or fail with enforce_multipath)"))
    text = runner.read_text(multipath_conf)
    if text is None:
        out.append(Check("multipath.conf", WARN, f"{multipath_conf} is missing: write it with "
                         "`datera-iac node multipath-conf`"))
    elif re.search(r'vendor\s+"DATERA', text) and re.search(r'product\s+"IBLOCK', text):
        bad = [k for k in ("checker_timer", "getuid_callout") if re.search(rf"\b{k}\b", text)]
        out.append(Check("multipath.conf", WARN if bad else OK,
                         f"has a DATERA/IBLOCK device section{'' if not bad else ', but uses '}"
                         f"{', '.join(bad)}{' (rejected or ignored by multipath-tools)' if bad else ''}"))
    else:
        out.append(Check("multipath.conf", WARN, f"{multipath_conf} has no DATERA/IBLOCK "
                         "device section: add `datera-iac node multipath-conf` output"))
    return out
