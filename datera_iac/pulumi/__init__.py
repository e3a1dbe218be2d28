"""Pulumi for the Datera DSP: typed resource classes and the ``pulumi-resource-datera`` plugin.

Use the classes in a Pulumi Python program::

    import pulumi
    from datera_iac.pulumi import Snapshot, Volume

    db = Volume("db", size=20, extra_specs={"DF:replica_count": "3"})
    Snapshot("db-snap", volume_id=db.id)

Each class (:class:`Tenant`, :class:`VolumeType`, :class:`Volume`, :class:`Snapshot`,
:class:`NodeAttachment`, and :class:`Provider` for an explicit DSP connection) is generated
from ``datera_iac.resources`` and ``datera_iac.config`` by ``python -m datera_iac.pulumi.gen``
into ``_sdk.py``; the plugin (:mod:`datera_iac.pulumi.provider`) serves the same kinds. See
docs/pulumi.md for installing the plugin and configuring the provider.

The classes load on first use (module ``__getattr__``): the plugin's start
(:mod:`datera_iac.pulumi._serve`) imports this package but needs neither the SDK nor the
``pulumi`` package it imports.
"""

from typing import Any


def __getattr__(name: str) -> Any:
    import importlib.util

    if (name.startswith("__") and name != "__all__") or importlib.util.find_spec(
            f"{__name__}.{name}") is not None:  # a submodule: the import system loads it
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from datera_iac.pulumi import _sdk

    if name == "__all__":
        return _sdk.__all__
    try:
        return getattr(_sdk, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    from datera_iac.pulumi import _sdk

    return sorted(set(globals()) | set(_sdk.__all__))
