"""SIGKILL mid-apply, then run again: the engine's ``datera-iac up`` killed at random
instants, and the Terraform provider process killed while Terraform applies.

After the re-run: 0 twins (no name twice on the DSP), 0 orphans (nothing on the DSP that the
state does not hold), the state valid, and a plan after it is empty.

The engine trials are those of tests/engine/test_crash.py (the engine engineer's harness,
reused as is): 2 trials in CI, 10 in the slow variant. The Terraform case kills the
provider plugin by its PID (found under the launcher path this test installed) once the
first volume POST reached the DSP.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from datera_iac.engine.core import Workspace
from tests.engine.test_crash import _check_converged, _up_killed_after, stack_text
from tests.fault.conftest import TF_HEAD, census, twins_of, wait_until


def _engine_kill_trials(sim, tmp_path, figure, trials: int, n: int, seed: int) -> None:
    """Kill ``datera-iac up`` when the DSP has seen a random number (1..n-1) of the volume
    POSTs - strictly mid-apply, unlike a kill after a random delay, which can land after the
    last POST on a fast machine - then re-run and check convergence (test_crash's checker)."""
    rng = random.Random(seed)
    at = []
    for t in range(trials):
        sim.reset()
        d = tmp_path / f"trial{t}"
        d.mkdir()
        stack = d / "Pulumi.yaml"
        stack.write_text(stack_text(n))
        target = rng.randint(1, n - 1)
        # 10 ms per request: the POSTs left after the target still take a while, so the
        # kill lands mid-apply however fast the simulator answers (a target of n-1 on a fast
        # machine could otherwise see the run end between the count and the SIGKILL)
        sim.set_faults(latency_ms=10)
        returncode, made = _up_killed_after(stack, sim, None, target)
        sim.set_faults(latency_ms=0)
        assert returncode == -signal.SIGKILL, f"up ended by itself before the kill ({made} POSTs)"
        at.append(made)
        ws = Workspace(stack_file=stack, endpoint=sim.http_url, embedded=False)
        try:
            plan, result = ws.up(quiet=True)
        finally:
            ws.close()
        assert not plan.errors and result is not None and result.ok, (plan.errors, result and result.failures)
        _check_converged(sim, stack, n, None)  # 0 twins, 0 orphans, state valid, nothing pending
        ws = Workspace(stack_file=stack, endpoint=sim.http_url, embedded=False)
        try:
            assert not ws.preview().changes
        finally:
            ws.close()
    figure("sigkill_engine", trials=trials, volumes=n, twins=0, orphans=0, converged=trials,
           killed_after_posts=at)


def test_engine_sigkill(sim, tmp_path, figure, engine_env):
    """`datera-iac up` of 200 volumes SIGKILLed mid-apply twice; each re-run converges."""
    _engine_kill_trials(sim, tmp_path, figure, trials=2, n=200, seed=23)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_engine_sigkill_10_trials(sim, tmp_path, figure, engine_env):
    _engine_kill_trials(sim, tmp_path, figure, trials=10, n=200, seed=29)


def tf_stack(n: int) -> str:
    body = TF_HEAD + 'resource "datera_tenant" "t" {\n  name = "tfkill"\n}\n'
    body += f"""
resource "datera_volume" "v" {{
  count  = {n}
  name   = format("tfkill-%03d", count.index)
  size   = 1
  tenant = datera_tenant.t.name
}}
"""
    return body


def _provider_pids(launcher: Path) -> list[int]:
    """PIDs of processes running our launcher (this test's own provider, nobody else's)."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if str(launcher).encode() in argv:
            pids.append(int(d))
    return pids


def _tf_state_names(tf) -> set[str]:
    """Names of the volumes Terraform recorded (read from terraform.tfstate, no provider)."""
    import json

    path = tf.dir / "terraform.tfstate"
    if not path.exists():
        return set()
    state = json.loads(path.read_text())
    return {i["attributes"]["name"] for r in state.get("resources", []) if r["type"] == "datera_volume"
            for i in r.get("instances", [])}


def _tf_kill_once(sim, tf, launcher: Path, n: int, target: int) -> tuple[int, int, str]:
    """Run apply, SIGKILL the provider when the DSP has seen ``target`` volume POSTs;
    return (POSTs seen, volumes on the DSP that Terraform did not record, output)."""
    log = tf.dir / "apply-killed.log"  # a file, not a pipe: a big plan would fill a pipe and block
    with open(log, "w") as sink:
        proc = subprocess.Popen([str(tf.binary), "apply", "-auto-approve", "-no-color", "-parallelism=5"],
                                cwd=tf.dir, env=tf.env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: sim.counters().get("POST /v2.2/app_instances", 0) >= target
                       or proc.poll() is not None, 180, f"{target} volume POSTs", every=0.002)
            pids = _provider_pids(launcher)
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    out = log.read_text(errors="replace")
    posts = sim.counters().get("POST /v2.2/app_instances", 0)
    assert pids, f"the provider process was not found (apply exit {proc.returncode})\n{out[-3000:]}"
    assert proc.returncode != 0 and posts < n, f"the kill came too late ({posts} of {n} made)\n{out[-3000:]}"
    names, _ = census(sim, "/root/tfkill")
    return posts, len(set(names) - _tf_state_names(tf)), out


def _tf_kill_trials(sim, make_tf, figure, trials: int, n: int, seed: int) -> None:
    """Each trial kills the provider until a kill leaves at least one volume that the DSP
    made and Terraform did not record (an in-flight create - the case that matters), then
    re-applies and checks convergence. Every trial runs; the verdict comes at the end."""
    rng = random.Random(seed)
    results: list[dict] = []
    for t in range(trials):
        for attempt in range(4):
            sim.reset()
            tf = make_tf(sim, name=f"tf{t}-{attempt}")
            tf.write(tf_stack(n))
            launcher = tf.dir.parent / f"plugins-tf{t}-{attempt}" / "terraform-provider-datera"
            assert launcher.exists()
            posts, unrecorded, _ = _tf_kill_once(sim, tf, launcher, n, rng.randint(1, n // 2))
            if unrecorded:
                break
        assert unrecorded, "no kill left an in-flight create in 4 attempts"
        again = tf.apply(ok=(0, 1))
        names, ais = census(sim, "/root/tfkill")
        r = {"killed_after_posts": posts, "unrecorded": unrecorded, "twins": len(twins_of(names)),
             "orphans": len(set(names) - _tf_state_names(tf)),  # on the DSP, not in terraform.tfstate
             "reapply_exit": again.returncode, "complete": sorted(names) == [f"tfkill-{i:03d}" for i in range(n)],
             "errors": [ln for ln in (again.stdout + again.stderr).splitlines() if "409" in ln][:3]}
        if again.returncode == 0:  # the rest only means something after a successful re-apply
            ids = {v["id"] for a, v in tf.state().items() if a.startswith("datera_volume.")}
            r["state_matches"] = ids == {f"/root/tfkill/{a['id']}" for a in ais}
            r["replan_exit"] = tf.plan().returncode
        results.append(r)
    figure("sigkill_terraform", trials=len(results), volumes=n,
           twins=sum(r["twins"] for r in results), orphans=sum(r["orphans"] for r in results),
           killed_after_posts=[r["killed_after_posts"] for r in results],
           reapply_failed=sum(1 for r in results if r["reapply_exit"]))
    failed = [r for r in results if r["reapply_exit"] or r["twins"] or r["orphans"] or not r["complete"]
              or not r.get("state_matches") or r.get("replan_exit")]
    assert not failed, f"{len(failed)} of {trials} trials did not converge: {failed}"


@pytest.mark.terraform
def test_terraform_provider_sigkill(make_sim, make_tf, figure):
    """The provider plugin SIGKILLed while Terraform creates 20 volumes; re-apply converges.
    The simulator brings a new volume online 0.5 s after its POST (as a DSP does, later), so
    a kill right after a POST lands while that create waits: made on the DSP, not recorded."""
    _tf_kill_trials(make_sim(si_online_delay=0.5), make_tf, figure, trials=1, n=20, seed=3)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.terraform
def test_terraform_provider_sigkill_5_trials(make_sim, make_tf, figure):
    _tf_kill_trials(make_sim(si_online_delay=0.5), make_tf, figure, trials=5, n=40, seed=4)
