"""The node side of a NodeAttachment: iSCSI + dm-multipath behind one injectable runner.

* :mod:`~datera_iac.node.runner`     ``Runner`` (argv lists, ok codes, timeouts, masking),
  ``LocalRunner`` (subprocess, no shell)
* :mod:`~datera_iac.node.remote`     ``SshRunner`` for ``ssh://user@host:port`` nodes
* :mod:`~datera_iac.node.iscsi`      ``IscsiHelper``: attach / detach / extend / inspect / remains
* :mod:`~datera_iac.node.multipath`  Datera's ``multipath.conf``, multipathd checks
* :mod:`~datera_iac.node.fs`         format-only-if-blank, mount, unmount
* :mod:`~datera_iac.node.image`      image bytes: fetch, probe, copy to/from a device
* :mod:`~datera_iac.node.userspace`  libiscsi tools and qemu-img's iscsi driver
* :mod:`~datera_iac.node.testing`    ``FakeNode`` / ``LoopbackNode`` for tests
* :mod:`~datera_iac.node.codes`      iscsiadm exit codes, named

See docs/attach.md.
"""

from datera_iac.node.iscsi import Attachment, Chap, IscsiHelper, PathState, Target
from datera_iac.node.multipath import multipath_conf
from datera_iac.node.remote import NodeUrl, SshRunner, parse_node
from datera_iac.node.runner import LocalRunner, Result, Runner

__all__ = [
    "Runner",
    "LocalRunner",
    "Result",
    "SshRunner",
    "NodeUrl",
    "parse_node",
    "IscsiHelper",
    "Target",
    "Chap",
    "Attachment",
    "PathState",
    "multipath_conf",
]
