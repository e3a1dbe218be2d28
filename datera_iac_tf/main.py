"""``terraform-provider-datera``: the executable Terraform starts.

Terraform runs it with no arguments and reads the go-plugin handshake from stdout; stderr
goes to Terraform's log (``TF_LOG=debug`` shows it). ``--dev`` serves without TLS and prints
``TF_REATTACH_PROVIDERS`` for attaching a debugger.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import types
from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    level = logging.DEBUG if os.environ.get("TF_LOG", "").lower() in ("debug", "trace") else logging.WARNING
    logging.basicConfig(stream=sys.stderr, level=level,
                        format="%(levelname)s %(name)s: %(message)s")
    args = list(argv if argv is not None else sys.argv)
    if "TF_PLUGIN_MAGIC_COOKIE" not in os.environ and "--dev" not in args:
        print("This is a Terraform provider plugin: Terraform starts it. See datera_iac_tf/README.md "
              "to install it (dev_overrides or a filesystem mirror).", file=sys.stderr)
        return 1
    for name in ("asyncio", "grpc.aio"):  # gRPC's cygrpc imports both; the sync server never uses them
        sys.modules.setdefault(name, _LazyModule(name))
    from datera_iac_tf._serve import serve

    serve(_provider, args)
    return 0


class _LazyModule(types.ModuleType):
    """Stands in for a module until its first attribute is asked: ``import grpc`` imports
    ``asyncio`` and ``grpc.aio`` (~30 ms of the ~45 ms gRPC's import costs; only grpc.aio
    servers use them) before the handshake."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def _provider() -> object:
    """The provider, built after the handshake (:func:`datera_iac_tf._serve.serve`)."""
    from datera_iac_tf.provider import DateraProvider

    return DateraProvider()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
