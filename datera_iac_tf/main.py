"""``terraform-provider-datera``: the executable Terraform starts.

Terraform runs it with no arguments and reads the go-plugin handshake from stdout; stderr
goes to Terraform's log (``TF_LOG=debug`` shows it). ``--dev`` serves without TLS and prints
``TF_REATTACH_PROVIDERS`` for attaching a debugger.
"""

from __future__ import annotations

import logging
import os
import sys

from datera_iac._launcher import defer

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
    defer("asyncio", "grpc.aio")  # gRPC's cygrpc imports both; the sync server never uses them
    from datera_iac_tf._serve import serve

    serve(_provider, args)
    return 0


def _provider() -> object:
    """The provider, built after the handshake (:func:`datera_iac_tf._serve.serve`)."""
    from datera_iac_tf.provider import DateraProvider

    return DateraProvider()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
