"""terraform-provider-datera: a Terraform (plugin protocol 6) provider for the Datera DSP.

A thin adapter over :mod:`datera_iac.resources`: schemas, validation, diffs and DSP calls
come from the kinds; the provider block is :class:`datera_iac.config.DateraConfig`. See
``provider/README.md`` for installation and ``provider/docs/`` for the reference.
"""

from typing import Any

__all__ = ["PROVIDER_ADDRESS", "PROVIDER_VERSION", "DateraProvider"]


def __getattr__(name: str) -> Any:
    # lazy: Terraform starts ``provider.main`` 2-3 times per command, and its handshake
    # must not wait for the kinds to load (see provider._serve)
    if name in __all__:
        import provider.provider as p

        return getattr(p, name)
    raise AttributeError(f"module 'provider' has no attribute {name!r}")
