"""The ``datera-iac`` command line.

Subcommands live beside the code they drive and are imported lazily, so ``datera-iac
--help`` is fast and one broken optional part never breaks the others:

* ``dsp``      -> :mod:`datera_iac.sim.cli`     (the bundled DSP simulator)
* ``node``     -> :mod:`datera_iac.node.cli`    (iSCSI / multipath helper)
* ``cinder``   -> :mod:`datera_iac.cinder_cli`  (Cinder volume types and cinder.conf)
* ``preview``, ``up``, ``refresh``, ``destroy``, ``import``, ``state``
               -> :mod:`datera_iac.engine.cli`
"""

from __future__ import annotations

import importlib
import sys

import click

from datera_iac.errors import DateraIacError

#: command name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "preview": "datera_iac.engine.cli:preview",
    "up": "datera_iac.engine.cli:up",
    "refresh": "datera_iac.engine.cli:refresh",
    "destroy": "datera_iac.engine.cli:destroy",
    "import": "datera_iac.engine.cli:import_",
    "state": "datera_iac.engine.cli:state",
    "cinder": "datera_iac.cinder_cli:cinder",
    "dsp": "datera_iac.sim.cli:dsp",
    "node": "datera_iac.node.cli:node",
    "pulumi": "datera_iac.pulumi.cli:pulumi",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="datera-iac")
def cli() -> None:
    """Infrastructure as code for the Datera DSP.

    \b
    Examples:
      datera-iac up                 deploy ./Pulumi.yaml (bundled simulator if no endpoint)
      datera-iac preview --json     show the plan as JSON
      datera-iac dsp serve          run the bundled DSP simulator
    """


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: user errors print one line, never a traceback."""
    try:
        rv = cli.main(args=argv, standalone_mode=False)
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
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
