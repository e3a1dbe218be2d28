"""State backends: where a stack's snapshot, journal and lock live.

A backend stores a snapshot (the whole :class:`~datera_iac.engine.state.State`) and a
journal of deltas appended after it. :meth:`Backend.record` makes one delta durable before
it returns (the engine relies on that: an intent is on disk before the API call it
describes). :meth:`Backend.save` writes a new snapshot atomically and drops the journal it
covers. Two backends:

* :class:`FileBackend` (default): ``.datera-iac/<stack>.json`` beside the stack file, a
  ``.journal`` of JSON lines (fsync'd, group-committed so ten workers do not pay ten fsyncs),
  a ``.bak`` of the previous snapshot, and a ``.lock`` held with ``flock`` — the kernel
  releases it when the holder dies, so a dead local holder never blocks the next run.
* :class:`~datera_iac.engine.pgbackend.PostgresBackend` (``--backend postgresql://...``):
  rows in three tables and a session-level advisory lock.
"""

from __future__ import annotations

import abc
import errno
import fcntl
import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any

from datera_iac.engine.state import RS_FIELDS, ResourceState, State, dumps
from datera_iac.errors import InputError, LockError, StateError
from datera_iac.files import PRIVATE_FILE, private_dir, private_file

__all__ = ["Backend", "FileBackend", "check_break", "check_stack_name", "describe_holder",
           "open_backend"]

#: What a stack name may be: it names files (``<stack>.json``) and rows, so no path
#: separators, no control characters, bounded length; ``.`` and ``..`` are refused too.
STACK_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,100}")


def check_stack_name(name: str, *, what: str = "stack") -> str:
    """``name`` if it is a valid stack (or project) name, else InputError (before any file
    is touched: ``-s ../../x`` must never write outside the state directory)."""
    if not isinstance(name, str) or not STACK_NAME_RE.fullmatch(name) or name in (".", ".."):
        shown = repr(name)[:60]
        raise InputError(f"invalid {what} name {shown}",
                         fix="use 1-100 characters of A-Z a-z 0-9 _ . - (not . or ..)")
    return name


def project_dir_name(project: str) -> str:
    """The directory a project's states live in: the project name when it is a plain
    name, else a safe rendering of it with a digest (no separators, never ``..``)."""
    if STACK_NAME_RE.fullmatch(project) and project not in (".", "..", "dsp-sim"):
        return project
    import hashlib

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", project)[:80].strip(".") or "project"
    return f"{safe}-{hashlib.sha256(project.encode()).hexdigest()[:8]}"


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def check_break(stack: str, holder: dict[str, Any] | None, lock_id: str | None) -> None:
    """Refuse to break a lock whose holder is alive on this host, unless ``lock_id`` is
    the id that holder wrote (the user read it from the refusal and means it)."""
    if not holder:
        return
    here = holder.get("host") == socket.gethostname()
    if here and _pid_alive(holder.get("pid")) and (not lock_id or lock_id != holder.get("lock_id")):
        wrong = f" (lock id {lock_id!r} is not the holder's)" if lock_id else ""
        raise LockError(
            f"stack {stack!r} is locked by {describe_holder(holder)}, which is still running on "
            f"this host{wrong}; breaking its lock would let two runs write one state. Wait for it, "
            f"stop it, or if you are sure pass --force-unlock --lock-id {holder.get('lock_id')}",
            holder,
        )


def describe_holder(h: dict[str, Any]) -> str:
    """One line naming a lock holder (pid, host, since, command)."""
    if not h:
        return "an unknown holder"
    parts = [f"pid {h.get('pid')}", f"on {h.get('host')}"]
    if h.get("since"):
        parts.append(f"since {h['since']}")
    if h.get("command"):
        parts.append(f"running `{h['command']}`")
    if h.get("lock_id"):
        parts.append(f"lock id {h['lock_id']}")
    return ", ".join(parts)


