"""Serve the provider over go-plugin (tfplugin6), as ``tf.runner.run_provider`` does, but
with our :class:`datera_iac_tf.servicer.Servicer` (``tf`` hard-codes its own servicer class) and
a start-up that imports only gRPC and the protocol's messages before the handshake.

Terraform starts the executable, reads one handshake line from stdout
(``1|6|unix|<socket>|grpc|<base64 server cert>``) and talks gRPC over the unix socket. The
process exits when Terraform calls ``StopProvider``/``Shutdown`` or closes it.

Terraform launches the provider two or three times per command, and waits for each
handshake: the provider itself (the kinds, the ``tf`` framework, the DSP client) is built
by the first RPC that needs it (:class:`_LazyServicer`); the schema answer is kept in a
cache file per code version, so a launch asked only for the schema never builds it. The TLS certificate Terraform pins is kept in an
owner-only cache file with its expiry next to it, so a warm start does not import
``cryptography`` either (:func:`server_certificate`).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

__all__ = ["serve", "server_certificate"]

#: How long a generated certificate is used, and how much validity a cached one must have left.
CERT_LIFETIME = 7 * 86400
CERT_MARGIN = 3600


def _cert_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "datera-iac" / "tf-provider-tls.json"


def _new_certificate() -> dict[str, Any]:
    """A self-signed certificate for ``localhost`` (what go-plugin's AutoMTLS client pins)."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    not_after = now + timedelta(seconds=CERT_LIFETIME)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(seconds=60)).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=True, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=True)
        .sign(key, hashes.SHA256())
    )
    return {
        "key_pem": key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode(),
        "cert_pem": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "cert_der": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
        "not_after": not_after.timestamp(),
    }


def server_certificate(cache: Path | None = None) -> dict[str, Any]:
    """The provider's TLS certificate and key: the cached one while it has more than
    :data:`CERT_MARGIN` of validity left, else a new one (written to the cache 0600 in a
    0700 directory; an unwritable cache only costs the next start a new certificate)."""
    path = cache or _cert_cache()
    try:
        data = json.loads(path.read_text())
        if (isinstance(data, dict) and float(data["not_after"]) > time.time() + CERT_MARGIN
                and all(isinstance(data[k], str) for k in ("key_pem", "cert_pem", "cert_der"))):
            return data
    except (OSError, ValueError, KeyError, TypeError):
        pass
    data = _new_certificate()
    try:
        from datera_iac.files import private_dir, private_file

        private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        private_file(tmp)
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass
    return data


def _schema_cache(app: Any) -> Path | None:
    """Where the serialized schema answer of this provider build is kept: the file name is
    a digest of everything the schema is derived from - the interpreter, the ``tf``
    package, and the size and mtime of every source file of ``datera_iac_tf``, ``datera_iac``
    and the module that builds the provider - so any change to the code misses the cache."""
    import hashlib
    import importlib.util

    h = hashlib.sha256(f"{sys.version}|{getattr(app, '__module__', '')}|"
                       f"{getattr(app, '__qualname__', type(app).__qualname__)}".encode())
    roots: list[str] = []
    for name in ("datera_iac_tf", "datera_iac", "tf", getattr(app, "__module__", None)):
        spec = importlib.util.find_spec(name) if name else None
        if spec is None:
            return None
        roots += list(spec.submodule_search_locations or []) or [spec.origin or ""]
    for root in sorted(set(roots)):
        if os.path.isfile(root):
            st = os.stat(root)
            h.update(f"{root}|{st.st_mtime_ns}|{st.st_size}\n".encode())
            continue
        for d, dirs, files in os.walk(root):
            dirs.sort()
            for f in sorted(files):
                if f.endswith(".py"):
                    st = os.stat(os.path.join(d, f))
                    h.update(f"{d}/{f}|{st.st_mtime_ns}|{st.st_size}\n".encode())
    return _cert_cache().parent / f"tf-schema-{h.hexdigest()[:32]}.pb"


