"""``datera-iac dsp``: run the bundled DSP simulator from the command line.

    datera-iac dsp serve --http-port 7717 --https-port 7718 --data ./dsp-data

prints the URLs and serves until Ctrl-C or SIGTERM, then stops cleanly.
"""

from __future__ import annotations

import gc
import signal
import threading
from pathlib import Path
from typing import Any

import click


@click.group()
def dsp() -> None:
    """The bundled Datera DSP REST API simulator (API v2.1 and v2.2)."""


#: young-generation threshold of the ``dsp serve`` process (CPython's default is 700)
GC_THRESHOLD = (10_000, 10, 10)


def _check_sw_version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A DSP product version is 2 to 4 dot-separated numbers (3.3.5.0, 3.2.0.0)."""
    parts = value.split(".")
    if not 2 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        raise click.BadParameter(f"{value!r} is not a product version such as 3.3.5.0 or 3.2.0.0")
    return value


def _tune_gc() -> None:
    """Garbage collection for a server process (``dsp serve`` owns its process; an
    embedded simulator leaves its host's settings alone).

    Each request leaves short-lived cyclic garbage (aiohttp's request and protocol
    objects), while the store, the API schemas and the routes live for the whole run. With
    CPython's defaults the collector ran every 700 allocations and, after a 1,000-volume
    workload, a full collection about every 100 requests, each stalling the one event
    loop - every request in flight - for ~40 ms: 0.65 s of collection in a bench run
    (bench/bench_engine.py). The objects made at start-up are moved out of the
    collector's sight (``gc.freeze``) and young collections are made rarer: 0.2 s in the
    same run, and the 1,000-volume preview 0.48-0.84 s instead of 0.82-0.91 s
    (docs/performance.md, sixth round)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


@dsp.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--http-port", default=7717, show_default=True, type=click.IntRange(0, 65535),
              help="HTTP port (0 = any free port).")
@click.option("--https-port", default=7718, show_default=True, type=click.IntRange(0, 65535),
              help="HTTPS port (0 = any free port).")
@click.option("--no-https", is_flag=True, help="Serve HTTP only.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep state in DIR (SQLite) so it survives a restart; default: memory.")
@click.option("--user", default="admin", show_default=True, help="Login user name.")
@click.option("--password", default="password", show_default=True, envvar="DATERA_SIM_PASSWORD",
              help="Login password; prefer DATERA_SIM_PASSWORD or --password-file (argv is "
                   "visible to every user in ps).")
@click.option("--password-file", type=click.File("r", encoding="utf-8"),
              help="Read the login password from the first line of FILE.")
@click.option("--ldap-server", "ldap_servers", multiple=True, metavar="NAME",
              help="Accept logins with remote_server=NAME (same user and password).")
@click.option("--sw-version", default="3.3.5.0", show_default=True, callback=_check_sw_version,
              help="Product version reported by /system (below 3.3: no placement policies, /metadata only).")
@click.option("--portal", "portals", multiple=True, metavar="IP",
              help="Portal IP of the default pool (repeat; default 127.0.0.1 and 127.0.0.2).")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS certificate (PEM).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="TLS private key (PEM).")
@click.option("--key-ttl", default=900.0, show_default=True, type=click.FloatRange(0), help="Session key lifetime (s).")
@click.option("--si-online-delay", default=0.0, type=click.FloatRange(0), help="Seconds until an onlined SI is available.")
@click.option("--snapshot-delay", default=0.0, type=click.FloatRange(0), help="Seconds until a snapshot is available.")
@click.option("--clone-delay", default=0.0, type=click.FloatRange(0), help="Seconds an AI stays 'cloning'.")
@click.option("--latency-ms", default=0.0, type=click.FloatRange(0), help="Extra latency per request.")
@click.option("--fail-503-rate", default=0.0, type=click.FloatRange(0, 1), help="Share of requests answered 503.")
@click.option("--init-500", default=0, type=click.IntRange(0), help="First N requests get 500 'still initializing'.")
@click.option("--drop-after-write-rate", default=0.0, type=click.FloatRange(0, 1),
              help="Share of writes applied and then answered with a dropped connection.")
