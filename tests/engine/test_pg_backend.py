"""The PostgreSQL state backend against a real server the fixture starts: the same
lifecycle as the file backend, the advisory lock, force-unlock, and journal recovery."""

import pytest

from datera_iac.engine.apply import StateStore
from datera_iac.engine.pgbackend import PostgresBackend, redact_url
from datera_iac.engine.state import PendingOp
from datera_iac.errors import LockError, StateError

pytestmark = pytest.mark.postgres


def test_lifecycle_on_postgres(sim, sim_ws, writes, pg_url):
    """up, no-op up (0 writes), out-of-band delete re-created, destroy — state in PostgreSQL,
    nothing on local disk."""
    plan, result = sim_ws(backend_url=pg_url).up()
    assert not plan.errors and result.ok, result.failures
    ws = sim_ws(backend_url=pg_url)
    assert not list(ws.state_dir.glob("**/dev.json"))
    st = ws.load_state()
    assert set(st.resources) == {"team", "gold", "v1", "v2", "snap"}
    before = writes()
    plan, _ = sim_ws(backend_url=pg_url).up()
    assert not plan.changes and writes() == before
    # out-of-band delete, then re-create
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    c = DspClient(DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                             "san_password": "password"}))
    ai = st.resources["v2"].id.rsplit("/", 1)[1]
    c.put(f"/app_instances/{ai}", {"admin_state": "offline"}, tenant="/root/team-a")
    c.delete(f"/app_instances/{ai}", tenant="/root/team-a")
    c.close()
    plan, result = sim_ws(backend_url=pg_url).up()
    assert [(s.name, s.action) for s in plan.changes] == [("v2", "create")] and result.ok
    plan, result = sim_ws(backend_url=pg_url).up(destroy=True)
    assert result.ok and not sim_ws(backend_url=pg_url).load_state().resources


def test_lock_names_holder_and_force_unlock(sim, sim_ws, pg_url):
    """A held advisory lock refuses another run with the holder's pid/host; force-unlock
    terminates the holder's session and the next run proceeds."""
    holder = PostgresBackend(pg_url, "dev")
    holder.lock({"pid": 4242, "host": "ci-runner-7", "command": "up", "since": "now"})
    with pytest.raises(LockError) as e:
        sim_ws(backend_url=pg_url).up()
    assert "pid 4242" in str(e.value) and "ci-runner-7" in str(e.value)
    broken = sim_ws(backend_url=pg_url).force_unlock()
    assert broken and broken["pid"] == 4242
    plan, result = sim_ws(backend_url=pg_url).up()
    assert result is not None and result.ok
    holder._lock_conn = None  # its session was terminated by force-unlock
    holder.close()


def test_dead_session_releases_lock(sim_ws, pg_url):
    """A run that dies (its connection closes) leaves no lock behind."""
    b = PostgresBackend(pg_url, "dev")
    b.lock({"pid": 1, "host": "gone"})
    b._lock_conn.close()  # the process died: PostgreSQL ends the session
    b._lock_conn = None
    b2 = PostgresBackend(pg_url, "dev")
    b2.lock({"pid": 2, "host": "here"})
    assert b2.stale_holder and b2.stale_holder["host"] == "gone"
    b2.close()
    b.close()


def test_pending_create_recovered_from_postgres(sim, sim_ws, pg_url):
    """An intent journaled in PostgreSQL whose create did happen is adopted by the token that
    create wrote (no twin)."""
    ws = sim_ws(backend_url=pg_url)
    ws.up()
    backend = ws.backend()
    store = StateStore(backend, backend.load())
    # pretend v2 was created by a killed run: drop it from state, keep it on the DSP, journal
    # the intent as a real create does before its POST - with the token the create sent (a
    # Volume's app_instance uuid)
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    c = DspClient(DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                             "san_password": "password"}))
    ai = store.state.resources["v2"].id.rsplit("/", 1)[1]
    token = c.get(f"/app_instances/{ai}", tenant="/root/team-a")["uuid"].replace("-", "")
    c.close()
    store.commit({"remove": ["v2"], "pending_add": [PendingOp(
        op_id="k1", op="create", name="v2", type="datera:index:Volume",
        spec={"name": "vol-two", "size": 1, "tenant": "/root/team-a"}, token=token).to_json()]})
    backend.close()
    plan, result = sim_ws(backend_url=pg_url).up()
    assert any("had completed" in n for n in plan.recovered)
    assert not plan.changes and result is not None and result.ok
    st = sim_ws(backend_url=pg_url).load_state()
    assert "v2" in st.resources and not st.pending


def test_bad_url_is_a_state_error_without_password():
    """An unreachable server is a StateError whose text never shows the password."""
    with pytest.raises(StateError) as e:
        PostgresBackend("postgresql://iac:s3cret@127.0.0.1:1/x", "dev")
    assert "s3cret" not in str(e.value) and "***" in str(e.value)
    assert redact_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
