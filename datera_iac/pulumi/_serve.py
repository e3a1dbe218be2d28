"""Start of ``pulumi-resource-datera``: print the port first, build the provider after.

The Pulumi engine starts the plugin and waits for the port line on stdout. Before it,
:func:`main` imports only gRPC, with stand-ins for the ``asyncio`` and ``grpc.aio`` it
imports, which the sync server never uses (:func:`datera_iac._launcher.defer`). The
provider (:mod:`datera_iac.pulumi.provider` - Pulumi's protocol messages, the kinds, the
DSP client) is built on a thread started right after the port is printed, while the
engine connects, and the first RPC waits for it (:class:`_LazyHandler`). ``datera_iac.pulumi``'s package ``__init__`` loads the generated
SDK (and with it the ``pulumi`` package) only when one of its classes is asked for.

The plugin archive's launcher (:mod:`datera_iac.pulumi.package`) starts Python with ``-S``:
the ``.pth`` files of the site directories are read by that build, before it imports the
provider (:func:`datera_iac._launcher.read_site_files`).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from concurrent import futures
from typing import Any

from datera_iac._launcher import defer

__all__ = ["main"]


class _LazyHandler:
    """A gRPC generic handler (gRPC asks it only for :meth:`service`): serves
    ``pulumirpc.ResourceProvider`` through the handlers Pulumi's generated code registers
    for :class:`~datera_iac.pulumi.provider.DateraProvider`, built once by :meth:`load` (on
    a thread after the port line, or by the first RPC)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: tuple[Any, ...] | None = None
        self._error: BaseException | None = None

    def load(self) -> tuple[Any, ...]:
        with self._lock:
            if self._handlers is None and self._error is None:
                try:
                    from datera_iac._launcher import read_site_files

                    read_site_files()  # -S (the archive's launcher): the .pth files, now
                    from datera_iac.pulumi.provider import DateraProvider
                    from pulumi.runtime.proto import provider_pb2_grpc

                    collected: list[Any] = []

                    class _Collect:  # what add_..._to_server calls on a server
                        def add_generic_rpc_handlers(self, handlers: Any) -> None:
                            collected.extend(handlers)

                    provider_pb2_grpc.add_ResourceProviderServicer_to_server(
                        DateraProvider(), _Collect())
                    self._handlers = tuple(collected)
                except BaseException as e:  # noqa: BLE001 - reported by each RPC
                    self._error = e
        if self._error is not None:
            raise RuntimeError(f"pulumi-resource-datera could not start: {self._error}")
        assert self._handlers is not None
        return self._handlers

    def service(self, handler_call_details: Any) -> Any:
        try:
            handlers = self.load()
        except RuntimeError as e:
            message = str(e)

            import grpc

            def fail(request: Any, context: Any) -> Any:
                context.abort(grpc.StatusCode.UNAVAILABLE, message)

            return grpc.unary_unary_rpc_method_handler(fail)
        for h in handlers:
            found = h.service(handler_call_details)
            if found is not None:
                return found
        return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``pulumi-resource-datera``: serve on 127.0.0.1 and print the port.

    The engine passes its own address as the first argument and some logging flags; they
    are accepted and ignored (this provider does not call back into the engine)."""
    parser = argparse.ArgumentParser(prog="pulumi-resource-datera", add_help=True)
    parser.add_argument("engine", nargs="?", help="the Pulumi engine's address (unused)")
    parser.add_argument("--logtostderr", action="store_true")
    parser.add_argument("-v", type=int, default=0, help="log verbosity (engine convention)")
    args, _ = parser.parse_known_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.v >= 9 else logging.INFO if args.v else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # gRPC's cygrpc imports asyncio and grpc.aio (~20 ms) though this sync server never
    # uses them: stand-ins until first used (the provider, built after the port line,
    # imports them for real through the pulumi package)
    defer("asyncio", "grpc.aio")
    import grpc

    lazy = _LazyHandler()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="datera-rpc"),
        options=[("grpc.max_receive_message_length", 256 * 1024 * 1024)],
        handlers=(lazy,),
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()

    def stop(*_: Any) -> None:
        server.stop(grace=2).wait(3)

    # handlers first: the engine may stop the plugin as soon as it has read the port
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    # build the provider while the engine connects; the first RPC waits for it
    threading.Thread(target=_load_quietly, args=(lazy,), daemon=True).start()
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:  # pragma: no cover
        stop()


def _load_quietly(lazy: _LazyHandler) -> None:
    try:
        lazy.load()
    except RuntimeError:
        pass  # each RPC reports it
