"""Optional persistence: a SQLite file in a data directory that survives a restart.

One row per top-level object (tenant record, app instance with everything nested in it,
initiator, group, pool, template, placement policy), written as JSON in one transaction
at the end of every request that changed something. Sessions are not persisted: after a
restart clients log in again, as they would after a real DSP failover.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from datera_iac.files import private_dir, private_file

FILENAME = "dsp-sim.sqlite3"
TENANT_ROW = "__tenant__"


class SqliteJournal:
    """Reads and writes the store's top-level objects in ``<data_dir>/dsp-sim.sqlite3``."""

    def __init__(self, data_dir: str | Path) -> None:
        # CHAP secrets are stored as the DSP keeps them (in clear): owner-only directory and
        # files, the WAL and shared-memory files included (SQLite gives them the DB's mode)
        self.dir = private_dir(data_dir)
        self.path = self.dir / FILENAME
        for suffix in ("", "-wal", "-shm"):
            p = self.dir / (FILENAME + suffix)
            if suffix == "" or p.exists():
                private_file(p)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS objects ("
            " tenant TEXT NOT NULL, coll TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL,"
            " PRIMARY KEY (tenant, coll, key))"
        )

    def load(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, dict[str, Any]]]] | None:
        """(tenants, objects by tenant and collection), or None for an empty file."""
        with self._lock:
            rows = self._db.execute("SELECT tenant, coll, key, body FROM objects").fetchall()
        if not rows:
            return None
        tenants: dict[str, dict[str, Any]] = {}
        objs: dict[str, dict[str, dict[str, Any]]] = {}
        for tenant, coll, key, body in rows:
            if coll == TENANT_ROW:
                tenants[tenant] = json.loads(body)
            else:
                objs.setdefault(tenant, {}).setdefault(coll, {})[key] = json.loads(body)
        return tenants, {t: o for t, o in objs.items() if t in tenants}

    def write(self, changes: list[tuple[str, str, str, dict[str, Any] | None]]) -> None:
        """Upsert or delete (body None) each row, atomically."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN")
            try:
                for tenant, coll, key, body in changes:
                    if body is None:
                        cur.execute(
                            "DELETE FROM objects WHERE tenant=? AND coll=? AND key=?",
                            (tenant, coll, key),
                        )
                        if coll == TENANT_ROW:
                            cur.execute("DELETE FROM objects WHERE tenant=?", (tenant,))
                    else:
                        cur.execute(
                            "INSERT OR REPLACE INTO objects (tenant, coll, key, body) VALUES (?,?,?,?)",
                            (tenant, coll, key, json.dumps(body, separators=(",", ":"))),
                        )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM objects")

    def close(self) -> None:
        with self._lock:
            self._db.close()