@click.option("--seed", type=int, help="Seed for the fault rates (reproducible runs).")
@click.option("--tgt", is_flag=True,
              help="Serve real iSCSI targets with tgtd (apt tgt) on the portal IPs: each online "
                   "storage instance becomes a target with its ACL and CHAP, backed by a sparse file.")
@click.option("--iscsi-port", default=3260, show_default=True, type=click.IntRange(0, 65535),
              help="With --tgt: the iSCSI TCP port on every portal (0 = any free port).")
def serve(host: str, http_port: int, https_port: int, no_https: bool, data_dir: Path | None,
          user: str, password: str, password_file: Any, ldap_servers: tuple[str, ...], sw_version: str,
          portals: tuple[str, ...], cert: Path | None, key: Path | None, key_ttl: float,
          si_online_delay: float, snapshot_delay: float, clone_delay: float, latency_ms: float,
          fail_503_rate: float, init_500: int, drop_after_write_rate: float, seed: int | None,
          tgt: bool, iscsi_port: int) -> None:
    """Serve the simulated DSP until Ctrl-C or SIGTERM.

    \b
    Examples:
      datera-iac dsp serve                         # HTTP 7717, HTTPS 7718, state in memory
      datera-iac dsp serve --data ./dsp-data       # state survives a restart
      datera-iac dsp serve --tgt --portal 127.0.0.1 --portal 127.0.0.2
                                                   # plus real iSCSI targets (tgtd) on :3260
    """
    from datera_iac.sim.server import SimServer

    source = click.get_current_context().get_parameter_source("password")
    if password_file is not None:
        if source is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--password and --password-file exclude each other")
        password = password_file.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError(f"--password-file {password_file.name}: the first line is empty")
    elif source is click.core.ParameterSource.COMMANDLINE:
        click.echo("warning: --password on the command line is visible to every user (ps); "
                   "use DATERA_SIM_PASSWORD or --password-file", err=True)
    if (cert is None) != (key is None):
        raise click.UsageError("--cert and --key go together")
    faults: dict[str, Any] = {}
    for name, val in (("latency_ms", latency_ms), ("fail_503_rate", fail_503_rate),
                      ("init_500", init_500), ("drop_after_write_rate", drop_after_write_rate),
                      ("seed", seed)):
        if val:
            faults[name] = val
    plane = None
    if tgt:
        from datera_iac.errors import NodeError
        from datera_iac.sim.dataplane import TgtDataPlane

        plane = TgtDataPlane(portals=list(portals) or ["127.0.0.1", "127.0.0.2"], port=iscsi_port,
                             data_dir=data_dir / "luns" if data_dir else None)
        try:
            plane.start()
        except NodeError as e:
            raise click.ClickException(str(e)) from None
    server = SimServer(
        dataplane=plane,
        host=host, http_port=http_port, https_port=https_port, https=not no_https,
        users={user: password}, ldap_servers={s: {user: password} for s in ldap_servers},
        key_ttl=key_ttl, sw_version=sw_version, portals=list(portals) or None,
        si_online_delay=si_online_delay, snapshot_delay=snapshot_delay, clone_delay=clone_delay,
        data_dir=data_dir, cert=cert, key=key, **faults,
    )
    try:
        server.start()
    except OSError as e:
        if plane is not None:
            plane.stop()
        raise click.ClickException(str(e)) from None
    _tune_gc()
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(f"DSP simulator (sw_version {sw_version}) serving API v2.1 and v2.2")
        click.echo(f"  http:  {server.http_url}")
        if not no_https:
            click.echo(f"  https: {server.https_url}  (self-signed; CA bundle: {server.cert_path})")
        click.echo(f"  login: {user} / {'*' * len(password)}")
        click.echo(f"  state: {data_dir if data_dir else 'in memory'}")
        if plane is not None:
            click.echo(f"  iSCSI: tgtd pid {plane.pid} on {', '.join(plane.portals)}")
        click.echo("  admin: /_sim/counters /_sim/requests /_sim/faults /_sim/reset")
        click.echo("Press Ctrl-C to stop.", err=True)
        while not stop.wait(0.5):
            pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        server.stop()
        if plane is not None:
            plane.stop()
        click.echo("stopped", err=True)
