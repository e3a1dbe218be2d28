"""``pulumi-resource-datera``: the Pulumi resource provider plugin (a gRPC server).

The Pulumi engine starts this program, reads the port it prints on stdout, and calls the
``pulumirpc.ResourceProvider`` service on 127.0.0.1. Each call is translated to the kind's
methods by :class:`~datera_iac.pulumi._adapter.ResourceAdapter`; this module only speaks
the protocol: it decodes structs, maps core errors to gRPC statuses with a clear message
(no traceback, no secret), and serves.

It is a direct ``ResourceProviderServicer`` rather than ``pulumi.provider.experimental``:
the kinds are synchronous, errors need their own status codes and messages, and preview
needs the unknown sentinel that the experimental ``PropertyValue`` cannot marshal (3.272).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2 as pb
from pulumi.runtime.proto import plugin_pb2, provider_pb2_grpc

from datera_iac import errors
from datera_iac.dsp.identity import describe_dsp, dsp_identity, other_dsp
from datera_iac.pulumi import _codec
from datera_iac.pulumi._adapter import ResourceAdapter
from datera_iac.pulumi._codec import urn_name, urn_type
from datera_iac.resources.base import Context, Kind
from datera_iac.resources.batching import DeleteChecks, SharedListings
from datera_iac.resources.frontend import with_timeout
from datera_iac.resources.intents import IntentJournal

__all__ = ["DateraProvider", "ContextFactory", "default_context_factory", "serve", "main"]

log = logging.getLogger("datera_iac.pulumi")

#: Builds the core's Context from the provider configuration (snake_case keys).
ContextFactory = Callable[[Mapping[str, Any]], Context]

#: The output property that records the DSP an object lives on (endpoint, /system uuid and
#: name): a later run whose provider points at another DSP refuses instead of reading the
#: object as gone (issue 16, case 1). Not in the schema: the SDKs never see it.
DSP_KEY = "__dsp"

#: Keys the engine puts into a provider's inputs that are not configuration.
_ENGINE_CONFIG_KEYS = frozenset({"version", "pluginDownloadURL"})

_R = TypeVar("_R")


def pulumi_intents() -> IntentJournal:
    """Where the provider records its creates in flight (:mod:`datera_iac.resources.intents`):
    ``$PULUMI_HOME/datera-intents/`` (default ``~/.pulumi``), beside the Pulumi CLI's own
    files of this user. Keyed by each resource's URN (project, stack, type and name)."""
    return IntentJournal(os.environ.get("PULUMI_HOME") or os.path.expanduser("~/.pulumi"))


def plugin_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("datera-iac")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.1.0"


def default_context_factory(config: Mapping[str, Any]) -> Context:
    """``DateraConfig.from_mapping`` (env-var fallbacks included) and a ``DspClient``.

    No node runner is set: a NodeAttachment reaches its ``node`` (local or ssh://) itself."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    cfg = DateraConfig.from_mapping(dict(config))
    return Context(client=DspClient(cfg), config=cfg)


_STATUS: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (errors.InputError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.ConfigError, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.AuthFailed, grpc.StatusCode.UNAUTHENTICATED),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.Conflict, grpc.StatusCode.ALREADY_EXISTS),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.ConnectionLost, grpc.StatusCode.UNAVAILABLE),
    (errors.WaitTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (errors.DateraIacError, grpc.StatusCode.UNKNOWN),
]


def _rpc(fn: Callable[..., _R]) -> Callable[..., _R]:
    """Turn exceptions into gRPC errors the engine shows as the resource's failure.

    Known errors (ours) carry their own message; anything else is a bug: its traceback goes
    to stderr (which the engine logs) and the caller gets the exception's type and text."""

    @functools.wraps(fn)
    def wrapper(self: "DateraProvider", request: Any, context: grpc.ServicerContext) -> _R:
        urn = getattr(request, "urn", "") or ""
        where = f"{urn_type(urn)} {urn_name(urn)!r}" if urn else ""
        try:
            return fn(self, request, context)
        except errors.DateraIacError as e:
            code = next(c for t, c in _STATUS if isinstance(e, t))
            # an InputError already names the kind, the resource and the field
            named = isinstance(e, errors.InputError) and e.resource or not where
            # the engine shows one error per resource: why the DSP is unreachable once
            text = e.per_resource() if isinstance(e, errors.Unreachable) else str(e)
            context.abort(code, text if named else f"{where}: {text}")
        except Exception as e:  # noqa: BLE001 - the engine must get a status, not a hang
            log.exception("%s failed for %s", fn.__name__, where or "the provider")
            context.abort(grpc.StatusCode.INTERNAL, f"{fn.__name__}: {type(e).__name__}: {e}")
        raise AssertionError("unreachable")  # pragma: no cover (abort raises)

    return wrapper


