"""The stack's state: what the engine manages, and what it was in the middle of doing.

State is a snapshot plus a journal of *deltas*. Every resource operation writes two
deltas: its intent (a pending operation, durable before the API call) and its result (the
object read back, and the intent cleared). A run killed at any instant therefore leaves
either no trace of an operation, or an intent whose outcome the next run resolves with the
kind's ``find`` / ``read`` — never an object the state does not know about.

Secrets never reach the state in clear: sensitive inputs and outputs are stored as salted
HMAC-SHA256 digests (``hmac$<salt>$<hex>``) keyed with a secret kept outside the state
(:func:`digest_key`), enough to notice that a secret changed. Without the key a leaked
state or backup gives nothing to brute-force a 12-16 character CHAP secret against; the
plain salted SHA-256 digests of earlier versions (``sha256$<salt>$<hex>``) are still
recognised and replaced by keyed ones the next time the resource is written.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from datera_iac.errors import StateError
from datera_iac.files import PRIVATE_FILE, private_dir
from datera_iac.resources.base import SENSITIVE, Kind

__all__ = [
    "PLAIN_SALT",
    "RS_FIELDS",
    "STATE_VERSION",
    "PendingOp",
    "ResourceState",
    "State",
    "data_digest",
    "digest_key",
    "digest_key_path",
    "dumps",
    "hash_secret",
    "keep_or_hash",
    "holder_info",
    "is_new_state",
    "is_digest",
    "mask_inputs",
    "mask_outputs",
    "mask_spec",
    "secret_matches",
]

STATE_VERSION = 1
_DIGEST_PREFIX = "hmac$"
#: unkeyed salted SHA-256 digests written before digests were keyed: still recognised
_LEGACY_PREFIX = "sha256$"
#: The salt of digests of data without secrets (see apply.state_entry): a fixed one keeps
#: the digest format (and :func:`secret_matches`) while skipping the random draw.
PLAIN_SALT = "plain"
KEY_FILE_ENV = "DATERA_IAC_DIGEST_KEY_FILE"


def digest_key_path() -> Path:
    """Where the digest key lives: ``$DATERA_IAC_DIGEST_KEY_FILE``, else
    ``$XDG_CONFIG_HOME/datera-iac/digest.key`` (``~/.config/...``) - never beside the state,
    so a copied state or backup does not carry it."""
    env = os.environ.get(KEY_FILE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "datera-iac" / "digest.key"


@functools.cache
def _key_at(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        key = b""
    except OSError as e:
        raise StateError(f"cannot read the digest key {path}: {e.strerror}",
                         ) from None
    if key:
        return key
    # first use: 32 random bytes, 0600, created atomically (link fails if another process
    # won the race; then its key is the one)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        os.write(fd, secrets.token_hex(32).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    key = path.read_bytes().strip()
    if not key:
        raise StateError(f"the digest key {path} is empty", fix="delete it to make a new one")
    return key


def digest_key() -> bytes:
    """The key of the state's secret digests (made on first use, 0600). Give every machine
    that runs a stack the same key (copy the file, or point ``DATERA_IAC_DIGEST_KEY_FILE``
    at it): with another key the digests do not match and secrets show as changed."""
    env = os.environ
    return _key_for(env.get(KEY_FILE_ENV), env.get("XDG_CONFIG_HOME"), env.get("HOME"))


@functools.lru_cache(maxsize=8)
def _key_for(key_file: str | None, config_home: str | None, home: str | None) -> bytes:
    # the path depends only on these variables: worked out once per set, not per digest
    # (a plan digests every resource; 10,000 path lookups cost ~10% of a 10,000-volume
    # preview)
    return _key_at(digest_key_path())


def hash_secret(value: Any, salt: str | None = None) -> str:
    """A salted, keyed digest of a secret value (JSON-encoded, so types matter)."""
    salt = salt or secrets.token_hex(8)
    data = json.dumps(value, sort_keys=True).encode()
    mac = hmac.new(digest_key(), salt.encode() + data, hashlib.sha256).hexdigest()
    return f"{_DIGEST_PREFIX}{salt}${mac}"


def _legacy_hash(value: Any, salt: str) -> str:
    data = json.dumps(value, sort_keys=True).encode()
    return f"{_LEGACY_PREFIX}{salt}${hashlib.sha256(salt.encode() + data).hexdigest()}"


def is_digest(value: Any) -> bool:
    return (isinstance(value, str) and value.count("$") == 2
            and (value.startswith(_DIGEST_PREFIX) or value.startswith(_LEGACY_PREFIX)))


def secret_matches(stored: Any, value: Any) -> bool:
    """True if ``value`` hashes to the stored digest, keyed or legacy (or both are None)."""
    if stored is None or value is None:
        return stored is None and value is None
    if not is_digest(stored):
        return False
    salt = stored.split("$")[1]
    mine = (hash_secret(value, salt) if stored.startswith(_DIGEST_PREFIX)
            else _legacy_hash(value, salt))
    return hmac.compare_digest(mine, stored)


def keep_or_hash(old: Any, value: Any) -> str:
    """The digest to store for ``value``: the old one while it still matches (stable state,
    no churn), a new keyed one otherwise - also for a matching legacy digest (migration)."""
    if isinstance(old, str) and old.startswith(_DIGEST_PREFIX) and secret_matches(old, value):
        return old
    return hash_secret(value)


def data_digest(data: Any) -> str:
    """An unsalted digest of plain (already masked) data."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


