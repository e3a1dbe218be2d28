"""A scripted raw-socket server on 127.0.0.1: a fake DSP for answers the simulator never gives.

Tests and ``bench/fault_report.py`` use it to answer the client with broken or hostile bytes
(HTML, truncated JSON, bad UTF-8, a slow drip, a huge body, a connection closed mid-answer).
It reads each request head and body and calls ``script(conn, request)``: the bytes it
returns are sent, None closes the connection. It never parses more than it must to frame a
request, and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable

__all__ = ["MALFORMED_CREATES", "MALFORMED_LISTS", "RawServer", "Script", "answer", "split"]

Script = Callable[[socket.socket, bytes], "bytes | None"]


class RawServer:
    """Accepts connections and answers each request with ``script``'s bytes. Records every
    request's raw bytes and how many connections were accepted."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.accepted = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            conn.settimeout(30)
            try:
                while True:
                    while b"\r\n\r\n" not in buf:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    head, _, rest = buf.partition(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    while len(rest) < length:
                        data = conn.recv(65536)
                        if not data:
                            return
                        rest += data
                    req, buf = head + b"\r\n\r\n" + rest[:length], rest[length:]
                    self.requests.append(req)
                    out = self.script(conn, req)
                    if out is None:
                        return
                    conn.sendall(out)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def answer(body: bytes = b'{"data": {}}', status: str = "200 OK", extra: str = "",
           content_type: str = "application/json") -> bytes:
    """A whole HTTP/1.1 answer with a Content-Length."""
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def split(req: bytes) -> tuple[bytes, list[bytes], bytes]:
    """(request line, header lines, body) of a recorded request."""
    head, _, body = req.partition(b"\r\n\r\n")
    line, *headers = head.split(b"\r\n")
    return line, headers, body


#: 200 answers to ``POST /app_instances`` that are not an app_instance (issue #17: each was
#: reported "created" on c8d647f), by name
MALFORMED_CREATES: dict[str, bytes] = {
    "html": b"<html><body>proxy error</body></html>",
    "truncated-json": b'{"data": {"name": "vol-a", "id": "1',
    "null": b"null",
    "data-null": b'{"data": null}',
    "data-string": b'{"data": "nope"}',
    "list-of-ints": b'{"data": [1, 2, 3]}',
    "id-int": b'{"data": {"name": "vol-a", "id": 12}}',
    "id-null": b'{"data": {"name": "vol-a", "id": null}}',
    "id-list": b'{"data": {"name": "vol-a", "id": ["x"]}}',
    "empty-object": b'{"data": {}}',
    "other-name": b'{"data": {"name": "someone-else", "id": "7"}}',
    "bad-utf8": b'{"data": {"name": "vol-\xff\xfe", "id": "1"}}',
    "deep": b"[" * 200_000 + b"]" * 200_000,
    "number": b"42",
    "empty-body": b"",
    "path-int": b'{"data": {"name": "vol-a", "path": 5}}',
}

#: list answers that are not a list of entities (issue #17: tracebacks on c8d647f), by name
MALFORMED_LISTS: dict[str, bytes] = {
    "items-mixed": b'{"data": [1, 2, null], "metadata": {"total_count": 3}}',
    "items-wrong-types": b'{"data": [{"name": 5, "id": "a"}], "metadata": {"total_count": 1}}',
    "no-data": b'{"metadata": {"total_count": 1}, "x": 1}',
    "deep": b'{"data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}",
    "html": b"<html>503</html>",
    "bad-utf8": b'{"data": [{"name": "\xff"}]}',
}
