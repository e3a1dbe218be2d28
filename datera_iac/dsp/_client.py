"""The DSP REST client: one choke point for every call.

Every request goes through one method (``DspClient._call``; public: :meth:`DspClient.request`),
which

* composes ``<endpoint>/v<api_version><path>`` (the version is probed once: ``GET
  /api_versions``, 2.2 preferred, then 2.1; ``api_version`` in the config overrides);
* sends the ``Datera-Driver``, ``Auth-Token`` and ``tenant`` headers, with a timeout
  (``request_timeout``) and TLS verification on unless explicitly turned off;
* logs in on first use, and on a 401 logs in once more and retries once;
* retries 503s and 500 "REST server is still initializing" every ``datera_503_interval``
  until ``datera_503_timeout`` (then :class:`~datera_iac.errors.Unavailable`), 429s after
  ``Retry-After``, and connection errors with backoff inside the same deadline;
* never retries a POST blindly: when its response was lost, and on a 409, a ``find``
  callback looks the object up by its unique name first (:meth:`DspClient.create`);
* maps error statuses to :mod:`datera_iac.errors` classes carrying the DSP's ``name`` and
  ``message``, redacted;
* with ``datera_debug`` logs every call and result (redacted, :func:`redact`), and unless
  ``datera_disable_profiler`` logs one timing line per call (method, path, status, ms).
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final, Self

from datera_iac import __version__
from datera_iac.config import DateraConfig
from datera_iac.tenants import tenant_path
from datera_iac.dsp._entities import System, from_api
from datera_iac.secrets import redact
from datera_iac.dsp._transport import (
    MAX_BODY,
    POOL_SIZE,
    BodyTooLarge,
    RequestsTransport,
    Response,
    TlsFailure,
    Transport,
    TransportError,
    new_session,
)
from datera_iac.dsp._retry import (
    CONNECTION,
    THROTTLED,
    UNAVAILABLE,
    Clock,
    RetryPolicy,
    SystemClock,
)
from datera_iac.errors import (
    AuthFailed,
    ConfigError,
    Conflict,
    ConnectionLost,
    DspError,
    InvalidRequest,
    NotFound,
    Unavailable,
    Unreachable,
    ValidationFailed,
)

__all__ = ["DRIVER_HEADER", "SUPPORTED_VERSIONS", "DspClient"]

#: The ``Datera-Driver`` header value (informational on the DSP side).
DRIVER_HEADER: Final = f"datera-iac-{__version__}"
#: API versions this client speaks, in order of preference.
SUPPORTED_VERSIONS: Final = ("2.2", "2.1")

_INITIALIZING = "REST server is still initializing"
_ERRORS: Final[dict[int, type[DspError]]] = {
    400: InvalidRequest,
    401: AuthFailed,
    403: AuthFailed,
    404: NotFound,
    409: Conflict,
    422: ValidationFailed,
    503: Unavailable,
}
#: the largest ``limit`` the DSP's schema allows on a list (``GET /app_instances``: 0..1000)
MAX_PAGE: Final = 1000
#: Pages of a listing asked ahead of the one being read (``DspClient.list``).
PREFETCH: Final = 2
#: the page size an older DSP that refuses ``limit=1000`` is asked for instead (its default)
FALLBACK_PAGE: Final = 100
_HEADERS: Final = {
    "Content-Type": "application/json; charset=utf-8",
    "Accept": "application/json",
    "Datera-Driver": DRIVER_HEADER,
}
_LOG_BODY_LIMIT = 4000

log = logging.getLogger("datera_iac.dsp")
wire_log = logging.getLogger("datera_iac.dsp.wire")
profile_log = logging.getLogger("datera_iac.dsp.profile")

Finder = Callable[[], Any]


class _Found:
    """An object a ``find`` callback returned instead of a POST's response."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class _Undecodable(Exception):
    """A success answer whose body is not JSON (or not decodable)."""


def _data(body: Any) -> Any:
    """The envelope's ``data`` (v2.1+), or the body itself (login, /api, legacy)."""
    if isinstance(body, dict) and "data" in body:
        return body["data"]
    return body


