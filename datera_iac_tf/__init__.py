"""terraform-provider-datera: a Terraform (plugin protocol 6) provider for the Datera DSP.

A thin adapter over :mod:`datera_iac.resources`: schemas, validation, diffs and DSP calls
come from the kinds; the provider block is :class:`datera_iac.config.DateraConfig`. See
``datera_iac_tf/README.md`` for installation and ``datera_iac_tf/docs/`` for the reference.
"""

from typing import Any

__all__ = ["PROVIDER_ADDRESS", "PROVIDER_VERSION", "DateraProvider"]


def __getattr__(name: str) -> Any:
    # lazy: Terraform starts ``datera_iac_tf.main`` 2-3 times per command, and its handshake
    # must not wait for the kinds to load (see datera_iac_tf._serve)
    if name in __all__:
        import datera_iac_tf.provider as p

        return getattr(p, name)
    raise AttributeError(f"module 'datera_iac_tf' has no attribute {name!r}")
