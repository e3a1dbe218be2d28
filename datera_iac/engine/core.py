"""The engine's operations over one stack: preview, up, refresh, destroy, import, state.

A :class:`Workspace` ties together the stack source (a Pulumi-YAML file or a Python
program), the state backend and the DSP connection (or the bundled simulator when no DSP
is configured). Every mutating operation takes the stack's lock first, resolves what a
killed run left pending, refreshes, plans and applies — the same steps in every command.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from datera_iac.dsp.identity import describe_dsp, dsp_identity, norm_url
from datera_iac.engine.apply import (
    Applier,
    ApplyResult,
    Progress,
    StateStore,
    state_entry,
)
from datera_iac.engine.backends import Backend, check_stack_name, describe_holder, open_backend
from datera_iac.engine.model import Location, StackDef, StackError, has_unknown
from datera_iac.engine.plan import (
    Facts,
    Plan,
    make_plan,
    masked_outputs,
    recover_pending,
    refresh as read_dsp,
)
from datera_iac.engine.state import State, holder_info, is_new_state, mask_inputs
from datera_iac.errors import InputError, StateError
from datera_iac.resources.base import KINDS, Context, Timeouts, kind_for

__all__ = ["EMBEDDED_USERS", "REFRESH_MODES", "DspMismatch", "Workspace", "load_stack",
           "stack_config_file"]

log = logging.getLogger("datera_iac.engine")

#: Credentials of the bundled simulator started when no DSP is configured.
EMBEDDED_USERS = {"admin": "password"}

#: How a run reads the DSP before planning. ``fast``: the kinds' bulk reads (paged lists:
#: about ten requests for 1,000 volumes) - what a bulk list does not return (a volume's
#: app_instance metadata) is not seen, so an out-of-band metadata edit is not drift.
#: ``full``: every object's own read, ``parallel`` at a time (about two requests per
#: volume), which sees metadata too. ``preview``/``up`` default to fast, ``refresh`` to full.
REFRESH_MODES = ("fast", "full")


def _full(mode: str | None, ctx: Context | None = None) -> bool:
    """Whether a run reads every object on its own: the run's ``--refresh``, else the DSP
    configuration's ``refresh`` (fast when neither says)."""
    if mode is None:
        mode = getattr(getattr(ctx, "config", None), "refresh", None) or "fast"
    if mode not in REFRESH_MODES:
        raise InputError(f"unknown refresh mode {mode!r}", fix="use fast or full")
    return mode == "full"


def stack_config_file(stack_file: Path, stack: str) -> dict[str, Any]:
    """``Pulumi.<stack>.yaml`` beside the stack file: its ``config:`` mapping, if any."""
    p = stack_file.parent / f"Pulumi.{stack}.yaml"
    if not p.exists():
        return {}
    from datera_iac.engine.yamlstack import YamlSyntaxError, parse_with_lines

    try:
        doc = parse_with_lines(p.read_text()) or {}
    except YamlSyntaxError as e:
        raise StackError(f"invalid YAML: {e}" if e.fix is None else str(e),
                         where=Location(str(p), e.line), fix=e.fix) from None
    cfg = doc.get("config") or {}
    if not isinstance(cfg, dict):
        raise StackError(f"{p}: config must be a mapping")
    return {str(k): (v.get("value") if isinstance(v, dict) and "value" in v else v) for k, v in cfg.items()}


def load_stack(path: str | Path, *, stack: str = "dev", config: Mapping[str, Any] | None = None) -> StackDef:
    """Load a stack from a YAML file, a Python program, or a directory holding Pulumi.yaml.

    A ``Pulumi.yaml`` with ``runtime: python`` runs its ``main`` program (default
    ``__main__.py``)."""
    from datera_iac.engine.program import load_program
    from datera_iac.engine.yamlstack import PythonRuntime, load_yaml

    p = Path(path)
    if p.is_dir():
        p = p / "Pulumi.yaml"
    if not p.exists():
        raise StackError(f"no stack file at {p}", fix="pass -f <Pulumi.yaml | program.py>, or cd to the stack")
    merged = {**stack_config_file(p, stack), **dict(config or {})}
    if p.suffix == ".py":
        return load_program(p, stack=stack, config=merged)
    try:
        return load_yaml(p, stack=stack, config=merged)
    except PythonRuntime as rt:
        main = p.parent / rt.main
        if main.is_dir():
            main = main / "__main__.py"
        return load_program(main, stack=stack, config=merged, project=rt.project)


