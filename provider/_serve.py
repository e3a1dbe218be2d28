"""Serve the provider over go-plugin (tfplugin6), as ``tf.runner.run_provider`` does, but
with our :class:`provider.servicer.Servicer` (``tf`` hard-codes its own servicer class).

Terraform starts the executable, reads one handshake line from stdout
(``1|6|unix|<socket>|grpc|<base64 server cert>``) and talks gRPC over the unix socket. The
process exits when Terraform calls ``StopProvider``/``Shutdown`` or closes it.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import tempfile
from concurrent import futures
from typing import Any

__all__ = ["serve"]


def serve(app: Any, argv: list[str]) -> None:
    """Run ``app`` (a tf Provider) until Terraform stops it. ``--dev`` prints
    ``TF_REATTACH_PROVIDERS`` for a debugger session instead of the handshake."""
    import grpc
    from tf.gen import grpc_controller_pb2 as controller_pb
    from tf.gen import grpc_controller_pb2_grpc as controller_rpc
    from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
    from tf.gen import tfplugin_pb2_grpc as rpc
    from tf.runner import _LoggingInterceptor, _self_signed_cert, _ShutdownInterceptor

    from provider.servicer import Servicer

    stopper = _ShutdownInterceptor()
    server = grpc.server(
        thread_pool=futures.ThreadPoolExecutor(max_workers=10),
        interceptors=[_LoggingInterceptor(), stopper],
    )
    stopper.server = server
    rpc.add_ProviderServicer_to_server(Servicer(app), server)

    class _Controller(controller_rpc.GRPCControllerServicer):
        def Shutdown(self, request: Any, context: Any) -> Any:
            stopper.stopped = True
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
            reattach = {app.full_name(): {
                "Protocol": "grpc", "ProtocolVersion": 6, "Pid": os.getpid(), "Test": True,
                "Addr": {"Network": "unix", "String": sock},
            }}
            print(f"export TF_REATTACH_PROVIDERS='{json.dumps(reattach)}'", flush=True)
            server.wait_for_termination()
            return
        chain, creds = _self_signed_cert()
        server.add_secure_port(f"unix://{sock}", creds)
        server.start()
        cert = base64.b64encode(chain).decode().rstrip("=")
        sys.stdout.write(f"1|6|unix|{sock}|grpc|{cert}\n")
        sys.stdout.flush()
        try:
            while server.wait_for_termination(0.05):
                if stopper.stopped:
                    break
        except KeyboardInterrupt:  # pragma: no cover
            pass
        server.stop(grace=0)
    # Terraform waits for the process to exit after Shutdown (up to 2 s, then kills it);
    # a normal interpreter exit tears grpc's threads down slowly, so leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
