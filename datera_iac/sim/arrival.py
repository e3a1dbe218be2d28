"""When a request arrived: the moment its first bytes reached the simulator.

The ``latency_ms`` fault is a service time counted from a request's arrival. The request
middleware runs only when the event loop gets to that request: ten requests arriving
together are handled one after another, so the tenth would start its wait about nine
handlings late, and every answer would carry the simulator's own queueing on top of the
latency (a DSP is many cores; this simulator is one event loop). aiohttp does not record
arrival times, so the connection's protocol notes it here.

This leans on aiohttp internals (``AppRunner._make_server``, ``Server._loop`` and
``_kwargs``); should they change, :func:`runner` falls back to the plain runner and the
latency counts from when the middleware starts, as before.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

__all__ = ["arrival_of", "runner"]

log = logging.getLogger(__name__)


class _ArrivalHandler(RequestHandler):
    """aiohttp's connection handler, noting when bytes last came in on the connection.

    Read when the middleware starts, that is when the request being handled arrived (the
    last chunk of it before handling began: a request in two chunks counts from its
    second, so the wait is at most a little longer). Bytes of its body read later
    overwrite it, but the next request's own bytes come in before that request is
    handled, so each request sees its own time."""

    __slots__ = ("sim_arrival",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sim_arrival: float | None = None

    def data_received(self, data: bytes) -> None:
        self.sim_arrival = time.perf_counter()
        super().data_received(data)


class _ArrivalServer:
    """The runner's server (a protocol factory) handing out :class:`_ArrivalHandler`s;
    every other attribute is the real server's."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def __call__(self) -> RequestHandler:
        s = self._server
        return _ArrivalHandler(s, loop=s._loop, **s._kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


class _Runner(web.AppRunner):
    async def _make_server(self) -> Any:
        server = await super()._make_server()
        try:
            server()  # a handler can be made with these internals (then dropped)
        except Exception:  # noqa: BLE001 - an aiohttp whose internals moved: no stamps
            log.debug("request arrival times unavailable; latency counts from handling")
            return server
        return _ArrivalServer(server)


def runner(app: web.Application, **kwargs: Any) -> web.AppRunner:
    """An AppRunner whose connections note request arrival times (see the module)."""
    return _Runner(app, **kwargs)


def arrival_of(request: web.Request) -> float | None:
    """The ``time.perf_counter()`` at which ``request`` arrived, or None (no stamp); call
    it when handling starts."""
    return getattr(request.protocol, "sim_arrival", None)