_SWITCH_MU = threading.Lock()
_switch_users = 0
_switch_saved = 0.0
#: the GIL switch interval while an ``up`` runs (CPython's default is 5 ms)
APPLY_SWITCH_INTERVAL = 0.0005


@contextlib.contextmanager
def responsive_threads() -> Iterator[None]:
    """Shorten CPython's GIL switch interval while an ``up`` runs, restoring it after.

    The apply's worker threads spend their time waiting on the DSP; when an answer comes
    in while another thread computes (planning, recording a result), the waiting thread
    gets the GIL only when that one blocks or after the switch interval - 5 ms by default,
    a quarter of a 20 ms round trip, repeated on every exchange. 0.5 ms lets answers be
    taken up promptly at the price of more frequent switches (measured with
    bench/bench_engine.py: 500 creates at 20 ms, ratio 1.15-1.18 against 1.16-1.20 with
    the default; docs/performance.md). The interval is process-wide: concurrent runs in
    one process share one setting, restored when the last of them ends."""
    global _switch_users, _switch_saved
    with _SWITCH_MU:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, APPLY_SWITCH_INTERVAL))
        _switch_users += 1
    try:
        yield
    finally:
        with _SWITCH_MU:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


class Phases:
    """Wall and CPU time of a run's phases (reading the stack file and the state,
    refreshing, planning, applying), in the order they ran: logged at INFO (``-v``) as
    each ends and kept in ``Plan.timings``, so a slow preview of a large stack says where
    its time went. CPU is the whole process's (the refresh's page fetches run on threads)."""

    def __init__(self) -> None:
        self.timings: dict[str, tuple[float, float]] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            self.timings[phase] = took
            log.info("%s: %.2f s (CPU %.2f s)", phase, *took)


_GC_MU = threading.Lock()
_gc_users = 0
_gc_was_enabled = False


@contextlib.contextmanager
def quiet_collector() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a preview or ``up`` runs.

    Loading a 10,000-volume state, decoding ten 1,000-item list pages and planning create
    millions of objects that all stay alive; the collector's automatic passes kept scanning
    them, about half of the engine's CPU for a no-op preview of 10,000 volumes (3.1 s ->
    1.7 s, `bench/bench_engine.py --volumes 1000,10000`; docs/performance.md). Reference
    counting still frees everything that is not in a cycle; cycles made meanwhile wait for
    the next automatic pass after the run. Process-wide, reference-counted for concurrent
    runs in one process; a collector the host had disabled stays disabled."""
    global _gc_users, _gc_was_enabled
    with _GC_MU:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1
    try:
        yield
    finally:
        with _GC_MU:
            _gc_users -= 1
            if _gc_users == 0 and _gc_was_enabled:
                if gc.get_freeze_count() == 0:
                    # What the run made and kept goes to the oldest generation as is
                    # (freeze + unfreeze splices the lists, no scan), so re-enabling does
                    # not start with one young-generation pass over every object the run
                    # allocated (0.2-0.3 s at 10,000 volumes, growing faster than the
                    # stack). Cycles among them wait for the next full collection. Not
                    # done when the host froze objects itself (unfreeze would undo it).
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


class DspMismatch(StateError):
    """The state belongs to another DSP or project than this run's."""

    def __init__(self, message: str, *, fix: str) -> None:
        self.fix = fix
        super().__init__(f"{message}. To proceed: {fix}")