class DateraProvider(provider_pb2_grpc.ResourceProviderServicer):
    """The ``pulumirpc.ResourceProvider`` service for the datera package.

    ``kinds`` maps type tokens to kinds (default: every registered kind);
    ``context_factory`` turns the configuration into a core Context (default:
    :func:`default_context_factory`). Both are injectable so the server can be tested
    with a toy kind."""

    def __init__(
        self,
        kinds: Mapping[str, Kind[Any, Any]] | None = None,
        context_factory: ContextFactory = default_context_factory,
        version: str | None = None,
        functions: Mapping[str, Any] | None = None,
        intents: IntentJournal | None = None,
    ) -> None:
        if kinds is None:
            kinds = registered_kinds()
            if functions is None:
                from datera_iac.pulumi.functions import functions as all_functions

                functions = all_functions()
        self._functions = dict(functions or {})
        #: creates in flight: a create whose answer was lost (the DSP died, this process was
        #: killed) is adopted by the next one of its URN, by the token it wrote
        self.intents = intents or pulumi_intents()
        self._adapters = {token: ResourceAdapter(k, self.intents) for token, k in kinds.items()}
        #: one refresh wave's list calls, shared by every kind's read batcher; dropped
        #: around each write (datera_iac.resources.batching)
        self.listings = SharedListings()
        for a in self._adapters.values():
            if a.batcher is not None:
                a.batcher.listings = self.listings
        #: the listings the deletes' dependents checks share (one per kind with a bulk
        #: answer: a destroy reads no volume alone); every write is marked (_writing)
        self.delete_checks = DeleteChecks(a.kind for a in self._adapters.values())
        self._context_factory = context_factory
        self._version = version or plugin_version()
        self._config: dict[str, Any] | None = None
        self._ctx: Context | None = None
        self._lock = threading.Lock()

    # ---- plumbing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, adapter: ResourceAdapter, *, deleting: bool) -> Iterator[None]:
        """Around a write: the refresh wave's listings are not used after it, nor the
        delete checks' (except a kind's own across its deletes: ``DeleteChecks``)."""
        with self.listings.writing(), self.delete_checks.writing(adapter.kind,
                                                                  deleting=deleting):
            yield

    def _adapter(self, request: Any) -> ResourceAdapter:
        token = getattr(request, "type", "") or urn_type(request.urn)
        try:
            return self._adapters[token]
        except KeyError:
            raise errors.InputError(
                f"unknown resource type {token!r}",
                fix="known types: " + ", ".join(sorted(self._adapters)),
            ) from None

    def _core_config(self) -> Any:
        """The DateraConfig when the provider can build its context now (defaults such as
        ``datera_volume_type_defaults`` for a diff), else None (a preview with unknowns)."""
        try:
            return self._context().config
        except errors.ConfigError:
            return None

    def _context(self) -> Context:
        """The core Context, built once on first use (so preview never logs in)."""
        with self._lock:
            if self._ctx is None:
                if self._config is None:
                    raise errors.ConfigError(
                        "the datera provider is not configured (Configure was not called)"
                    )
                if _codec.has_unknown(self._config):
                    raise errors.ConfigError(
                        "the datera provider configuration depends on values that are not "
                        "known yet; they must be known before resources can be changed"
                    )
                self._ctx = self._context_factory(self._config)
            return self._ctx

    def _config_data(self, props: Mapping[str, Any]) -> dict[str, Any]:
        from datera_iac.pulumi._derive import config_props

        by_name = {p.name: p.field for p in config_props()}
        return {
            by_name.get(k, k): _codec.reveal(v)
            for k, v in props.items()
            if k not in _ENGINE_CONFIG_KEYS and not k.startswith("__")
        }

    def _dsp_here(self) -> dict[str, Any]:
        """The configured DSP as a record, from what the client knows already (its
        endpoint; the /system uuid and name once it has read them): no request."""
        ctx = self._context()
        return dsp_identity(ctx.client, getattr(ctx.config, "base_url", None), fetch=False)

    def _same_dsp(self, urn: str, rid: str, state: Mapping[str, Any]) -> None:
        """Refuse (before any read or write) an object whose outputs record another DSP
        than the configured one."""
        rec = state.get(DSP_KEY)
        if not isinstance(rec, Mapping) or not rec:
            return
        ctx = self._context()
        here = other_dsp(rec, ctx.client, getattr(ctx.config, "base_url", None))
        if here is not None:
            raise errors.ConfigError(
                f"{rid} belongs to another DSP: it was made on {describe_dsp(rec)}, but the "
                f"provider is configured for {describe_dsp(here)}; nothing was read or "
                f"changed. Set datera:endpoint to {rec.get('endpoint')}; to move it to this "
                "DSP on purpose: pulumi state delete URN, then pulumi import it from this DSP")

    def _recorded(self, state: dict[str, Any], old: Mapping[str, Any] | None = None
                  ) -> dict[str, Any]:
        """Outputs with the DSP record (the old one, else this DSP's)."""
        rec = (old or {}).get(DSP_KEY) or self._dsp_here()
        return {**state, DSP_KEY: dict(rec)} if rec else state

    # ---- plugin and schema ----------------------------------------------------------------

    def Handshake(self, request: Any, context: Any) -> Any:
        """The first call of current engines (before GetPluginInfo and Configure): say which
        protocol features this provider takes. Secrets are accepted; resource references
        and output values in inputs are not (the engine then sends plain values);
        autonaming options are honoured in Check."""
        return pb.ProviderHandshakeResponse(
            accept_secrets=True, accept_resources=False, accept_outputs=False,
            supports_autonaming_configuration=True,
        )

    def GetPluginInfo(self, request: empty_pb2.Empty, context: Any) -> plugin_pb2.PluginInfo:
        return plugin_pb2.PluginInfo(version=self._version)

    @_rpc
    def GetSchema(self, request: pb.GetSchemaRequest, context: Any) -> pb.GetSchemaResponse:
        from datera_iac.pulumi.schema import build_schema

        schema = build_schema({t: a.kind for t, a in self._adapters.items()}, self._version,
                              functions=self._functions)
        return pb.GetSchemaResponse(schema=json.dumps(schema))

    # ---- configuration ----------------------------------------------------------------------

    @_rpc
    def CheckConfig(self, request: pb.CheckRequest, context: Any) -> pb.CheckResponse:
        """Validate the provider configuration with ``DateraConfig.from_mapping``."""
        from datera_iac.config import DateraConfig
        from datera_iac.pulumi._derive import config_props

        news = _codec.decode(request.news)
        secret = {p.name for p in config_props() if p.secret}
        inputs = {
            k: _codec.Secret(v) if k in secret and not isinstance(v, _codec.Secret) else v
            for k, v in news.items()
        }
        failures = []
        if not _codec.has_unknown(news):
            try:
                DateraConfig.from_mapping(self._config_data(news))
            except (errors.ConfigError, errors.InputError, ValueError, TypeError) as e:
                field = getattr(e, "field", None) or str(e).partition(":")[0].strip()
                prop = next((p.name for p in config_props() if p.field == field), field or "")
                failures.append(pb.CheckFailure(property=prop, reason=str(e)))
        return pb.CheckResponse(inputs=_codec.encode(inputs), failures=failures)

    @_rpc
    def DiffConfig(self, request: pb.DiffRequest, context: Any) -> pb.DiffResponse:
        """A configuration change updates the provider in place: resources are never
        replaced because the endpoint or credentials changed."""
        olds = _codec.reveal(_codec.decode(request.olds))
        news = _codec.reveal(_codec.decode(request.news))
        changed = sorted(
            k for k in set(olds) | set(news)
            if k not in _ENGINE_CONFIG_KEYS and olds.get(k) != news.get(k)
        )
        return pb.DiffResponse(
            changes=pb.DiffResponse.DIFF_SOME if changed else pb.DiffResponse.DIFF_NONE,
            diffs=changed,
            detailedDiff={k: pb.PropertyDiff(kind=pb.PropertyDiff.UPDATE) for k in changed},
            hasDetailedDiff=True,
        )

    @_rpc
    def Configure(self, request: pb.ConfigureRequest, context: Any) -> pb.ConfigureResponse:
        """Keep the configuration; the DSP client is made on the first non-preview call."""
        args = _codec.decode(request.args)
        if not args and request.variables:
            args = self._from_variables(dict(request.variables))
        with self._lock:
            self._config = self._config_data(args)
            self._ctx = None
        return pb.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=False,
            acceptOutputs=False, supports_autonaming_configuration=True,
        )

    def _from_variables(self, variables: Mapping[str, str]) -> dict[str, Any]:
        """Old engines send ``datera:config:sanIp`` -> string (JSON for non-strings)."""
        from datera_iac.pulumi._derive import config_props

        types = {p.name: p.schema_type.get("type") for p in config_props()}
        out: dict[str, Any] = {}
        for key, raw in variables.items():
            name = key.rsplit(":", 1)[-1]
            if types.get(name, "string") != "string":
                try:
                    out[name] = json.loads(raw)
                    continue
                except ValueError:
                    pass
            out[name] = raw
        return out

    # ---- resources -------------------------------------------------------------------------

    @_rpc
    def Check(self, request: pb.CheckRequest, context: Any) -> pb.CheckResponse:
        adapter = self._adapter(request)
        autoname = None
        if request.HasField("autonaming"):
            opts = request.autonaming
            autoname = (pb.CheckRequest.AutonamingOptions.Mode.Name(opts.mode),
                        opts.proposed_name)
        inputs, failures = adapter.check(
            request.urn, _codec.decode(request.olds), _codec.decode(request.news), autoname
        )
        return pb.CheckResponse(
            inputs=_codec.encode(inputs),
            failures=[pb.CheckFailure(property=f.property, reason=f.reason) for f in failures],
        )

    @_rpc
    def Diff(self, request: pb.DiffRequest, context: Any) -> pb.DiffResponse:
        adapter = self._adapter(request)
        olds = _codec.decode(request.olds)
        if olds.get(DSP_KEY) and self._config is not None and not _codec.has_unknown(self._config):
            self._same_dsp(request.urn, request.id, olds)
        self.intents.settled(request.id)  # the engine holds it: its create is settled
        d = adapter.diff(
            request.urn,
            _codec.decode(request.olds),
            _codec.decode(request.news),
            list(request.ignoreChanges),
            old_inputs=_codec.decode(request.old_inputs),
            config=self._core_config(),
        )
        return pb.DiffResponse(
            changes=pb.DiffResponse.DIFF_SOME if d.changes else pb.DiffResponse.DIFF_NONE,
            diffs=list(d.changes),
            replaces=list(d.replaces),
            deleteBeforeReplace=d.delete_before_replace,
            detailedDiff={
                k: pb.PropertyDiff(kind=getattr(pb.PropertyDiff, v),
                                   inputDiff=adapter.is_input(k))
                for k, v in d.detailed.items()
            },
            hasDetailedDiff=True,
        )

    @_rpc
    def Create(self, request: pb.CreateRequest, context: Any) -> pb.CreateResponse:
        adapter = self._adapter(request)
        news = _codec.decode(request.properties)
        if request.preview:
            adapter.check_plan(self._context, request.urn, news)
            return pb.CreateResponse(id="", properties=_codec.encode(adapter.preview_create(news)))
        ctx = with_timeout(self._context(), "create", request.timeout)
        adapter.check_plan(lambda: ctx, request.urn, news)
        with self._writing(adapter, deleting=False):
            rid, state = adapter.create(ctx, request.urn, news)
        return pb.CreateResponse(id=rid, properties=_codec.encode(self._recorded(state)))

    @_rpc
    def Read(self, request: pb.ReadRequest, context: Any) -> pb.ReadResponse:
        adapter = self._adapter(request)
        ctx = with_timeout(self._context(), "read", getattr(request, "timeout", 0))
        props = _codec.decode(request.properties)
        self._same_dsp(request.urn, request.id, props)
        got = adapter.read(ctx, request.id, props, _codec.decode(request.inputs))
        if got is None:
            return pb.ReadResponse(id="")  # gone: the engine drops it from the state
        rid, state, inputs = got  # the engine holds it (or imports it now): settled
        return pb.ReadResponse(
            id=rid, properties=_codec.encode(self._recorded(state, props)),
            inputs=_codec.encode(inputs)
        )

    @_rpc
    def Update(self, request: pb.UpdateRequest, context: Any) -> pb.UpdateResponse:
        adapter = self._adapter(request)
        olds, news = _codec.decode(request.olds), _codec.decode(request.news)
        if request.preview:
            planned = adapter.preview_update(request.id, olds, news)
            return pb.UpdateResponse(properties=_codec.encode(planned))
        ctx = with_timeout(self._context(), "update", request.timeout)
        self._same_dsp(request.urn, request.id, olds)
        with self._writing(adapter, deleting=False):
            state = adapter.update(ctx, request.urn, request.id, olds, news,
                                   old_inputs=_codec.decode(request.old_inputs))
        return pb.UpdateResponse(properties=_codec.encode(self._recorded(state, olds)))

    @_rpc
    def Delete(self, request: pb.DeleteRequest, context: Any) -> empty_pb2.Empty:
        adapter = self._adapter(request)
        ctx = with_timeout(self._context(), "delete", request.timeout)
        props = _codec.decode(request.properties)
        self._same_dsp(request.urn, request.id, props)
        with self._writing(adapter, deleting=True):
            adapter.delete(ctx, request.id, props, _codec.decode(request.old_inputs),
                           resource=urn_name(request.urn), checks=self.delete_checks)
        return empty_pb2.Empty()

    # ---- functions ---------------------------------------------------------------------------

    @_rpc
    def Invoke(self, request: pb.InvokeRequest, context: Any) -> pb.InvokeResponse:
        """A function of :mod:`datera_iac.pulumi.functions`. Bad arguments come back as
        check failures; a function that reads the DSP logs in on first use like the
        resources (an invoke runs during preview as well)."""
        fn = self._functions.get(request.tok)
        if fn is None:
            raise errors.InputError(
                f"unknown function {request.tok!r}",
                fix="known functions: " + ", ".join(sorted(self._functions)))
        props = _codec.decode(request.args)
        if _codec.has_unknown(props):
            raise errors.InputError(f"{request.tok}: arguments must be known values")
        try:
            args = fn.args_from(_codec.reveal(props))
            out = fn.call(self._context, self._function_config, args)
        except errors.InputError as e:
            prop = next((p.name for p in fn.inputs if p.field == e.field), e.field or "")
            return pb.InvokeResponse(failures=[pb.CheckFailure(property=prop, reason=str(e))])
        return pb.InvokeResponse(**{"return": _codec.encode(out)})

    def _function_config(self) -> Any:
        """The DateraConfig of the provider, without connecting (the Cinder emitters)."""
        from datera_iac.config import DateraConfig

        with self._lock:
            if self._config is None:
                raise errors.ConfigError(
                    "the datera provider is not configured (Configure was not called)")
            return DateraConfig.from_mapping(dict(self._config))

    def Cancel(self, request: empty_pb2.Empty, context: Any) -> empty_pb2.Empty:
        # Every wait in the core is bounded; in-flight calls finish or time out on their own.
        return empty_pb2.Empty()


def registered_kinds() -> dict[str, Kind[Any, Any]]:
    """Every kind the core registers, by Pulumi type token."""
    import datera_iac.resources  # noqa: F401  (registers the kinds)
    from datera_iac.resources.base import KINDS

    return {k.token: k for k in KINDS.values()}


def serve(
    provider: DateraProvider | None = None, *, address: str = "127.0.0.1:0", workers: int = 8
) -> tuple[grpc.Server, int]:
    """Start the gRPC server; returns it and the port it listens on."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="datera-rpc"),
        options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)],
    )
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(
        provider or DateraProvider(), server
    )
    port = server.add_insecure_port(address)
    server.start()
    return server, port


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``pulumi-resource-datera`` (:func:`datera_iac.pulumi._serve.main`: the
    port is printed before this module is imported)."""
    from datera_iac.pulumi._serve import main as serve_main

    serve_main(argv)


if __name__ == "__main__":  # pragma: no cover
    main()
