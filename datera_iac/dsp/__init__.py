"""The Datera DSP REST client and its API entities.

``DspClient(config)`` talks to one DSP (or the bundled simulator): login and re-login, the
tenant header, 503 retries within ``datera_503_timeout``, twin-free creates, lazy paging,
TLS verification, redacted debug logging. ``System`` (``client.system()``) is the one typed
entity; the kinds read the other entities as the dicts the DSP sends.

    >>> client = DspClient(DateraConfig.from_mapping({...}))
    >>> for ai in client.list("/app_instances", filter="match(name,OS-.*)"):
    ...     print(ai["name"])
"""

from datera_iac.dsp._client import DRIVER_HEADER, SUPPORTED_VERSIONS, DspClient
from datera_iac.dsp._entities import System, api_converter, from_api, make_converter
from datera_iac.secrets import MASK, is_secret_key, redact
from datera_iac.dsp._retry import (
    CONNECTION,
    THROTTLED,
    UNAVAILABLE,
    Clock,
    RetryPolicy,
    SystemClock,
)

__all__ = [
    "CONNECTION",
    "DRIVER_HEADER",
    "MASK",
    "SUPPORTED_VERSIONS",
    "THROTTLED",
    "UNAVAILABLE",
    "Clock",
    "DspClient",
    "RetryPolicy",
    "System",
    "SystemClock",
    "api_converter",
    "from_api",
    "is_secret_key",
    "make_converter",
    "redact",
]
