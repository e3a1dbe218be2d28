"""Our tfplugin6 servicer: ``tf``'s ProviderServicer with the gaps we need closed.

``tf`` 1.2.0 (pinned) does the go-plugin handshake, msgpack/cty encoding and most RPCs. We
override only what it cannot express:

* ``PlanResourceChange``: ``tf`` never shows the resource the configuration, plans creates
  without asking the resource, and decides replacement from schema flags alone. Ours hands
  prior state *and* configuration to the kind adapter, so defaults, "unset keeps the prior
  value", plan-time refusals (a shrink) and value-dependent replacement all come from the
  core's ``diff``.
* ``GetProviderSchema`` announces ``plan_destroy``, and a destroy plan asks the kind what
  the delete would take with it (a volume's snapshots, a tenant's volumes).
* ``UpgradeResourceState`` fits a stored state to the current schema (attributes a kind
  dropped are removed, new ones start null) instead of passing it through.
* every lifecycle RPC is guarded: an exception that escaped a resource becomes an error
  diagnostic (and, for apply, the prior state is kept) instead of a gRPC failure with a
  Python traceback on the user's terminal.
* ``ReadDataSource`` encodes the result with the schema's types (``tf`` sends it raw).
* refined unknowns (msgpack extension 12, Terraform 1.6+) decode as unknown
  (:func:`decode_unknowns`), not as a raw extension object.
* ephemeral resources (protocol 6.7+, :mod:`datera_iac_tf.ephemeral`): their schemas join
  ``GetProviderSchema``/``GetMetadata``, and ``ValidateEphemeralResourceConfig``,
  ``OpenEphemeralResource``, ``RenewEphemeralResource``, ``CloseEphemeralResource`` (which
  ``tf`` does not know) are served through :func:`datera_iac_tf._protocol.ephemeral_handler`.
* write-only attributes (``x_wo``, protocol 6.8+, :mod:`datera_iac_tf._protocol`):
  ``ValidateResourceConfig`` refuses them unless the client announces that it handles them
  (an older Terraform would store them in its state); ``ApplyResourceChange`` hands their
  values - which exist only in the configuration - to create and update inside the planned
  state; and every state returned holds them null.

If ``tf`` is ever replaced, this module and :mod:`datera_iac_tf._serve` are the only ones that
import its private helpers.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable
from typing import Any

import grpc
from tf import types as tf_types
from tf.gen import tfplugin_pb2 as pb
from tf.iface import ReadContext
from tf.provider import EncodeError, ProviderServicer, _decode_state, _encode_state
from tf.types import Unknown
from tf.utils import Diagnostics, _to_attribute_path, read_dynamic_value, to_dynamic_value

from datera_iac.errors import ConfigError
from datera_iac_tf._protocol import (
    EPHEMERAL,
    append_fields,
    with_ephemeral_metadata,
    with_ephemeral_schemas,
    write_only_allowed,
)
from datera_iac_tf.diagnostics import report
from datera_iac_tf.resources import APPLY_LAST, KindResource

__all__ = ["Servicer", "decode_unknowns"]

_REFINED_UNKNOWN = 12  # cty msgpack: an unknown value with refinements (Terraform >= 1.6)


def decode_unknowns() -> None:
    """Teach ``tf``'s msgpack decoder Terraform's *refined* unknowns.

    Terraform 1.6+ sends an unknown value whose prefix or range it already knows (e.g.
    ``format("vol-%d", count.index)`` during validation) as msgpack extension 12; ``tf``
    1.2.0 knows only extension 0 and would hand the raw extension object to the kind as
    if it were the value. Both mean "unknown" to a provider."""
    import tf.utils as tfu

    original = tfu._msgpack_ext_hook
    if getattr(original, "_datera_refined", False):
        return

    def hook(code: int, data: bytes) -> Any:
        if code == _REFINED_UNKNOWN:
            return Unknown
        return original(code, data)

    hook._datera_refined = True  # type: ignore[attr-defined]
    tfu._msgpack_ext_hook = hook


decode_unknowns()


# ---- a resource's values on the wire ---------------------------------------------------------
#
# ``tf``'s ``_decode_state``/``_encode_state`` call every attribute's type (through a closure
# that catches its errors) for each of a volume's 43 attributes, three times per
# ``PlanResourceChange``. For ``String``, ``Number`` and ``Bool`` (exactly these classes:
# a subclass such as ``NormalizedJson`` converts) ``decode`` and ``encode`` return the value
# itself and cannot fail, so these two skip the calls for them and answer what ``tf``'s
# answer: the same dicts, in the same order, with the same objects
# (``tests/terraform/test_fast_paths.py`` compares them).

_IDENTITY = (tf_types.String, tf_types.Number, tf_types.Bool)
#: id(attrs map) -> (the map, kept alive; the names whose type converts)
_CONVERTING: dict[int, tuple[dict[str, Any], frozenset[str]]] = {}


def _converting(attrs: dict[str, Any]) -> frozenset[str]:
    """The attributes of ``attrs`` (name -> ``tf`` Attribute) whose type is not one that
    ``decode``/``encode`` as the identity. The servicer keeps one map per resource type, so
    this is worked out once per type."""
    known = _CONVERTING.get(id(attrs))
    if known is None or known[0] is not attrs:
        known = (attrs, frozenset(k for k, a in attrs.items() if type(a.type) not in _IDENTITY))
        _CONVERTING[id(attrs)] = known
    return known[1]


def _decode(diags: Any, attrs: dict[str, Any], blocks: dict[str, Any],
            state: Any) -> tuple[dict | None, dict | None]:
    """``tf.provider._decode_state``: ``(the raw value, the decoded value)`` of a
    DynamicValue (or an already read dict), an error diagnostic per attribute that fails
    to decode."""
    if blocks:  # (no kind has nested blocks)
        return _decode_state(diags, attrs, blocks, state)
    st = read_dynamic_value(state) if isinstance(state, pb.DynamicValue) else state
    if st is None:
        return None, None
    converting = _converting(attrs)
    out = {}
    for k, v in st.items():
        if k not in attrs:
            continue
        if k not in converting or v is tf_types.Unknown:
            out[k] = v
            continue
        try:
            out[k] = attrs[k].type.decode(v)
        except Exception as exc:  # noqa: BLE001 - as tf: a diagnostic, the value unknown
            diags.add_error(f"Failed to decode field '{k}'",
                            detail=f"Error decoding field '{k}': {exc}", path=[k])
            out[k] = tf_types.Unknown
    return st, out


def _encode(attrs: dict[str, Any], blocks: dict[str, Any], state: dict | None,
            old: dict | None) -> Any:
    """``tf.provider._encode_state``: the DynamicValue of ``state``, each attribute's
    encoding taken from ``old`` (an encoded state) where it is equal to the new one."""
    if blocks:
        return _encode_state(attrs, blocks, state, old)
    if state is None:
        return to_dynamic_value(None)
    converting = _converting(attrs)
    encoded = {}
    for k, v in state.items():
        if v is tf_types.Unknown:
            encoded[k] = v
        elif k not in converting:
            if k not in attrs:
                raise EncodeError(f"Failed to encode field '{k}': KeyError: {k!r}")
            encoded[k] = old[k] if old and k in old and old[k] == v else v
        else:
            try:
                t = attrs[k].type
                if not old or k not in old:
                    encoded[k] = t.encode(v)
                elif type(t).__name__ in ("Number", "String", "Bool"):  # as tf
                    new = t.encode(v)
                    encoded[k] = old[k] if old[k] == new else new
                elif old[k] is tf_types.Unknown:
                    encoded[k] = t.encode(v)
                elif t.semantically_equal(t.decode(old[k]), v):
                    encoded[k] = old[k]
                else:
                    encoded[k] = t.encode(v)
            except Exception as exc:
                raise EncodeError(f"Failed to encode field '{k}': {type(exc).__name__}: {exc}"
                                  ) from exc
    return to_dynamic_value(encoded)


def _copy(message: Any) -> Any:
    out = type(message)()
    out.CopyFrom(message)
    return out


def _guard(response: Callable[..., Any], keep_prior: bool = False) -> Callable[..., Any]:
    """Turn an escaped exception into an error diagnostic of ``response``'s type."""

    def deco(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Servicer, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return method(self, request, context)
            except Exception as e:  # noqa: BLE001
                diags = Diagnostics()
                what = f"{getattr(request, 'type_name', '') or 'provider'} {method.__name__}"
                report(diags, e, what=what.strip(), secrets=self.app.secrets())
                kw: dict[str, Any] = {"diagnostics": diags.to_pb()}
                if keep_prior and request.HasField("prior_state"):
                    kw["new_state"] = request.prior_state
                return response(**kw)

        return wrapper

    return deco


def _private(raw: bytes) -> dict[str, Any]:
    """A resource's private state as this provider writes it (JSON), or {} (none yet, or
    written by another version)."""
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _has_state(value: Any) -> bool:
    """Whether a DynamicValue holds an object (not null: a destroyed or gone resource)."""
    return bool(value.msgpack or value.json) and read_dynamic_value(value) is not None


def _private_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps({k: v for k, v in data.items() if v is not None},
                      separators=(",", ":"), sort_keys=True, default=str).encode()


class Servicer(ProviderServicer):
    """ProviderServicer with config-aware planning and guarded RPCs."""

    def _secret_pairs(self, type_name: str) -> tuple[tuple[str, str, str], ...]:
        """``(x, x_wo, x_wo_version)`` of a resource type (none for a class that is not a
        :class:`datera_iac_tf.resources.KindResource`)."""
        adapter = getattr(self._get_res_cls(type_name), "adapter", None)
        return adapter.schema.secret_pairs if adapter is not None else ()

    def GetProviderSchema(self, request: Any, context: grpc.ServicerContext) -> Any:
        """``tf``'s schema, saying that Terraform may cache it: Terraform launches the
        provider 2-3 times per command, and with ``get_provider_schema_optional`` only the
        first launch is asked for the schema (the others skip the call). It also announces
        ``plan_destroy`` (``tf`` says so only in GetMetadata): Terraform then plans each
        destroy with the provider, which refuses one that would take objects with it that
        the configuration does not destroy first (issue 16)."""
        response = super().GetProviderSchema(request, context)
        response.server_capabilities.get_provider_schema_optional = True
        response.server_capabilities.plan_destroy = True
        from datera_iac_tf.ephemeral import EPHEMERAL_RESOURCES

        response = with_ephemeral_schemas(response, {n: c.schema().to_pb()
                                                     for n, c in EPHEMERAL_RESOURCES.items()})
        return append_fields(response, EPHEMERAL["SchemaList"](list_resource_schemas={
            n: r.schema().to_pb().SerializeToString() for n, r in self._lists().items()}))

    def GetMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        from datera_iac_tf.ephemeral import EPHEMERAL_RESOURCES

        response = with_ephemeral_metadata(super().GetMetadata(request, context),
                                           list(EPHEMERAL_RESOURCES))
        meta = EPHEMERAL["MetadataList"]()
        for n in self._lists():
            meta.list_resources.add(type_name=n)
        return append_fields(response, meta)

    # ---- resource identity and list resources (datera_iac_tf.list_resources) ----------------

    def _lists(self) -> dict[str, Any]:
        if "_list_resources" not in self.__dict__:
            from datera_iac_tf.list_resources import list_resources

            self.__dict__["_list_resources"] = list_resources(self.app)
        return self.__dict__["_list_resources"]

    def _identity_bytes(self, type_name: str, state: Any) -> bytes | None:
        """The ``ResourceIdentityData`` of a listed kind's state (a dict or a
        DynamicValue), or None (another kind, no state, an id not known yet)."""
        if type_name not in self._lists() or state is None:
            return None
        if isinstance(state, pb.DynamicValue):
            if not (state.msgpack or state.json):
                return None
            state = read_dynamic_value(state)
        oid = state.get("id") if isinstance(state, dict) else None
        if not isinstance(oid, str) or not oid:
            return None
        return EPHEMERAL["IdentityData"](
            identity_data=to_dynamic_value({"id": oid}).SerializeToString()).SerializeToString()

    def _dsp_here(self, rec: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The configured DSP as a resource's private state records it (endpoint, and the
        /system uuid/name the client knows: no request), or with ``rec`` the configured
        DSP when it is not ``rec``'s (else None). Empty/None before configuration."""
        try:
            ctx = self.app.context()
        except ConfigError:  # not configured (yet): nothing to compare or record
            return None if rec is not None else {}
        # here, not at import: a launch that only validates never loads the DSP client
        from datera_iac.dsp.identity import dsp_identity, other_dsp

        base = getattr(ctx.config, "base_url", None)
        if rec is not None:
            return other_dsp(rec, ctx.client, base)
        return dsp_identity(ctx.client, base, fetch=False)

    def _wrong_dsp(self, type_name: str, private: dict[str, Any], state: Any) -> Diagnostics | None:
        """An error when the object (``state``: a dict or a DynamicValue) was made on another
        DSP than the configured one (its private state records where: issue 16, case 1): Terraform would otherwise read it
        as gone and plan to create it again here. None when it is this DSP's (or the
        record predates this check)."""
        rec = private.get("dsp")
        if not isinstance(rec, dict) or not rec:
            return None
        here = self._dsp_here(rec)
        if here is None:
            return None
        from datera_iac.dsp.identity import describe_dsp

        if isinstance(state, pb.DynamicValue):  # decoded only for this message
            state = read_dynamic_value(state)
        oid = state.get("id") if isinstance(state, dict) else None
        diags = Diagnostics()
        diags.add_error(
            f"{type_name} {oid or ''} belongs to another DSP".replace("  ", " "),
            f"It was made on {describe_dsp(rec)}, but the provider is configured for "
            f"{describe_dsp(here)}; nothing was read or changed. Point the provider at "
            f"{rec.get('endpoint')} (endpoint, or DATERA_ENDPOINT). To move the resource "
            "to this DSP on purpose: terraform state rm ADDRESS, then import the object "
            "from this DSP.")
        return diags

    def _identified(self, response: Any, type_name: str, state: Any, field: str) -> Any:
        ident = self._identity_bytes(type_name, state)
        if ident is None:
            return response
        return append_fields(response, EPHEMERAL[field](identity=ident))

    def GetResourceIdentitySchemas(self, request: Any, context: Any) -> Any:
        out = EPHEMERAL["IdentitySchemas"]()
        for name, lr in self._lists().items():
            schema = EPHEMERAL["ResourceIdentitySchema"](version=0)
            for attr, typ, doc in lr.identity_schema():
                schema.identity_attributes.add(name=attr, type=typ.tf_type(),
                                               required_for_import=True, description=doc)
            out.identity_schemas[name] = schema.SerializeToString()
        return out

    def UpgradeResourceIdentity(self, request: Any, context: Any) -> Any:
        raw = EPHEMERAL["RawStateJson"].FromString(request.raw_identity).json
        data = json.loads(raw or b"{}") or {}
        ident = self._identity_bytes(request.type_name, {"id": data.get("id")})
        return EPHEMERAL["UpgradeIdentityResponse"](upgraded_identity=ident)

    def ValidateListResourceConfig(self, request: Any, context: Any) -> Any:
        diags = Diagnostics()
        if request.type_name not in self._lists():
            diags.add_error(f"unknown list resource {request.type_name!r}")
        return EPHEMERAL["Diagnostics"](
            diagnostics=[d.SerializeToString() for d in diags.to_pb()])

    def ListResource(self, request: Any, context: Any) -> Any:
        """One event per listed object: its identity, a display name, and (when asked)
        the resource object as an import reads it; an error is one event's diagnostic."""
        lr = self._lists()[request.type_name]
        diags = Diagnostics()
        try:
            amap = {a.name: a for a in lr.schema().attributes}
            _, config = _decode_state(diags, amap, {},
                                      pb.DynamicValue.FromString(request.config))
            rattrs = self._get_res_attrs(request.type_name)
            for oid, label, state in lr.results(self.app, config or {},
                                                with_object=request.include_resource_object,
                                                limit=request.limit):
                ev = EPHEMERAL["ListEvent"](identity=self._identity_bytes(
                    request.type_name, {"id": oid}), display_name=label)
                if state is not None:
                    full = {n: state.get(n) for n in rattrs}
                    ev.resource_object = _encode_state(rattrs, {}, full, None).SerializeToString()
                yield ev
        except Exception as e:  # noqa: BLE001 - reported as the stream's last event
            report(diags, e, what=f"list {request.type_name}", secrets=self.app.secrets())
        if diags.diagnostics:
            yield EPHEMERAL["ListEvent"](
                diagnostic=[d.SerializeToString() for d in diags.to_pb()])

    # ---- ephemeral resources (protocol 6.7+; messages in datera_iac_tf._protocol.EPHEMERAL) ----

    def _ephemeral(self, request: Any, diags: Diagnostics) -> tuple[Any, dict[str, Any]]:
        from datera_iac_tf.ephemeral import EPHEMERAL_RESOURCES

        cls = EPHEMERAL_RESOURCES[request.type_name]
        amap = {a.name: a for a in cls.schema().attributes}
        _, config = _decode_state(diags, amap, {}, pb.DynamicValue.FromString(request.config))
        config = config or {}
        problem = cls.check(config)
        if problem:
            diags.add_error(f"{request.type_name}: {problem[1]}", path=[problem[0]])
        return cls, config

    def ValidateEphemeralResourceConfig(self, request: Any, context: Any) -> Any:
        diags = Diagnostics()
        try:
            self._ephemeral(request, diags)
        except Exception as e:  # noqa: BLE001
            report(diags, e, what=f"{request.type_name} validate", secrets=self.app.secrets())
        return EPHEMERAL["Diagnostics"](
            diagnostics=[d.SerializeToString() for d in diags.to_pb()])

    def OpenEphemeralResource(self, request: Any, context: Any) -> Any:
        """The values, in the response only: Terraform keeps them in memory for this run."""
        diags = Diagnostics()
        result = None
        try:
            cls, config = self._ephemeral(request, diags)
            if not diags.has_errors():
                amap = {a.name: a for a in cls.schema().attributes}
                values = cls.open(config)
                result = to_dynamic_value({k: (amap[k].type.encode(v) if v is not None else None)
                                           for k, v in values.items()}).SerializeToString()
        except Exception as e:  # noqa: BLE001
            report(diags, e, what=f"{request.type_name} open", secrets=self.app.secrets())
        return EPHEMERAL["EphemeralOpened"](
            diagnostics=[d.SerializeToString() for d in diags.to_pb()], result=result)

    def RenewEphemeralResource(self, request: Any, context: Any) -> Any:
        return EPHEMERAL["EphemeralRenewed"]()  # nothing held: never asked (no renew_at)

    def CloseEphemeralResource(self, request: Any, context: Any) -> Any:
        return EPHEMERAL["Diagnostics"]()  # nothing held on the DSP

    @_guard(pb.PlanResourceChange.Response)
    def PlanResourceChange(self, request: Any, context: grpc.ServicerContext) -> Any:
        type_name = request.type_name
        diags = Diagnostics()
        attrs_ = self._get_res_attrs(type_name)
        blocks = self._get_res_blocks(type_name)
        _, prior = _decode(diags, attrs_, blocks, request.prior_state)
        proposed_enc, proposed = _decode(diags, attrs_, blocks, request.proposed_new_state)
        _, config = _decode(diags, attrs_, blocks, request.config)
        if diags.has_errors():
            return pb.PlanResourceChange.Response(diagnostics=diags.to_pb())
        inst = self.app.new_resource(self._get_res_cls(type_name))
        if proposed is None:  # destroy: only what the delete would take with it
            if prior is not None and isinstance(inst, KindResource):
                # Terraform plans a destroy after those of the objects depending on it (a
                # volume after its snapshots): theirs are deleted first, not with it
                planned = self.__dict__.setdefault("_planned_deletes", set())
                inst.plan_delete(diags, prior, deleted_first=set(planned))
                if prior.get("id"):
                    planned.add(prior["id"])
            return pb.PlanResourceChange.Response(planned_state=request.proposed_new_state,
                                                  diagnostics=diags.to_pb())
        prior_private = _private(request.prior_private) if prior is not None else {}
        if prior_private.get("dsp"):  # (plan -refresh=false reads nothing)
            wrong = self._wrong_dsp(type_name, prior_private, prior)
            if wrong is not None:
                return pb.PlanResourceChange.Response(diagnostics=wrong.to_pb())
        last = prior_private.get("declared")
        outcome = inst.plan_change(diags, prior, config or {}, last=last)
        if outcome is None:
            return pb.PlanResourceChange.Response(diagnostics=diags.to_pb())
        if outcome.replaces and prior is not None and isinstance(inst, KindResource):
            inst.plan_delete(diags, prior, declared=config or {})
        # the private state carries the declaration forward: what the apply writes is
        # what the next plan compares against ("last"), never a secret
        declared = outcome.declared if outcome.declared is not None else last
        response = pb.PlanResourceChange.Response(
            planned_state=_encode(attrs_, blocks, outcome.values, proposed_enc),
            requires_replace=[_to_attribute_path([n]) for n in outcome.replaces],
            planned_private=_private_bytes({"declared": declared, "last": last,
                                            "dsp": prior_private.get("dsp")}),
            diagnostics=diags.to_pb(),
        )
        return self._identified(response, type_name, outcome.values, "Identity7")

    @_guard(pb.UpgradeResourceState.Response)
    def UpgradeResourceState(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Fit a stored state to the current schema: attributes a kind dropped are removed,
        new ones start null (the next refresh fills them). ``tf`` passes the stored JSON
        through unchanged, which Terraform rejects as soon as a kind gains or loses a field
        between two provider versions."""
        diags = Diagnostics()
        if request.raw_state.flatmap:
            diags.add_error("Unsupported state format",
                            "This state was written in the legacy flatmap format, which "
                            "terraform-provider-datera never wrote; re-import the resource.")
            return pb.UpgradeResourceState.Response(diagnostics=diags.to_pb())
        state = json.loads(request.raw_state.json or b"{}") or {}
        attrs_ = self._get_res_attrs(request.type_name)
        fitted = {name: state.get(name) for name in attrs_}
        return pb.UpgradeResourceState.Response(
            upgraded_state=to_dynamic_value(fitted), diagnostics=diags.to_pb())

    @_guard(pb.ApplyResourceChange.Response, keep_prior=True)
    def ApplyResourceChange(self, request: Any, context: grpc.ServicerContext) -> Any:
        """``tf``'s apply, with the write-only values of the configuration added to the
        planned state the resource gets (Terraform plans them null; the adapter reads
        ``x_wo`` from there and never returns it)."""
        pairs = self._secret_pairs(request.type_name)
        planned = read_dynamic_value(request.planned_state) if pairs else None
        if planned is not None:
            config = read_dynamic_value(request.config) or {}
            values = {wo: config.get(wo) for _, wo, _ in pairs if config.get(wo) is not None}
            if values:
                request = _copy(request)
                request.planned_state.CopyFrom(to_dynamic_value({**planned, **values}))
        private = _private(request.planned_private)
        token = APPLY_LAST.set(private.get("last"))
        listings = getattr(self.app, "listings", None)
        checks = getattr(self.app, "delete_checks", None)
        adapter = getattr(self.app, "adapters", {}).get(request.type_name)
        try:
            with contextlib.ExitStack() as writes:
                if listings is not None:
                    writes.enter_context(listings.writing())
                if checks is not None:
                    writes.enter_context(checks.writing(
                        adapter.kind if adapter is not None else None,
                        deleting=not _has_state(request.planned_state)))
                response = super().ApplyResourceChange(request, context)
        finally:
            APPLY_LAST.reset(token)
        failed = any(d.severity == pb.Diagnostic.ERROR for d in response.diagnostics)
        # after a failure the DSP may not hold the new declaration: keep the prior one
        response.private = _private_bytes(
            {"declared": private.get("last") if failed else private.get("declared"),
             # the DSP it lives on: a later run against another DSP refuses (ReadResource)
             "dsp": private.get("dsp") or (self._dsp_here() or None
                                           if _has_state(response.new_state) else None)})
        return self._identified(response, request.type_name, response.new_state, "Identity5")

    @_guard(pb.ReadResource.Response, keep_prior=False)
    def ReadResource(self, request: Any, context: grpc.ServicerContext) -> Any:
        private = _private(request.private)
        if private.get("dsp"):
            wrong = self._wrong_dsp(request.type_name, private, request.current_state)
            if wrong is not None:
                return pb.ReadResource.Response(new_state=request.current_state,
                                                private=request.private,
                                                diagnostics=wrong.to_pb())
        response, state = self._read(request)
        # a refresh does not change the declaration; it records the DSP of an object
        # whose private state does not name it yet (made by an earlier provider version)
        if not private.get("dsp") and state is not None and not any(
                d.severity == pb.Diagnostic.ERROR for d in response.diagnostics):
            private["dsp"] = self._dsp_here() or None
            response.private = _private_bytes(private)
        else:
            response.private = request.private
        return self._identified(response, request.type_name, state, "Identity5")

    def _read(self, request: Any) -> tuple[Any, dict[str, Any] | None]:
        """``tf``'s ReadResource (with :func:`_decode` and :func:`_encode`), and the new
        state it encoded (None: none, the object is gone)."""
        diags = Diagnostics()
        type_name = request.type_name
        attrs_ = self._get_res_attrs(type_name)
        blocks = self._get_res_blocks(type_name)
        current_enc, current = _decode(diags, attrs_, blocks, request.current_state)
        if diags.has_errors():
            return pb.ReadResource.Response(diagnostics=diags.to_pb()), None
        if current is None:
            diags.add_error(f"ReadResource {type_name} called with no state",
                            detail="This is a bug in the Plugin SDK")
            return pb.ReadResource.Response(diagnostics=diags.to_pb()), None
        inst = self.app.new_resource(self._get_res_cls(type_name))
        new_state = inst.read(ReadContext(diags, type_name), current)
        return pb.ReadResource.Response(new_state=_encode(attrs_, blocks, new_state, current_enc),
                                        diagnostics=diags.to_pb()), new_state

    @_guard(pb.ImportResourceState.Response)
    def ImportResourceState(self, request: Any, context: grpc.ServicerContext) -> Any:
        """``tf``'s import by id, or by identity (an ``import`` block with ``identity``,
        as ``terraform query -generate-config-out`` writes): the identity's id."""
        if not request.id:
            raw = EPHEMERAL["Identity4"].FromString(request.SerializeToString()).identity
            data = EPHEMERAL["IdentityData"].FromString(raw).identity_data if raw else b""
            ident = read_dynamic_value(pb.DynamicValue.FromString(data)) if data else None
            if isinstance(ident, dict) and ident.get("id"):
                request = _copy(request)
                request.id = str(ident["id"])
        response = super().ImportResourceState(request, context)
        items = [self._identified(r, request.type_name, r.state, "Identity4")
                 for r in response.imported_resources]
        del response.imported_resources[:]
        response.imported_resources.extend(items)
        return response

    @_guard(pb.ValidateResourceConfig.Response)
    def ValidateResourceConfig(self, request: Any, context: grpc.ServicerContext) -> Any:
        """``tf``'s validation, after refusing write-only values from a client that does not
        say it handles them: it would treat them as ordinary arguments and store them."""
        pairs = self._secret_pairs(request.type_name)
        if pairs and not write_only_allowed(request):
            config = read_dynamic_value(request.config) or {}
            diags = Diagnostics()
            for name, wo, _ in pairs:
                if config.get(wo) is not None:
                    diags.add_error(
                        f"{request.type_name}: {wo} needs Terraform 1.11 or later",
                        f"{wo} is a write-only argument, and this Terraform does not support "
                        "write-only arguments: it would store the value in its state in "
                        f"clear. Upgrade Terraform, or set {name} instead (stored in the "
                        "state: protect the state file).")  # no path: see resources.py
            if diags.has_errors():
                return pb.ValidateResourceConfig.Response(diagnostics=diags.to_pb())
        return super().ValidateResourceConfig(request, context)

    @_guard(pb.ValidateDataResourceConfig.Response)
    def ValidateDataResourceConfig(self, request: Any, context: grpc.ServicerContext) -> Any:
        return super().ValidateDataResourceConfig(request, context)

    @_guard(pb.ConfigureProvider.Response)
    def ConfigureProvider(self, request: Any, context: grpc.ServicerContext) -> Any:
        return super().ConfigureProvider(request, context)

    @_guard(pb.ReadDataSource.Response)
    def ReadDataSource(self, request: Any, context: grpc.ServicerContext) -> Any:
        klass = self._get_ds_cls(request.type_name)
        schema = klass.get_schema()
        amap = {a.name: a for a in schema.attributes}
        diags = Diagnostics()
        _, config = _decode_state(diags, amap, {}, request.config)
        if diags.has_errors():
            return pb.ReadDataSource.Response(diagnostics=diags.to_pb())
        from tf.iface import ReadDataContext

        inst = self.app.new_data_source(klass)
        state = inst.read(ReadDataContext(diags, request.type_name), config or {})
        encoded = None
        if state is not None and not diags.has_errors():
            full = {name: state.get(name) for name in amap}
            encoded = to_dynamic_value(
                {k: (amap[k].type.encode(v) if v is not None else None) for k, v in full.items()}
            )
        return pb.ReadDataSource.Response(diagnostics=diags.to_pb(), state=encoded)

