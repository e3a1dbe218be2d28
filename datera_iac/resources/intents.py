"""A durable record of the creates in flight, so a front end killed mid-create (or one
whose DSP went away before the create's answer came back) never leaves an object its state
does not know about, and never adopts one it did not make.

Terraform and Pulumi write state only when a create's answer reaches them. If the provider
process dies after its POST reached the DSP (SIGKILL, OOM, a killed CI runner, the DSP
dying before it answered), the object exists but is in no state, and the next create is
refused because the name is taken. The engine solves this with its journal; this is the
same idea for the providers: before a create, a small file names the intent and the
ownership token the create writes into its object (a Volume's app_instance uuid, a
Tenant's or template's description). A create that failed drops it at once - unless its
outcome is unknown (the connection was lost) or the kind kept what it made (a wait that
timed out); a successful one records the object's id in it, and any later call that shows
the front end holds that id (a read, a diff, an update, a delete of it) drops it. A
create that finds its own intent left over from an earlier process adopts only an object
carrying exactly that token (``Kind.find_own``) - never one found by its name, which may
be someone else's.

The record holds no secret: its file name is a digest of the caller's key (Terraform: the
kind and the non-sensitive inputs; Pulumi: the resource's URN), its content the kind, the
resource name, the token and the object's id. Where it lives is the front end's choice
(``datera_iac_tf/adapter.py``: ``$TF_DATA_DIR``; ``pulumi/provider.py``: ``$PULUMI_HOME``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datera_iac.errors import ConnectionLost, WaitTimeout
from datera_iac.files import PRIVATE_FILE, private_dir
from datera_iac.resources.base import Context, Kind, Observed, creating_with, new_create_token
from datera_iac.resources.plan import is_sensitive

__all__ = ["CreateLeft", "IntentJournal", "create_kept", "create_recorded"]

log = logging.getLogger(__name__)


class IntentJournal:
    """Files under ``<dir>/datera-intents/``, one per create in flight."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.dir = Path(root) / "datera-intents"

    def key(self, kind: str, inputs: Mapping[str, Any]) -> str:
        """Digest of the kind and its non-sensitive inputs (callers leave secrets out)."""
        blob = json.dumps({"kind": kind, "inputs": inputs}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]

    def key_of(self, kind: Kind[Any, Any], inputs: Mapping[str, Any]) -> str:
        """:meth:`key` of a create known by its declaration (the inputs by field): its
        non-sensitive inputs, the secrets left out."""
        return self.key(kind.token, {n: v for n, v in inputs.items() if not is_sensitive(kind, n)})

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
        shows the front end holds that id drops the record (:meth:`settled`)."""
        path = self.dir / f"{key}.json"
        data = self._load(path)
        if data:
            self._write(path, {**data, "id": object_id})
            # found by id in one look (a refresh settles each object it reads)
            self._write(self._by_id(object_id), {"key": key})

    def _by_id(self, object_id: str) -> Path:
        return self.dir / (hashlib.sha256(object_id.encode()).hexdigest()[:32] + ".by-id")

    def settled(self, object_id: str | None) -> None:
        """The front end holds ``object_id`` in its state: the record of the create that
        made it is dropped (whatever inputs the state now shows)."""
        if not object_id or not self.dir.is_dir():
            return
        marker = self._by_id(object_id)
        key = self._load(marker).get("key")
        if isinstance(key, str) and self._load(self.dir / f"{key}.json").get("id") == object_id:
            (self.dir / f"{key}.json").unlink(missing_ok=True)
        marker.unlink(missing_ok=True)

    def _write(self, path: Path, data: Mapping[str, Any]) -> None:
        # a temporary name per writer: two creates with one key (or two processes) must not
        # rename each other's file away
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
        with open(fd, "w", encoding="utf-8") as f:
            json.dump(dict(data), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def begin(self, key: str, kind: str, name: str | None, token: str | None = None) -> None:
        """Record a create before it runs (fsync'd). The record stays after a successful
        create until a read of the recorded object proves the front end stored it in its
        state (a provider killed between the create and its answer reaching its engine must
        still find it); see :func:`create_recorded` for a failed create."""
        private_dir(self.dir)
        self._write(self.dir / f"{key}.json", {"kind": kind, "name": name, "token": token,
                                               "pid": os.getpid(), "since": time.time()})


def create_recorded(kind: Kind[Any, Any], ctx: Context, spec: Any, intents: IntentJournal,
                    key: str) -> Observed[Any, Any]:
    """``kind.create(ctx, spec)`` under an intent record ``key`` (the front end's one rule
    for creates, Terraform's and Pulumi's alike).

    A record left by an earlier process for this very create adopts the object carrying
    the token that create wrote, if there is one (else a fresh create follows). The record
    is cleared when the create failed and left nothing; it stays when the outcome is
    unknown (:class:`ConnectionLost`: the DSP went away before it answered) or the kind
    kept what it made (:class:`WaitTimeout`), so the next run adopts exactly that object;
    after a success it holds the object's id until :meth:`IntentJournal.settled`."""
    if intents.pending(key):
        # an earlier process died during this very create: adopt what it made (the
        # engine's journal recovery) rather than fail on the taken name or make a twin -
        # only an object carrying the token that create wrote, never a same-named object
        # someone else made
        left = kind.find_own(ctx, spec, intents.token(key))
        if left is not None:
            log.info("adopting %s %s left by an interrupted create", kind.name, left.id)
            intents.created(key, left.id)
            return left
    token = new_create_token()
    intents.begin(key, kind.token, getattr(spec, "name", None), token)
    try:
        with creating_with(token):
            obs = kind.create(ctx, spec)
    except (ConnectionLost, WaitTimeout):
        raise  # the object may exist, carrying this token: the record stays
    except BaseException:
        intents.clear(key)  # the kind's contract: a failed create left nothing
        raise
    intents.created(key, obs.id)
    return obs


class CreateLeft(Exception):
    """A create that failed after the object was made: ``observed`` is what exists (the
    front end records it: Terraform as *tainted*, replaced by the next apply), ``error``
    what went wrong."""

    def __init__(self, observed: Observed[Any, Any], error: BaseException) -> None:
        super().__init__(str(error))
        self.observed = observed
        self.error = error


def create_kept(kind: Kind[Any, Any], ctx: Context, spec: Any, intents: IntentJournal,
                key: str) -> Observed[Any, Any]:
    """:func:`create_recorded`, and when its wait timed out after the POST landed (the kind
    kept the object, carrying this create's token: only a timeout qualifies), raise
    :class:`CreateLeft` with that object so the front end records it instead of losing it."""
    try:
        return create_recorded(kind, ctx, spec, intents, key)
    except WaitTimeout as e:
        try:
            left = kind.find_own(ctx, spec, intents.token(key))
        except Exception:  # noqa: BLE001 - report the timeout, not the lookup
            left = None
        if left is None:
            intents.clear(key)
            raise
        intents.created(key, left.id)
        raise CreateLeft(left, e) from e
