"""Applying a plan: bounded parallelism along the dependency graph, journaled operations.

Each operation runs as *intent -> API call -> result*, each arrow a durable state delta
(:class:`StateStore`), so a kill at any instant is recoverable (see
:func:`~datera_iac.engine.plan.recover_pending`). Independent resources keep going when one
fails; the failures are reported together at the end, and the dependents of a failed
resource are skipped rather than attempted with missing inputs.
"""

from __future__ import annotations

import itertools
import queue
import secrets
import sys
import threading
import time
import uuid as uuid_mod
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TextIO

import attrs

from datera_iac.engine.backends import Backend
from datera_iac.engine.model import StackDef, has_unknown, resolve
from datera_iac.engine.plan import (
    Facts,
    Plan,
    Step,
    build_spec,
    change_for,
    lookup_value,
    masked_outputs,
    merge_known,
    recorded_declaration,
)
from datera_iac.engine.state import (
    PLAIN_SALT,
    PendingOp,
    ResourceState,
    State,
    data_digest,
    hash_secret,
    keep_or_hash,
    mask_inputs,
    mask_outputs,
    mask_spec,
    sensitive_names,
)
from datera_iac.errors import Conflict, DateraIacError, StateError, Unreachable
from datera_iac.resources.base import (
    SENSITIVE,
    Context,
    Kind,
    Observed,
    creating_with,
    delete_or_unmanage,
    kind_for,
    new_create_token,
)
from datera_iac.resources.plan import refuse_replace

__all__ = ["Applier", "ApplyResult", "Failure", "Progress", "StateStore", "state_entry"]


class StateStore:
    """The in-memory state plus its backend; every change is one durable delta.

    ``commit`` serialises the in-memory update and the journal append (cheap), then waits
    for durability outside the mutex so concurrent workers share fsyncs. A snapshot is
    written every ``compact_every`` deltas (and by :meth:`compact`)."""

    def __init__(self, backend: Backend, state: State, compact_every: int = 0) -> None:
        self.backend = backend
        self.state = state
        self._mu = threading.Lock()
        self._since_compact = 0
        self._compact_every = compact_every

    def commit(self, delta: dict[str, Any], *, durable: bool = True) -> None:
        """Apply and journal ``delta``. ``durable=False`` (results of operations) returns
        once the record is written, not synced: it survives the process being killed, and
        should the machine crash before a later sync, its operation's intent is still on
        disk and recovery resolves it with ``find``/``read``. Intents are always synced
        before the API call they announce."""
        with self._mu:
            delta["seq"] = self.state.seq + 1
            self.state.apply_delta(delta)
            token = self.backend.append(delta)
            self._since_compact += 1
            every = self._compact_every or max(256, 2 * len(self.state.resources))
            due = self._since_compact >= every
        if durable:
            self.backend.sync(token)
        if due:
            self.compact()

    def compact(self) -> None:
        with self._mu:
            self.backend.save(self.state)
            self._since_compact = 0


def state_entry(kind: Kind[Any, Any], name: str, obs: Observed[Any, Any], sent: Any,
                prior: ResourceState | None, deps: list[str], *, protect: bool = False,
                retain: bool = False, temp_name: str | None = None,
                inputs: Any = None) -> ResourceState:
    """The state record for an object just created / updated / adopted.

    A secret the DSP does not return is recorded as the digest of what was sent, so the
    next plan can tell whether the declaration changed it."""
    observed = mask_spec(kind, obs.spec, prior.spec if prior else None)
    spec = dict(observed)
    if sent is not None:
        for fname in sensitive_names(kind.Spec):
            if getattr(obs.spec, fname, None) is None:
                v = getattr(sent, fname, None)
                old = prior.spec.get(fname) if prior else None
                spec[fname] = None if v is None else keep_or_hash(old, v)
    return ResourceState(
        name=name, type=kind.token, id=obs.id, spec=spec,
        outputs=mask_outputs(kind, obs.outputs, prior.outputs if prior else None),
        deps=list(deps), protect=protect, retain_on_delete=retain, temp_name=temp_name,
        updated=time.time(),
        inputs_digest=(hash_secret(inputs, None if _holds_secret(kind, inputs) else PLAIN_SALT)
                       if inputs is not None and not temp_name else None),
        observed_digest=data_digest(observed),
        declared=(mask_inputs(kind, inputs, prior.declared if prior else None)
                  if isinstance(inputs, Mapping) else None),
    )