class Backend(abc.ABC):
    """Where one stack's state lives."""

    stack: str

    @abc.abstractmethod
    def describe(self) -> str:
        """Human-readable location (never with a password)."""

    @abc.abstractmethod
    def load(self) -> State:
        """Snapshot plus journal; a fresh State when nothing is stored yet."""

    @abc.abstractmethod
    def append(self, delta: dict[str, Any]) -> int:
        """Write one delta; returns a token for :meth:`sync`. Callers serialise appends."""

    def sync(self, token: int) -> None:
        """Return once the delta behind ``token`` would survive a crash."""

    def record(self, delta: dict[str, Any]) -> None:
        """Append one delta durably (returns only once it would survive a crash)."""
        self.sync(self.append(delta))

    @abc.abstractmethod
    def save(self, state: State) -> None:
        """Write a snapshot atomically and discard the journal records it includes."""

    @abc.abstractmethod
    def lock(self, info: dict[str, Any]) -> None:
        """Take the stack's lock or raise LockError naming the holder."""

    @abc.abstractmethod
    def unlock(self) -> None:
        """Release the lock this backend holds (no-op if none)."""

    @abc.abstractmethod
    def force_unlock(self, lock_id: str | None = None) -> dict[str, Any] | None:
        """Break the lock; returns the holder it broke (or None). A holder still running
        on this host is broken only when ``lock_id`` names it (:func:`check_break`)."""

    def close(self) -> None:
        self.unlock()