@attrs.define
class Workspace:
    """One stack: where it is declared, where its state lives, how to reach the DSP.

    ``stack_file`` may be None for commands that need no declaration (``state``,
    ``destroy`` falls back to the state alone). ``endpoint`` / ``provider_config`` override
    the stack's ``datera:*`` config; with neither a DSP address nor DATERA_SAN_IP /
    DATERA_ENDPOINT set, the bundled simulator is started with its data kept in
    ``<state_dir>/dsp-sim`` so objects persist across runs.
    """

    stack_file: Path | None
    stack: str = "dev"
    config: dict[str, Any] = attrs.field(factory=dict)
    backend_url: str | None = None
    state_dir: Path | None = None
    endpoint: str | None = None
    provider_config: dict[str, Any] = attrs.field(factory=dict)
    parallel: int = 10
    timeouts: Timeouts = attrs.field(factory=Timeouts)
    embedded: bool | None = None
    command: str = ""
    #: A ready Context (tests, embedding); when set no client or simulator is started.
    ctx: Context | None = None
    _definition: StackDef | None = None
    _sim: Any = None
    _client: Any = None
    _context: Context | None = None
    notes: list[str] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        check_stack_name(self.stack)
        if self.state_dir is None:
            base = self.stack_file.parent if self.stack_file else Path.cwd()
            if base.is_file():
                base = base.parent
            self.state_dir = base / ".datera-iac"

    # ---- pieces ---------------------------------------------------------------------------

    def definition(self) -> StackDef:
        if self._definition is None:
            if self.stack_file is None:
                raise StackError("no stack file given", fix="pass -f <Pulumi.yaml | program.py>")
            self._definition = load_stack(self.stack_file, stack=self.stack, config=self.config)
        return self._definition

    def project(self) -> str | None:
        """The declaring project's name (None for a command run without a stack file)."""
        if self.stack_file is None:
            return None
        return self.definition().project or None

    def backend(self) -> Backend:
        assert self.state_dir is not None
        return open_backend(self.backend_url, stack=self.stack, state_dir=self.state_dir,
                            project=self.project(), notes=self.notes)

    def _provider_mapping(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.stack_file is not None and self._definition is None:
            self.definition()
        if self._definition is not None:
            data.update(self._definition.provider_config)
        data.update(self.provider_config)
        if self.endpoint:
            data["endpoint"] = self.endpoint
        return data

    def wants_embedded(self) -> bool:
        if self.embedded is not None:
            return self.embedded
        return not self.dsp_configured()

    def dsp_configured(self) -> bool:
        """Whether the configuration names a DSP (stack config, --endpoint, environment)."""
        if self.ctx is not None:
            return True
        from datera_iac.config import env_name

        data = self._provider_mapping()
        if data.get("endpoint") or data.get("san_ip"):
            return True
        return bool(os.environ.get(env_name("san_ip")) or os.environ.get(env_name("endpoint")))

    # ---- which DSP a state belongs to -------------------------------------------------------

    def _refuse(self, what: str, fix: str) -> None:
        raise DspMismatch(f"stack {self.stack!r}: {what}; nothing was changed", fix=fix)

    def bind_dsp(self, state: State) -> None:
        """Decide which DSP this run talks to, from the state's record, before anything
        is read or written: a state of the bundled simulator runs on it, a state of a DSP
        runs only against that DSP (same endpoint, or the same uuid from ``/system`` at a
        new address), a new stack on what is configured (the simulator when nothing is).
        Anything else refuses, naming both, with the command that moves a stack on purpose.
        A state of another project (a shared PostgreSQL backend) refuses too."""
        project = self._definition.project if self._definition is not None else None
        if state.project and project and state.project != project:
            self._refuse(f"the state belongs to project {state.project!r}, this stack file "
                         f"declares project {project!r}",
                         "use another stack name (-s) for this project, or the project's own "
                         "stack file")
        rec = state.dsp or {}
        configured = self.dsp_configured() if self.embedded is None else not self.embedded
        reassign = "datera-iac state reassign-dsp"
        if rec.get("simulator"):
            if configured:
                self._refuse(
                    f"its state belongs to the bundled simulator (data in "
                    f"{self.state_dir / 'dsp-sim'}), but this run is configured for "
                    f"{self._configured_label()}",
                    "unset the endpoint (DATERA_ENDPOINT, --endpoint, datera:endpoint) to run "
                    f"on the simulator, or move the stack on purpose: `{reassign} --endpoint "
                    "URL` (the objects stay where they are)")
            self.embedded = True
            return
        if rec.get("endpoint"):
            shown = describe_dsp(rec)
            if not configured:
                self._refuse(
                    f"its state belongs to {shown}, but no DSP is configured in this run (no "
                    "--endpoint, datera:endpoint or DATERA_ENDPOINT), so it would run on the "
                    "bundled simulator",
                    f"set DATERA_ENDPOINT={rec['endpoint']} (or pass --endpoint), or move the "
                    f"stack on purpose: `{reassign}`")
            self.embedded = False
            ctx = self.context()
            here = getattr(getattr(ctx, "config", None), "base_url", None) or rec["endpoint"]
            if norm_url(here) != norm_url(rec["endpoint"]):
                ident = self._identity(ctx, fetch=True)
                if not (rec.get("uuid") and ident.get("uuid") == rec["uuid"]):
                    self._refuse(
                        f"its state belongs to {shown}, but this run talks to "
                        f"{describe_dsp(ident)}",
                        f"run against {rec['endpoint']}, or move the stack on purpose: "
                        f"`{reassign} --endpoint {here}`")
                self.notes.append(f"the DSP of stack {self.stack!r} answers at a new address "
                                  f"({here}, was {rec['endpoint']}); same uuid {rec['uuid']}")
            return
        if not configured and not is_new_state(state) and not (self.state_dir / "dsp-sim").exists():
            self._refuse(
                "its state was written before the DSP was recorded and no DSP is configured; "
                "there is no bundled-simulator data beside it, so the objects are on a real DSP",
                "set DATERA_ENDPOINT (or pass --endpoint) to that DSP; the state then records it")
        self.embedded = not configured

    def _configured_label(self) -> str:
        data = self._provider_mapping()
        from datera_iac.config import env_name

        ep = (data.get("endpoint") or data.get("san_ip") or os.environ.get(env_name("endpoint"))
              or os.environ.get(env_name("san_ip")))
        return f"the DSP at {ep}" if ep else "a DSP"

    def _identity(self, ctx: Context, *, fetch: bool) -> dict[str, Any]:
        """This run's DSP as a state records it (uuid/name from ``GET /system``: the
        answer the client already has, else one request when ``fetch``)."""
        if self._sim is not None:
            return {"simulator": True}
        # (none without a DSP: a caller's own context, an in-memory test kind)
        return dsp_identity(ctx.client, getattr(getattr(ctx, "config", None), "base_url", None),
                            fetch=fetch)

    def _record_dsp(self, store: StateStore, ctx: Context, *, fetch: bool) -> None:
        """Write this run's DSP into the state when the state does not hold it yet (a new
        stack, an old state, a DSP at a new address, a uuid not read before)."""
        ident = self._identity(ctx, fetch=fetch)
        rec = store.state.dsp or {}
        if not ident:
            return
        if ident.get("simulator"):
            want = {"simulator": True}
        else:
            want = {**{k: v for k, v in rec.items() if k in ("uuid", "name")}, **ident}
        if want != rec:
            store.commit({"dsp": want})

    def context(self) -> Context:
        """The kinds' context: a DSP client for the configured DSP or the bundled simulator."""
        if self.ctx is not None:
            return self.ctx
        if self._context is not None:
            return self._context
        from datera_iac.config import DateraConfig
        from datera_iac.dsp import DspClient

        data = self._provider_mapping()
        if self.wants_embedded():
            sim = self._start_embedded()
            user, password = next(iter(sim.users.items()))
            data = {**data, "endpoint": sim.http_url, "san_login": user, "san_password": password}
        config = DateraConfig.from_mapping(data)
        self._client = DspClient(config, pool_size=self.parallel + 4)  # a connection per worker
        # runner=None: a NodeAttachment reaches its node itself (local, or ssh:// in `node`)
        self._context = Context(client=self._client, config=config, runner=None,
                                timeouts=self.timeouts, log=logging.getLogger("datera_iac"))
        return self._context

    def _start_embedded(self) -> Any:
        if self._sim is None:
            from datera_iac.sim import SimServer

            assert self.state_dir is not None
            from datera_iac.files import private_dir

            data_dir = private_dir(private_dir(self.state_dir) / "dsp-sim")
            self._sim = SimServer(data_dir=str(data_dir)).start()
            self.notes.append(f"no DSP configured: using the bundled simulator (data in {data_dir})")
        return self._sim

    def dsp_label(self) -> str:
        """Which DSP this run talks to, for the plan header (stdout, not only a note)."""
        if self._sim is not None:
            return f"the bundled simulator (data in {self.state_dir / 'dsp-sim'})"
        ctx = self.ctx or self._context
        base = getattr(getattr(ctx, "config", None), "base_url", None)
        return f"the DSP at {base}" if base else ""

    def _label(self, plan: Plan, new_stack: bool) -> None:
        plan.dsp = self.dsp_label()
        plan.new_stack = new_stack

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None
            self._context = None
        if self._sim is not None:
            with contextlib.suppress(Exception):
                self._sim.stop()
            self._sim = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def locked(self, phase: Phases | None = None) -> Iterator[tuple[Backend, State]]:
        """The backend, locked, and the state loaded under the lock (timed as ``phase``'s
        "state")."""
        backend = self.backend()
        try:
            backend.lock(holder_info(self.command))
            stale = getattr(backend, "stale_holder", None)
            if stale:
                self.notes.append(f"took over the lock left by a run that died ({describe_holder(stale)})")
            with phase("state") if phase is not None else contextlib.nullcontext():
                state = backend.load()
            if not state.project and self._definition is not None:
                state.project = self._definition.project
            yield backend, state
        finally:
            backend.close()

    # ---- operations -----------------------------------------------------------------------

    def _desired_props(self, stack: StackDef | None) -> dict[str, dict[str, Any]]:
        if stack is None:
            return {}
        return {n: d.properties for n, d in stack.resources.items()}

    def preview(self, *, refresh_only: bool = False, destroy: bool = False,
                refresh: str | None = None, targets: Iterable[str] = (),
                with_calls: bool = False) -> Plan:
        """The plan, without the lock and without writing anything (reads only).

        ``refresh``: ``fast`` reads with the kinds' bulk lists (a handful of requests for
        1,000 volumes, but no volume metadata); ``full`` reads every object on its own,
        metadata included (see :data:`REFRESH_MODES`). ``with_calls``: each create and
        update lists the DSP calls it would send (computed from what was read)."""
        phase = Phases()
        with quiet_collector():
            with phase("stack file"):
                stack = None if destroy and self.stack_file is None else self.definition()
            with phase("state"):
                backend = self.backend()
                try:
                    state = backend.load()
                finally:
                    backend.close()
            new_stack = is_new_state(state)
            self.bind_dsp(state)
            ctx = self.context()
            _, notes = recover_pending(ctx, state, self._desired_props(stack))
            facts = Facts(with_calls=with_calls)
            with phase("refresh"):
                delta, drift = read_dsp(ctx, state, facts, full=_full(refresh, ctx),
                                        parallel=self.parallel)
                state.apply_delta(delta)
            with phase("plan"):
                plan = make_plan(ctx, stack, state, facts, stack_name=self.stack, destroy=destroy,
                                 refresh_only=refresh_only, drift=drift, targets=targets)
            plan.recovered, plan.timings = notes, phase.timings
            self._label(plan, new_stack)
            return plan

    def up(self, *, destroy: bool = False, refresh_only: bool = False, confirm: Any = None,
           progress_stream: TextIO | None = None, quiet: bool = False,
           on_plan: Any = None, refresh: str | None = None,
           targets: Iterable[str] = ()) -> tuple[Plan, ApplyResult | None]:
        """Lock, recover, refresh, plan and apply. ``confirm(plan) -> bool`` may stop
        before any write to the DSP (``up`` without ``--yes`` on a TTY). ``refresh``: as
        for :meth:`preview`. ``targets``: only these resources' changes (and what they
        need); the only way a plan deletes an object ``import`` adopted and no stack
        declares."""
        phase = Phases()
        with phase("stack file"):
            stack = None if destroy and self.stack_file is None else self.definition()
        with quiet_collector(), self.locked(phase) as (backend, state), self._warming() as warm, \
                responsive_threads():
            new_stack = is_new_state(state)
            self.bind_dsp(state)  # before any read or write: the DSP this state belongs to
            ctx = self.context()  # after the lock: an embedded simulator is ours alone
            if confirm is None and not destroy and not refresh_only:
                warm(state, stack)
            store = StateStore(backend, state)
            deltas, notes = recover_pending(ctx, State(stack=state.stack, resources=dict(state.resources),
                                                       deposed=list(state.deposed),
                                                       pending=dict(state.pending), seq=state.seq),
                                            self._desired_props(stack))
            for d in deltas:
                store.commit(d)
            facts = Facts()
            with phase("refresh"):
                delta, drift = read_dsp(ctx, store.state, facts, full=_full(refresh, ctx),
                                       parallel=self.parallel)
                if delta:
                    store.commit(delta)
            with phase("plan"):
                plan = make_plan(ctx, stack, store.state, facts, stack_name=self.stack,
                                 destroy=destroy, refresh_only=refresh_only, drift=drift,
                                 targets=targets)
            plan.recovered, plan.timings = notes, phase.timings
            self._label(plan, new_stack)
            if on_plan is not None:
                on_plan(plan)
            if plan.errors:
                store.compact()
                return plan, None
            if stack is not None and not destroy and not refresh_only:
                self._sync_options(store, stack, plan)
            if refresh_only or not plan.changes:
                if stack is not None and not destroy and not refresh_only:
                    self._record_outputs(store, stack, facts)
                store.compact()
                return plan, ApplyResult()
            if confirm is not None and not confirm(plan):
                store.compact()
                return plan, None
            if self.ctx is None and self._client is not None:
                # the DSP is reachable and takes our credentials, checked once before the
                # apply writes an intent or makes a call (a wrong password fails here, whole)
                warm(None, None)
                self._client.ensure_session()
            self._record_dsp(store, ctx, fetch=False)
            progress = Progress(len(plan.changes), progress_stream, quiet=quiet)
            try:
                with phase("apply"):
                    result = Applier(ctx, store, plan, stack, facts, parallel=self.parallel,
                                     progress=progress).run()
            finally:
                progress.close()
            if store.state.dsp.get("endpoint") and "uuid" not in store.state.dsp:
                warm(None, None)  # a warm-up in flight may bring /system along
                self._record_dsp(store, ctx, fetch=True)
                store.compact()
            return plan, result

    @contextlib.contextmanager
    def _warming(self) -> Iterator[Any]:
        """Yields ``warm(state, stack)``: for a first ``up`` (empty state, resources
        declared) it starts the DSP session set-up (:meth:`DspClient.warm_up`: version
        probe, login, and the product version when a Volume is declared) in a thread, so
        its round trips overlap planning instead of preceding the first create (~3 x the
        DSP's latency). With a state the refresh talks to the DSP first anyway, so nothing
        is started. The apply does not wait for it: its first calls wait on the client's
        own locks for the step in flight (so each request is still made once), and the
        apply's set-up (the first intents' fsync) overlaps the last round trip. Leaving
        the block joins the thread (``warm(None, None)``).
        Only our own client is warmed (a ready ``ctx`` is the caller's), and never before
        an interactive confirmation (a declined ``up`` stays without requests)."""
        thread: list[threading.Thread] = []

        def warm(state: State | None, stack: StackDef | None) -> None:
            if state is None:
                while thread:
                    thread.pop().join()  # bounded: warm_up tries each request once
                return
            if (self.ctx is not None or stack is None or not stack.resources or state.resources
                    or state.pending or state.deposed or self._client is None):
                return
            volume = kind_for("Volume")
            system = any(KINDS.get(d.type) is volume for d in stack.resources.values())
            t = threading.Thread(target=self._client.warm_up, kwargs={"system": system},
                                 name="dsp-warm-up", daemon=True)
            t.start()
            thread.append(t)

        try:
            yield warm
        finally:
            warm(None, None)

    def _sync_options(self, store: StateStore, stack: StackDef, plan: Plan) -> None:
        """Record option changes (protect, retainOnDelete, dependencies) of resources whose
        inputs did not change: they touch the state only, never the DSP. Their declaration
        is recorded too when it is new to the state (an import, a state from before
        ``declared`` existed, a rewrite the DSP already matches), so removing a key later
        is seen (``Kind.declare_removed``)."""
        upserts = []
        for step in plan.steps:
            r = store.state.resources.get(step.name)
            decl = stack.resources.get(step.name)
            if step.action != "same" or r is None or decl is None:
                continue
            want = (decl.options.protect, decl.options.retain_on_delete, sorted(step.deps))
            declared = r.declared
            if step.desired is not None and not has_unknown(step.desired):
                declared = mask_inputs(kind_for(r.type), step.desired, r.declared)
            if ((r.protect, r.retain_on_delete, sorted(r.deps)) != want or declared != r.declared
                    or r.imported):
                # an imported object now declared is an ordinary managed one
                upserts.append(attrs.evolve(r, protect=want[0], retain_on_delete=want[1],
                                            deps=want[2], declared=declared,
                                            imported=False).to_json())
        if upserts:
            store.commit({"upsert": upserts})

    def _record_outputs(self, store: StateStore, stack: StackDef, facts: Facts) -> None:
        outs = masked_outputs(stack, facts, prior=store.state.outputs)
        if outs != store.state.outputs:
            store.commit({"outputs": outs})

    def refresh(self, *, mode: str = "full") -> Plan:
        """Bring the state in line with the DSP (drops vanished objects); returns the drift.

        A full refresh by default: the one command whose job is to read everything
        (a volume's metadata included); ``mode="fast"`` uses the bulk reads only."""
        return self.up(refresh_only=True, refresh=mode)[0]

    def import_resource(self, name: str, type_: str, ref: str, *, protect: bool = False) -> Any:
        """Adopt an existing DSP object into state under ``name`` (no write to the DSP)."""
        kind = kind_for(type_)
        with self.locked() as (backend, state):
            self.bind_dsp(state)
            ctx = self.context()
            if name in state.resources:
                raise InputError(f"{name!r} is already in the state (id {state.resources[name].id})",
                                 resource=name, fix="pick another name, or `state rm` it first")
            obs = kind.adopt(ctx, ref)
            store = StateStore(backend, state)
            self._record_dsp(store, ctx, fetch=True)
            # marked: until a stack declares it, no plan deletes it unless --target names it
            rs = attrs.evolve(state_entry(kind, name, obs, None, None, [], protect=protect),
                              imported=True)
            store.commit({"upsert": [rs.to_json()]})
            store.compact()
            return obs

    def reassign_dsp(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Record the DSP this run is configured for (the bundled simulator when none) as
        the stack's DSP, on purpose: no DSP object is written, created or deleted. Returns
        (the old record, the new one)."""
        with self.locked() as (backend, state):
            old = dict(state.dsp)
            self.embedded = not self.dsp_configured()
            ctx = self.context()
            store = StateStore(backend, state)
            store.commit({"dsp": {"simulator": True} if self._sim is not None
                          else self._identity(ctx, fetch=True)})
            store.compact()
            return old, dict(store.state.dsp)

    def state_rm(self, names: list[str]) -> list[str]:
        """Forget resources in state (the DSP objects stay), with any intent an interrupted
        run left for them."""
        with self.locked() as (backend, state):
            pending = {p.name: p.op_id for p in state.pending.values()}
            missing = [n for n in names if n not in state.resources and n not in pending]
            if missing:
                raise InputError(f"not in state: {', '.join(missing)}",
                                 fix="see `datera-iac state list`")
            store = StateStore(backend, state)
            store.commit({"remove": list(names),
                          "pending_clear": [p.op_id for p in state.pending.values() if p.name in names]})
            store.compact()
            return names

    def load_state(self) -> State:
        backend = self.backend()
        try:
            return backend.load()
        finally:
            backend.close()

    def force_unlock(self, lock_id: str | None = None) -> dict[str, Any] | None:
        """Break the stack's lock; a holder still running on this host only when
        ``lock_id`` is the id it names (LockError otherwise)."""
        backend = self.backend()
        try:
            return backend.force_unlock(lock_id)
        finally:
            backend.close()

