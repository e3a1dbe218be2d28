"""Build the plugin archive ``pulumi plugin install resource datera <v> --file`` takes.

    python -m datera_iac.pulumi.package [--out DIR]

The archive holds one executable, ``pulumi-resource-datera``, a launcher that runs this
package's provider with the Python interpreter that built it (so the archive is for this
machine's virtualenv: install ``datera-iac`` there first). It carries no
``PulumiPlugin.yaml``: with one, the engine would treat the directory as a source plugin
and ignore the executable.
"""

from __future__ import annotations

import argparse
import io
import platform
import shlex
import sys
import tarfile
from pathlib import Path

from datera_iac.pulumi.provider import plugin_version

__all__ = ["build_archive", "launcher", "main"]


def launcher(python: str = sys.executable) -> str:
    """The launcher script: exec the provider module with ``python`` (argv passed on)."""
    return f'#!/bin/sh\nexec {shlex.quote(python)} -m datera_iac.pulumi "$@"\n'


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def build_archive(out: Path, python: str = sys.executable) -> Path:
    """Write ``pulumi-resource-datera-v<version>-<os>-<arch>.tar.gz`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    name = f"pulumi-resource-datera-v{plugin_version()}-{sys.platform}-{_arch()}.tar.gz"
    path = out / name
    data = launcher(python).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("pulumi-resource-datera")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m datera_iac.pulumi.package", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="dist", help="directory to write the archive into")
    args = ap.parse_args(argv)
    path = build_archive(Path(args.out))
    print(path)
    print(f"install: pulumi plugin install resource datera {plugin_version()} --file {path}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
