"""``SimServer``: the simulator in-process, on one event loop in a background thread.

    with SimServer() as sim:                      # free ports on 127.0.0.1
        requests.put(f"{sim.http_url}/v2.2/login", json={"name": "admin", "password": "password"})

One aiohttp application serves an HTTP and an HTTPS site from the same event loop and the
same state. Every admin call (``reset``, ``counters``, ``set_faults``...) runs on the loop
thread, so it never races a request being handled.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Self, TypeVar

from aiohttp import web

from datera_iac.sim import arrival
from datera_iac.sim.auth import Sessions
from datera_iac.sim.faults import Faults
from datera_iac.sim.hooks import Dataplane
from datera_iac.sim.persistence import SqliteJournal
from datera_iac.sim.routes import SimState, make_app
from datera_iac.sim.store import Store, StoreOptions
from datera_iac.sim.tls import make_self_signed, server_context

T = TypeVar("T")
log = logging.getLogger(__name__)
START_TIMEOUT = 30.0


def _new_loop() -> asyncio.AbstractEventLoop:
    """The simulator's event loop: uvloop's where it is installed (libuv; about half the
    CPU per request of asyncio's, so the simulator's own overhead stays small beside the
    service times it injects), asyncio's otherwise. ``DATERA_SIM_LOOP=asyncio`` forces
    the standard loop."""
    if os.environ.get("DATERA_SIM_LOOP", "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from None
    sock.listen(512)
    sock.setblocking(False)
    return sock


class SimServer:
    """A running DSP simulator. ``SimServer(**options).start()`` or use it as a context manager.

    Options: ``host`` ("127.0.0.1"), ``http_port`` / ``https_port`` (0 = a free port),
    ``users`` ({"admin": "password"}), ``ldap_servers`` ({server: {user: password}}),
    ``key_ttl`` (900 s), ``sw_version`` ("3.3.5.0"), ``portals`` (2 IPs), delays
    ``si_online_delay`` / ``snapshot_delay`` / ``clone_delay`` (0 s), ``data_dir`` (SQLite
    persistence; None = memory), ``cert`` / ``key`` (PEM paths; default self-signed),
    ``dataplane`` (see :mod:`datera_iac.sim.hooks`), ``https`` (True), and any fault knob
    of :mod:`datera_iac.sim.faults` (``latency_ms``, ``fail_503_rate``...).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        http_port: int = 0,
        https_port: int = 0,
        users: Mapping[str, str] | None = None,
        ldap_servers: Mapping[str, Mapping[str, str]] | None = None,
        key_ttl: float = 900.0,
        sw_version: str = "3.3.5.0",
        portals: list[str] | None = None,
        si_online_delay: float = 0.0,
        snapshot_delay: float = 0.0,
        clone_delay: float = 0.0,
        data_dir: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        dataplane: Dataplane | None = None,
        https: bool = True,
        name: str = "datera-sim",
        **faults: Any,
    ) -> None:
        self.host = host
        self._want_http, self._want_https = http_port, https_port
        self.users: dict[str, str] = dict(users) if users is not None else {"admin": "password"}
        self.https_enabled = https
        opts = StoreOptions(sw_version=sw_version, si_online_delay=si_online_delay,
                            snapshot_delay=snapshot_delay, clone_delay=clone_delay, name=name)
        if portals is not None:
            if len(portals) < 1:
                raise ValueError("portals needs at least one IP address")
            opts.portals = list(portals)
        self._journal = SqliteJournal(data_dir) if data_dir is not None else None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        store = Store(opts, dataplane=dataplane, journal=self._journal)
        fault_state = Faults(key_ttl=key_ttl).updated(**faults) if faults else Faults(key_ttl=key_ttl)
        sessions = Sessions(self.users, ldap_servers=ldap_servers, key_ttl=fault_state.key_ttl)
        self.state = SimState(store=store, sessions=sessions, faults=fault_state)
        self._cert_arg = (Path(cert) if cert else None, Path(key) if key else None)
        if (cert is None) != (key is None):
            raise ValueError("give both cert and key, or neither")
        self._tmp: Path | None = None
        self.cert_path: Path | None = None
        self.key_path: Path | None = None
        self.http_port = 0
        self.https_port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        """Bind the sockets, start the loop thread; return once both sites accept connections."""
        if self._thread is not None:
            return self
        http_sock = _bind(self.host, self._want_http)
        https_sock = _bind(self.host, self._want_https) if self.https_enabled else None
        self.http_port = http_sock.getsockname()[1]
        if https_sock is not None:
            self.https_port = https_sock.getsockname()[1]
            if self._cert_arg[0] is not None:
                self.cert_path, self.key_path = self._cert_arg
            else:
                self._tmp = Path(tempfile.mkdtemp(prefix="datera-sim-"))
                self.cert_path, self.key_path = make_self_signed(self._tmp, self.host)
            assert self.cert_path is not None and self.key_path is not None
            ssl_ctx = server_context(self.cert_path, self.key_path)
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = _new_loop()
        self._loop = loop

        async def boot() -> None:
            runner = arrival.runner(make_app(self.state), access_log=None, handle_signals=False)
            await runner.setup()
            await web.SockSite(runner, http_sock).start()
            if https_sock is not None:
                await web.SockSite(runner, https_sock, ssl_context=ssl_ctx).start()
            self._runner = runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as e:  # noqa: BLE001 - handed to start(), which re-raises it
                failure.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="datera-dsp-sim", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT):
            raise TimeoutError(f"the DSP simulator did not start within {START_TIMEOUT:g}s")
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving, join the thread, remove the temporary certificate."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._runner is not None:
            fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop)
            try:
                fut.result(timeout=10)
            except Exception:  # pragma: no cover - best effort on shutdown
                log.warning("the DSP simulator did not shut down cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None
        self._loop = None
        self._runner = None
        if self._journal is not None:
            self._journal.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    def _url(self, scheme: str, port: int) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{port}"

    @property
    def http_url(self) -> str:
        return self._url("http", self.http_port)

    @property
    def https_url(self) -> str:
        if not self.https_enabled:
            raise RuntimeError("this simulator was started with https=False")
        return self._url("https", self.https_port)

    # ------------------------------------------------------------------ admin

    def call(self, fn: Callable[[], T], timeout: float = 30.0) -> T:
        """Run ``fn()`` on the simulator's loop thread (safe against in-flight requests)."""
        loop = self._loop
        if loop is None:
            return fn()

        async def wrapper() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(timeout=timeout)

    def reset(self) -> None:
        """Empty store (tenant /root and default objects again), counters, log, sessions, faults."""
        self.call(self.state.reset)

    def counters(self) -> dict[str, int]:
        """Requests by "METHOD /v2.x/template" (e.g. "PUT /v2.2/app_instances/:id")."""
        return self.call(lambda: dict(self.state.counters))

    def request_log(self) -> list[dict[str, Any]]:
        """Handled requests: method, path, template, status, tenant, user, ms (no bodies)."""
        return self.call(lambda: [dict(e) for e in self.state.log])

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs now; returns the resulting settings. Unknown knobs raise."""
        return self.call(lambda: self.state.set_faults(**knobs))

    def faults(self) -> dict[str, Any]:
        """Current fault knobs and delays."""
        return self.call(self.state.set_faults)

    def log_in(self, ai: str, iqn: str, *, tenant: str = "/root", si: str = "storage-1") -> None:
        """Show initiator ``iqn`` as logged in to an app_instance's storage instance (its
        ``active_initiators``) until the storage instance goes offline."""
        self.call(lambda: self.state.store.log_in(tenant, ai, iqn, si))

    def summary(self) -> dict[str, int]:
        """Object counts by collection (and tenants)."""
        return self.call(self.state.store.summary)

    def dump(self) -> str:
        """Canonical JSON of the whole store (compare two to assert nothing changed)."""
        return self.call(self.state.store.snapshot_state)
