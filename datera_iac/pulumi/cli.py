"""``datera-iac pulumi``: the Pulumi provider's tools from the main CLI.

    datera-iac pulumi schema            # the package schema (JSON) derived from the core
    datera-iac pulumi gen [--check]     # regenerate (or check) _sdk.py and schema.json
    datera-iac pulumi package [--out]   # the archive for `pulumi plugin install ... --file`
    datera-iac pulumi serve             # run the plugin (what pulumi-resource-datera runs)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

__all__ = ["pulumi"]


@click.group("pulumi")
def pulumi() -> None:
    """The Pulumi provider plugin (pulumi-resource-datera) and its SDK."""


@pulumi.command()
def schema() -> None:
    """Print the package schema the plugin serves."""
    from datera_iac.pulumi.schema import package_schema

    click.echo(json.dumps(package_schema(), indent=2,
                          sort_keys=True))


@pulumi.command()
@click.option("--check", is_flag=True, help="Only report stale files (exit 1).")
def gen(check: bool) -> None:
    """Regenerate datera_iac/pulumi/_sdk.py and schema.json from the core."""
    from datera_iac.pulumi import gen as generator

    sys.exit(generator.main(["--check"] if check else []))


@pulumi.command()
@click.option("--out", default="dist", show_default=True, type=click.Path(file_okay=False),
              help="Directory to write the archive into.")
def package(out: str) -> None:
    """Build the plugin archive for `pulumi plugin install resource datera <v> --file`."""
    from datera_iac.pulumi.package import build_archive
    from datera_iac.pulumi.provider import plugin_version

    path = build_archive(Path(out))
    click.echo(str(path))
    click.echo(f"install: pulumi plugin install resource datera {plugin_version()} --file {path}",
               err=True)


@pulumi.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run the provider plugin: print the port, serve gRPC on 127.0.0.1 until stopped."""
    from datera_iac.pulumi._serve import main

    main(list(ctx.args))