class DspClient:
    """A client for one DSP endpoint. Thread-safe; one transport (connection pool).

    ``tenant=None`` on a call means the config's tenant (:meth:`tenant_for` without a
    project, ``/root`` in ``Map`` mode). Errors are :class:`~datera_iac.errors.DspError`
    subclasses; a TLS verification failure is a :class:`~datera_iac.errors.ConfigError`.
    ``transport`` (any :class:`~datera_iac.dsp._transport.Transport`), or a ``requests``
    ``session`` for the default one, and ``clock`` are injectable for tests. The default
    session keeps ``pool_size`` connections (at least ``POOL_SIZE``): one per thread.
    """

    def __init__(
        self,
        config: DateraConfig,
        *,
        session: Any = None,
        transport: Transport | None = None,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        max_body: int = MAX_BODY,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self.config = config
        self.retry = retry or RetryPolicy.from_config(config)
        self._clock: Clock = clock or SystemClock()
        self._transport: Transport = transport or RequestsTransport(
            session or new_session(max(POOL_SIZE, pool_size)), verify=config.verify,
            cert=config.client_cert, base_url=config.base_url)
        #: largest answer body accepted, in bytes (see docs/security.md)
        self.max_body = max_body
        self._base = config.base_url
        self._lock = threading.RLock()
        self._key: str | None = None
        self._version: str | None = config.api_version
        self._sw_version: str | None = None
        #: the last ``GET /system`` answer (its uuid/name identify the DSP to a state)
        self.system_info: dict[str, Any] | None = None
        self._insecure_warned = False
        self._system_lock = threading.Lock()
        #: the breaker: since when calls have found the DSP unreachable (None: reachable),
        #: and the error every call raises at once while it is open
        self._unreachable_since: float | None = None
        self._breaker: Unreachable | None = None
        self._breaker_until = 0.0
        self._breaker_lock = threading.Lock()
        #: this outage's reason was raised once (Unreachable.first); reset when a call gets
        #: an answer again
        self._unreachable_said = False
        #: set in a thread running :meth:`warm_up`: its calls make one attempt, no retries
        self._once = threading.local()
        #: a login the warm-up sent that the DSP refused (401): the first real login raises
        #: it instead of sending the same credentials again (account lockout policies count
        #: failed logins)
        self._refused_login: AuthFailed | None = None
        #: the page size lists ask for: the schema's maximum until the DSP refuses it
        self._page = MAX_PAGE
        self.default_tenant = "/root" if config.tenant_mode == "map" else config.tenant_for()

    # ---- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the transport's connections (the DSP session key simply expires)."""
        self._transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DspClient({self._base!r}, user={self.config.san_login!r})"

    # ---- public API --------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def api_version(self) -> str:
        """The REST API version in use, "2.2" or "2.1" (probed once, or the override)."""
        if self._version is not None:
            return self._version
        with self._lock:
            if self._version is None:
                self._version = self._probe_version()
            return self._version

    @property
    def sw_version(self) -> str | None:
        """The DSP product version (``GET /system`` ``sw_version``, e.g. "3.3.5.0")."""
        if self._sw_version is None:
            # one GET /system however many workers ask at once (the first caller fetches)
            with self._system_lock:
                if self._sw_version is None:
                    system = self.get("/system", tenant="/root")
                    if isinstance(system, dict):
                        self.system_info = system
                        self._sw_version = system.get("sw_version")
        return self._sw_version

    def system(self) -> System:
        """``GET /system`` as a :class:`~datera_iac.dsp.System` (version, capacities)."""
        data = self.get("/system", tenant="/root")
        system = from_api(data, System)
        if isinstance(data, dict):
            self.system_info = data
        self._sw_version = system.sw_version
        return system

    def tenant_for(self, project_id: str | None = None) -> str:
        """The tenant path for a project (``datera_tenant_id`` rules, see the config)."""
        return self.config.tenant_for(project_id)

    def login(self) -> None:
        """Log in now (normally done on first use). Raises AuthFailed."""
        with self._lock:
            self._login()

    def ensure_session(self) -> None:
        """Check reachability and credentials: log in unless a session key is held (no
        request then). Raises the connection error or AuthFailed."""
        with self._lock:
            if self._key is None:
                self._login()

    def warm_up(self, *, system: bool = False) -> None:
        """Set the session up ahead of its first use: API version, login and, with
        ``system``, the product version (``GET /system``) a volume create needs.

        Meant to run in a background thread while the caller does local work (the engine
        plans an empty stack meanwhile), so the first real call finds a session ready.
        When the version is not configured, ``GET /api_versions`` and a speculative
        ``PUT /v2.2/login`` go out together (one round trip instead of two); a 2.1-only
        DSP refuses the 2.2 login (one 404) and the key is not used. Never raises and
        never retries: each step is tried once, and what fails is simply left undone,
        so the first real call repeats it with the usual retries and raises its error
        exactly as without a warm-up. Real callers arriving meanwhile wait on the same
        locks instead of repeating a step in flight."""
        self._once.active = True
        try:
            with self._lock:
                if self._version is None and not self._probe_and_login():
                    return
                if self._key is None:
                    self._login()
            if system:
                _ = self.sw_version
        except Exception as e:  # noqa: BLE001 - the real call repeats the step and raises
            # the class only: a message could carry what the DSP echoed back
            log.debug("session warm-up for %s stopped early (%s)", self._base, type(e).__name__)
        finally:
            self._once.active = False

    def _probe_and_login(self) -> bool:
        """``GET /api_versions`` in a helper thread while ``PUT /v2.2/login`` goes out
        here. Sets the version (and the key when 2.2 is offered and the login answered
        with one) exactly as :meth:`_probe_version` + :meth:`_login` would conclude; a
        product without ``/api_versions`` (400/404) that accepts the 2.2 login is 2.2, as
        the probe's fallback decides. Returns whether the warm-up may go on; a failed
        step is left to the real call, never repeated here. Caller holds the lock and
        has ``_once`` set (the helper thread sets its own)."""
        probed: list[str | None] = []  # [version or None], or ["refused"] for 400/404
        failed: list[BaseException] = []

        def probe() -> None:
            self._once.active = True
            try:
                body = self._call("GET", "/api_versions", auth=False, versioned=False)
                probed.append(_pick_version(body))
            except (NotFound, InvalidRequest):
                probed.append("refused")
            except Exception as e:  # noqa: BLE001 - left to the real probe
                failed.append(e)

        helper = threading.Thread(target=probe, name="dsp-version-probe", daemon=True)
        helper.start()
        key: str | None = None
        refused: AuthFailed | None = None
        try:
            result = self._call("PUT", "/v2.2/login", body=self._login_body(), auth=False,
                                versioned=False)
            found = result.get("key") if isinstance(result, dict) else None
            key = found if isinstance(found, str) and found else None
        except AuthFailed as e:  # the credentials were refused: never send them twice
            refused = e
            log.debug("speculative v2.2 login in the warm-up refused (%s)", type(e).__name__)
        except Exception as e:  # noqa: BLE001 - a refused 2.2 login (2.1-only DSP) included
            log.debug("speculative v2.2 login in the warm-up failed (%s)", type(e).__name__)
        finally:
            helper.join()  # bounded: one attempt of one request, within request_timeout
        # A 401 from /v2.2/login means the DSP speaks 2.2 and refused these credentials:
        # whatever the probe concluded, the first real 2.2 login raises this refusal
        # instead of sending them again (lockout policies count failed logins).
        self._refused_login = refused
        if failed or not probed:
            return False
        outcome = probed[0]
        if outcome == "refused":
            if key is None:
                return False  # the real probe's fallback tries each version's login
            outcome = "2.2"
        if outcome is None:
            return False  # no version this client speaks: the real probe says so
        self._version = outcome
        if outcome == "2.2":
            if key is None:
                return False  # the real call repeats the login and raises (see above)
            self._key = key
            log.debug("logged in to %s as %r (API v2.2, alongside the version probe)",
                      self._base, self.config.san_login)
        return True

    def get(self, path: str, *, tenant: str | None = None, params: dict[str, Any] | None = None) -> Any:
        """GET ``path``; returns the envelope's ``data``."""
        return _data(self.request("GET", path, params=params, tenant=tenant))

    def post(self, path: str, body: Any, *, tenant: str | None = None) -> Any:
        """POST without a lookup: if the response is lost the outcome is unknown and
        :class:`ConnectionLost` says so (use :meth:`create` to be safe)."""
        return _data(self.request("POST", path, body=body, tenant=tenant))

    def put(self, path: str, body: Any, *, tenant: str | None = None) -> Any:
        return _data(self.request("PUT", path, body=body, tenant=tenant))

    def delete(self, path: str, body: Any = None, *, tenant: str | None = None) -> Any:
        """DELETE (optionally with a body such as ``{"force": true}``).

        If the response to a sent DELETE is lost and the retry answers 404, the first
        DELETE did the job: returns None."""
        return _data(self.request("DELETE", path, body=body, tenant=tenant))

    def create(self, path: str, body: Any, *, tenant: str | None = None, find: Finder) -> Any:
        """POST that never makes a twin.

        ``find()`` looks the object up by its unique name and returns its data (or None).
        It is called before re-sending a POST whose response was lost, and on a 409;
        when it finds the object, that is returned instead of the POST's ``data``.
        """
        result = self._call("POST", path, body=body, tenant=tenant, find=find)
        if isinstance(result, _Found):
            return _checked_entity(result.value, path, "POST")
        data = _data(result)
        problem = _entity_problem(data, body)
        if problem is None:
            return data
        # not the entity asked for: settled like a lost answer, by looking it up
        log.warning("POST %s: the answer is %s; looking the object up", path, problem)
        found = find()
        if found is not None:
            return _checked_entity(found, path, "POST")
        raise self._malformed("POST", path, problem)

    def list(
        self,
        path: str,
        *,
        tenant: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        page_size: int | None = None,
        prefetch: bool = False,
    ) -> Iterator[Any]:
        """Iterate over every item of a collection, following pages lazily (or, with
        ``prefetch``, for a caller that reads the whole listing, asking :data:`PREFETCH`
        pages ahead of the one being read, so the DSP renders the next page while this one
        is decoded).

        v2.2 pages with ``limit``/``offset`` until ``metadata.total_count``; v2.1 reports
        ``metadata.total``. A server that ignores ``offset`` or stops short raises
        :class:`DspError` rather than returning a silently truncated list.

        Without ``page_size``, pages are as large as the schema allows (``MAX_PAGE``, 1,000):
        ten times fewer round trips than the DSP's default of 100. A DSP that refuses that
        limit on the first page (400/422) is asked again with ``FALLBACK_PAGE`` (100); if
        that works, this client keeps using it.
        """
        if page_size is not None and not 1 <= page_size <= MAX_PAGE:
            raise ValueError(f"page_size must be between 1 and {MAX_PAGE}")
        return self._pages(path, tenant=tenant, filter=filter, sort=sort, page_size=page_size,
                           prefetch=PREFETCH if prefetch else 0)

    def ensure_tenant(self, path: str) -> str:
        """Create the tenant at ``path`` (``/root/x`` or ``x``) if it is missing.

        A 409 means it exists. Parents are created first. Returns the normalized path.
        """
        full = tenant_path(path)
        if full == "/root":
            return full
        parent, _, name = full.rpartition("/")
        if parent != "/root":
            self.ensure_tenant(parent)
        try:
            self.post("/tenants", {"name": name, "parent_path": parent}, tenant=parent)
        except Conflict:
            pass
        return full

    # ---- the choke point -----------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        tenant: str | None = None,
    ) -> Any:
        """Send one logical call (with retries) and return the whole parsed JSON body
        (envelope included: ``data``, ``metadata``...). ``path`` is relative to the API
        version (``/app_instances``); a ``/v2.x`` prefix is accepted and replaced."""
        return self._call(method, path, body=body, params=params, tenant=tenant)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        tenant: str | None = None,
        find: Finder | None = None,
        auth: bool = True,
        versioned: bool = True,
    ) -> Any:
        """The choke point. With ``find`` (POST), may return a :class:`_Found`."""
        method = method.upper()
        if versioned:
            rel = "/v" + self.api_version + _strip_version(path)
        else:
            rel = path
        if auth and self._key is None:
            with self._lock:
                if self._key is None:
                    self._login()
        tenant_header = None
        if versioned and auth:
            tenant_header = tenant if tenant is not None else self.default_tenant
        started = self._clock.monotonic()
        attempt = 0
        relogged = False
        outcome_unknown = False
        status: int | str = "-"
        try:
            while True:
                if outcome_unknown and find is not None:
                    found = find()
                    if found is not None:
                        log.info("%s %s: the lost request had succeeded; using it", method, rel)
                        status = "found"
                        return _Found(found)
                self._check_breaker(method, rel)
                key = self._key if auth else None
                try:
                    resp = self._send(method, rel, body, params, tenant_header, key)
                except TlsFailure as e:
                    raise self._tls_error(e) from None
                except BodyTooLarge as e:
                    raise DspError(
                        f"the DSP's answer is too large ({e.detail}); refused unread",
                        method=method, path=rel,
                    ) from None
                except TransportError as e:
                    sent = e.sent
                    if e.unreachable:
                        self._note_unreachable(method, rel, e)
                    if sent and method == "POST":
                        if find is None:
                            raise ConnectionLost(
                                f"the connection failed after the request was sent, so its "
                                f"outcome is unknown ({e.detail}); look the object up "
                                f"before retrying",
                                method=method, path=rel,
                            ) from None
                        outcome_unknown = True
                    elif sent and method == "DELETE":
                        outcome_unknown = True
                    delay = self._next_delay(CONNECTION, attempt, started)
                    since = self._unreachable_since
                    if delay is not None and e.unreachable and since is not None:
                        # the next try lands when the unreachable window ends, not a whole
                        # backoff step after it: the breaker opens on time
                        window = since + min(self.retry.unreachable, self.retry.timeout)
                        delay = min(delay, max(window - self._clock.monotonic(), 0.01))
                    if delay is None:
                        unknown = (
                            "; the request may have been applied: look it up before retrying"
                            if outcome_unknown else ""
                        )
                        raise ConnectionLost(
                            f"cannot reach the DSP at {self._base} ({e.detail}); gave "
                            f"up after {self._clock.monotonic() - started:.1f}s "
                            f"(datera_503_timeout={self.retry.timeout:g}s){unknown}",
                            method=method, path=rel,
                        ) from None
                    log.warning(
                        "%s %s: %s; retrying in %.2fs", method, rel, e.detail, delay
                    )
                    self._clock.sleep(delay)
                    attempt += 1
                    continue
                if self._unreachable_since is not None or self._unreachable_said:
                    with self._breaker_lock:
                        self._unreachable_since, self._unreachable_said = None, False
                status = resp.status_code
                try:
                    payload = self._payload(resp)
                except _Undecodable as e:
                    if not 200 <= status < 300:
                        payload = None
                    elif find is not None:
                        # not the entity asked for: settled like a lost answer, by name
                        found = find()
                        if found is not None:
                            status = "found"
                            return _Found(found)
                        raise self._malformed(method, rel, str(e)) from None
                    else:
                        raise self._malformed(method, rel, str(e)) from None
                if 200 <= status < 300:
                    return payload
                if status == 401 and auth and not relogged:
                    relogged = True
                    log.info("%s %s: session key rejected; logging in again", method, rel)
                    self._relogin(key)
                    continue
                reason = self._retry_reason(status, payload)
                if reason is not None:
                    retry_after = _retry_after(resp) if reason == THROTTLED else None
                    delay = self._next_delay(reason, attempt, started, retry_after)
                    if delay is None:
                        raise self._error(
                            method, rel, status, payload, cls=Unavailable,
                            suffix=f"; gave up after {self._clock.monotonic() - started:.1f}s "
                            f"(datera_503_timeout={self.retry.timeout:g}s)",
                        )
                    log.warning(
                        "%s %s: HTTP %s (%s); retrying in %.2fs", method, rel, status, reason, delay
                    )
                    self._clock.sleep(delay)
                    attempt += 1
                    continue
                if status == 404 and method == "DELETE" and outcome_unknown:
                    return None
                if status == 409 and find is not None:
                    found = find()
                    if found is not None:
                        status = "found"
                        return _Found(found)
                raise self._error(method, rel, status, payload)
        finally:
            if not self.config.datera_disable_profiler:
                profile_log.debug(
                    "%s %s %s %.1f ms (%d retries)", method, rel, status,
                    (self._clock.monotonic() - started) * 1000.0, attempt,
                )

    # ---- internals -----------------------------------------------------------------------

    def _send(
        self,
        method: str,
        rel: str,
        body: Any,
        params: dict[str, Any] | None,
        tenant: str | None,
        key: str | None,
    ) -> Response:
        headers = dict(_HEADERS)
        if key is not None:
            headers["Auth-Token"] = key
        if tenant is not None:
            headers["tenant"] = tenant
        data = None if body is None else json.dumps(body).encode("utf-8")
        debug = self.config.datera_debug
        if debug:
            wire_log.debug(
                "-> %s %s params=%s headers=%s body=%s", method, rel, params,
                self._redact(headers), self._dump(body),
            )
        if self.config.verify is False and not self._insecure_warned:
            self._insecure_warned = True
            log.warning("TLS verification is OFF for %s (tls_verify=false)", self._base)
        t0 = self._clock.monotonic()
        resp = self._transport.send(
            method, self._base + rel, headers=headers, data=data, params=params,
            timeout=self.config.request_timeout, max_body=self.max_body,
        )
        if debug:
            wire_log.debug(
                "<- %s %s %s %.1f ms body=%s", method, rel, resp.status_code,
                (self._clock.monotonic() - t0) * 1000.0, self._dump(self._payload(resp)),
            )
        return resp

    def _secrets(self) -> builtins.list[str | None]:
        return [self.config.san_password, self._key, self.config.chap_password]

    def _redact(self, value: Any) -> Any:
        return redact(value, self._secrets())

    def _dump(self, value: Any) -> str:
        if value is None:
            return "-"
        text = json.dumps(self._redact(value), default=str, sort_keys=True)
        if len(text) > _LOG_BODY_LIMIT:
            text = text[:_LOG_BODY_LIMIT] + f"...({len(text)} chars)"
        return text

    @staticmethod
    def _payload(resp: Response) -> Any:
        """The JSON body; a body that is not JSON: its text for an error status, or
        :class:`_Undecodable` for a success (nothing may rely on it)."""
        if not resp.content:
            return None
        try:
            return json.loads(resp.content)  # bytes: UTF-8/16/32 detected as requests does
        except (ValueError, RecursionError) as e:
            if 200 <= resp.status_code < 300:
                what = ("nested too deeply" if isinstance(e, RecursionError)
                        else "not valid UTF-8" if isinstance(e, UnicodeDecodeError)
                        else "not JSON")
                raise _Undecodable(f"a body that is {what}") from None
            return resp.content.decode("utf-8", "replace")[:500]

    def _malformed(self, method: str, rel: str, what: str) -> DspError:
        return DspError(
            f"the DSP answered with {what}; nothing was taken from it (is {self._base} a "
            f"DSP, and a healthy one?)", method=method, path=rel,
        )

    def _check_breaker(self, method: str, rel: str) -> None:
        """Fail at once while the DSP is judged unreachable (the breaker is open). After
        ``unreachable_timeout`` one call may try again; it reopens the breaker at once if
        the DSP still cannot be reached."""
        breaker = self._breaker
        if breaker is None:
            return
        if self._clock.monotonic() < self._breaker_until:
            raise Unreachable(breaker.message, method=method, path=rel, first=False)
        with self._breaker_lock:
            if self._breaker is not None and self._clock.monotonic() >= self._breaker_until:
                self._breaker = None  # half-open: this call probes

    def _note_unreachable(self, method: str, rel: str, e: TransportError) -> None:
        """Count an unreachable DSP client-wide; past ``unreachable_timeout`` open the
        breaker and raise the one "DSP unreachable" error."""
        now = self._clock.monotonic()
        with self._breaker_lock:
            since = self._unreachable_since
            if since is None:
                self._unreachable_since = since = now
            if self._breaker is None and now - since < min(self.retry.unreachable,
                                                           self.retry.timeout):
                return
            if self._breaker is None:
                self._breaker = Unreachable(
                    f"DSP unreachable: cannot reach the DSP at {self._base} ({e.detail}) "
                    f"for {now - since:.1f}s (unreachable_timeout="
                    f"{self.retry.unreachable:g}s); no call was sent. Check the endpoint "
                    f"and that the DSP is up", method=method, path=rel)
                self._breaker_until = now + max(self.retry.unreachable, 1.0)
                first, self._unreachable_said = not self._unreachable_said, True
            else:
                first = False  # in flight when another call opened the breaker
            message = self._breaker.message
        raise Unreachable(message, method=method, path=rel, first=first)

    @staticmethod
    def _retry_reason(status: int, payload: Any) -> str | None:
        if status == 503:
            return UNAVAILABLE
        if status == 429:
            return THROTTLED
        if status == 500:
            message = payload.get("message") if isinstance(payload, dict) else payload
            if isinstance(message, str) and _INITIALIZING in message:
                return UNAVAILABLE
        return None

    def _next_delay(
        self, reason: str, attempt: int, started: float, retry_after: float | None = None
    ) -> float | None:
        if getattr(self._once, "active", False):
            return None  # a warm-up step: no retries (the real call retries)
        elapsed = self._clock.monotonic() - started
        return self.retry.next_delay(reason, attempt, elapsed, retry_after)

    def _error(
        self,
        method: str,
        rel: str,
        status: int,
        payload: Any,
        *,
        cls: type[DspError] | None = None,
        suffix: str = "",
        hint: str = "",
    ) -> DspError:
        name = None
        message = None
        if isinstance(payload, dict):
            name = payload.get("name") if isinstance(payload.get("name"), str) else None
            message = payload.get("message")
            if not message and isinstance(payload.get("errors"), builtins.list):
                message = "; ".join(str(x) for x in payload["errors"])
        elif isinstance(payload, str) and payload.strip():
            message = payload.strip()[:200]
        text = str(message or f"HTTP {status} without a message") + suffix + hint
        err_cls = cls or _ERRORS.get(status, DspError)
        return err_cls(
            self._redact(text), method=method, path=rel, status=status, name=name,
            body=self._redact(payload),
        )

    def _tls_error(self, e: TlsFailure) -> ConfigError:
        detail = e.detail
        return ConfigError(
            f"endpoint: TLS verification of {self._base} failed ({detail[:200]}); set "
            f"ca_bundle to the CA that signed the DSP's certificate, or tls_verify=false "
            f"to skip verification (insecure)"
        )

    # ---- version, login -----------------------------------------------------------------

    def _probe_version(self) -> str:
        """``GET /api_versions`` (no auth): prefer 2.2, then 2.1."""
        try:
            body = self._call("GET", "/api_versions", auth=False, versioned=False)
        except (NotFound, InvalidRequest):
            # Old products answer 400/404 here: try logging in with each version instead.
            for version in SUPPORTED_VERSIONS:
                self._version = version
                try:
                    self._login()
                    return version
                except NotFound:
                    continue
            self._version = None
            raise DspError(
                "the DSP serves none of the API versions "
                f"{', '.join(SUPPORTED_VERSIONS)} (set api_version if it is a proxy)",
                method="GET", path="/api_versions",
            ) from None
        version = _pick_version(body)
        if version is not None:
            return version
        offered = _offered(body)
        raise DspError(
            f"the DSP offers API versions {sorted(offered)}, none of "
            f"{', '.join(SUPPORTED_VERSIONS)} that this client speaks",
            method="GET", path="/api_versions",
        )

    def _login(self) -> None:
        """``PUT /v<ver>/login``; sets the session key. Caller holds the lock."""
        cfg = self.config
        try:
            refused, self._refused_login = self._refused_login, None
            if refused is not None and self._version == "2.2":
                raise refused
            result = self._call("PUT", "/login", body=self._login_body(), auth=False)
        except AuthFailed as e:
            ldap = ", datera_ldap_server" if cfg.datera_ldap_server else ""
            raise AuthFailed(
                f"login as {cfg.san_login!r} failed: {e.message} "
                f"(check san_login, san_password{ldap})",
                method=e.method, path=e.path, status=e.status, name=e.name,
            ) from None
        key = result.get("key") if isinstance(result, dict) else None
        if not isinstance(key, str) or not key:
            raise AuthFailed(
                "login answered without a session key", method="PUT",
                path=f"/v{self.api_version}/login", status=200,
            )
        self._key = key
        log.debug("logged in to %s as %r (API v%s)", self._base, cfg.san_login, self._version)

    def _login_body(self) -> dict[str, Any]:
        cfg = self.config
        body: dict[str, Any] = {"name": cfg.san_login, "password": cfg.san_password}
        if cfg.datera_ldap_server:
            body["remote_server"] = cfg.datera_ldap_server
        return body

    def _relogin(self, stale_key: str | None) -> None:
        with self._lock:
            if self._key == stale_key or self._key is None:
                self._key = None
                self._login()

    # ---- paging -------------------------------------------------------------------------

    def _pages(
        self,
        path: str,
        *,
        tenant: str | None,
        filter: str | None,
        sort: str | None,
        page_size: int | None,
        prefetch: int = 0,
    ) -> Iterator[Any]:
        offset = 0
        previous_first: Any = None
        adaptive, fell_back = page_size is None, False
        if page_size is None:
            page_size = self._page
        base: dict[str, Any] = {}
        if filter:
            base["filter"] = filter
        if sort:
            base["sort"] = sort

        def fetch(at: int, size: int) -> Any:
            return self.request("GET", path, params={"limit": size, "offset": at, **base},
                                tenant=tenant)

        # with ``prefetch``, pages after the first are asked that many ahead, each on a
        # worker thread of its own: the DSP renders the next page while this one is
        # decoded (a 10,000-volume listing is ten pages). Only offsets the sequential walk
        # would ask; a page of another size than asked (the collection changed meanwhile)
        # drops what was fetched ahead, and the walk goes on from where that page ends.
        pending: dict[int, Future[Any]] = {}
        pool: ThreadPoolExecutor | None = None
        try:
            while True:
                if offset == 0:
                    while True:
                        try:
                            body = fetch(0, page_size)
                            break
                        except NotFound as e:
                            if str(e.message).startswith("No data at"):
                                return
                            raise
                        except (InvalidRequest, ValidationFailed):
                            # an older DSP that caps ``limit`` below the schema's maximum: ask
                            # again at its default size; a refusal for another reason (a bad
                            # filter) repeats and is raised from there
                            if not (adaptive and page_size > FALLBACK_PAGE):
                                raise
                            page_size = FALLBACK_PAGE
                            adaptive, fell_back = False, True
                else:
                    ahead = pending.pop(offset, None)
                    body = ahead.result() if ahead is not None else fetch(offset, page_size)
                if fell_back:  # the smaller page was accepted: keep asking for it
                    fell_back = False
                    self._page = FALLBACK_PAGE
                    log.info("the DSP refused limit=%d on %s; listing %d at a time",
                             MAX_PAGE, path, FALLBACK_PAGE)
                items = _data(body)
                if isinstance(items, dict):  # a collection keyed by name (legacy shape)
                    items = builtins.list(items.values())
                if not isinstance(items, builtins.list):
                    raise DspError(
                        f"expected a list from {path}, got {type(items).__name__}",
                        method="GET", path=path,
                    )
                meta = body.get("metadata") if isinstance(body, dict) else None
                meta = meta if isinstance(meta, dict) else {}
                total = meta.get("total_count", meta.get("total"))
                if items:
                    first = items[0].get("path") if isinstance(items[0], dict) else items[0]
                    if offset and first is not None and first == previous_first:
                        raise DspError(
                            f"the DSP ignored offset={offset} on {path}; refusing to return a "
                            f"truncated or repeated list (set page_size above {total})",
                            method="GET", path=path,
                        )
                    previous_first = first
                offset += len(items)
                if prefetch and items and isinstance(total, int) and offset < total:
                    for stale in [o for o in pending if o < offset]:
                        pending.pop(stale).cancel()
                    at = offset
                    while len(pending) < prefetch and at < total:
                        if at not in pending:
                            if pool is None:
                                pool = ThreadPoolExecutor(prefetch,
                                                          thread_name_prefix="datera-pages")
                            pending[at] = pool.submit(fetch, at, page_size)
                        at += page_size
                for item in items:
                    _checked_entity(item, path, "GET")
                yield from items
                if not items:
                    if isinstance(total, int) and offset < total:
                        raise DspError(
                            f"{path}: the DSP reported {total} items but returned {offset}",
                            method="GET", path=path,
                        )
                    return
                if isinstance(total, int):
                    if offset >= total:
                        return
                elif len(items) < page_size:
                    return
        finally:
            for f in pending.values():
                f.cancel()
            if pool is not None:
                pool.shutdown(wait=True)


