"""PostgreSQL state backend (``--backend postgresql://user@host:port/db``).

Shared state for a team or a CI system: the snapshot is one row, the journal is rows keyed
by (stack, seq), and the lock is a session-level advisory lock. PostgreSQL releases an
advisory lock when the holding session ends, so a killed run never leaves a stale lock;
the holder's pid/host are kept in a row so a refused run can say who holds it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from datera_iac.engine.backends import HOLDER_WAIT, Backend, check_break, describe_holder
from datera_iac.engine.state import State
from datera_iac.errors import LockError, StateError
from datera_iac.secrets import redact_url  # re-exported: the backend's messages use it

__all__ = ["PostgresBackend", "redact_url"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datera_iac_state (
    stack text PRIMARY KEY, data jsonb NOT NULL, updated timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS datera_iac_journal (
    stack text NOT NULL, seq bigint NOT NULL, data jsonb NOT NULL, PRIMARY KEY (stack, seq));
CREATE TABLE IF NOT EXISTS datera_iac_lock (
    stack text PRIMARY KEY, holder jsonb NOT NULL, backend_pid integer NOT NULL);
"""
_KEY = "hashtextextended('datera-iac:' || %s, 0)"


class PostgresBackend(Backend):
    def __init__(self, url: str, stack: str) -> None:
        try:
            import psycopg
        except ImportError as e:  # pragma: no cover - psycopg is a dependency
            raise StateError("the PostgreSQL backend needs psycopg (pip install psycopg[binary])") from e
        self._psycopg = psycopg
        self.url = url
        self.stack = stack
        self._mu = threading.Lock()
        self._conn = self._connect()
        self._lock_conn: Any = None
        with self._mu:
            self._conn.execute("SELECT pg_advisory_lock(42424242)")  # serialise schema creation
            try:
                self._conn.execute(_SCHEMA)
            finally:
                self._conn.execute("SELECT pg_advisory_unlock(42424242)")

    def _connect(self) -> Any:
        try:
            return self._psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except self._psycopg.Error as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise StateError(f"cannot connect to {redact_url(self.url)}: {redact_url(msg)}") from None

    def describe(self) -> str:
        return f"{redact_url(self.url)} (stack {self.stack})"

    def load(self) -> State:
        from psycopg.types.json import Jsonb  # noqa: F401  (ensures json adapters loaded)

        with self._mu:
            row = self._conn.execute(
                "SELECT data FROM datera_iac_state WHERE stack = %s", (self.stack,)
            ).fetchone()
            state = State.from_json(row[0]) if row else State(stack=self.stack)
            for (delta,) in self._conn.execute(
                "SELECT data FROM datera_iac_journal WHERE stack = %s AND seq > %s ORDER BY seq",
                (self.stack, state.seq),
            ):
                state.apply_delta(delta)
        return state

    def append(self, delta: dict[str, Any]) -> int:
        from psycopg.types.json import Jsonb

        with self._mu:
            self._conn.execute(
                "INSERT INTO datera_iac_journal (stack, seq, data) VALUES (%s, %s, %s) "
                "ON CONFLICT (stack, seq) DO UPDATE SET data = EXCLUDED.data",
                (self.stack, int(delta.get("seq", 0)), Jsonb(delta)),
            )
        return 0  # autocommit: durable once the INSERT returns

    def save(self, state: State) -> None:
        from psycopg.types.json import Jsonb

        with self._mu:
            with self._conn.transaction():
                self._conn.execute(
                    "INSERT INTO datera_iac_state (stack, data, updated) VALUES (%s, %s, now()) "
                    "ON CONFLICT (stack) DO UPDATE SET data = EXCLUDED.data, updated = now()",
                    (self.stack, Jsonb(state.to_json())),
                )
                self._conn.execute(
                    "DELETE FROM datera_iac_journal WHERE stack = %s AND seq <= %s",
                    (self.stack, state.seq),
                )

    def lock(self, info: dict[str, Any]) -> None:
        from psycopg.types.json import Jsonb

        conn = self._connect()
        got = conn.execute(f"SELECT pg_try_advisory_lock({_KEY})", (self.stack,)).fetchone()[0]
        if not got:
            # the holder writes its row just after taking the advisory lock: in that instant
            # wait (boundedly) for a row whose session is alive, as the file backend does
            deadline = time.monotonic() + HOLDER_WAIT
            while True:
                row = conn.execute(
                    "SELECT holder FROM datera_iac_lock l WHERE stack = %s AND EXISTS "
                    "(SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.backend_pid)",
                    (self.stack,),
                ).fetchone()
                if row or time.monotonic() >= deadline:
                    break
                time.sleep(0.01)
            conn.close()
            holder = row[0] if row else {}
            raise LockError(
                f"stack {self.stack!r} is locked by {describe_holder(holder)}; wait for that run "
                f"to finish, or if it is gone run with --force-unlock",
                holder,
            )
        prev = conn.execute(
            "SELECT holder FROM datera_iac_lock WHERE stack = %s", (self.stack,)
        ).fetchone()
        self.stale_holder = prev[0] if prev else None
        conn.execute(
            "INSERT INTO datera_iac_lock (stack, holder, backend_pid) VALUES (%s, %s, pg_backend_pid()) "
            "ON CONFLICT (stack) DO UPDATE SET holder = EXCLUDED.holder, backend_pid = EXCLUDED.backend_pid",
            (self.stack, Jsonb(info)),
        )
        self._lock_conn = conn

    def unlock(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is None:
            return
        try:
            conn.execute("DELETE FROM datera_iac_lock WHERE stack = %s AND backend_pid = pg_backend_pid()",
                         (self.stack,))
            conn.execute(f"SELECT pg_advisory_unlock({_KEY})", (self.stack,))
        finally:
            conn.close()

    def force_unlock(self, lock_id: str | None = None) -> dict[str, Any] | None:
        """Terminate the session holding the advisory lock (a hung run elsewhere); a holder
        still running on this host only with its ``lock_id`` (:func:`check_break`)."""
        with self._mu:
            row = self._conn.execute(
                "SELECT holder, backend_pid FROM datera_iac_lock WHERE stack = %s", (self.stack,)
            ).fetchone()
            check_break(self.stack, row[0] if row else None, lock_id)
            pids = [r[0] for r in self._conn.execute(
                "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
                f"AND ((l.classid::bigint << 32) | l.objid::bigint) = ({_KEY} & x'ffffffffffffffff'::bigint)",
                (self.stack,),
            )]
            for pid in pids:
                self._conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
            self._conn.execute("DELETE FROM datera_iac_lock WHERE stack = %s", (self.stack,))
        return row[0] if row else None

    def close(self) -> None:
        self.unlock()
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001
            pass