def _holds_secret(kind: Kind[Any, Any], inputs: Any) -> bool:
    """True unless ``inputs`` is a declaration whose sensitive fields are all unset.

    Only a digest of a secret needs a random salt (so equal secrets in two states do not
    show as equal digests); a declaration without one is digested with the fixed
    :data:`PLAIN_SALT`, which spares the random draw on every create. Its plain values
    are in the state anyway (``declared``)."""
    if not isinstance(inputs, Mapping):
        return True
    return any(inputs.get(n) is not None for n in sensitive_names(kind.Spec))


@attrs.define
class Failure:
    name: str
    action: str
    message: str
    unreachable: bool = False


@attrs.define
class ApplyResult:
    done: dict[str, int] = attrs.field(factory=dict)
    failures: list[Failure] = attrs.field(factory=list)
    skipped: list[str] = attrs.field(factory=list)
    outputs: dict[str, Any] = attrs.field(factory=dict)
    elapsed: float = 0.0
    #: the client's one "DSP unreachable" error, once its breaker opened: no step started
    #: after it (they are in ``not_started``), failures it caused carry ``unreachable``
    unreachable: str | None = None
    not_started: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and not self.skipped and not self.not_started


class Progress:
    """Progress on stderr: one updating status line on a TTY, otherwise one line per
    finished operation (CI logs read top to bottom)."""

    VERBS = {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted",
             "import": "imported", "forget": "forgotten"}

    def __init__(self, total: int, stream: TextIO | None = None, *, quiet: bool = False) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.quiet = quiet
        self.done = 0
        self.failed = 0
        self.running = 0
        self._mu = threading.Lock()
        self._last = 0.0
        self.start_time = time.monotonic()
        self._unreachable_said = False

    def started(self, step: Step) -> None:
        with self._mu:
            self.running += 1
            self._status()

    def finished(self, step: Step, error: str | None, elapsed: float) -> None:
        with self._mu:
            self.running -= 1
            self.done += 1
            if error:
                self.failed += 1
            if self.quiet:
                return
            label = f"{step.kind} {step.name}"
            if error and _UNREACHABLE in error:
                # the client's breaker fails every call with the same message: print it once
                if self._unreachable_said:
                    error = "interrupted, the DSP is unreachable (as above)"
                self._unreachable_said = True
            if error:
                line = f"  ! {label}: {step.action} failed: {error}"
            else:
                line = f"  {self.VERBS.get(step.action, step.action)} {label} ({elapsed:.1f}s)"
            if self.tty:
                self.stream.write("\r\033[K" + line + "\n")
                self._status(force=True)
            elif error or self.total <= 200 or time.monotonic() - self._last > 5:
                self.stream.write(line + ("" if error or self.total <= 200 else f"  [{self.done}/{self.total}]") + "\n")
                self._last = time.monotonic()
            self.stream.flush()

    def _status(self, force: bool = False) -> None:
        if not self.tty or self.quiet:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        el = now - self.start_time
        self.stream.write(
            f"\r\033[K  {self.done}/{self.total} done, {self.running} running, "
            f"{self.failed} failed, {el:.0f}s"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _wait_any(done: queue.SimpleQueue[Future[None]]) -> list[Future[None]]:
    """Block until a submitted step finishes; return it with every other step that finished
    meanwhile (one wake-up of the scheduler for them all). Unbounded on purpose, like the
    steps themselves: each step's own calls and waits are bounded by the kind's timeouts."""
    completed = [done.get()]
    while True:
        try:
            completed.append(done.get_nowait())
        except queue.Empty:
            return completed


def _with_create_token(kind: Kind[Any, Any], spec: Any) -> Any:
    """Give a create a unique handle ``find`` can look for, when the kind has one.

    A Snapshot has no name; its optional ``uuid`` is the only thing a retried or recovered
    create can be found by. When the user left it unset, the engine sets a fresh one
    (journaled with the intent), provided the kind's diff ignores it (so the declaration
    without a uuid still plans no change afterwards)."""
    f = getattr(attrs.fields(type(spec)), "uuid", None)
    if f is None or spec.uuid is not None or f.metadata.get(SENSITIVE):
        return spec
    try:
        tagged = attrs.evolve(spec, uuid=str(uuid_mod.uuid4()))
        return tagged if not kind.diff(tagged, spec).changed else spec
    except (DateraIacError, TypeError, ValueError):
        return spec


@attrs.define(frozen=True)
class _Intent:
    """A create whose intent is already durable: announced ahead by the scheduler, so the
    worker that runs it starts with the API call instead of waiting for a journal sync."""

    op_id: str
    kind: Kind[Any, Any]
    props: Any
    sent: Any  # the spec as declared
    spec: Any  # the spec sent: ``sent`` with the create token the intent recorded
    token: str = ""  # the ownership token the create writes (journaled with the intent)


_UNREACHABLE = "DSP unreachable:"


def _unreachable(e: BaseException) -> bool:
    return isinstance(e, Unreachable) or isinstance(e.__cause__, Unreachable)


def _message(e: BaseException) -> str:
    if isinstance(e, DateraIacError):
        return str(e)
    return f"{type(e).__name__}: {e}"


class Applier:
    """Runs a :class:`Plan` against the DSP with at most ``parallel`` operations at once."""

    def __init__(self, ctx: Context, store: StateStore, plan: Plan, stack: StackDef | None,
                 facts: Facts, *, parallel: int = 10, progress: Progress | None = None) -> None:
        self.ctx = ctx
        self.store = store
        self.plan = plan
        self.stack = stack
        self.facts = facts
        self.parallel = max(1, parallel)
        self.progress = progress
        self.result = ApplyResult()
        self._mu = threading.Lock()
        self._pid = __import__("os").getpid()
        self._host = __import__("socket").gethostname()

    # ---- scheduling -----------------------------------------------------------------------

    def run(self) -> ApplyResult:
        t0 = time.monotonic()
        forward = [s for s in self.plan.steps if s.action not in ("delete", "forget")]
        backward = [s for s in self.plan.steps if s.action in ("delete", "forget")]
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="datera-apply") as pool:
            failed = self._run_phase(pool, forward, lambda s: s.deps)
            # old objects of create-before-delete replacements done in this run
            known = {s.id for s in backward if s.deposed}
            for r in list(self.store.state.deposed):
                if r.id not in known and r.name not in failed:  # a failed step already reported it
                    backward.append(Step(name=r.name, kind=kind_for(r.type).name, action="delete",
                                         id=r.id, deposed=True))
            self._run_phase(pool, backward, lambda s: s.deps, failed)
        if self.stack is not None and not self.plan.destroy:
            self.result.outputs = {k: resolve(v, self._lookup) for k, v in self.stack.outputs.items()}
            self.store.commit({"outputs": masked_outputs(self.stack, self.facts, prior=self.store.state.outputs)},
                              durable=False)
        elif self.plan.destroy:
            self.store.commit({"outputs": {}}, durable=False)
        # the snapshot makes the outputs record durable (its fsync covers it): no fsync of
        # the journal for it first; killed in between, the record is still in the journal
        self.store.compact()
        self.result.elapsed = time.monotonic() - t0
        return self.result

    def _run_phase(self, pool: ThreadPoolExecutor, steps: list[Step],
                   deps_of: Callable[[Step], tuple[str, ...]], failed: set[str] | None = None) -> set[str]:
        """Run ``steps`` at most ``parallel`` at a time, each once its dependencies are done.

        A step whose dependency failed (or was skipped) is skipped in turn. Bookkeeping is
        a counter per step, so scheduling stays linear in the number of steps."""
        failed = set(failed or ())
        keys = [(s.name, s.id if s.deposed else None) for s in steps]
        by_key = dict(zip(keys, steps))
        names = {s.name for s in steps if not s.deposed}
        deps: dict[tuple[str, str | None], set[str]] = {
            k: {d for d in deps_of(s) if d in names and d != s.name} for k, s in by_key.items()
        }
        remaining = {k: len(d) for k, d in deps.items()}
        # names whose object this run created, changed or replaced: a step planned "same"
        # that reads one of them is re-planned once it finished (its inputs may have changed
        # during the apply), so one run converges
        changed: set[str] = set()
        recheck = self.stack is not None and not self.plan.destroy
        dependents: dict[str, list[tuple[str, str | None]]] = {}
        for k, d in deps.items():
            for name in d:
                dependents.setdefault(name, []).append(k)
        ready = deque(k for k in keys if remaining[k] == 0)
        # Submitted steps: at most ``parallel`` run (the pool's threads); as many again wait
        # in the pool's queue, so a worker that finishes takes its next step at once instead
        # of waiting for this thread to wake up and submit one (two thread wake-ups per step
        # on the critical path, milliseconds each on a loaded machine). A submitted step is
        # ready - its dependencies are done - so queueing it early changes no decision.
        depth = 2 * self.parallel
        running: dict[Future[None], tuple[str, str | None]] = {}
        finished_count = 0
        # Intents of creates announced ahead (durable, not started yet). Workers then never
        # wait for a journal sync; the scheduler pays one sync per batch while they run.
        announced: dict[tuple[str, str | None], _Intent] = {}
        submitted: dict[Future[None], _Intent] = {}
        # Finished futures arrive here (put by the worker as its future completes), so
        # taking the next completion is O(1); concurrent.futures.wait() installs and removes
        # a waiter on every running future per call - a quarter of this thread's CPU.
        done: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()

        finished_keys: set[tuple[str, str | None]] = set()
        cancelled: list[str] = []

        def finish(key: tuple[str, str | None]) -> None:
            nonlocal finished_count
            finished_count += 1
            finished_keys.add(key)
            if key[1] is not None:
                return  # a deposed object: nothing depends on it
            for k in dependents.get(key[0], ()):
                remaining[k] -= 1
                if remaining[k] == 0:
                    ready.append(k)

        try:
            while finished_count < len(keys):
                if self.result.unreachable is not None:
                    # the DSP is judged unreachable: start nothing more (every call would
                    # fail at once); what is queued in the pool is cancelled, what runs ends
                    for fut in [f for f in running if f.cancel()]:
                        running.pop(fut)
                        intent = submitted.pop(fut, None)
                        if intent is not None:
                            cancelled.append(intent.op_id)  # cleared below
                    if not running:
                        self.result.not_started += [by_key[k].name for k in keys
                                                    if k not in finished_keys]
                        break
                while ready and len(running) < depth and self.result.unreachable is None:
                    key = ready.popleft()
                    s = by_key[key]
                    if deps[key] & failed:
                        failed.add(s.name)
                        self.result.skipped.append(s.name)
                        finish(key)
                    elif s.action == "error" or (s.action == "same" and not (
                            recheck and deps[key] & changed)):
                        if s.action == "error":
                            failed.add(s.name)
                        finish(key)
                    else:
                        if key not in announced:
                            self._announce(itertools.chain((key,), ready), by_key, announced,
                                           depth + self.parallel)
                        intent = announced.pop(key, None)
                        fut = pool.submit(self._execute, s, intent)
                        running[fut] = key
                        fut.add_done_callback(done.put)
                        if intent is not None:
                            submitted[fut] = intent
                if len(announced) <= self.parallel // 2 and ready and self.result.unreachable is None:
                    self._announce(ready, by_key, announced, self.parallel)
                if not running:
                    if not ready and finished_count < len(keys):
                        raise StateError("internal error: apply graph stalled")  # pragma: no cover
                    continue
                for fut in _wait_any(done):
                    if fut.cancelled():
                        continue  # not started (the DSP is unreachable): handled above
                    key = running.pop(fut)
                    submitted.pop(fut, None)
                    s = by_key[key]
                    err = fut.exception()
                    if err is not None:
                        failed.add(s.name)
                        action = "update" if s.action == "same" else s.action
                        gone = _unreachable(err)
                        if gone and self.result.unreachable is None:
                            self.result.unreachable = _message(err)
                        self.result.failures.append(Failure(s.name, action, _message(err), gone))
                    elif (action := fut.result()) is not None:
                        self.result.done[action] = self.result.done.get(action, 0) + 1
                        if key[1] is None and action != "forget":
                            changed.add(s.name)
                    finish(key)
        finally:
            # The run stopped early (Ctrl-C, an error here): every step still queued in the
            # pool is cancelled - creates, updates and deletes alike, so nothing starts after
            # the interrupt - and the intents of the creates that never started are cleared.
            unstarted = [submitted[f].op_id for f in list(running)
                         if f.cancel() and f in submitted]
            unstarted += [i.op_id for i in announced.values()] + cancelled
            if unstarted:
                self.store.commit({"pending_clear": unstarted})
        return failed

    def _announce(self, candidates: Iterable[tuple[str, str | None]],
                  by_key: dict[tuple[str, str | None], Step],
                  announced: dict[tuple[str, str | None], _Intent], limit: int) -> None:
        """Journal, in one durable record, the intents of the first creates among
        ``candidates`` (ready steps, in order) until ``limit`` are announced; only the first
        ``2 * limit`` candidates are looked at (a queue of updates is not rescanned).

        Every candidate is ready, so its dependencies are done and it will run: its intent
        is cleared by its own result. Should the process die first, recovery resolves the
        intent like any other (``find``: not found, cleared)."""
        batch: dict[tuple[str, str | None], _Intent] = {}
        for key in itertools.islice(candidates, 2 * limit):
            if len(announced) + len(batch) >= limit:
                break
            if key in announced:
                continue
            intent = self._prepare_create(by_key[key])
            if intent is not None:
                batch[key] = intent
        if not batch:
            return
        self.store.commit({"pending_add": [self._pending_op("create", by_key[k].name, i.kind,
                                                            spec=i.spec, op_id=i.op_id,
                                                            token=i.token).to_json()
                                           for k, i in batch.items()]})
        announced.update(batch)

    def _prepare_create(self, step: Step) -> _Intent | None:
        """What :meth:`_dispatch` works out for a plain create, done ahead so its intent can
        be announced; None when the step is anything else, or when working it out fails
        (the worker then takes the ordinary path and reports the error)."""
        if step.action != "create" or self.stack is None or step.name in self.store.state.resources:
            return None
        try:
            decl = self.stack.resources[step.name]
            kind = self.facts.kinds.get(step.name) or kind_for(decl.type)
            props = (decl.properties if decl.validated is not None
                     else resolve(decl.properties, self._lookup))
            if has_unknown(props):
                return None
            sent, _ = build_spec(kind, props, decl)
            spec = _with_create_token(kind, sent)
        except Exception:  # noqa: BLE001 - reported by the ordinary path in the worker
            return None
        return _Intent(op_id=secrets.token_hex(8), kind=kind, props=props, sent=sent, spec=spec,
                       token=new_create_token())

    # ---- one step -------------------------------------------------------------------------

    def _lookup(self, ref: Any) -> Any:
        return lookup_value(self.facts, ref)

    def _execute(self, step: Step, intent: _Intent | None = None) -> str | None:
        """Run one step; returns what it did (its action), or None when a step planned
        "same" and re-planned after its dependencies changed still needed nothing."""
        t0 = time.monotonic()
        recheck = step.action == "same"
        if self.progress and not recheck:
            self.progress.started(step)
        err: str | None = None
        did: str | None = None
        try:
            did = self._dispatch(step, intent)
        except BaseException as e:
            err = _message(e)
            raise
        finally:
            if self.progress and recheck and (err or did):
                step = attrs.evolve(step, action="update")
                self.progress.started(step)
            if self.progress and (not recheck or err or did):
                self.progress.finished(step, err, time.monotonic() - t0)
        return step.action if not recheck else did

    def _dispatch(self, step: Step, intent: _Intent | None = None) -> str | None:
        """Run one step; returns "update" when a re-planned "same" step wrote."""
        if intent is not None:  # a create announced ahead: its spec is worked out already
            decl = self.stack.resources[step.name] if self.stack is not None else None
            assert decl is not None
            self.facts.desired[step.name] = intent.props
            self._create(intent.kind, step.name, intent.sent, prior=None, deps=list(step.deps),
                         protect=decl.options.protect, retain=decl.options.retain_on_delete,
                         intent=intent)
            return
        if step.action in ("delete", "forget"):
            r = self._state_entry_for(step)
            if r is None:
                return  # already gone from state (recovered)
            kind = kind_for(r.type)
            if step.action == "forget":
                how = kind.unmanages(recorded_declaration(r))
                kind.release(self.ctx, r.id, rename=how == "rename")
                self.store.commit({"remove": [r.name]})
            else:
                self._delete(kind, r, deposed=step.deposed)
            return
        assert self.stack is not None
        decl = self.stack.resources[step.name]
        kind = self.facts.kinds.get(step.name) or kind_for(decl.type)
        props = decl.properties if decl.validated is not None else resolve(decl.properties, self._lookup)
        if has_unknown(props):
            missing = sorted(k for k, v in props.items() if has_unknown(v))
            raise StateError(f"{step.name}: inputs {', '.join(missing)} are still unknown after "
                             "their dependencies finished")
        self.facts.desired[step.name] = props
        deps = list(step.deps)
        prior = self.store.state.resources.get(step.name)
        opts = decl.options
        if step.action == "create" or (step.action == "replace" and prior is None):
            spec, _ = build_spec(kind, props, decl)
            self._create(kind, step.name, spec, prior=None, deps=deps, protect=opts.protect,
                         retain=opts.retain_on_delete)
            return
        if step.action == "import":
            self._import(kind, step, props, deps)
            return
        assert prior is not None
        obs = merge_known(kind, self.facts.observed[step.name], prior,
                          self.facts.drift_fields.get(step.name, ()))
        spec, _ = build_spec(kind, props, decl, obs.spec)
        if step.action == "replace" and step.strategy == "delete-before-create" and prior.type != kind.token:
            self._delete(kind_for(prior.type), prior, deposed=False)
            self._create(kind, step.name, spec, prior=None, deps=deps, protect=opts.protect,
                         retain=opts.retain_on_delete)
            return
        change = change_for(self.ctx, kind, obs, spec, prior, options=opts)
        spec, d = change.desired, change.diff
        if change.action == "same":
            return None
        if step.action == "same":
            refuse_replace(kind, change, resource=step.name, rerun="up")
        if not d.replace:
            if prior.temp_name:
                # an interrupted temporary-name replacement: the old object must go before
                # the new one can take its name
                for old in [r for r in self.store.state.deposed if r.name == step.name]:
                    self._delete(kind_for(old.type), old, deposed=True)
            self._update(kind, step.name, prior, change.prior, spec, deps, opts.protect,
                         opts.retain_on_delete, op="rename" if prior.temp_name else "update")
            return "update"
        if step.strategy == "delete-before-create" or d.delete_before_replace:
            self._delete(kind, prior, deposed=False)
            self._create(kind, step.name, spec, prior=None, deps=deps, protect=opts.protect,
                         retain=opts.retain_on_delete)
        elif step.strategy == "temporary-name" and step.temp_name:
            temp_spec = attrs.evolve(spec, name=step.temp_name)
            new = self._create(kind, step.name, temp_spec, prior=prior, deps=deps, protect=opts.protect,
                               retain=opts.retain_on_delete, temp_name=step.temp_name, sent=spec)
            self._delete(kind, prior, deposed=True)
            cur = self.store.state.resources[step.name]
            self._update(kind, step.name, cur, new.spec, spec, deps, opts.protect, opts.retain_on_delete,
                         op="rename")
        else:
            self._create(kind, step.name, spec, prior=prior, deps=deps, protect=opts.protect,
                         retain=opts.retain_on_delete)

    def _state_entry_for(self, step: Step) -> ResourceState | None:
        st = self.store.state
        if step.deposed:
            return next((r for r in st.deposed if r.id == step.id), None)
        r = st.resources.get(step.name)
        return r if r is not None and (step.id is None or r.id == step.id) else None

    def _pending_op(self, op: str, name: str, kind: Kind[Any, Any], *, spec: Any = None,
                    object_id: str | None = None, deposed: bool = False,
                    op_id: str | None = None, token: str | None = None) -> PendingOp:
        return PendingOp(op_id=op_id or secrets.token_hex(8), op=op, name=name, type=kind.token,
                         object_id=object_id, spec=mask_spec(kind, spec) if spec is not None else {},
                         deposed=deposed, started=time.time(), pid=self._pid, host=self._host,
                         token=token)

    def _pending(self, op: str, name: str, kind: Kind[Any, Any], *, spec: Any = None,
                 object_id: str | None = None, deposed: bool = False,
                 token: str | None = None) -> str:
        p = self._pending_op(op, name, kind, spec=spec, object_id=object_id, deposed=deposed,
                             token=token)
        self.store.commit({"pending_add": [p.to_json()]})
        return p.op_id

    def _create(self, kind: Kind[Any, Any], name: str, spec: Any, *, prior: ResourceState | None,
                deps: list[str], protect: bool, retain: bool, temp_name: str | None = None,
                sent: Any = None, intent: _Intent | None = None) -> Observed[Any, Any]:
        sent = sent or spec
        if intent is not None:  # announced ahead: durable already
            spec, op_id, token = intent.spec, intent.op_id, intent.token
        else:
            spec = _with_create_token(kind, spec)
            token = new_create_token()
            op_id = self._pending("create", name, kind, spec=spec, token=token)
        try:
            with creating_with(token):
                obs = kind.create(self.ctx, spec)
        except BaseException as e:
            # create is transactional, or what it left is findable: never leave an orphan.
            # A Conflict is the kind's proof that the object under that name (or uuid) is
            # not this create's: never looked up, never adopted (issue 16)
            try:
                found = None if isinstance(e, Conflict) else kind.find_own(self.ctx, spec, token)
            except BaseException:
                raise e from None  # outcome unknown: the intent stays for the next run
            delta: dict[str, Any] = {"pending_clear": [op_id]}
            if found is not None and prior is not None and found.id == prior.id:
                found = None  # the old object holds the name: it is not a new one
            if found is not None:
                rs = state_entry(kind, name, found, sent, None, deps, protect=protect,
                                 retain=retain, temp_name=temp_name,
                                 inputs=self.facts.desired.get(name))
                delta["upsert"] = [rs.to_json()]
                if prior is not None:
                    delta["deposed_add"] = [prior.to_json()]
                self.facts.observed[name] = found
            self.store.commit(delta)
            raise
        if prior is not None and obs.id == prior.id:
            # A name-idempotent create handed back the object being replaced: deposing it
            # now would delete the live object. Stop and say so.
            self.store.commit({"pending_clear": [op_id]})
            raise StateError(
                f"{name}: creating the replacement returned the existing object {obs.id} "
                "(its name is taken); the old object was kept. Replace it with delete-before-create "
                "(change the name, or delete the resource first)"
            )
        rs = state_entry(kind, name, obs, sent, None, deps, protect=protect, retain=retain,
                         temp_name=temp_name, inputs=self.facts.desired.get(name))
        delta = {"pending_clear": [op_id], "upsert": [rs.to_json()]}
        if prior is not None:
            delta["deposed_add"] = [prior.to_json()]
        self.facts.observed[name] = obs
        self.facts.pending_action.pop(name, None)
        self.store.commit(delta, durable=False)
        return obs

    def _update(self, kind: Kind[Any, Any], name: str, prior: ResourceState, old: Any,
                spec: Any, deps: list[str], protect: bool, retain: bool, op: str = "update") -> None:
        op_id = self._pending(op, name, kind, spec=spec, object_id=prior.id)
        try:
            new = kind.update(self.ctx, prior.id, old, spec)
        except BaseException:
            self.store.commit({"pending_clear": [op_id]})  # a failed update leaves the object
            raise
        rs = state_entry(kind, name, new, spec, prior, deps, protect=protect, retain=retain,
                         inputs=self.facts.desired.get(name))
        self.facts.observed[name] = new
        self.facts.pending_action.pop(name, None)
        self.store.commit({"pending_clear": [op_id], "upsert": [rs.to_json()]}, durable=False)

    def _delete(self, kind: Kind[Any, Any], r: ResourceState, *, deposed: bool) -> None:
        op_id = self._pending("delete", r.name, kind, object_id=r.id, deposed=deposed)
        try:
            # a replaced object's choice too; the plan checked its dependents
            delete_or_unmanage(kind, self.ctx, r.id, recorded_declaration(r), check=False)
        except BaseException:
            self.store.commit({"pending_clear": [op_id]})  # a failed delete leaves the object
            raise
        delta: dict[str, Any] = {"pending_clear": [op_id]}
        if deposed:
            delta["deposed_remove"] = [r.id]
        else:
            delta["remove"] = [r.name]
            self.facts.observed.pop(r.name, None)
        self.store.commit(delta, durable=False)

    def _import(self, kind: Kind[Any, Any], step: Step, props: dict[str, Any], deps: list[str]) -> None:
        assert self.stack is not None and step.import_id is not None
        decl = self.stack.resources[step.name]
        op_id = self._pending("import", step.name, kind, object_id=step.import_id)
        try:
            obs = kind.adopt(self.ctx, step.import_id)
        except BaseException:
            self.store.commit({"pending_clear": [op_id]})
            raise
        spec, _ = build_spec(kind, props, decl, obs.spec)
        rs = state_entry(kind, step.name, obs, None, None, deps, protect=decl.options.protect,
                         retain=decl.options.retain_on_delete)
        self.facts.observed[step.name] = obs
        self.store.commit({"pending_clear": [op_id], "upsert": [rs.to_json()]})
        change = refuse_replace(kind, change_for(self.ctx, kind, obs, spec, rs), resource=step.name,
                                importing=obs.id)
        if change.diff.changed:
            self._update(kind, step.name, rs, change.prior, spec, deps, decl.options.protect,
                         decl.options.retain_on_delete)
