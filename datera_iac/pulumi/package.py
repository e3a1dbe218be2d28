"""Build the plugin archive ``pulumi plugin install resource datera <v> --file`` takes.

    python -m datera_iac.pulumi.package [--out DIR]

The archive holds one executable, ``pulumi-resource-datera`` (mode 0755), a launcher that
runs this package's provider (``datera_iac.pulumi._serve:main``) with the Python interpreter
that built it (so the archive is for this machine's virtualenv: install ``datera-iac``
there first). The launcher is a Python script started with ``-S``
(:mod:`datera_iac._launcher`, as Terraform's): the engine waits for the port line, and the
site directories' ``.pth`` files are read after it, while the provider is built. It
carries no ``PulumiPlugin.yaml``: with one, the engine would treat the directory as a
source plugin and ignore the executable.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import tarfile
from collections.abc import Iterable
from pathlib import Path

from datera_iac._launcher import launcher_text
from datera_iac.pulumi.provider import plugin_version

__all__ = ["ENTRY", "EXECUTABLE", "build_archive", "launcher", "main"]

EXECUTABLE = "pulumi-resource-datera"
#: what the launcher runs (the engine's arguments reach it as ``sys.argv``)
ENTRY = "datera_iac.pulumi._serve:main"


def launcher(python: str = sys.executable, pythonpath: Iterable[str] = ()) -> str:
    """The launcher script: run :data:`ENTRY` with ``python -S``, ``pythonpath`` (a source
    checkout) ahead of the site directories."""
    return launcher_text(python, pythonpath, ENTRY,
                         f"{EXECUTABLE} launcher (written by datera_iac.pulumi.package).")


def _arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def build_archive(out: Path, python: str = sys.executable, pythonpath: Iterable[str] = ()) -> Path:
    """Write ``pulumi-resource-datera-v<version>-<os>-<arch>.tar.gz`` into ``out``: the
    :func:`launcher` of ``python`` (and ``pythonpath``) as its one member."""
    out.mkdir(parents=True, exist_ok=True)
    name = f"{EXECUTABLE}-v{plugin_version()}-{sys.platform}-{_arch()}.tar.gz"
    path = out / name
    data = launcher(python, pythonpath).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(EXECUTABLE)
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
