"""One exception hierarchy for the whole project.

Every error a user can cause names the resource, the field and what to do, and never
carries a secret. Front ends turn these into their own diagnostics (CLI messages,
Terraform diagnostics, Pulumi check failures / gRPC errors) without tracebacks.

    DateraIacError
    ├── InputError            bad declaration: caught before any API call
    ├── ConfigError           bad provider / connection configuration
    ├── DspError              the DSP answered with an error, or could not be reached
    │   ├── AuthFailed        401 / 403, or a login that failed
    │   ├── NotFound          404
    │   ├── Conflict          409 (a name already taken, a state that forbids the change)
    │   ├── ValidationFailed  422 (the DSP rejected the body)
    │   ├── InvalidRequest    400
    │   ├── Unavailable       503 / 500 "still initializing" past the retry deadline
    │   └── ConnectionLost    the connection failed past the retry deadline
    ├── WaitTimeout           a bounded wait gave up; says what it waited for
    ├── StateError            state backend problems
    │   └── LockError         another run holds the stack's lock
    └── NodeError             iSCSI / multipath helper failures
        └── CommandFailed     an external command exited with an unexpected code
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DateraIacError",
    "InputError",
    "ConfigError",
    "DspError",
    "AuthFailed",
    "NotFound",
    "Conflict",
    "ValidationFailed",
    "InvalidRequest",
    "Unavailable",
    "ConnectionLost",
    "Unreachable",
    "WaitTimeout",
    "StateError",
    "LockError",
    "NodeError",
    "CommandFailed",
]


class DateraIacError(Exception):
    """Base of every error this project raises on purpose."""


class InputError(DateraIacError, ValueError):
    """A declaration is invalid. Raised before any API call.

    ``kind`` is the resource kind ("Volume"), ``resource`` the user's name for the resource
    when known, ``field`` the offending field (a dotted path for nested values), and ``fix``
    a short instruction telling the user what to do.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        field: str | None = None,
        resource: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.kind = kind
        self.field = field
        self.resource = resource
        self.fix = fix
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.kind:
            where.append(self.kind)
        if self.resource:
            where.append(repr(self.resource))
        head = " ".join(where)
        if self.field:
            head = f"{head} field {self.field!r}" if head else f"field {self.field!r}"
        text = f"{head}: {self.reason}" if head else self.reason
        if self.fix:
            text = f"{text} ({self.fix})"
        return text

    def with_resource(self, resource: str) -> "InputError":
        """Return a copy that names the user's resource (the engine knows it, the kind not)."""
        return InputError(
            self.reason, kind=self.kind, field=self.field, resource=resource, fix=self.fix
        )


class ConfigError(DateraIacError, ValueError):
    """The connection / provider configuration is invalid."""


class DspError(DateraIacError):
    """The DSP answered with an error (or could not be reached).

    Carries the request's method and path (never the body, which may hold secrets), the HTTP
    status and the DSP's error ``name`` and ``message`` from the JSON error body.
    """

    status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
        name: str | None = None,
        body: Any = None,
    ) -> None:
        self.method = method
        self.path = path
        if status is not None:
            self.status = status
        self.name = name
        self.message = message
        self.body = body
        where = f"{method} {path}: " if method and path else ""
        code = f"HTTP {self.status} " if self.status else ""
        ename = f"{name}: " if name else ""
        super().__init__(f"{where}{code}{ename}{message}")


class AuthFailed(DspError):
    status = 401


class NotFound(DspError):
    status = 404


class Conflict(DspError):
    status = 409


class ValidationFailed(DspError):
    status = 422


class InvalidRequest(DspError):
    status = 400


class Unavailable(DspError):
    status = 503


class ConnectionLost(DspError):
    status = None


class Unreachable(ConnectionLost):
    """The DSP cannot be reached at all (refused, name not resolved, connect timed out) for
    ``unreachable_timeout``: every call of the client fails at once with this error.

    Every one carries the whole message (why, where, for how long). ``first`` is true only
    for the one that opened the client's breaker in an outage; a front end that reports one
    error per resource (Terraform's diagnostics, Pulumi's per-resource errors) shows
    :meth:`per_resource`, so the cause is said once and the others point to it (in no
    particular place: Terraform orders its diagnostics itself)."""

    def __init__(self, message: str, *, first: bool = True, **where: Any) -> None:
        super().__init__(message, **where)
        self.first = first

    def per_resource(self) -> str:
        """The whole message for the first error of an outage; a short pointer to it for
        the errors after it."""
        if self.first:
            return str(self)
        call = f"{self.method} {self.path} " if self.method and self.path else ""
        return f"DSP unreachable (the cause is in one other error of this run): {call}was not sent"


class WaitTimeout(DateraIacError, TimeoutError):
    """A bounded wait gave up. The message says what it waited for and for how long."""

    def __init__(self, what: str, timeout: float, last: Any = None) -> None:
        self.what = what
        self.timeout = timeout
        self.last = last
        tail = f"; last seen: {last}" if last is not None else ""
        super().__init__(f"timed out after {timeout:g}s waiting for {what}{tail}")


class StateError(DateraIacError):
    """The state backend could not be read or written."""


class LockError(StateError):
    """Another run holds the stack's lock. ``holder`` describes it (pid, host, since)."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        self.holder = holder or {}
        super().__init__(message)


class NodeError(DateraIacError):
    """The iSCSI / multipath helper failed."""


class CommandFailed(NodeError):
    """An external command exited with a code not in its ok codes.

    ``argv`` is already masked (no CHAP secret); ``stderr`` is truncated.
    """

    def __init__(self, argv: list[str], code: int, stderr: str = "", meaning: str | None = None):
        self.argv = argv
        self.code = code
        self.stderr = stderr
        self.meaning = meaning
        what = f" ({meaning})" if meaning else ""
        tail = f": {stderr.strip()[:500]}" if stderr and stderr.strip() else ""
        super().__init__(f"command {' '.join(argv)!s} exited {code}{what}{tail}")
