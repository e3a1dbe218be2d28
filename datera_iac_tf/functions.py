"""Provider-defined functions (Terraform 1.8+: ``provider::datera::<name>(...)``).

Pure computations users otherwise do by hand, each one call into the core (no DSP, no
provider configuration: Terraform calls functions without configuring the provider):

* ``cinder_extra_specs(properties)``: the Cinder extra specs of a set of ``DF:``
  properties (keys with or without ``DF:``, values as Terraform writes them), normalised
  and checked as the Datera Cinder driver reads them (:func:`datera_iac.cinder.normalize_extra_specs`).
* ``volume_id_parts(id)``: ``{tenant, app_instance}`` of a volume id.
* ``cinder_reference_parts(reference)``: ``{tenant, app_instance, storage_instance, volume}``
  of a Cinder reference ``[tenant:]ai_name:si_name:vol_name`` (the driver's ``source-name``).

A bad argument is the function's error (Terraform shows it at the call), naming what to
write instead.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tf import types as tft
from tf.function import CallContext, FunctionSignature, Parameter, Return

from datera_iac.errors import InputError
from datera_iac_tf._types import Object

__all__ = ["FUNCTIONS"]

_ID_PARTS = ("tenant", "app_instance")
_REF_PARTS = ("tenant", "app_instance", "storage_instance", "volume")


class _Function:
    """One function: ``name``, its signature, and ``compute(*arguments)`` (core calls)."""

    name: ClassVar[str]
    signature: ClassVar[FunctionSignature]

    def __init__(self, *_: Any) -> None:
        pass

    @classmethod
    def get_name(cls) -> str:
        return cls.name

    @classmethod
    def get_signature(cls) -> FunctionSignature:
        return cls.signature

    def compute(self, *arguments: Any) -> Any:
        raise NotImplementedError

    def call(self, ctx: CallContext, arguments: list[Any]) -> Any:
        try:
            return self.compute(*arguments)
        except InputError as e:
            ctx.diagnostics.add_error(f"{self.name}: {e}")
            return None


class CinderExtraSpecs(_Function):
    name = "cinder_extra_specs"
    signature = FunctionSignature(
        parameters=[Parameter(
            name="properties", type=tft.Map(tft.String()),
            description="DF: properties, keys with or without the DF: prefix "
            "(e.g. { replica_count = 3, round_robin = true })")],
        return_type=Return(tft.Map(tft.String())),
        summary="The Cinder extra specs of a set of DF: properties",
        description="Normalised and checked as the Datera Cinder driver reads them: keys "
        "`DF:<property>`, values in the driver's spelling (`True`/`False`, integers); an "
        "unknown key, a value out of range or a key given twice with two values is an error.",
    )

    def compute(self, properties: dict[str, str] | None) -> dict[str, str]:
        from datera_iac.cinder import normalize_extra_specs

        return normalize_extra_specs(properties or {}, kind="")


class VolumeIdParts(_Function):
    name = "volume_id_parts"
    signature = FunctionSignature(
        parameters=[Parameter(name="id", type=tft.String(),
                              description="A volume id (/root/<tenant>/<app_instance id>), "
                              "<tenant>:<app_instance> or a bare app_instance id or name")],
        return_type=Return(Object({k: tft.String() for k in _ID_PARTS})),
        summary="The tenant and app_instance of a volume id",
        description="`{ tenant, app_instance }`; a bare app_instance is in the root tenant.",
    )

    def compute(self, value: str) -> dict[str, str]:
        from datera_iac.resources.layout import volume_id_parts

        return volume_id_parts(value, kind="")


class CinderReferenceParts(_Function):
    name = "cinder_reference_parts"
    signature = FunctionSignature(
        parameters=[Parameter(name="reference", type=tft.String(),
                              description="A Cinder volume reference "
                              "[tenant:]ai_name:si_name:vol_name")],
        return_type=Return(Object({k: tft.String() for k in _REF_PARTS})),
        summary="The parts of a Cinder volume reference (the driver's source-name)",
        description="`{ tenant, app_instance, storage_instance, volume }`; no tenant, `root:` "
        "or an empty one means the root tenant.",
    )

    def compute(self, value: str) -> dict[str, str]:
        from datera_iac.resources.layout import cinder_reference_parts

        return cinder_reference_parts(value, kind="")


FUNCTIONS: tuple[type[_Function], ...] = (CinderExtraSpecs, VolumeIdParts, CinderReferenceParts)
