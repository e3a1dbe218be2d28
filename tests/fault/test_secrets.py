"""Known secrets - the DSP password and CHAP secrets (target and mutual) - searched for in
clear everywhere a front end writes: logs with debug on, plan output (text and JSON), the
engine's state, journal and backups, Terraform's output, logs and terraform.tfstate (with the
write-only chap_secret_wo arguments), and the
Pulumi provider's gRPC responses and log. Pulumi's wire format carries a secret inside a
secret marker (the engine encrypts it); only a value *outside* that marker is a leak."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fault.conftest import TF_HEAD, engine_ws

SAN_PW = "Sup3r-S4n-Pa55-7781"
CHAP = "Chap-S3cret-42x9"
MUTUAL = "Mutual-S3cr-77q1"
SECRETS = (SAN_PW, CHAP, MUTUAL)


def leaks(text: str, secrets: tuple[str, ...] = SECRETS) -> dict[str, int]:
    return {s: text.count(s) for s in secrets if s in text}


def tree_text(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(root.rglob("*")) if p.is_file())


STACK = """\
name: sec
runtime: yaml
resources:
  team:
    type: datera:index:Tenant
    properties: {name: sec}
  v:
    type: datera:index:Volume
    properties:
      name: sec-vol
      size: 1
      tenant: ${team.id}
      chapUser: chapuser
      chapSecret: %(chap)s
      chapInitiatorUser: mutualuser
      chapInitiatorSecret: %(mutual)s
outputs:
  secretOut: ${v.chapSecret}
  iqn: ${v.iqn}
