"""Errors the simulated DSP answers with, as JSON bodies ``{name, code, http, message}``.

The names follow what Datera's clients match on (``AuthFailedError``, ``NotFoundError``,
``ConflictError``, ``ValidationFailedError``, ``InvalidRequestError``). Numeric ``code``
values are only known for one case on the real product (15: duplicate snapshot uuid);
the others are this simulator's own, documented in ``docs/simulator.md``.
"""

from __future__ import annotations

from typing import Any

#: the message the dfs-sdk matches to decide an expired key is "normal" and re-logs in.
EXPIRED_KEY_MESSAGE = "The key provided with the request does not correspond to a valid session."
#: the 500 message the dfs-sdk turns into a retry.
INITIALIZING_MESSAGE = "REST server is still initializing"


class SimError(Exception):
    """An error answer. Handlers raise it; the error middleware renders it."""

    http: int = 500
    name: str = "InternalError"
    code: int = 1

    def __init__(self, message: str, *, code: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "code": self.code,
            "http": self.http,
            "message": self.message,
        }
        out.update(self.extra)
        return out


class InvalidRequest(SimError):
    http, name, code = 400, "InvalidRequestError", 10


class AuthFailed(SimError):
    http, name, code = 401, "AuthFailedError", 11


class NotFound(SimError):
    http, name, code = 404, "NotFoundError", 12


class MethodNotAllowed(SimError):
    http, name, code = 405, "InvalidRequestError", 13


class Conflict(SimError):
    http, name, code = 409, "ConflictError", 14


class ValidationFailed(SimError):
    http, name, code = 422, "ValidationFailedError", 16

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        if field:
            extra.setdefault("errors", [f"{field}: {message}"])
        super().__init__(f"{field}: {message}" if field else message, **extra)
        self.field = field


class Internal(SimError):
    http, name, code = 500, "InternalError", 17


class Unavailable(SimError):
    http, name, code = 503, "ServiceUnavailableError", 18
