"""The Datera DSP REST client and its API entities.

``DspClient(config)`` talks to one DSP (or the bundled simulator): login and re-login, the
tenant header, 503 retries within ``datera_503_timeout``, twin-free creates, lazy paging,
TLS verification, redacted debug logging. The entities (attrs classes) and
:func:`make_converter` are the JSON boundary the resource kinds read through.

    >>> client = DspClient(DateraConfig.from_mapping({...}))
    >>> for ai in client.list("/app_instances", filter="match(name,OS-.*)"):
    ...     vol = from_api(ai, AppInstance)
"""

from datera_iac.dsp._client import DRIVER_HEADER, SUPPORTED_VERSIONS, DspClient
from datera_iac.dsp._entities import (
    ENTITIES,
    Access,
    AclPolicy,
    AppInstance,
    AppTemplate,
    Auth,
    Initiator,
    PerformancePolicy,
    Ref,
    Snapshot,
    StorageInstance,
    StorageTemplate,
    System,
    Tenant,
    Volume,
    VolumeTemplate,
    api_converter,
    from_api,
    make_converter,
    to_api,
)
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
    "ENTITIES",
    "MASK",
    "SUPPORTED_VERSIONS",
    "THROTTLED",
    "UNAVAILABLE",
    "Access",
    "AclPolicy",
    "AppInstance",
    "AppTemplate",
    "Auth",
    "Clock",
    "DspClient",
    "Initiator",
    "PerformancePolicy",
    "Ref",
    "RetryPolicy",
    "Snapshot",
    "StorageInstance",
    "StorageTemplate",
    "System",
    "SystemClock",
    "Tenant",
    "Volume",
    "VolumeTemplate",
    "api_converter",
    "from_api",
    "is_secret_key",
    "make_converter",
    "redact",
    "to_api",
]
