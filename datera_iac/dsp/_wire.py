"""A lean HTTP/1.1 exchange on a connection of the session's own urllib3 pool.

Why: at parallelism 10 the engine is CPU-bound under the GIL, and half of the client's CPU
per call went to ``urllib3`` + ``http.client`` (header objects, ``email.parser`` for the
response headers, one ``send`` per header block and body). This module keeps what matters
from that stack and drops the rest:

* connections come from (and go back to) the ``HTTPConnectionPool`` that the session's
  ``HTTPAdapter`` picked for our TLS settings, and are opened by urllib3's own
  ``connect()`` — so TLS verification, the CA bundle, client certificates and hostname
  checks are urllib3's, unchanged; a closed pool raises ``ClosedPoolError`` as before;
* the request is the one urllib3 would write (request line, ``Host``, the same default
  ``Accept-Encoding``/``User-Agent`` rules, ``Content-Length``), sent with one ``sendall``;
* the response is parsed here (status line, headers, ``Content-Length`` / chunked /
  read-to-close bodies, 1xx interim responses skipped); a ``Content-Encoding`` is decoded
  by urllib3's ``HTTPResponse`` as before;
* failures raise the exceptions ``requests.HTTPAdapter.send`` raises for the same event,
  so the client's retry logic still tells an unsent request (refused, connect timeout,
  TLS failure: safe to resend) from a maybe-sent one (reset, read timeout, closed early).

Only used with the adapter's default ``max_retries`` (no urllib3-level retries), which is
what this mapping reproduces; any other adapter configuration keeps ``urlopen``.
"""

from __future__ import annotations

import io
import socket
import ssl
import warnings
from typing import Any, Final

import requests
import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    InsecureRequestWarning,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
)

__all__ = ["Headers", "exchange", "host_header"]

_MAX_HEAD: Final = 64 * 1024  # http.client allows 64 KiB per line and 100 headers
_MAX_HEADERS: Final = 100
_RECV: Final = 65536
_NO_BODY_STATUS: Final = frozenset({204, 304})


