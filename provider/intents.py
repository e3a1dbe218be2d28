"""A durable record of the creates in flight, so a provider killed mid-create never leaves
an object Terraform does not know about.

Terraform writes state only when a create's answer reaches it. If the provider process dies
after its POST reached the DSP (SIGKILL, OOM, a killed CI runner), the object exists but is
in no state, and the next apply's create is refused because the name is taken. The engine
solves this with its journal; this is the same idea for Terraform: before a create, a small
file names the intent; a failed create drops it at once, a successful one when a later
read of the object shows that Terraform recorded it. A create that finds its own intent left over
from an earlier process first asks the kind's ``find`` (the object by its unique name) and
adopts what it finds, instead of creating a twin or failing.

The record holds no secret: its file name is a digest of the kind and the non-sensitive
inputs, its content the kind and the resource name. It lives in ``$TF_DATA_DIR`` (default
``.terraform`` in the working directory Terraform runs the provider in).
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

    def begin(self, key: str, kind: str, name: str | None) -> None:
        """Record a create before it runs (fsync'd). The record stays after a successful
        create until a read of the recorded object proves Terraform stored it in its state
        (a provider killed between the create and its answer reaching Terraform must still
        find it); after a failed create the caller clears it at once."""
        private_dir(self.dir)
        path = self.dir / f"{key}.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump({"kind": kind, "name": name, "pid": os.getpid(), "since": time.time()}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
