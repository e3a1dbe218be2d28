"""Users and session keys.

``PUT /login`` with a JSON or form body ``{name, password[, remote_server]}`` returns a
32-hex key; requests carry it in ``Auth-Token``. Keys expire ``key_ttl`` seconds after
login (15 minutes, as on the product); an expired or unknown key is a 401 with the exact
message the dfs-sdk treats as "log in again". ``remote_server`` is accepted only for LDAP
server names configured at start, each with its own users.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping

import attrs

from datera_iac.sim.errors import EXPIRED_KEY_MESSAGE, AuthFailed, ValidationFailed


@attrs.define
class Session:
    user: str
    expires_at: float


class Sessions:
    """Credential checks and the live session keys."""

    def __init__(
        self,
        users: Mapping[str, str],
        *,
        ldap_servers: Mapping[str, Mapping[str, str]] | None = None,
        key_ttl: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.users = dict(users)
        self.ldap_servers = {k: dict(v) for k, v in (ldap_servers or {}).items()}
        self.key_ttl = key_ttl
        self.clock = clock
        self._keys: dict[str, Session] = {}

    def login(self, body: Mapping[str, object]) -> str:
        name, password = body.get("name"), body.get("password")
        if not isinstance(name, str) or not name:
            raise ValidationFailed("is required", field="name")
        if not isinstance(password, str) or not password:
            raise ValidationFailed("is required", field="password")
        unknown = set(body) - {"name", "password", "remote_server"}
        if unknown:
            raise ValidationFailed("unknown field (allowed: name, password, remote_server)", field=min(unknown))
        server = body.get("remote_server")
        if server is not None:
            if not isinstance(server, str) or server not in self.ldap_servers:
                raise AuthFailed("Authentication failed: unknown remote_server")
            table = self.ldap_servers[server]
        else:
            table = self.users
        expected = table.get(name)
        # compare in constant time even for unknown users
        ok = hmac.compare_digest((expected or "\0").encode(), password.encode()) and expected is not None
        if not ok:
            raise AuthFailed("Authentication failed: invalid user name or password")
        key = secrets.token_hex(16)
        self._keys[key] = Session(user=name, expires_at=self.clock() + self.key_ttl)
        return key

    def check(self, key: str | None) -> Session:
        """The session for ``key``; 401 if missing, unknown or expired."""
        if not key:
            raise AuthFailed("Authentication required: send the Auth-Token header from PUT /login")
        sess = self._keys.get(key)
        if sess is None or self.clock() >= sess.expires_at:
            self._keys.pop(key, None)
            raise AuthFailed(EXPIRED_KEY_MESSAGE)
        return sess

    def logout(self, key: str | None) -> None:
        self.check(key)
        self._keys.pop(key or "", None)

    def expire_all(self) -> int:
        """Force every key to expire now (fault injection). Returns how many there were."""
        n = len(self._keys)
        self._keys.clear()
        return n

    def reset(self) -> None:
        self._keys.clear()

    def __len__(self) -> int:
        return len(self._keys)
