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

Ephemeral resources (protocol 6.7+, Terraform 1.10+) need four RPCs ``tf`` has no messages
for. Their messages are described the same way, by upstream field numbers, with one more
economy: a field holding one of ``tf``'s messages (a ``DynamicValue``, a ``Diagnostic``, a
``Schema``) is declared ``bytes`` - on the wire an embedded message and a byte string are
the same length-delimited record - so ``tf``'s own classes build and read their content::

    // tfplugin6.GetProviderSchema.Response: map<string, Schema> ephemeral_resource_schemas = 8
    message SchemaEphemeral { map<string, bytes> ephemeral_resource_schemas = 8; }
    // tfplugin6.GetMetadata.Response: repeated EphemeralMetadata ephemeral_resources = 6
    message EphemeralMetadata { string type_name = 1; }
    message MetadataEphemeral { repeated EphemeralMetadata ephemeral_resources = 6; }
    // ValidateEphemeralResourceConfig.Request, OpenEphemeralResource.Request
    message EphemeralConfig { string type_name = 1; bytes config = 2; }
    // RenewEphemeralResource.Request, CloseEphemeralResource.Request
    message EphemeralPrivate { string type_name = 1; bytes private = 2; }
    // ValidateEphemeralResourceConfig.Response, CloseEphemeralResource.Response
    message Diagnostics { repeated bytes diagnostics = 1; }
    // OpenEphemeralResource.Response (renew_at = 2 and deferred = 5 unused)
    message EphemeralOpened { repeated bytes diagnostics = 1; bytes result = 3; bytes private = 4; }
    // RenewEphemeralResource.Response (renew_at = 2 unused)
    message EphemeralRenewed { repeated bytes diagnostics = 1; bytes private = 3; }
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["EPHEMERAL", "append_fields", "is_write_only", "mark_write_only", "with_ephemeral_metadata",
           "with_ephemeral_schemas", "write_only_allowed"]

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
    # ephemeral resources
    entry = fdp.message_type.add(name="SchemaEphemeral")
    kv = entry.nested_type.add(name="EphemeralResourceSchemasEntry")
    kv.options.map_entry = True
    kv.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    kv.field.add(name="value", number=2, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    entry.field.add(name="ephemeral_resource_schemas", number=8, type=_F.TYPE_MESSAGE,
                    label=_F.LABEL_REPEATED,
                    type_name=f".{_PACKAGE}.SchemaEphemeral.EphemeralResourceSchemasEntry")
    message("EphemeralMetadata", ("type_name", 1, _F.TYPE_STRING, None))
    meta = fdp.message_type.add(name="MetadataEphemeral")
    meta.field.add(name="ephemeral_resources", number=6, type=_F.TYPE_MESSAGE,
                   label=_F.LABEL_REPEATED, type_name=f".{_PACKAGE}.EphemeralMetadata")
    message("EphemeralConfig", ("type_name", 1, _F.TYPE_STRING, None),
            ("config", 2, _F.TYPE_BYTES, None))
    message("EphemeralPrivate", ("type_name", 1, _F.TYPE_STRING, None),
            ("private", 2, _F.TYPE_BYTES, None))
    for name, fields in (("Diagnostics", ()), ("EphemeralOpened", (("result", 3), ("private", 4))),
                         ("EphemeralRenewed", (("private", 3),))):
        m = fdp.message_type.add(name=name)
        m.field.add(name="diagnostics", number=1, type=_F.TYPE_BYTES, label=_F.LABEL_REPEATED)
        for fname, number in fields:
            m.field.add(name=fname, number=number, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    # resource identity (6.9+) and list resources (6.10+, ``terraform query``)
    def bytes_map(msg: Any, field: str, number: int) -> None:
        kv = msg.nested_type.add(name=f"{field.title().replace('_', '')}Entry")
        kv.options.map_entry = True
        kv.field.add(name="key", number=1, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
        kv.field.add(name="value", number=2, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
        msg.field.add(name=field, number=number, type=_F.TYPE_MESSAGE, label=_F.LABEL_REPEATED,
                      type_name=f".{_PACKAGE}.{msg.name}.{kv.name}")

    bytes_map(fdp.message_type.add(name="SchemaList"), "list_resource_schemas", 9)
    meta = fdp.message_type.add(name="MetadataList")
    meta.field.add(name="list_resources", number=7, type=_F.TYPE_MESSAGE,
                   label=_F.LABEL_REPEATED, type_name=f".{_PACKAGE}.EphemeralMetadata")
    message("IdentityAttribute", ("name", 1, _F.TYPE_STRING, None),
            ("type", 2, _F.TYPE_BYTES, None), ("required_for_import", 3, _F.TYPE_BOOL, None),
            ("optional_for_import", 4, _F.TYPE_BOOL, None),
            ("description", 5, _F.TYPE_STRING, None))
    ident = fdp.message_type.add(name="ResourceIdentitySchema")
    ident.field.add(name="version", number=1, type=_F.TYPE_INT64, label=_F.LABEL_OPTIONAL)
    ident.field.add(name="identity_attributes", number=2, type=_F.TYPE_MESSAGE,
                    label=_F.LABEL_REPEATED, type_name=f".{_PACKAGE}.IdentityAttribute")
    message("Empty")
    schemas = fdp.message_type.add(name="IdentitySchemas")
    bytes_map(schemas, "identity_schemas", 1)
    schemas.field.add(name="diagnostics", number=2, type=_F.TYPE_BYTES, label=_F.LABEL_REPEATED)
    message("UpgradeIdentityRequest", ("type_name", 1, _F.TYPE_STRING, None),
            ("version", 2, _F.TYPE_INT64, None), ("raw_identity", 3, _F.TYPE_BYTES, None))
    up = fdp.message_type.add(name="UpgradeIdentityResponse")
    up.field.add(name="upgraded_identity", number=1, type=_F.TYPE_BYTES, label=_F.LABEL_OPTIONAL)
    up.field.add(name="diagnostics", number=2, type=_F.TYPE_BYTES, label=_F.LABEL_REPEATED)
    message("RawStateJson", ("json", 1, _F.TYPE_BYTES, None))
    message("IdentityData", ("identity_data", 1, _F.TYPE_BYTES, None))
    # the identity field of ReadResource/ApplyResourceChange.Response (5),
    # PlanResourceChange.Response (7), ImportResourceState.Request/ImportedResource (4)
    message("Identity5", ("identity", 5, _F.TYPE_BYTES, None))
    message("Identity7", ("identity", 7, _F.TYPE_BYTES, None))
    message("Identity4", ("identity", 4, _F.TYPE_BYTES, None))
    message("ListRequest", ("type_name", 1, _F.TYPE_STRING, None),
            ("config", 2, _F.TYPE_BYTES, None),
            ("include_resource_object", 3, _F.TYPE_BOOL, None),
            ("limit", 4, _F.TYPE_INT64, None))
    ev = fdp.message_type.add(name="ListEvent")
    for fname, number, ftype in (("identity", 1, _F.TYPE_BYTES), ("display_name", 2, _F.TYPE_STRING),
                                 ("resource_object", 3, _F.TYPE_BYTES)):
        ev.field.add(name=fname, number=number, type=ftype, label=_F.LABEL_OPTIONAL)
    ev.field.add(name="diagnostic", number=4, type=_F.TYPE_BYTES, label=_F.LABEL_REPEATED)
    message("ValidateListRequest", ("type_name", 1, _F.TYPE_STRING, None),
            ("config", 2, _F.TYPE_BYTES, None))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"{_PACKAGE}.{m.name}")) for m in fdp.message_type}


_MESSAGES = _build()
_AttributeWriteOnly = _MESSAGES["AttributeWriteOnly"]
_ValidateCaps = _MESSAGES["ValidateResourceConfigCapabilities"]
#: the ephemeral-resource, identity and list-resource messages (see the module
#: docstring), by our names
EPHEMERAL = {name: _MESSAGES[name] for name in (
    "SchemaEphemeral", "MetadataEphemeral", "EphemeralConfig", "EphemeralPrivate",
    "Diagnostics", "EphemeralOpened", "EphemeralRenewed", "SchemaList", "MetadataList",
    "IdentityAttribute", "ResourceIdentitySchema", "Empty", "IdentitySchemas",
    "UpgradeIdentityRequest", "UpgradeIdentityResponse", "RawStateJson", "IdentityData",
    "Identity4", "Identity5", "Identity7", "ListRequest", "ListEvent", "ValidateListRequest")}


def append_fields(message: Any, extra: Any) -> Any:
    """A copy of ``tf``'s ``message`` with the fields of our ``extra`` message added (fields
    ``tf``'s class does not know travel as unknown fields)."""
    return type(message).FromString(message.SerializeToString() + extra.SerializeToString())


def with_ephemeral_schemas(response: Any, schemas: dict[str, Any]) -> Any:
    """A copy of ``tf``'s ``GetProviderSchema.Response`` that also carries
    ``ephemeral_resource_schemas`` (``tf``'s ``Schema`` messages, by type name)."""
    extra = EPHEMERAL["SchemaEphemeral"](ephemeral_resource_schemas={
        k: v.SerializeToString() for k, v in schemas.items()}).SerializeToString()
    return type(response).FromString(response.SerializeToString() + extra)


def with_ephemeral_metadata(response: Any, type_names: list[str]) -> Any:
    """A copy of ``tf``'s ``GetMetadata.Response`` listing the ephemeral resource types."""
    extra = EPHEMERAL["MetadataEphemeral"](ephemeral_resources=[
        _MESSAGES["EphemeralMetadata"](type_name=t) for t in type_names]).SerializeToString()
    return type(response).FromString(response.SerializeToString() + extra)


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

