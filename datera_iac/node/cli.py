"""``datera-iac node ...``: the node helper from the command line.

* ``multipath-conf``  print the multipath.conf for Datera volumes (pipe it to
  ``/etc/multipath.conf``, then ``multipathd reconfigure``);
* ``initiator``       print this node's initiator IQN (validated);
* ``sessions``        list this node's iSCSI sessions;
* ``check``           preflight: initiator name, tools, multipathd, multipath.conf
  (exit 1 when an attachment would fail).
"""

from __future__ import annotations

import click

from datera_iac.node.iscsi import IscsiHelper
from datera_iac.node.multipath import multipath_conf
from datera_iac.node.runner import LocalRunner


@click.group("node")
def node() -> None:
    """iSCSI / multipath helper for the node a Datera volume is attached to."""


@node.command("multipath-conf")
@click.option("--exclusive/--no-exclusive", default=True, show_default=True,
              help="Blacklist every device except DATERA/IBLOCK (Datera's recommendation; "
                   "turn off on nodes that multipath other arrays).")
@click.option("--no-path-retry", default="24", show_default=True,
              help="Checker intervals to queue I/O with no path, or 'fail'.")
@click.option("--user-friendly-names/--wwid-names", default=False, show_default=True,
              help="mpathN names instead of WWID-named maps.")
def multipath_conf_cmd(exclusive: bool, no_path_retry: str, user_friendly_names: bool) -> None:
    """Print /etc/multipath.conf for Datera volumes."""
    retry: int | str = int(no_path_retry) if no_path_retry.isdigit() else no_path_retry
    try:
        text = multipath_conf(exclusive=exclusive, no_path_retry=retry,
                              user_friendly_names=user_friendly_names)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--no-path-retry") from None
    click.echo(text, nl=False)


@node.command("initiator")
@click.option("--iscsi-root", default="/etc/iscsi", show_default=True, hidden=True)
def initiator(iscsi_root: str) -> None:
    """Print this node's initiator IQN (from initiatorname.iscsi)."""
    click.echo(IscsiHelper(LocalRunner(), iscsi_root=iscsi_root).initiator_iqn())


@node.command("sessions")
def sessions() -> None:
    """List this node's iSCSI sessions (portal and target IQN)."""
    found = IscsiHelper(LocalRunner()).sessions()
    for s in found:
        click.echo(f"{s.portal} {s.iqn}")
    if not found:
        click.echo("no iSCSI sessions on this node", err=True)


@node.command("check")
@click.option("--iscsi-root", default="/etc/iscsi", show_default=True, hidden=True)
@click.option("--multipath-conf", "conf", default="/etc/multipath.conf", show_default=True,
              hidden=True)
def check(iscsi_root: str, conf: str) -> None:
    """Check that this node can attach Datera volumes (changes nothing)."""
    from datera_iac.node.check import FAIL, check_node

    results = check_node(LocalRunner(), iscsi_root=iscsi_root, multipath_conf=conf)
    for c in results:
        click.echo(f"{c.status:4}  {c.name}: {c.detail}")
    if any(c.status == FAIL for c in results):
        raise click.exceptions.Exit(1)
