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
"""

from datera_iac.pulumi._sdk import *  # noqa: F401,F403
from datera_iac.pulumi._sdk import __all__  # noqa: F401
