"""The HTTP transport under the DSP client: one small protocol and one backend on ``requests``.

The shape is python-gitlab's ``_backends``: the client composes the URL, headers and body and
reads the answer; a backend only moves bytes. The client never touches ``requests`` or
``urllib3`` itself, so a backend with less CPU per call could replace this one behind the
same protocol without a change in the retry, login and lookup logic above it.

A backend answers one :class:`Response` (status, headers, the whole body) or raises one
:class:`TransportError` that says what the client's retry logic needs to know:

* ``sent``: whether the request may have reached the DSP (a POST's outcome is then unknown);
* ``unreachable``: nothing reached the DSP because the host could not be reached at all
  (connection refused, name resolution failed, connect timed out) - the client's breaker
  counts these.

Limits held here, for every call: the body of an answer is at most ``max_body`` bytes (an
answer announcing more by ``Content-Length`` is refused before its body is read; one that
sends more is cut off at the limit), and the whole exchange - connect, headers, body - ends
by ``timeout`` seconds after it began (the body is read against the time left, not a fresh
timeout per read, so a DSP dripping a byte at a time cannot hold a call open).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final, Protocol

import attrs
import requests
import requests.adapters
import urllib3

__all__ = [
    "MAX_BODY",
    "BodyTooLarge",
    "DeadlineExceeded",
    "RequestsTransport",
    "Response",
    "TlsFailure",
    "Transport",
    "TransportError",
]

#: Largest answer body accepted from a DSP, in bytes (64 MiB). A page of 1,000 volumes is a
#: few MB; anything near this limit is not an answer this client could use.
MAX_BODY: Final = 64 * 1024 * 1024
_CHUNK: Final = 256 * 1024
#: Connections kept per host: a connection per engine worker (urllib3's default of 10 would
#: discard connections under more threads).
POOL_SIZE: Final = 32


@attrs.frozen
class Response:
    """One answer: the status, the headers (case-insensitive mapping) and the whole body."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


class TransportError(Exception):
    """The exchange failed before a whole answer arrived. ``detail`` is a short cause that
    carries no request data (it may reach an error message)."""

    def __init__(self, detail: str, *, sent: bool, unreachable: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.sent = sent
        self.unreachable = unreachable and not sent


class TlsFailure(TransportError):
    """TLS verification (or the handshake) failed: a configuration problem, never retried."""


class BodyTooLarge(TransportError):
    """The answer's body is over the limit; it was not read (or read only up to the limit)."""


class DeadlineExceeded(TransportError):
    """No whole answer within the request's deadline."""


class Transport(Protocol):
    """What the client needs from HTTP."""

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: bytes | None,
        params: Mapping[str, Any] | None,
        timeout: float,
        max_body: int,
    ) -> Response: ...

    def close(self) -> None: ...


def new_session(pool_size: int = POOL_SIZE) -> requests.Session:
    """A ``requests`` session whose pool keeps ``pool_size`` connections per host."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class RequestsTransport:
    """The ``requests`` backend. ``session`` is injectable (tests, a caller's proxies or
    adapters); ``verify`` and ``cert`` are passed on every call.

    With ``base_url`` (the DSP's), what the environment says for that endpoint - proxies
    and ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` - is read once, here, by the
    session's own ``merge_environment_settings``, and the session stops reading it on every
    call (``trust_env``), which cost about a quarter of the client's CPU per call
    (bench/bench_client.py)."""

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
        base_url: str | None = None,
    ) -> None:
        self.session = session if session is not None else new_session()
        self.verify = verify
        self.cert = cert
        if base_url is not None and self.session.trust_env:
            env = self.session.merge_environment_settings(base_url, {}, None, verify, cert)
            self.session.proxies.update(env["proxies"])
            self.verify = env["verify"]
            self.session.trust_env = False

    def close(self) -> None:
        self.session.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: bytes | None,
        params: Mapping[str, Any] | None,
        timeout: float,
        max_body: int,
    ) -> Response:
        deadline = time.monotonic() + timeout
        try:
            resp = self.session.request(
                method, url, headers=dict(headers), data=data, params=params,
                timeout=timeout, verify=self.verify, cert=self.cert, stream=True,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as e:
            raise TlsFailure(_reason(e), sent=False) from None
        except requests.exceptions.ConnectTimeout:
            raise TransportError("ConnectTimeout", sent=False, unreachable=True) from None
        except requests.exceptions.ReadTimeout:
            raise DeadlineExceeded(f"ReadTimeout: no answer within {timeout:g}s",
                                   sent=True) from None
        except (requests.ConnectionError, requests.Timeout) as e:
            sent = _maybe_sent(e)
            raise TransportError(type(e).__name__, sent=sent, unreachable=not sent) from None
        except requests.RequestException as e:  # a broken answer head (InvalidHeader...)
            raise TransportError(type(e).__name__, sent=True) from None
        try:
            body = _read_body(resp, deadline, timeout, max_body)
        finally:
            resp.close()
        return Response(resp.status_code, resp.headers, body)


def _read_body(resp: requests.Response, deadline: float, timeout: float, limit: int) -> bytes:
    """The whole body, within ``limit`` bytes and by ``deadline``."""
    announced = resp.headers.get("Content-Length")
    if announced is not None and announced.strip().isdigit() and int(announced) > limit:
        raise BodyTooLarge(
            f"the answer announces {int(announced)} bytes, over the {limit}-byte limit",
            sent=True)
    if resp.raw is None:  # an adapter that answered with the body already in memory
        content = resp.content or b""
        if len(content) > limit:
            raise BodyTooLarge(f"the answer is over the {limit}-byte limit", sent=True)
        return content
    parts: list[bytes] = []
    size = 0
    raw = resp.raw
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(f"ReadTimeout: no whole answer within {timeout:g}s",
                                       sent=True)
            sock = getattr(getattr(raw, "connection", None), "sock", None)
            if sock is not None:
                sock.settimeout(left)  # the time left, not a fresh timeout per read
            # read1: what one receive brings (read(n) would wait for n bytes, however
            # slowly they drip)
            chunk = raw.read1(_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"the answer is over the {limit}-byte limit", sent=True)
            parts.append(chunk)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as e:
        if time.monotonic() >= deadline or isinstance(
                e, (urllib3.exceptions.ReadTimeoutError, TimeoutError)):
            raise DeadlineExceeded(f"ReadTimeout: no whole answer within {timeout:g}s",
                                   sent=True) from None
        raise TransportError(type(e).__name__, sent=True) from None
    return b"".join(parts)


def _reason(e: Exception) -> str:
    reason = e.args[0].reason if e.args and hasattr(e.args[0], "reason") else e
    return str(reason)[:200]


def _maybe_sent(exc: requests.RequestException) -> bool:
    """Whether the request may have reached the DSP (so a POST's outcome is unknown).

    A refused or timed-out *connect*, or a name that does not resolve, never sent anything;
    a reset, a read timeout or a connection closed before the answer may have come after
    the DSP acted.
    """
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return False
    reason: Any = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return not isinstance(
        reason,
        (
            urllib3.exceptions.NewConnectionError,  # refused, DNS failure
            urllib3.exceptions.ConnectTimeoutError,
            urllib3.exceptions.ClosedPoolError,  # raised before a connection is taken
        ),
    )