""" % {"chap": CHAP, "mutual": MUTUAL}


@pytest.fixture
def secret_sim(make_sim):
    return make_sim(users={"admin": SAN_PW})


def _cli(stack: Path, sim, *args: str, password: str = SAN_PW) -> subprocess.CompletedProcess[str]:
    """The CLI on ``stack`` against ``sim``, debug logging (the wire trace) on."""
    env = {**os.environ, "DATERA_SAN_LOGIN": "admin", "DATERA_SAN_PASSWORD": password,
           "DATERA_ENDPOINT": sim.http_url, "DATERA_DEBUG": "true"}
    env.pop("DATERA_SAN_IP", None)
    return subprocess.run([sys.executable, "-m", "datera_iac.cli", *args, "-f", str(stack), "--no-color"],
                          cwd=stack.parent, env=env, capture_output=True, text=True, timeout=120)


def test_engine_secrets(secret_sim, tmp_path, figure, monkeypatch):
    """Debug logs of an in-process run, the CLI's preview (text, JSON), up, state show and
    outputs, and every file under .datera-iac: 0 occurrences of any secret."""
    sim = secret_sim
    monkeypatch.setenv("DATERA_SAN_PASSWORD", SAN_PW)
    records: list[str] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Grab(level=logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        ws = engine_ws(sim, tmp_path / "a", STACK, datera_debug=True, san_password=SAN_PW)
        try:
            ws.preview()  # refresh + plan with debug logging on
            _, result = ws.up(quiet=True)
            assert result is not None and result.ok, result and result.failures
        finally:
            ws.close()
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    log_text = "\n".join(records)
    assert any("datera_iac.dsp" in r for r in records), "debug logging of the client did not run"

    sim.reset()  # the same objects again, now made by the CLI
    stack = tmp_path / "b" / "Pulumi.yaml"
    stack.parent.mkdir()
    stack.write_text(STACK)
    outputs = {
        "preview": _cli(stack, sim, "preview"),
        "preview --json": _cli(stack, sim, "preview", "--json"),
        "up": _cli(stack, sim, "up", "--yes"),
        "state show": subprocess.CompletedProcess([], 0, "", ""),
    }
    assert outputs["up"].returncode == 0, outputs["up"].stderr
    env = {**os.environ, "DATERA_SAN_PASSWORD": SAN_PW}
    shown = subprocess.run([sys.executable, "-m", "datera_iac.cli", "state", "show", "v", "-f", str(stack)],
                           cwd=stack.parent, env=env, capture_output=True, text=True, timeout=60)
    outputs["state show"] = shown
    json.loads(outputs["preview --json"].stdout)  # the JSON plan is real JSON
    found = {
        "debug log": leaks(log_text),
        **{f"cli {k}": leaks(p.stdout + p.stderr) for k, p in outputs.items()},
        "state files (a)": leaks(tree_text(tmp_path / "a" / ".datera-iac")),
        "state files (b)": leaks(tree_text(tmp_path / "b" / ".datera-iac")),
        "sim request log": leaks(json.dumps(sim.request_log(), default=str)),
    }
    figure("secrets", front_end="engine", places=len(found),
           occurrences=sum(sum(v.values()) for v in found.values()))
    assert not any(found.values()), {k: v for k, v in found.items() if v}
    # the secrets did reach the DSP (the test would pass vacuously otherwise)
    from tests.fault.conftest import client_for

    c = client_for(sim)
    try:
        ai = next(iter(c.list("/app_instances", tenant="/root/sec")))
        si = ai["storage_instances"][0]
        assert si["auth"]["type"] in ("chap", "mchap")  # mutual CHAP: both secrets set
    finally:
        c.close()


def test_engine_plan_repr_holds_no_secret(sim, tmp_path, engine_env):
    """repr of a plan (and its steps) holds no declared secret: a repr reaches pytest
    failures, '%r' debug lines and exception texts. (Was a defect; fixed in 71e477b.)"""
    ws = engine_ws(sim, tmp_path / "r", STACK)
    try:
        plan = ws.preview()
    finally:
        ws.close()
    assert plan.changes
    assert not leaks(repr(plan)), leaks(repr(plan))


def test_engine_wrong_password_not_echoed(secret_sim, tmp_path, monkeypatch):
    """A refused login names the user and what to do, never the password tried."""
    wrong = "Wr0ng-Pa55-0099"
    monkeypatch.setenv("DATERA_SAN_PASSWORD", wrong)
    stack = tmp_path / "Pulumi.yaml"
    stack.write_text(STACK)
    env = {**os.environ, "DATERA_SAN_LOGIN": "admin", "DATERA_SAN_PASSWORD": wrong,
           "DATERA_ENDPOINT": secret_sim.http_url, "DATERA_DEBUG": "true"}
    p = subprocess.run([sys.executable, "-m", "datera_iac.cli", "up", "--yes", "-f", str(stack)],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert wrong not in p.stdout + p.stderr and "Traceback" not in p.stderr
    assert not leaks(p.stdout + p.stderr)


# ---- Terraform -----------------------------------------------------------------------------

TF_STACK = TF_HEAD + """
resource "datera_tenant" "t" {
  name = "sec"
}
resource "datera_volume" "v" {
  name                             = "sec-vol"
  size                             = 1
  tenant                           = datera_tenant.t.name
  chap_user                        = "chapuser"
  chap_secret_wo                   = "%s"
  chap_secret_wo_version           = 1
  chap_initiator_user              = "mutualuser"
  chap_initiator_secret_wo         = "%s"
  chap_initiator_secret_wo_version = 1
}
output "iqn" {
  value = datera_volume.v.iqn
}
""" % (CHAP, MUTUAL)


def _tf_run(secret_sim, make_tf):
    tf = make_tf(secret_sim, TF_LOG="debug", DATERA_DEBUG="true")
    tf.write(TF_STACK)
    plan = tf.run("plan", "-no-color", "-out=tfplan")
    apply = tf.run("apply", "-auto-approve", "-no-color", "tfplan")
    return tf, plan, apply


@pytest.mark.terraform
def test_terraform_secrets(secret_sim, make_tf, figure):
    """The password and CHAP secrets are not in Terraform's plan/apply output nor in its
    debug log (which carries the provider's own debug log); the DSP password is not in
    terraform.tfstate (provider configuration is never stored)."""
    tf, plan, apply = _tf_run(secret_sim, make_tf)
    state_text = (tf.dir / "terraform.tfstate").read_text()
    found = {
        "plan output + TF_LOG=debug": leaks(plan.stdout + plan.stderr),
        "apply output + TF_LOG=debug": leaks(apply.stdout + apply.stderr),
        "terraform.tfstate (DSP password)": leaks(state_text, (SAN_PW,)),
    }
    figure("secrets", front_end="terraform", places=len(found),
           occurrences=sum(sum(v.values()) for v in found.values()))
    assert "datera" in apply.stderr.lower()  # the debug log really was captured
    assert not any(found.values()), {k: v for k, v in found.items() if v}


@pytest.mark.terraform
def test_terraform_state_holds_no_chap_secret(secret_sim, make_tf, figure):
    """With the recommended configuration - the write-only chap_secret_wo and
    chap_initiator_secret_wo (Terraform 1.11+) - terraform.tfstate holds neither CHAP secret,
    while the DSP has both (mutual CHAP)."""
    tf, _, _ = _tf_run(secret_sim, make_tf)
    state_text = (tf.dir / "terraform.tfstate").read_text()
    found = leaks(state_text, (CHAP, MUTUAL))
    figure("secrets", front_end="terraform-state-chap", places=1, occurrences=sum(found.values()))
    assert not found, f"CHAP secrets in clear in terraform.tfstate: {found}"
    stored = secret_sim.dump()  # the simulator's own store (the API shows "(hidden)")
    assert CHAP in stored and MUTUAL in stored and '"mchap"' in stored


# ---- Pulumi --------------------------------------------------------------------------------


def _outside_secrets(value: Any, secrets: tuple[str, ...]) -> list[str]:
    """Secret strings found in ``value`` outside a Secret marker."""
    from datera_iac.pulumi._codec import Secret

    if isinstance(value, Secret):
        return []
    if isinstance(value, dict):
        return [x for v in value.values() for x in _outside_secrets(v, secrets)] + \
               [x for k in value for x in _outside_secrets(k, secrets)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _outside_secrets(v, secrets)]
    if isinstance(value, str):
        return [s for s in secrets if s in value]
    return []


@contextlib.contextmanager
def debug_plugin(sim: Any, log_path: str, password: str) -> Iterator[Any]:
    """An Rpc to a started Pulumi plugin (debug logging to ``log_path``) configured for
    ``sim``; the plugin is stopped afterwards."""
    import grpc

    from datera_iac.pulumi._codec import Secret
    from datera_iac.pulumi.testing import Rpc, start_plugin, stop_plugin

    proc, port = start_plugin(log_path=log_path, env={"DATERA_DEBUG": "true"})
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
        rpc = Rpc(channel)
        rpc.configure(endpoint=sim.http_url, sanLogin="admin", sanPassword=Secret(password),
                      dateraDebug=True, datera503Timeout=5)
        yield rpc
    finally:
        channel.close()
        stop_plugin(proc)


def test_pulumi_secrets(secret_sim, tmp_path, figure):
    """Check/Create/Read/Diff/Update responses hold the CHAP secrets only inside secret
    markers; the plugin's debug log holds none of the secrets; an error holds none."""
    from datera_iac.pulumi._codec import Secret
    from datera_iac.pulumi.testing import plain

    V = "datera:index:Volume"
    log_path = str(tmp_path / "plugin.log")
    found: dict[str, list[str]] = {}
    with debug_plugin(secret_sim, log_path, SAN_PW) as rpc:
        news = {"size": 1, "chapUser": "chapuser", "chapSecret": CHAP,
                "chapInitiatorUser": "mutualuser", "chapInitiatorSecret": MUTUAL}
        checked = plain(rpc.check(V, "sec-vol", news).inputs)
        made = rpc.create(V, "sec-vol", checked)
        props = plain(made.properties)
        read = rpc.read(V, "sec-vol", made.id, props, checked)
        grown = {**checked, "size": 2}
        diff = rpc.diff(V, "sec-vol", made.id, props, grown)
        upd = rpc.update(V, "sec-vol", made.id, props, grown)
        bad = rpc.check(V, "sec-vol2", {**news, "size": -1})
        found = {
            "check inputs": _outside_secrets(checked, SECRETS),
            "create outputs": _outside_secrets(props, SECRETS),
            "read outputs+inputs": _outside_secrets([plain(read.properties), plain(read.inputs)], SECRETS),
            "diff": [s for s in SECRETS if s in str(diff)],
            "update outputs": _outside_secrets(plain(upd.properties), SECRETS),
            "check failures": [s for s in SECRETS if s in str(list(bad.failures))],
        }
        assert props["chapSecret"] == Secret(CHAP)  # present, and marked secret
        rpc.delete(V, "sec-vol", made.id, plain(upd.properties))
    log = Path(log_path).read_text(errors="replace")
    found["plugin log"] = [s for s in SECRETS if s in log]
    figure("secrets", front_end="pulumi", places=len(found),
           occurrences=sum(len(v) for v in found.values()))
    assert not any(found.values()), {k: v for k, v in found.items() if v}
