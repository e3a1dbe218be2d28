"""The Pulumi and Terraform providers under the same faults as the engine: 503s and writes
whose answer is lost (and, for Pulumi, expiring keys) while they create and delete volumes
in parallel. Each create either returns the one object it made or adopts the object a lost
answer left behind: 0 twins, every volume once, nothing left after the deletes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fault.conftest import TF_HEAD, census, twins_of

V = "datera:index:Volume"
T = "datera:index:Tenant"


def _pulumi(sim, figure, n: int) -> None:
    import grpc

    from datera_iac.pulumi._codec import Secret
    from datera_iac.pulumi.provider import DateraProvider, serve
    from datera_iac.pulumi.testing import Rpc, plain

    server, port = serve(DateraProvider())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        rpc = Rpc(channel)
        rpc.configure(endpoint=sim.http_url, sanLogin="admin", sanPassword=Secret("password"),
                      datera503Interval=0.1, datera503Timeout=60)
        names = [f"pf-{i:03d}" for i in range(n)]
        inputs = {nm: plain(rpc.check(V, nm, {"size": 1}).inputs) for nm in names}
        sim.set_faults(fail_503_rate=0.3, drop_after_write_rate=0.1, drop_after_write_burst=2, seed=17)
        with ThreadPoolExecutor(8) as pool:
            made = dict(zip(names, pool.map(lambda nm: rpc.create(V, nm, inputs[nm]), names), strict=True))
            sim.set_faults(expire_keys=True)
        faults = [r for r in sim.request_log() if r["status"] == 503 or r.get("dropped")]
        sim.set_faults(fail_503_rate=0.0, drop_after_write_rate=0.0)
        counted, _ = census(sim, "/root")
        twins = twins_of(counted)
        assert len({m.id for m in made.values()}) == n
        assert not twins and sorted(counted) == names, (twins, sorted(counted))
        sim.set_faults(fail_503_rate=0.3, drop_after_write_rate=0.1, seed=19)
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda nm: rpc.delete(V, nm, made[nm].id, plain(made[nm].properties)), names))
        sim.set_faults(fail_503_rate=0.0, drop_after_write_rate=0.0)
        left, _ = census(sim, "/root")
    finally:
        channel.close()
        server.stop(grace=None)
    figure("503_storm", front_end="pulumi", volumes=n, faults=len(faults), twins=len(twins),
           left_after_delete=sum(left.values()))
    figure("lost_responses", front_end="pulumi", volumes=n, dropped=sum(1 for r in faults if r.get("dropped")),
           twins=len(twins), missing=n - len(counted))
    assert any(r.get("dropped") for r in faults) and any(r["status"] == 503 for r in faults)
    assert not left


def test_pulumi_provider_under_faults(sim, faults_off, figure):
    """12 parallel Creates and Deletes with 30 % 503s and 10 % lost write answers."""
    _pulumi(sim, figure, 12)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_pulumi_provider_under_faults_100(sim, faults_off, figure):
    _pulumi(sim, figure, 100)


def _terraform(sim, make_tf, figure, n: int) -> None:
    tf = make_tf(sim, DATERA_503_INTERVAL="0.1")
    tf.write(TF_HEAD + f"""
resource "datera_volume" "v" {{
  count = {n}
  name  = format("tff-%03d", count.index)
  size  = 1
}}
""")
    sim.set_faults(fail_503_rate=0.3, drop_after_write_rate=0.1, drop_after_write_burst=2, seed=23,
                   only=r"/v2\.\d/app_instances")
    try:
        tf.apply()
        faults = [r for r in sim.request_log() if r["status"] == 503 or r.get("dropped")]
    finally:
        sim.set_faults(fail_503_rate=0.0, drop_after_write_rate=0.0, only=None)
    counted, ais = census(sim, "/root")
    state_ids = {v["id"] for a, v in tf.state().items() if a.startswith("datera_volume.")}
    orphans = {f"/root/{a['id']}" for a in ais} ^ state_ids
    replan = tf.plan().returncode
    figure("503_storm", front_end="terraform", volumes=n, faults=len(faults), twins=len(twins_of(counted)),
           orphans=len(orphans))
    figure("lost_responses", front_end="terraform", volumes=n,
           dropped=sum(1 for r in faults if r.get("dropped")), twins=len(twins_of(counted)),
           missing=n - len(counted))
    assert any(r.get("dropped") for r in faults) and any(r["status"] == 503 for r in faults)
    assert not twins_of(counted) and sorted(counted) == [f"tff-{i:03d}" for i in range(n)]
    assert not orphans, orphans
    assert replan == 0


@pytest.mark.terraform
def test_terraform_provider_under_faults(sim, faults_off, make_tf, figure):
    """terraform apply of 15 volumes with 30 % 503s and 10 % lost write answers."""
    _terraform(sim, make_tf, figure, 15)
