"""Install terraform-provider-datera where Terraform finds it: dev_overrides or a mirror.

Terraform runs a provider as an executable named ``terraform-provider-<type>``. Ours is a
Python program, so both modes install a small launcher script (``#!<this python> -S``,
:mod:`datera_iac._launcher`) that imports :mod:`datera_iac_tf.main` — the provider runs in
the Python environment that has datera-iac installed.

* **dev_overrides** (developers): Terraform uses the launcher directly, no ``terraform init``,
  no lock file, and warns that overrides are active::

      python -m datera_iac_tf.install dev-overrides ~/.terraform.d/datera-dev > ~/.terraformrc

* **filesystem mirror** (users, CI): the unpacked layout
  ``<mirror>/registry.terraform.io/datera/datera/<version>/<os_arch>/terraform-provider-datera_v<version>``;
  ``terraform init`` installs from it and writes ``.terraform.lock.hcl``, and other providers
  still come from their registries::

      python -m datera_iac_tf.install mirror ~/.terraform.d/plugins > ~/.terraformrc

Both commands print the CLI configuration block to use (``TF_CLI_CONFIG_FILE`` or
``~/.terraformrc``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from datera_iac import _launcher
from datera_iac_tf.provider import PROVIDER_ADDRESS, PROVIDER_VERSION

__all__ = [
    "EXECUTABLE",
    "dev_overrides_config",
    "install_dev_overrides",
    "install_mirror",
    "main",
    "mirror_config",
    "os_arch",
    "write_launcher",
]

EXECUTABLE = "terraform-provider-datera"


def os_arch() -> str:
    """Terraform's platform name for this machine, e.g. ``linux_amd64``."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"{sys.platform.replace('linux2', 'linux')}_{arch}"


def write_launcher(
    path: Path, *, python: str | None = None, pythonpath: list[str] | None = None,
    entry: str = "datera_iac_tf.main:main",
) -> Path:
    """Write an executable launcher at ``path`` that runs ``entry`` with ``python``
    (:func:`datera_iac._launcher.launcher_text`: ``-S``, the ``.pth`` files read after the
    go-plugin handshake by :mod:`datera_iac_tf._serve`)."""
    return _launcher.write_launcher(path, _launcher.launcher_text(
        python or sys.executable, list(pythonpath or []), entry,
        "terraform-provider-datera launcher (written by datera_iac_tf.install)."))


def dev_overrides_config(directory: Path, address: str = PROVIDER_ADDRESS) -> str:
    return (
        "provider_installation {\n"
        "  dev_overrides {\n"
        f'    "{address}" = "{directory}"\n'
        "  }\n"
        "  direct {}\n"
        "}\n"
    )


def mirror_config(mirror: Path, address: str = PROVIDER_ADDRESS) -> str:
    host_ns = "/".join(address.split("/")[:2])
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        f'    include = ["{host_ns}/*"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{host_ns}/*"]\n'
        "  }\n"
        "}\n"
    )


def install_dev_overrides(directory: Path, **launcher: object) -> str:
    """Write ``<directory>/terraform-provider-datera``; return the CLI config block."""
    directory = Path(directory).resolve()
    write_launcher(directory / EXECUTABLE, **launcher)  # type: ignore[arg-type]
    return dev_overrides_config(directory)


def install_mirror(
    mirror: Path, *, version: str = PROVIDER_VERSION, address: str = PROVIDER_ADDRESS,
    **launcher: object,
) -> str:
    """Write the unpacked filesystem-mirror layout under ``mirror``; return the CLI
    config block."""
    mirror = Path(mirror).resolve()
    target = mirror / address / version / os_arch() / f"{EXECUTABLE}_v{version}"
    write_launcher(target, **launcher)  # type: ignore[arg-type]
    return mirror_config(mirror, address)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m datera_iac_tf.install", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("dev-overrides", help="install a launcher for dev_overrides")
    d.add_argument("directory", type=Path)
    m = sub.add_parser("mirror", help="install into an unpacked filesystem mirror")
    m.add_argument("directory", type=Path)
    m.add_argument("--version", default=PROVIDER_VERSION)
    for p in (d, m):
        p.add_argument("--python", default=sys.executable,
                       help="interpreter with datera-iac installed (default: this one)")
        p.add_argument("--pythonpath", action="append", default=[],
                       help="extra import path (a source checkout); repeatable")
    args = ap.parse_args(argv)
    kw = {"python": args.python, "pythonpath": [os.path.abspath(p) for p in args.pythonpath]}
    if args.mode == "dev-overrides":
        print(install_dev_overrides(args.directory, **kw), end="")
    else:
        print(install_mirror(args.directory, version=args.version, **kw), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
