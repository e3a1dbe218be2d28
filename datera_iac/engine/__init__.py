"""The datera-iac engine: stacks (Python programs and Pulumi-YAML files), plans, apply,
state.

Python programs declare resources with the kind classes exposed here, built from the
registered kinds (``engine.Tenant``, ``engine.VolumeType``, ``engine.Volume``,
``engine.Snapshot``, ``engine.NodeAttachment``)::

    from datera_iac import engine

    gold = engine.VolumeType("gold", name="gold", replica_count=3)
    vol = engine.Volume("db", name="db-1", size=10, volume_type=gold.name,
                        extra_specs=gold.extra_specs)
    engine.export("db_id", vol.id)

Run them with ``datera-iac up -f program.py``, or drive a :class:`Workspace` directly.
"""

from typing import Any

from datera_iac.engine.core import Workspace, load_stack
from datera_iac.engine.model import Ref, ResourceOptions, StackDef, StackError
from datera_iac.engine.plan import Plan, Step
from datera_iac.engine.program import (
    Config,
    Resource,
    Stack,
    current_stack,
    export,
    resource_class,
)
from datera_iac.engine.yamlstack import load_yaml

__all__ = [
    "Config",
    "Plan",
    "Ref",
    "Resource",
    "ResourceOptions",
    "Stack",
    "StackDef",
    "StackError",
    "Step",
    "Workspace",
    "config",
    "current_stack",
    "export",
    "load_stack",
    "load_yaml",
    "resource_class",
]


def __getattr__(name: str) -> Any:
    """``engine.Volume`` & co: the Resource class of a registered kind; ``engine.config``:
    the running program's stack configuration."""
    if name == "config":
        return current_stack().config
    if name[:1].isupper():
        from datera_iac.errors import InputError

        try:
            return resource_class(name)
        except InputError:
            pass
    raise AttributeError(f"module 'datera_iac.engine' has no attribute {name!r}")
