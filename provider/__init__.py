"""terraform-provider-datera: a Terraform (plugin protocol 6) provider for the Datera DSP.

A thin adapter over :mod:`datera_iac.resources`: schemas, validation, diffs and DSP calls
come from the kinds; the provider block is :class:`datera_iac.config.DateraConfig`. See
``provider/README.md`` for installation and ``provider/docs/`` for the reference.
"""

from provider.provider import PROVIDER_ADDRESS, PROVIDER_VERSION, DateraProvider

__all__ = ["PROVIDER_ADDRESS", "PROVIDER_VERSION", "DateraProvider"]
