"""user-needs §2.9: secrets never stored in clear, write-only inputs supported, secret drift
still detectable.

Acceptance: a grep of the engine's state directory (state, journal), its JSON plan, its
logs (DEBUG), the Pulumi provider's answers (what lands in the checkpoint: secrets only as
Pulumi secrets, which the engine encrypts) and its log, and Terraform's state for the DSP
password and the CHAP secrets finds 0 hits; changing CHAP on the DSP makes the next plan
show an update without printing the value.

What the DSP lets us detect (docs/user-needs.md, "Secrets"): the DSP returns "(hidden)"
for every CHAP secret, so a change of the auth type (none/chap/mchap) or of a CHAP user
name made on the DSP is drift, while a change of *only* the secret value on the DSP cannot
be seen through the API. A secret changed in the configuration is always seen (the state
keeps a salted SHA-256 of it) and planned as an update shown as "(sensitive)".
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from needkit import TF_HEAD, app_instances

from datera_iac.cli import main
from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient

DSP_PASSWORD = "Dsp-Pass-7Q2x9"
CHAP = "Chap-Secret-A1"
CHAP2 = "Chap-Secret-B2"
MCHAP = "Mutual-Secr-C3"
SECRETS = (DSP_PASSWORD, CHAP, CHAP2, MCHAP)

STACK = """\
name: need09
runtime: yaml
config:
  secret: {type: string, default: CHAP, secret: true}
resources:
  v:
    type: datera:index:Volume
    properties:
      name: sec-vol
      size: 1
      chapUser: chapuser
      chapSecret: ${secret}
""".replace("default: CHAP", f"default: {CHAP}")


@pytest.fixture
def psim(make_sim):
    return make_sim(users={"admin": DSP_PASSWORD})


def _hits(root: Path) -> list[str]:
    found = []
    for p in root.rglob("*"):
        if p.is_file() and p.name != "Pulumi.yaml":  # the user's own input
            data = p.read_bytes()
            found += [f"{p}: {s}" for s in SECRETS if s.encode() in data]
    return found


def test_engine_state_plan_logs_hold_no_secret_and_dsp_chap_change_is_an_update(
        psim, tmp_path, capsys, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", DSP_PASSWORD)
    d = tmp_path / "stack"
    d.mkdir()
    f = d / "Pulumi.yaml"
    f.write_text(STACK)
    args = ["-f", str(f), "--endpoint", psim.http_url]
    assert main(["up", *args, "--yes"]) == 0
    seen = capsys.readouterr()
    assert main(["preview", *args, "--json", "-c", f"secret={CHAP2}"]) == 0
    plan = json.loads(capsys.readouterr().out)
    [act] = plan["actions"]
    assert act["action"] == "update"
    assert [(c["field"], c["new"], c["sensitive"]) for c in act["changes"]] == [
        ("chap_secret", "(sensitive)", True)]
    c = DspClient(DateraConfig.from_mapping({"endpoint": psim.http_url, "san_login": "admin",
                                             "san_password": DSP_PASSWORD}, use_env=False))
    # the operator re-keys CHAP on the DSP under another user name: drift, value not shown
    [ai] = app_instances(c)
    c.put(f"/app_instances/{ai['id']}/storage_instances/storage-1/auth",
          {"type": "chap", "target_user_name": "otheruser", "target_pswd": CHAP2})
    assert main(["preview", *args, "--detailed-exitcode", "--json"]) == 2
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert [a["action"] for a in doc["actions"]] == ["update"]
    assert "chap_user" in {ch["field"] for ch in doc["actions"][0]["changes"]}
    assert main(["up", *args, "--yes"]) == 0
    auth = c.get(f"/app_instances/{ai['id']}/storage_instances/storage-1/auth")
    assert auth["target_user_name"] == "chapuser"
    c.close()
    assert main(["preview", *args, "--detailed-exitcode"]) == 0
    last = capsys.readouterr()
    text = seen.out + seen.err + last.out + last.err + caplog.text + out + json.dumps(plan)
    assert [s for s in SECRETS if s in text] == []
    assert _hits(d) == []  # state, journal, lock files


def test_pulumi_answers_and_log_hold_secrets_only_as_secrets(plugin, psim):
    from datera_iac.pulumi._codec import Secret
    from datera_iac.pulumi.testing import plain

    V = "datera:index:Volume"
    plugin.configure(endpoint=psim.http_url, sanLogin="admin", sanPassword=Secret(DSP_PASSWORD))
    inputs = plain(plugin.check(V, "sec-p", {"size": 1, "chapUser": "chapuser",
                                             "chapSecret": CHAP}).inputs)
    assert inputs["chapSecret"] == Secret(CHAP)
    made = plugin.create(V, "sec-p", inputs)
    state = plain(made.properties)
    assert state["chapSecret"] == Secret(CHAP)  # a Pulumi secret: encrypted in the checkpoint
    plain_values = json.dumps({k: v for k, v in state.items() if not isinstance(v, Secret)},
                              default=str)
    assert not any(s in plain_values for s in SECRETS)
    read = plain(plugin.read(V, "sec-p", made.id, state, inputs).properties)
    assert read["chapSecret"] == Secret(CHAP)
    plugin.delete(V, "sec-p", made.id, state)
    log = Path(plugin.log_path).read_text()
    assert [s for s in SECRETS if s in log] == []


@pytest.mark.terraform
def test_terraform_state_holds_no_chap_secret(sim_tf, sim, dsp):
    """The recommended Terraform configuration passes the secret through the write-only
    chap_secret_wo (Terraform 1.11+): the DSP gets it, terraform.tfstate never holds it, the
    next plan is empty. (The deprecated chap_secret still works and is stored in the state;
    the provider warns. Rotation, refresh and import: tests/terraform/test_write_only.py.)"""
    sim_tf.write(TF_HEAD + f"""
resource "datera_volume" "v" {{
  name                   = "sec-tf"
  size                   = 1
  chap_user              = "chapuser"
  chap_secret_wo         = "{CHAP}"
  chap_secret_wo_version = 1
}}
""")
    sim_tf.run("init", "-no-color")
    sim_tf.apply()
    assert CHAP not in (sim_tf.dir / "terraform.tfstate").read_text()
    assert CHAP in sim.dump()  # the simulator's store: the DSP has the secret
    assert sim_tf.plan().returncode == 0