class Headers(dict[str, str]):
    """Response headers keyed by lower-cased name; ``get``/``[]`` ignore case as
    ``requests``' and urllib3's header dicts do. Repeated headers are joined with ", "."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())


def host_header(pool: Any) -> str:
    """The ``Host`` value http.client sends for ``pool`` (IPv6 in brackets, the port only
    when it is not the scheme's default)."""
    host = pool.host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    default = 443 if pool.scheme == "https" else 80
    return host if pool.port in (None, default) else f"{host}:{pool.port}"


def request_head(method: str, target: str, host: str, headers: dict[str, str],
                 body_len: int | None) -> bytes:
    """The request line and headers exactly as urllib3's ``HTTPConnection.request`` orders
    them: ``Host``, ``Accept-Encoding: identity`` unless given, ``Content-Length``,
    ``User-Agent`` unless given, then ``headers`` in their order."""
    keys = {k.lower() for k in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in keys:
        lines.append(f"Host: {host}")
    if "accept-encoding" not in keys:
        lines.append("Accept-Encoding: identity")
    if body_len is not None and "content-length" not in keys:
        lines.append(f"Content-Length: {body_len}")
    if "user-agent" not in keys:
        lines.append(f"User-Agent: python-urllib3/{urllib3.__version__}")  # urllib3's default
    lines.extend(f"{k}: {v}" for k, v in headers.items())
    # http.client encodes header values as latin-1 and the request line as ascii
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Closed(Exception):
    """The peer closed the connection before a complete response."""


class _Reader:
    """Buffered reads from one socket."""

    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def fill(self) -> bool:
        data = self.sock.recv(_RECV)
        if not data:
            return False
        self.buf += data
        return True

    def line(self, limit: int = _MAX_HEAD) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("Connection aborted.", "response line too long")
            if not self.fill():
                raise _Closed

    def head(self) -> bytes:
        """Everything up to the blank line that ends a response head (without it)."""
        start = 0
        while True:
            i = self.buf.find(b"\r\n\r\n", start)
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 4]
                return out
            if len(self.buf) > _MAX_HEAD:
                raise ProtocolError("Connection aborted.", "response head over 64 KiB")
            start = max(0, len(self.buf) - 3)
            if not self.fill():
                if self.buf.strip():
                    raise ProtocolError("Connection aborted.", "response head cut short")
                raise _Closed

    def exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise _Closed
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def rest(self) -> bytes:
        while self.fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def _read_head(r: _Reader) -> tuple[str, int, Headers]:
    """One response head: (HTTP version, status, headers), read as one block."""
    status_line, *lines = r.head().split(b"\r\n")
    parts = status_line.split(None, 2)
    try:
        version = parts[0].decode("ascii")
        status = int(parts[1])
    except (IndexError, ValueError, UnicodeDecodeError):
        raise ProtocolError("Connection aborted.", f"bad status line {status_line[:80]!r}") from None
    if not version.startswith("HTTP/") or not 100 <= status <= 999:
        raise ProtocolError("Connection aborted.", f"bad status line {status_line[:80]!r}")
    headers = Headers()
    if len(lines) > _MAX_HEADERS:
        raise ProtocolError("Connection aborted.", "more than 100 response headers")
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip():
            raise ProtocolError("Connection aborted.", f"bad header line {line[:80]!r}")
        key = name.decode("latin-1").lower()
        text = value.strip().decode("latin-1")
        old = dict.get(headers, key)
        dict.__setitem__(headers, key, text if old is None else f"{old}, {text}")
    return version, status, headers


def _read_chunked(r: _Reader) -> bytes:
    out = bytearray()
    while True:
        size_line = r.line().split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise ProtocolError("Connection aborted.", f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            while r.line():  # trailers
                pass
            return bytes(out)
        out += r.exactly(size)
        if r.exactly(2) != b"\r\n":
            raise ProtocolError("Connection aborted.", "chunk without its CRLF")


def _read_response(r: _Reader, method: str) -> tuple[int, Headers, bytes, bool]:
    """(status, headers, body, keep the connection) of the final (non-1xx) response."""
    while True:
        version, status, headers = _read_head(r)
        if status < 200 and status != 101:
            continue  # 100 Continue, 102, 103: an interim response precedes the real one
        break
    conn_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    keep = version == "HTTP/1.1" and "close" not in conn_tokens
    if method == "HEAD" or status in _NO_BODY_STATUS or status < 200:
        return status, headers, b"", keep
    te = headers.get("transfer-encoding")
    if te is not None and te.lower().rsplit(",", 1)[-1].strip() == "chunked":
        return status, headers, _read_chunked(r), keep
    length = headers.get("content-length")
    if length is not None:
        try:
            n = int(length.split(",")[0])
            if n < 0:
                raise ValueError
        except ValueError:
            raise ProtocolError("Connection aborted.", f"bad Content-Length {length!r}") from None
        return status, headers, r.exactly(n), keep
    return status, headers, r.rest(), False  # the body ends when the server closes


def _decode(status: int, headers: Headers, body: bytes) -> bytes:
    """Undo a ``Content-Encoding`` with urllib3's decoders (gzip, deflate, br, zstd as
    installed), as ``urlopen(decode_content=True)`` did."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if not body or encoding in ("", "identity"):
        return body
    resp = urllib3.HTTPResponse(body=io.BytesIO(body), headers=dict(headers), status=status,
                                preload_content=True, decode_content=True)
    return bytes(resp.data)


def _connect(pool: Any, conn: Any, url: str, timeout: float) -> None:
    """Open ``conn`` with urllib3's own ``connect`` (TLS verification and all), mapping
    failures as ``urlopen`` + ``HTTPAdapter.send`` do: nothing was sent yet."""
    conn.timeout = timeout
    try:
        conn.connect()
    except NewConnectionError as e:  # first: urllib3 2.x makes it a ConnectTimeoutError
        raise requests.ConnectionError(MaxRetryError(pool, url, e)) from None
    except (TimeoutError, ConnectTimeoutError) as e:
        raise requests.exceptions.ConnectTimeout(MaxRetryError(pool, url, e)) from None
    except (ssl.SSLError, ssl.CertificateError, urllib3.exceptions.SSLError) as e:
        reason = e if isinstance(e, urllib3.exceptions.SSLError) else urllib3.exceptions.SSLError(e)
        raise requests.exceptions.SSLError(MaxRetryError(pool, url, reason)) from None
    except OSError as e:
        raise requests.ConnectionError(MaxRetryError(pool, url, NewConnectionError(conn, str(e)))) from None
    if pool.scheme == "https" and not getattr(conn, "is_verified", True):
        warnings.warn(
            f"Unverified HTTPS request is being made to host '{conn.host}'. Adding certificate "
            "verification is strongly advised.", InsecureRequestWarning, stacklevel=3)


def exchange(pool: Any, host: str, method: str, target: str, headers: dict[str, str],
             body: bytes | None, timeout: float) -> tuple[int, Headers, bytes]:
    """Send one request on a connection of ``pool`` and read its whole response.

    Raises ``ClosedPoolError`` (nothing sent) when the pool was closed, otherwise the
    ``requests`` exception ``HTTPAdapter.send`` raises for the same failure."""
    conn = pool._get_conn()  # ClosedPoolError propagates: the caller takes the new pool
    keep = False
    try:
        if conn.sock is None:
            _connect(pool, conn, target, timeout)
        sock: socket.socket = conn.sock
        if sock.gettimeout() != timeout:  # settimeout is an fcntl call: once per connection
            sock.settimeout(timeout)
        if body is None and method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
            body = b""  # urllib3 sends Content-Length: 0 for a body-less POST/PUT/DELETE
        head = request_head(method, target, host, headers, None if body is None else len(body))
        try:
            sock.sendall(head + body if body else head)
            status, rheaders, data, keep = _read_response(_Reader(sock), method)
        except TimeoutError as e:
            raise requests.exceptions.ReadTimeout(
                urllib3.exceptions.ReadTimeoutError(pool, target, f"Read timed out. ({e})")
            ) from None
        except _Closed:
            raise requests.ConnectionError(ProtocolError(
                "Connection aborted.", "Remote end closed connection without response")) from None
        except ProtocolError as e:
            raise requests.ConnectionError(e) from None
        except OSError as e:  # reset, broken pipe: the request may have arrived
            raise requests.ConnectionError(ProtocolError("Connection aborted.", e)) from None
        return status, rheaders, _decode(status, rheaders, data)
    finally:
        if not keep:
            conn.close()
        pool._put_conn(conn)