class _LazyServicer:
    """Stands in for the provider's servicer at registration (gRPC only needs its bound
    methods): the real one is built once, by :meth:`load` - called on a thread right
    after the handshake, or by the first RPC, whichever comes first."""

    def __init__(self, build: Callable[[], Any],
                 schema_cache: Callable[[], Path | None] | None = None) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._real: Any = None
        self._error: BaseException | None = None
        self._schema_cache = schema_cache
        self.stopped = False

    def GetProviderSchema(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's name
        """The schema, from the cache when this build's answer was saved before: the first
        of Terraform's launches per command is often asked only this and the identity
        schemas, and then never builds the provider at all."""
        from tf.gen import tfplugin_pb2 as pb

        return self._cached("schema", pb.GetProviderSchema.Response, "GetProviderSchema",
                            request, context)

    def GetResourceIdentitySchemas(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._cached("identity", _messages()["IdentitySchemas"],
                            "GetResourceIdentitySchemas", request, context)

    def _cached(self, what: str, message: Any, rpc: str, request: Any, context: Any) -> Any:
        """The answer of ``rpc`` (derived from the code alone) from ``tf-<what>-<digest>.pb``,
        else the built provider's, saved there unless it carries a diagnostic."""
        from tf.gen import tfplugin_pb2 as pb

        # worked out here, not before the handshake (a stat of every source file)
        path = self._schema_cache() if self._schema_cache is not None else None
        if path is not None:
            path = path.with_name(path.name.replace("tf-schema-", f"tf-{what}-", 1))
            try:
                return message.FromString(path.read_bytes())
            except (OSError, ValueError):
                pass
        response = getattr(self.load(), rpc)(request, context)
        if path is not None and not any(  # the identity answer's diagnostics are bytes
                getattr(d, "severity", pb.Diagnostic.ERROR) == pb.Diagnostic.ERROR
                for d in response.diagnostics):
            try:
                from datera_iac.files import private_dir, private_file

                private_dir(path.parent)
                tmp = path.with_name(f".{path.name}.{os.getpid()}")
                private_file(tmp)
                tmp.write_bytes(response.SerializeToString())
                os.replace(tmp, path)
                for old in path.parent.glob(f"tf-{what}-*.pb"):  # another checkout's
                    if old != path and old.stat().st_mtime < time.time() - 86400:  # stays a day
                        old.unlink(missing_ok=True)
            except OSError:
                pass
        return response

    def StopProvider(self, request: Any, context: Any) -> Any:  # noqa: N802
        """Answered here (nothing to build for it); the serve loop then stops the server,
        as after the controller's ``Shutdown``."""
        from tf.gen import tfplugin_pb2 as pb

        self.stopped = True
        return pb.StopProvider.Response()

    def load(self) -> Any:
        if self._real is None and self._error is None:
            with self._lock:
                if self._real is None and self._error is None:
                    try:
                        self._real = self._build()
                    except BaseException as e:  # noqa: BLE001 - reported by each RPC
                        self._error = e
        if self._error is not None:
            raise RuntimeError(f"terraform-provider-datera could not start: {self._error}")
        return self._real

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)

        def call(request: Any, context: Any) -> Any:
            return getattr(self.load(), name)(request, context)

        call.__name__ = name
        return call


#: the ephemeral-resource RPCs ``tf``'s registration lacks: name -> (request, response), our
#: message names in :data:`datera_iac_tf._protocol.EPHEMERAL`
_EPHEMERAL_RPCS = {"ValidateEphemeralResourceConfig": ("EphemeralConfig", "Diagnostics"),
                   "OpenEphemeralResource": ("EphemeralConfig", "EphemeralOpened"),
                   "RenewEphemeralResource": ("EphemeralPrivate", "EphemeralRenewed"),
                   "CloseEphemeralResource": ("EphemeralPrivate", "Diagnostics"),
                   # resource identity (6.9+) and list resources (6.10+)
                   "GetResourceIdentitySchemas": ("Empty", "IdentitySchemas"),
                   "UpgradeResourceIdentity": ("UpgradeIdentityRequest", "UpgradeIdentityResponse"),
                   "ValidateListResourceConfig": ("ValidateListRequest", "Diagnostics"),
                   "ListResource": ("ListRequest", "ListEvent")}
_STREAMING = frozenset({"ListResource"})


def _ephemeral_handler(servicer: Any) -> Any:
    """A gRPC handler for the RPCs of ``tfplugin6.Provider`` that ``tf`` lacks (ephemeral
    resources, resource identity, list resources; gRPC asks
    each handler in turn). Their messages are looked up at the first call, so the handshake
    imports nothing more."""
    import grpc

    def decode(name: str) -> Callable[[bytes], Any]:
        return lambda raw: _messages()[name].FromString(raw)

    return grpc.method_handlers_generic_handler("tfplugin6.Provider", {
        rpc: (grpc.unary_stream_rpc_method_handler if rpc in _STREAMING
              else grpc.unary_unary_rpc_method_handler)(
            getattr(servicer, rpc), request_deserializer=decode(req),
            response_serializer=lambda message: message.SerializeToString())
        for rpc, (req, _resp) in _EPHEMERAL_RPCS.items()})


def _messages() -> dict[str, Any]:
    from datera_iac_tf._protocol import EPHEMERAL

    return EPHEMERAL


def serve(app: Any, argv: list[str]) -> None:
    """Run ``app`` (a tf Provider, or a function that builds one) until Terraform stops it.
    ``--dev`` prints ``TF_REATTACH_PROVIDERS`` for a debugger session instead of the
    handshake."""
    import grpc
    from tf.gen import grpc_controller_pb2 as controller_pb
    from tf.gen import grpc_controller_pb2_grpc as controller_rpc
    from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
    from tf.gen import tfplugin_pb2_grpc as rpc

    def build() -> Any:
        from datera_iac._launcher import read_site_files

        read_site_files()  # -S (our launcher): the .pth files, after the handshake
        from datera_iac_tf.servicer import Servicer

        return Servicer(app() if callable(app) and not hasattr(app, "full_name") else app)

    lazy = _LazyServicer(build, schema_cache=None if "--dev" in argv
                         else functools.partial(_schema_cache, app))
    server = grpc.server(thread_pool=futures.ThreadPoolExecutor(max_workers=10))
    rpc.add_ProviderServicer_to_server(lazy, server)
    server.add_generic_rpc_handlers((_ephemeral_handler(lazy),))

    class _Controller(controller_rpc.GRPCControllerServicer):
        def Shutdown(self, request: Any, context: Any) -> Any:
            lazy.stopped = True
            return controller_pb.Empty()

    class _Stdio(stdio_rpc.GRPCStdioServicer):
        def StreamStdio(self, request: Any, context: Any) -> Any:
            return iter([])

    controller_rpc.add_GRPCControllerServicer_to_server(_Controller(), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(_Stdio(), server)

    with tempfile.TemporaryDirectory(prefix="tfp-datera-") as tmp:
        sock = os.path.join(tmp, "plugin.sock")
        if "--dev" in argv:
            server.add_insecure_port(f"unix://{sock}")
            server.start()
            reattach = {lazy.load().app.full_name(): {
                "Protocol": "grpc", "ProtocolVersion": 6, "Pid": os.getpid(), "Test": True,
                "Addr": {"Network": "unix", "String": sock},
            }}
            print(f"export TF_REATTACH_PROVIDERS='{json.dumps(reattach)}'", flush=True)
            server.wait_for_termination()
            return
        cert = server_certificate()
        creds = grpc.ssl_server_credentials(
            [(cert["key_pem"].encode(), cert["cert_pem"].encode())], require_client_auth=False)
        server.add_secure_port(f"unix://{sock}", creds)
        server.start()
        sys.stdout.write(f"1|6|unix|{sock}|grpc|{cert['cert_der'].rstrip('=')}\n")
        sys.stdout.flush()
        try:
            while not lazy.stopped and server.wait_for_termination(0.05):
                pass
        except KeyboardInterrupt:  # pragma: no cover
            pass
        server.stop(grace=0)
    # Terraform waits for the process to exit after Shutdown (up to 2 s, then kills it);
    # a normal interpreter exit tears grpc's threads down slowly, so leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