_SENSITIVE_NAMES: dict[type, tuple[str, ...]] = {}


def sensitive_names(cls: type) -> tuple[str, ...]:
    """The SENSITIVE fields of a Spec/Outputs class (looked up once per class: hot path)."""
    names = _SENSITIVE_NAMES.get(cls)
    if names is None:
        names = _SENSITIVE_NAMES[cls] = tuple(
            f.name for f in attrs.fields(cls) if f.metadata.get(SENSITIVE))
    return names


def _mask(data: Mapping[str, Any], cls: type, prior: Mapping[str, Any] | None,
          fresh: bool = False) -> dict[str, Any]:
    """``data`` with its sensitive fields digested: a copy, or ``data`` itself when the
    caller made it for this (``fresh``: a Spec or Outputs just turned into plain data)."""
    out = data if fresh and type(data) is dict else dict(data)
    for name in sensitive_names(cls):
        v = out.get(name)
        if v is not None:
            if is_digest(v):
                continue
            out[name] = keep_or_hash((prior or {}).get(name), v)
    return out


def mask_spec(kind: Kind[Any, Any], spec: Any, prior: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A spec as plain data with every sensitive field replaced by a salted digest."""
    return _mask(kind.spec_to(spec), kind.Spec, prior, fresh=True)


def mask_inputs(kind: Kind[Any, Any], props: Mapping[str, Any],
                prior: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Declared properties (snake_case, as a stack resolves them) with every sensitive
    field replaced by a salted digest (the old digest kept while the secret is unchanged)."""
    return _mask(props, kind.Spec, prior)


def mask_outputs(kind: Kind[Any, Any], outputs: Any, prior: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Outputs as plain data, sensitive ones digested."""
    return _mask(kind.outputs_to(outputs), kind.Outputs, prior, fresh=True)


@attrs.define
class ResourceState:
    """One managed object. ``spec`` and ``outputs`` are plain data with secrets digested;
    ``deps`` are the logical names it depended on (destroy order); ``temp_name`` is set
    while a create-before-delete replacement still carries its temporary name."""

    name: str
    type: str
    id: str
    spec: dict[str, Any] = attrs.field(factory=dict)
    outputs: dict[str, Any] = attrs.field(factory=dict)
    deps: list[str] = attrs.field(factory=list)
    protect: bool = False
    retain_on_delete: bool = False
    temp_name: str | None = None
    updated: float = 0.0
    #: Salted digest of the declared (resolved) properties last applied: when it matches
    #: the declaration and refresh saw no drift, the plan needs no diff (fast no-op plans).
    inputs_digest: str | None = None
    #: Digest of the (masked) spec the DSP showed last time: when refresh sees the same,
    #: nothing changed out of band and no diff is needed.
    observed_digest: str | None = None
    #: The declared properties last applied (plain data, secrets as digests): what
    #: ``Kind.declare_removed`` needs to see an input the declaration no longer names
    #: (a DF: key removed from a volume's extra_specs resets it). None in older states.
    declared: dict[str, Any] | None = None
    #: Adopted by ``datera-iac import`` and not yet declared in an applied stack: a plan
    #: never deletes it unless it is named with ``--target`` (issue 16 case 6); cleared by
    #: the first ``up`` that declares it.
    imported: bool = False

    def to_json(self) -> dict[str, Any]:
        # shallow on purpose (hot path: two records per operation); values are plain data
        # that is never mutated in place (changes make new records)
        return {name: getattr(self, name) for name in _RS_FIELDS}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ResourceState:
        if type(d) is dict and d.keys() <= _FIELD_SETS[cls]:
            return cls(**d)  # a record this version wrote: no filtered copy (10,000 per load)
        return cls(**{k: v for k, v in d.items() if k in _FIELD_SETS[cls]})


@attrs.define
class PendingOp:
    """An operation whose intent was recorded but whose outcome was not (yet).

    ``op``: create | update | delete | import | rename. ``spec`` is the masked spec the
    create was called with (enough for ``find``: names are not secret).
    """

    op_id: str
    op: str
    name: str
    type: str
    object_id: str | None = None
    spec: dict[str, Any] = attrs.field(factory=dict)
    deposed: bool = False
    started: float = 0.0
    pid: int = 0
    host: str = ""
    #: the ownership token a create writes into its object (``resources.base.create_token``):
    #: recovery adopts only an object carrying exactly this token, never one by name
    token: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PO_FIELDS}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> PendingOp:
        return cls(**{k: v for k, v in d.items() if k in _FIELD_SETS[cls]})


def dumps(value: Any) -> str:
    """Compact JSON as the backends write it (compact separators keep the C encoder)."""
    return json.dumps(value, separators=(",", ":"), default=str)


_RS_FIELDS = tuple(f.name for f in attrs.fields(ResourceState))
#: The fields of a resource record, in the order :meth:`ResourceState.to_json` writes them.
RS_FIELDS = _RS_FIELDS
_PO_FIELDS = tuple(f.name for f in attrs.fields(PendingOp))
_FIELD_SETS: dict[type, frozenset[str]] = {ResourceState: frozenset(_RS_FIELDS),
                                          PendingOp: frozenset(_PO_FIELDS)}


@attrs.define
class State:
    """The whole state of one stack. Mutated only through :meth:`apply_delta`, so the
    in-memory copy and the backend's journal always agree."""

    stack: str
    project: str = ""
    serial: int = 0
    seq: int = 0
    resources: dict[str, ResourceState] = attrs.field(factory=dict)
    deposed: list[ResourceState] = attrs.field(factory=list)
    pending: dict[str, PendingOp] = attrs.field(factory=dict)
    outputs: dict[str, Any] = attrs.field(factory=dict)
    #: The DSP this state belongs to: ``{"endpoint", "uuid", "name"}`` of a DSP, or
    #: ``{"simulator": true}`` for the bundled simulator; empty in a new state (and in
    #: states written before it was recorded). A run against another DSP refuses.
    dsp: dict[str, Any] = attrs.field(factory=dict)

    # ---- (de)serialisation --------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "stack": self.stack,
            "project": self.project,
            "serial": self.serial,
            "seq": self.seq,
            "dsp": self.dsp,
            "resources": [r.to_json() for r in self.resources.values()],
            "deposed": [r.to_json() for r in self.deposed],
            "pending": [p.to_json() for p in self.pending.values()],
            "outputs": self.outputs,
        }

    def to_json_text(self, record_text: Callable[[ResourceState], str | None] | None = None) -> str:
        """The snapshot as compact JSON text: the content of ``json.dumps(to_json())``.

        ``record_text(r)`` may return a resource record already encoded (the file backend
        keeps the text it journaled for each record, so the final snapshot of a large
        apply is a join instead of a second encoding of every record: ~10 ms per 500
        volumes at the end of every run); None encodes the record here."""
        head = dumps({"version": STATE_VERSION, "stack": self.stack, "project": self.project,
                       "serial": self.serial, "seq": self.seq, "dsp": self.dsp})
        parts: list[str] = []
        for r in self.resources.values():
            text = record_text(r) if record_text is not None else None
            parts.append(text if text is not None else dumps(r.to_json()))
        return (f'{head[:-1]},"resources":[{",".join(parts)}],'
                f'"deposed":{dumps([r.to_json() for r in self.deposed])},'
                f'"pending":{dumps([p.to_json() for p in self.pending.values()])},'
                f'"outputs":{dumps(self.outputs)}}}')

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> State:
        if d.get("version") != STATE_VERSION:
            raise StateError(
                f"state version {d.get('version')!r} is not supported (expected {STATE_VERSION})"
            )
        try:
            st = cls(
                stack=d["stack"], project=d.get("project", ""), serial=int(d.get("serial", 0)),
                seq=int(d.get("seq", 0)), outputs=dict(d.get("outputs") or {}),
                dsp=dict(d.get("dsp") or {}),
            )
            for r in d.get("resources") or []:
                rs = ResourceState.from_json(r)
                st.resources[rs.name] = rs
            st.deposed = [ResourceState.from_json(r) for r in d.get("deposed") or []]
            for p in d.get("pending") or []:
                po = PendingOp.from_json(p)
                st.pending[po.op_id] = po
        except (KeyError, TypeError, ValueError) as e:
            raise StateError(f"state is malformed: {e}") from None
        return st

    # ---- deltas -----------------------------------------------------------------------

    def apply_delta(self, delta: Mapping[str, Any]) -> None:
        """Apply one journal record. Idempotent for a given ``seq``: records at or below
        the snapshot's ``seq`` are skipped, so replaying a journal twice is harmless."""
        seq = int(delta.get("seq", 0))
        if seq and seq <= self.seq:
            return
        for p in delta.get("pending_add", ()):
            po = PendingOp.from_json(p)
            self.pending[po.op_id] = po
        for op_id in delta.get("pending_clear", ()):
            self.pending.pop(op_id, None)
        for r in delta.get("upsert", ()):
            rs = ResourceState.from_json(r)
            self.resources[rs.name] = rs
        for name in delta.get("remove", ()):
            self.resources.pop(name, None)
        for r in delta.get("deposed_add", ()):
            self.deposed.append(ResourceState.from_json(r))
        for obj_id in delta.get("deposed_remove", ()):
            self.deposed = [r for r in self.deposed if r.id != obj_id]
        if "outputs" in delta:
            self.outputs = dict(delta["outputs"])
        if "dsp" in delta:
            self.dsp = dict(delta["dsp"])
        if "project" in delta:
            self.project = str(delta["project"])
        if seq:
            self.seq = seq
        self.serial += 1


def is_new_state(state: State) -> bool:
    """A stack that has never been written: no snapshot, no journal record."""
    return state.serial == 0 and not state.resources and not state.pending and not state.deposed


def holder_info(command: str = "") -> dict[str, Any]:
    """Who holds (or wants) a lock: shown to the user when a second run is refused."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": command,
        "lock_id": secrets.token_hex(6),
    }
