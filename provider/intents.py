"""A durable record of the creates in flight, so a provider killed mid-create never leaves
an object Terraform does not know about.

Terraform writes state only when a create's answer reaches it. If the provider process dies
after its POST reached the DSP (SIGKILL, OOM, a killed CI runner), the object exists but is
in no state, and the next apply's create is refused because the name is taken. The engine
solves this with its journal; this is the same idea for Terraform: before a create, a small
file names the intent and the ownership token the create writes into its object (a
Volume's app_instance uuid, a Tenant's or template's description). A failed create drops
it at once; a successful one records the object's id in it, and any later call that shows
Terraform holds that id (a read, an update, a delete of it) drops it. A create that finds
its own intent left over from an earlier process adopts only an object carrying exactly
that token (``Kind.find_own``) - never one found by its name, which may be someone else's.

The record holds no secret: its file name is a digest of the kind and the non-sensitive
inputs, its content the kind, the resource name, the token and the object's id. It lives in
``$TF_DATA_DIR`` (default ``.terraform`` in the working directory Terraform runs the
provider in).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datera_iac.files import PRIVATE_FILE, private_dir

__all__ = ["IntentJournal"]


class IntentJournal:
    """Files under ``<dir>/datera-intents/``, one per create in flight."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        base = Path(root) if root is not None else Path(os.environ.get("TF_DATA_DIR", ".terraform"))
        self.dir = base / "datera-intents"

    def key(self, kind: str, inputs: Mapping[str, Any]) -> str:
        """Digest of the kind and its non-sensitive inputs (callers leave secrets out)."""
        blob = json.dumps({"kind": kind, "inputs": inputs}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def pending(self, key: str) -> bool:
        """An earlier process started this create and never finished it."""
        return (self.dir / f"{key}.json").exists()

    def clear(self, key: str) -> None:
        """Drop a left-over record once its create has been settled."""
        (self.dir / f"{key}.json").unlink(missing_ok=True)

    def _load(self, path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def token(self, key: str) -> str | None:
        """The ownership token the interrupted create wrote (None in a record without one:
        nothing it left can be proven ours)."""
        t = self._load(self.dir / f"{key}.json").get("token")
        return t if isinstance(t, str) and t else None

    def created(self, key: str, object_id: str) -> None:
        """The create answered with ``object_id``: recorded, so the first later call that
        shows Terraform holds that id drops the record (:meth:`settled`)."""
        path = self.dir / f"{key}.json"
        data = self._load(path)
        if data:
            self._write(path, {**data, "id": object_id})

    def settled(self, object_id: str | None) -> None:
        """Terraform holds ``object_id`` in its state: every record of the create that made
        it is dropped (whatever inputs the state now shows)."""
        if not object_id or not self.dir.is_dir():
            return
        for path in self.dir.glob("*.json"):
            if self._load(path).get("id") == object_id:
                path.unlink(missing_ok=True)

    def _write(self, path: Path, data: Mapping[str, Any]) -> None:
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump(dict(data), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def begin(self, key: str, kind: str, name: str | None, token: str | None = None) -> None:
        """Record a create before it runs (fsync'd). The record stays after a successful
        create until a read of the recorded object proves Terraform stored it in its state
        (a provider killed between the create and its answer reaching Terraform must still
        find it); after a failed create the caller clears it at once."""
        private_dir(self.dir)
        self._write(self.dir / f"{key}.json", {"kind": kind, "name": name, "token": token,
                                               "pid": os.getpid(), "since": time.time()})
