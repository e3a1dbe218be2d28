"""The ``datera-iac`` command line.

Subcommands live beside the code they drive and are imported lazily, so ``datera-iac
--help`` is fast and one broken optional part never breaks the others:

* ``dsp``      -> :mod:`datera_iac.sim.cli`     (the bundled DSP simulator)
* ``node``     -> :mod:`datera_iac.node.cli`    (iSCSI / multipath helper)
* ``cinder``   -> :mod:`datera_iac.cinder_cli`  (Cinder volume types and cinder.conf)
* ``preview``, ``up``, ``refresh``, ``destroy``, ``import``, ``state``
               -> :mod:`datera_iac.engine.cli`
* ``ls``       -> :mod:`datera_iac.engine.ls`   (listings of DSP objects)
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import click

from datera_iac import __version__
from datera_iac.errors import DateraIacError

#: command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "preview": "datera_iac.engine.cli:preview",
    "up": "datera_iac.engine.cli:up",
    "refresh": "datera_iac.engine.cli:refresh",
    "destroy": "datera_iac.engine.cli:destroy",
    "import": "datera_iac.engine.cli:import_",
    "state": "datera_iac.engine.cli:state",
    "ls": "datera_iac.engine.ls:ls",
    "cinder": "datera_iac.cinder_cli:cinder",
    "dsp": "datera_iac.sim.cli:dsp",
    "node": "datera_iac.node.cli:node",
    "pulumi": "datera_iac.pulumi.cli:pulumi",
}


#: command name -> its one-line help, so `--help` lists the commands without importing
#: them (tests/test_cli_startup.py checks each against the command's own help).
SUMMARIES: dict[str, str] = {
    "preview": "Show what `up` would do, without changing anything (no lock is taken).",
    "up": "Create, update and delete DSP objects until they match the stack.",
    "refresh": "Read every managed object and update the state to match the DSP.",
    "destroy": "Delete every object in the stack's state (objects already gone are fine).",
    "import": "Adopt an existing DSP object into the state as NAME (no write to the DSP), or, "
              "with --discover, write a stack declaring the DSP's objects with their imports.",
    "ls": "List DSP objects: volumes, snapshots, (volume) types, tenants, manageable "
          "(volumes) and manageable-snapshots. Reads only.",
    "state": "Inspect and edit the stack's state.",
    "cinder": "Cinder volume types (DF: extra specs) and the cinder.conf backend section.",
    "dsp": "The bundled Datera DSP REST API simulator (API v2.1 and v2.2).",
    "node": "iSCSI / multipath helper for the node a Datera volume is attached to.",
    "pulumi": "The Pulumi provider plugin (pulumi-resource-datera) and its SDK.",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (not to list them)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names), default=0)
        rows = []
        for name in names:
            text = SUMMARIES.get(name)
            if text is not None:
                rows.append((name, click.utils.make_default_short_help(text, limit)))
                continue
            cmd = self.get_command(ctx, name)  # a command without a summary: import it
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):
                return None  # that part is not built yet
            raise
        return getattr(mod, attr, None)


#: The format of every log line on stderr (documented in docs/engine.md, "Debugging").
LOG_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
LOG_DATEFMT = "%H:%M:%S"
_LOG_FLAGS = ("-v", "-vv", "-vvv", "--verbose", "--debug")
_handler: logging.Handler | None = None
_saved_env: tuple[str | None] | None = None


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the sys.stderr of the moment (tests and redirections replace it)."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


def setup_logging(verbose: int = 0, debug: bool = False) -> None:
    """Log records of ``datera_iac.*`` to stderr in :data:`LOG_FORMAT`.

    Warnings always; ``-v`` adds INFO, ``-vv`` DEBUG; ``--debug`` is DEBUG plus the DSP wire
    trace (every request and reply, secrets masked) by setting ``DATERA_DEBUG=true`` for the
    run. The wire logger passes whatever the client emits, so ``datera:dateraDebug: true`` in
    a stack (or ``-c datera:dateraDebug=true``) shows the trace without any flag."""
    global _handler, _saved_env
    reset_logging()
    root = logging.getLogger("datera_iac")
    _handler = _Stderr()
    _handler.setFormatter(logging.Formatter(LOG_FORMAT, LOG_DATEFMT))
    root.addHandler(_handler)
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose else logging.WARNING
    root.setLevel(level)
    # the client logs the wire only when datera_debug is on: let those records through
    logging.getLogger("datera_iac.dsp.wire").setLevel(logging.DEBUG)
    if debug:
        _saved_env = (os.environ.get("DATERA_DEBUG"),)
        os.environ["DATERA_DEBUG"] = "true"


def reset_logging() -> None:
    """Undo :func:`setup_logging` (``main`` does, so in-process callers are unaffected)."""
    global _handler, _saved_env
    root = logging.getLogger("datera_iac")
    if _handler is not None:
        root.removeHandler(_handler)
        _handler = None
    root.setLevel(logging.NOTSET)
    logging.getLogger("datera_iac.dsp.wire").setLevel(logging.NOTSET)
    if _saved_env is not None:
        if _saved_env[0] is None:
            os.environ.pop("DATERA_DEBUG", None)
        else:
            os.environ["DATERA_DEBUG"] = _saved_env[0]
        _saved_env = None


def _hoist_log_flags(argv: list[str]) -> list[str]:
    """``datera-iac up -v`` works like ``datera-iac -v up``: the log flags are the root
    group's, wherever they are written (before a ``--``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in _LOG_FLAGS]
    rest = [a for a in argv[:end] if a not in _LOG_FLAGS]
    return flags + rest + argv[end:]


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="datera-iac")  # no importlib.metadata scan
@click.option("-v", "--verbose", count=True,
              help="More log lines on stderr: -v INFO, -vv DEBUG (also after the subcommand).")
@click.option("--debug", is_flag=True,
              help="DEBUG logs plus the DSP wire trace, secrets masked (= datera:dateraDebug).")
def cli(verbose: int, debug: bool) -> None:
    """Infrastructure as code for the Datera DSP.

    \b
    Examples:
      datera-iac up                 deploy ./Pulumi.yaml (bundled simulator if no endpoint)
      datera-iac preview --json     show the plan as JSON
      datera-iac dsp serve          run the bundled DSP simulator
      datera-iac up --debug         ... with every DSP request and reply on stderr

    Logs go to stderr as "HH:MM:SS.mmm LEVEL logger: message".
    """
    setup_logging(verbose, debug)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: user errors print one line, never a traceback."""
    try:
        args = _hoist_log_flags(list(sys.argv[1:] if argv is None else argv))
        rv = cli.main(args=args, prog_name="datera-iac", standalone_mode=False)
        if isinstance(rv, int) and not isinstance(rv, bool):
            return rv  # ctx.exit(n): click returns n instead of raising in this mode
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.exceptions.Exit as e:
        return e.exit_code
    except DateraIacError as e:
        click.echo(f"error: {e}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    finally:
        reset_logging()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
