"""The few tfplugin6 fields newer than the ``tf`` package's copy of the protocol.

``tf`` 1.2.0 compiled ``tfplugin6`` before protocol 6.8 (Terraform 1.11), so its messages
have no ``Schema.Attribute.write_only`` and no ``ClientCapabilities``. Protobuf keeps the
fields a message class does not know ("unknown fields") when it parses and re-serialises,
and a message is the concatenation of its encoded fields. So we describe just those fields,
by their upstream numbers, in a small proto of our own, and

* mark an attribute write-only by appending our encoding of ``write_only = true`` to
  ``tf``'s encoding of the attribute (:func:`mark_write_only`);
* read a flag back by parsing ``tf``'s message bytes with our class, which ignores every
  field it does not describe (:func:`is_write_only`, :func:`write_only_allowed`).

The proto, written from the public protocol documentation (``tfplugin6.proto``, version
6.8+). Only the field numbers must match upstream; the message names are ours::

    syntax = "proto3";
    package datera.tfplugin6ext;

    // tfplugin6.ClientCapabilities
    message ClientCapabilities {
      bool deferral_allowed = 1;
      bool write_only_attributes_allowed = 2;
    }
    // the field of tfplugin6.Schema.Attribute that tf 1.2.0 lacks
    message AttributeWriteOnly {
      bool write_only = 11;
    }
    // the field of tfplugin6.ValidateResourceConfig.Request that tf 1.2.0 lacks
    message ValidateResourceConfigCapabilities {
      ClientCapabilities client_capabilities = 3;
    }

It is built below as a ``FileDescriptorProto`` in a private descriptor pool (no protoc, no
generated module to keep in step with the protobuf runtime). If ``tf`` ever ships a newer
proto, these helpers become one-liners over its own fields.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["is_write_only", "mark_write_only", "write_only_allowed"]

_PACKAGE = "datera.tfplugin6ext"
_F = descriptor_pb2.FieldDescriptorProto


def _build() -> dict[str, type[Any]]:
    fdp = descriptor_pb2.FileDescriptorProto(
        name="datera/tfplugin6ext.proto", package=_PACKAGE, syntax="proto3")

    def message(name: str, *fields: tuple[str, int, int, str | None]) -> None:
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=_F.LABEL_OPTIONAL)
            if type_name:
                f.type_name = f".{_PACKAGE}.{type_name}"

    message("ClientCapabilities",
            ("deferral_allowed", 1, _F.TYPE_BOOL, None),
            ("write_only_attributes_allowed", 2, _F.TYPE_BOOL, None))
    message("AttributeWriteOnly", ("write_only", 11, _F.TYPE_BOOL, None))
    message("ValidateResourceConfigCapabilities",
            ("client_capabilities", 3, _F.TYPE_MESSAGE, "ClientCapabilities"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"{_PACKAGE}.{m.name}")) for m in fdp.message_type}


_MESSAGES = _build()
_AttributeWriteOnly = _MESSAGES["AttributeWriteOnly"]
_ValidateCaps = _MESSAGES["ValidateResourceConfigCapabilities"]


def mark_write_only(attribute: Any) -> Any:
    """A copy of a ``tfplugin6.Schema.Attribute`` (``tf``'s class) with ``write_only`` set.

    The field travels as an unknown field of ``tf``'s message: it survives being placed in a
    ``Schema.Block`` and the response's serialisation, and Terraform (which knows field 11)
    reads it."""
    extra = _AttributeWriteOnly(write_only=True).SerializeToString()
    return type(attribute).FromString(attribute.SerializeToString() + extra)


def is_write_only(attribute: Any) -> bool:
    """Whether a ``tfplugin6.Schema.Attribute`` carries ``write_only = true``."""
    return bool(_AttributeWriteOnly.FromString(attribute.SerializeToString()).write_only)


def write_only_allowed(request: Any) -> bool:
    """Whether a ``ValidateResourceConfig.Request`` says the client handles write-only
    attributes (Terraform 1.11+). An older Terraform sends no capabilities: it would treat a
    write-only attribute as an ordinary one and store its value in the state."""
    caps = _ValidateCaps.FromString(request.SerializeToString())
    return bool(caps.client_capabilities.write_only_attributes_allowed)