#: how long a refused run waits for the lock's holder to write its details (seconds)
HOLDER_WAIT = 1.0


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileBackend(Backend):
    """Local files under ``directory`` (``.datera-iac`` beside the stack file)."""

    def __init__(self, directory: str | Path, stack: str, project: str | None = None) -> None:
        self.root = self.dir = Path(directory)
        if project:
            self.dir = self.dir / project_dir_name(project)
        self.stack = check_stack_name(stack)
        self.path = self.dir / f"{stack}.json"
        self.journal_path = self.dir / f"{stack}.journal"
        self.backup_path = self.dir / f"{stack}.json.bak"
        self.lock_path = self.dir / f"{stack}.lock"
        self._lock_fd: int | None = None
        self._jfd: int | None = None
        self._write_mu = threading.Lock()
        self._sync_mu = threading.Lock()
        self._written = 0
        self._synced = 0
        #: resource name -> (the last journaled record of it, its JSON text); see _encode
        self._texts: dict[str, tuple[dict[str, Any], str]] = {}

    def describe(self) -> str:
        return str(self.path)

    # ---- read ---------------------------------------------------------------------------

    def load(self) -> State:
        state = State(stack=self.stack)
        if self.path.exists():
            try:
                state = State.from_json(json.loads(self.path.read_text()))
            except json.JSONDecodeError as e:
                raise StateError(
                    f"state file {self.path} is not valid JSON ({e.msg} at line {e.lineno}); "
                    f"the previous snapshot is in {self.backup_path}"
                ) from None
        if self.journal_path.exists():
            with open(self.journal_path, "rb") as f:
                lines = f.read().split(b"\n")
            for i, raw in enumerate(lines):
                if not raw.strip():
                    continue
                try:
                    delta = json.loads(raw)
                except json.JSONDecodeError:
                    if i >= len(lines) - 2:
                        break  # a torn final record: the write never completed, so it never counted
                    raise StateError(f"journal {self.journal_path} is corrupt at record {i + 1}") from None
                state.apply_delta(delta)
        return state

    def _private_dirs(self) -> None:
        """``.datera-iac/`` and the project's directory in it, both 0700."""
        private_dir(self.root)
        private_dir(self.dir)

    # ---- write --------------------------------------------------------------------------

    def _journal_fd(self) -> int:
        if self._jfd is None:
            self._private_dirs()
            self._jfd = os.open(str(self.journal_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE)
            os.fchmod(self._jfd, PRIVATE_FILE)  # a journal an older version left 0644
        return self._jfd

    def _check_fence(self) -> None:
        """A lock broken on purpose (``--force-unlock --lock-id``) removes the lock file:
        the run that held it must stop writing this state at once, so two runs never both
        write it. Checked before every journal record (an intent precedes every DSP call)."""
        if self._lock_fd is None:
            return
        try:
            same = os.stat(self.lock_path).st_ino == os.fstat(self._lock_fd).st_ino
        except OSError:
            same = False
        if not same:
            raise LockError(f"the lock of stack {self.stack!r} was broken by another run "
                            f"(--force-unlock); this run stops before writing anything more")

    def append(self, delta: dict[str, Any]) -> int:
        line = (self._encode(delta) + "\n").encode()
        self._check_fence()
        with self._write_mu:
            os.write(self._journal_fd(), line)
            self._written += 1
            return self._written

    def _encode(self, delta: dict[str, Any]) -> str:
        """One journal record as JSON text. Each upserted resource record is encoded on
        its own and its text kept (by name, with the record's values) so the snapshot
        that follows reuses it instead of encoding every record again (see
        :meth:`_record_text`). The line holds the same JSON content as ``json.dumps``."""
        upserts = delta.get("upsert")
        if not upserts or not isinstance(upserts, list):
            return dumps(delta)
        texts = []
        for rec in upserts:
            text = dumps(rec)
            texts.append(text)
            name = rec.get("name") if isinstance(rec, dict) else None
            if isinstance(name, str):
                self._texts[name] = (rec, text)
        rest = dumps({k: v for k, v in delta.items() if k != "upsert"})
        return f'{{"upsert":[{",".join(texts)}]' + (f",{rest[1:]}" if rest != "{}" else "}")

    def _record_text(self, r: ResourceState) -> str | None:
        """The journaled text of ``r`` when ``r`` was built from that very record: every
        field holds the same object the record held (records are never mutated in place;
        identity, not equality, so 1 and True or 1.0 never pass for each other)."""
        kept = self._texts.get(r.name)
        if kept is None:
            return None
        rec, text = kept
        if len(rec) != len(RS_FIELDS):
            return None
        for f in RS_FIELDS:
            if f not in rec or rec[f] is not getattr(r, f):
                return None
        return text

    def sync(self, token: int) -> None:
        # Group commit: one fsync covers every record written before it, so ten workers
        # finishing together cost one fsync, not ten.
        with self._sync_mu:
            if self._synced >= token:
                return
            with self._write_mu:
                target = self._written
                fd = self._jfd
            if fd is not None:
                os.fdatasync(fd)
            self._synced = target

    def save(self, state: State) -> None:
        self._private_dirs()
        # compact separators keep json's C encoder (indent would fall back to Python);
        # records journaled by this backend are not encoded a second time
        data = state.to_json_text(self._record_text).encode()
        # texts of records no longer in the state (removed resources) are not needed again
        self._texts = {n: t for n, t in self._texts.items() if n in state.resources}
        tmp = self.path.with_name(self.path.name + f".tmp{os.getpid()}")
        with self._write_mu:
            if self.path.exists():
                bak_tmp = self.backup_path.with_name(self.backup_path.name + ".tmp")
                private_file(bak_tmp)  # copyfile keeps an existing file's mode: 0600, as the state
                shutil.copyfile(self.path, bak_tmp)
                os.replace(bak_tmp, self.backup_path)
            fd = os.open(str(tmp), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            _fsync_dir(self.dir)
            # The snapshot covers every journal record (their seq <= state.seq); only now
            # may the journal go. A crash before this truncate just replays skipped records.
            if self._jfd is not None:
                os.ftruncate(self._jfd, 0)
            elif self.journal_path.exists():
                os.truncate(self.journal_path, 0)

    # ---- lock ---------------------------------------------------------------------------

    def lock(self, info: dict[str, Any]) -> None:
        self._private_dirs()
        fd = os.open(str(self.lock_path), os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        os.fchmod(fd, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateError(f"cannot lock {self.lock_path}: {e.strerror}") from None
            # The holder writes its details right after taking the lock: a refusal in
            # between would read an empty file. Give it a moment to name itself.
            holder = self._read_holder()
            deadline = time.monotonic() + HOLDER_WAIT
            while not holder and time.monotonic() < deadline:
                time.sleep(0.01)
                holder = self._read_holder()
            raise LockError(
                f"stack {self.stack!r} is locked by {describe_holder(holder)}; wait for that run "
                f"to finish, or if it is gone run with --force-unlock",
                holder,
            ) from None
        previous = self._read_holder_fd(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._lock_fd = fd
        self.stale_holder = previous or None  # a dead holder whose lock the kernel released

    def _held(self) -> bool:
        """Whether some process holds the lock now (a probe that takes nothing)."""
        try:
            fd = os.open(str(self.lock_path), os.O_RDWR)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def _read_holder_fd(self, fd: int) -> dict[str, Any]:
        try:
            raw = os.pread(fd, 65536, 0)
            return json.loads(raw) if raw.strip() else {}
        except (OSError, ValueError):
            return {}

    def _read_holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.lock_path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def unlock(self) -> None:
        if self._jfd is not None:
            os.close(self._jfd)
            self._jfd = None
        if self._lock_fd is not None:
            try:
                os.ftruncate(self._lock_fd, 0)
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def force_unlock(self, lock_id: str | None = None) -> dict[str, Any] | None:
        holder = self._read_holder() if self.lock_path.exists() else None
        if holder and self._held():
            check_break(self.stack, holder, lock_id)
        try:
            self.lock_path.unlink()
        except FileNotFoundError:
            pass
        return holder or None


def open_backend(url: str | None, *, stack: str, state_dir: str | Path,
                 project: str | None = None, notes: list[str] | None = None) -> Backend:
    """The backend for ``--backend``: None / ``file://DIR`` / a path -> files;
    ``postgresql://...`` -> PostgreSQL.

    Files are keyed by project and stack (``DIR/<project>/<stack>.json``, as Pulumi keys
    its stacks), so two projects' ``dev`` stacks in one directory never share a state. A
    state written before that (``DIR/<stack>.json``) is moved under its project the
    first time that project opens it; one of another project is left alone. Without a
    project (a command run without a stack file) the one project holding ``stack`` is
    used. PostgreSQL rows stay keyed by stack; the engine refuses a state of another
    project there."""
    check_stack_name(stack)
    if url and url.startswith(("postgresql://", "postgres://")):
        from datera_iac.engine.pgbackend import PostgresBackend

        return PostgresBackend(url, stack)
    base = Path(url[len("file://"):] if url and url.startswith("file://") else url or state_dir)
    if project is None:
        found = sorted(p.parent.name for p in base.glob(f"*/{stack}.json")
                       if p.parent.name != "dsp-sim")
        if len(found) > 1:
            raise InputError(f"stack {stack!r} exists in several projects here: {', '.join(found)}",
                             fix="pass -f <Pulumi.yaml> to say which project")
        if found and not (base / f"{stack}.json").exists():
            return FileBackend(base, stack, project=found[0])
        return FileBackend(base, stack)
    migrate_legacy(base, stack, project, notes)
    return FileBackend(base, stack, project=project)


def migrate_legacy(base: Path, stack: str, project: str, notes: list[str] | None = None) -> bool:
    """Move a state written before states were keyed by project (``base/<stack>.json``,
    its journal and backup) to ``base/<project>/`` when it belongs to ``project`` (or
    names none). Done under the old state's lock, so a run of the old layout cannot
    write it meanwhile. Returns whether it moved."""
    new = FileBackend(base, stack, project=project)
    old = FileBackend(base, stack)
    if new.path.exists() or (new.journal_path.exists() and new.journal_path.stat().st_size):
        return False
    if not (old.path.exists() or (old.journal_path.exists() and old.journal_path.stat().st_size)):
        return False
    old.lock({"pid": os.getpid(), "host": socket.gethostname(), "command": "state migrate"})
    try:
        owner = old.load().project
        if owner and owner != project:
            return False  # another project's state: it moves when that project runs
        new.dir.mkdir(parents=True, exist_ok=True)
        for src, dst in ((old.backup_path, new.backup_path), (old.journal_path, new.journal_path),
                         (old.path, new.path)):
            if src.exists():
                os.replace(src, dst)
        _fsync_dir(new.dir)
        _fsync_dir(old.dir)
    finally:
        old.close()
    if notes is not None:
        notes.append(f"moved the state of stack {stack!r} to {new.path} (states are now kept "
                     f"per project)")
    return True