#: identity fields the kinds build ids and URLs from: when present, non-empty strings
_IDENTITY: Final = ("id", "name", "path", "uuid", "tenant", "timestamp")
_REQUIRED_IF_GIVEN: Final = ("id", "name", "path")  # present as null is junk too


def _entity_problem(data: Any, asked: Any = None) -> str | None:
    """Why ``data`` is not a DSP entity (the one ``asked`` for, when given), or None."""
    if not isinstance(data, dict):
        return f"a {type(data).__name__}, not an object"
    for key in _IDENTITY:
        value = data.get(key)
        if (value is not None or (key in data and key in _REQUIRED_IF_GIVEN)) and (
                not isinstance(value, str) or not value):
            return f"an object whose {key!r} is {type(value).__name__} {str(value)[:40]!r}"
    if not any(isinstance(data.get(k), str) for k in ("id", "name", "path", "timestamp")):
        return "an object without an id, name or path"
    if isinstance(asked, dict):
        for key in ("name", "uuid"):
            want, got = asked.get(key), data.get(key)
            if isinstance(want, str) and got is not None and got != want:
                return f"an object whose {key} is {got[:60]!r}, not {want[:60]!r}"
    return None


def _checked_entity(data: Any, path: str, method: str) -> Any:
    """``data`` if it is a DSP entity, else a :class:`DspError` naming the route."""
    problem = _entity_problem(data)
    if problem is not None:
        raise DspError(f"the DSP answered with an item that is {problem}; nothing was "
                       f"taken from it", method=method, path=path)
    return data


def _offered(body: Any) -> set[str]:
    """The API versions a ``GET /api_versions`` body offers, without their ``v``."""
    offered = body.get("api_versions", []) if isinstance(body, dict) else []
    return {str(v).lstrip("v") for v in offered}


def _pick_version(body: Any) -> str | None:
    """The preferred version this client speaks among those offered, or None."""
    offered = _offered(body)
    for version in SUPPORTED_VERSIONS:
        if version in offered:
            return version
    return None


def _strip_version(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    if path.startswith("/v2"):
        head, sep, rest = path[1:].partition("/")
        if head in ("v2", "v2.1", "v2.2", "v2.3"):
            return "/" + rest if sep else "/"
    return path


def _retry_after(resp: Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
