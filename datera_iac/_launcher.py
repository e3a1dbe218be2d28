"""The provider plugins' launchers: Python started with ``-S``, ``.pth`` files read later.

Terraform and the Pulumi engine start a provider plugin as an executable and wait for one
line on its stdout (go-plugin's handshake, Pulumi's port). Python's ``site`` reads every
``.pth`` file of the site directories before the first line of a program runs (tens of ms
on a machine with many of them), so the launcher written here runs with ``-S``: it puts
the site directories on ``sys.path`` itself, without reading their ``.pth`` files, imports
the entry and runs it. The entry calls :func:`read_site_files` after its line, on the
thread that builds the provider; when the entry cannot be imported without the ``.pth``
files (an editable install finds the package through one), the launcher reads them first.

Used by ``datera_iac_tf.install`` (``terraform-provider-datera``) and
``datera_iac.pulumi.package`` (``pulumi-resource-datera``). Imports nothing beyond the
standard library: the entries import it after their line.
"""

from __future__ import annotations

import importlib
import stat
import sys
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["DeferredModule", "defer", "launcher_text", "read_site_files", "write_launcher"]


_TEXT = """\
#!{python} -S
\"\"\"{doc}\"\"\"
import os
import site
import sys
{pythonpath}bin_dir = os.path.dirname(os.path.abspath(sys.executable))
if any(os.path.isfile(os.path.join(d, "pyvenv.cfg")) for d in (bin_dir, os.path.dirname(bin_dir))):
    sys.path += site.getsitepackages([os.path.dirname(bin_dir)])  # a venv's own
else:
    sys.path += [*([site.getusersitepackages()] if site.check_enableusersite() else []),
                 *site.getsitepackages()]
try:
    from {module} import {func}
except ImportError:
    site.main()
    from {module} import {func}
sys.exit({func}())
"""


def launcher_text(python: str, pythonpath: Iterable[str], entry: str, doc: str) -> str:
    """A Python script (``#!<python> -S``) that runs ``entry`` (``module:function``; its
    return value is the exit status) with ``pythonpath`` ahead of the site directories;
    ``doc`` is its docstring.

    Without ``site``, ``sys.prefix`` of a virtualenv's interpreter is the base
    installation's (``site`` moves it to the venv): in a venv (``pyvenv.cfg`` beside
    ``bin/`` or in it, as ``site`` looks for it) only the venv's own site-packages join the
    path at once, and the base's (``include-system-site-packages``) and the user's come
    with the ``.pth`` files, in ``site``'s order."""
    module, _, func = entry.partition(":")
    return _TEXT.format(python=python, doc=doc, module=module, func=func,
                        pythonpath="".join(f"sys.path.insert(0, {str(p)!r})\n" for p in pythonpath))


def write_launcher(path: Path, text: str) -> Path:
    """Write ``text`` at ``path`` (its directory created) and make it executable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def read_site_files() -> None:
    """Under ``-S`` (a launcher of :func:`launcher_text`), read the ``.pth`` files of the
    site directories now, unless the launcher already did (``site.main()`` sets
    ``ENABLE_USER_SITE``)."""
    import site

    if sys.flags.no_site and site.ENABLE_USER_SITE is None:
        site.main()


class DeferredModule(types.ModuleType):
    """Stands in for a module until its first attribute is asked, then imports it (and
    leaves ``sys.modules`` to the real one). gRPC's ``cygrpc`` imports ``asyncio`` and
    ``grpc.aio`` at its own import (~20-30 ms of it) though only ``grpc.aio`` servers use
    them; the plugins serve with the sync server."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def defer(*names: str) -> None:
    """Put a :class:`DeferredModule` in ``sys.modules`` for each of ``names`` not imported
    yet; call it before ``import grpc`` in a plugin's entry point (the provider built after
    the plugin's line imports what it uses for real)."""
    for name in names:
        sys.modules.setdefault(name, DeferredModule(name))
