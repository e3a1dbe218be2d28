"""Secrets that travel through references (``${...}``): a config key declared ``secret:
true``, a sensitive field of another resource. A secret may reach a sensitive field (CHAP
secrets) or a stack output - there it is masked in plans (``(sensitive)``), digested in the
state and redacted on the wire - and is refused, at plan time with the file, line and field,
anywhere else (metadata, names): the DSP would hold it in clear for every reader of the
volume. Before, ``secret: true`` was accepted and ignored, and a CHAP secret copied into
metadata was printed, stored in the state and its backup, logged by the wire trace and
written to the DSP: 20 clear-text occurrences in 13 of 22 runs.

The figure: clear-text occurrences of the secrets outside sensitive fields, across every
run (CLI preview text and JSON, up, state show, the state directory, debug logs, the
simulator's request log and the objects on the DSP, metadata included)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.fault.conftest import client_for

SAN_PW = "Sup3r-S4n-Pa55-9913"
CFG_SECRET = "Cfg-S3cret-77zq1"   # a config key declared secret: true
CHAP = "Chap-S3cret-51k8"       # a literal CHAP secret (sensitive field)
SECRETS = (SAN_PW, CFG_SECRET, CHAP)

HEAD = """\
name: flow
runtime: yaml
config:
  chapPw:
    type: string
    secret: true
resources:
  v1:
    type: datera:index:Volume
    properties:
      name: flow-v1
      size: 1
      chapUser: chapuser
      chapSecret: %(chap)s
""" % {"chap": CHAP}

#: stacks that must work: secrets only in sensitive fields and outputs
ACCEPTED = {
    "secret config into chapSecret, outputs": HEAD + """\
  v2:
    type: datera:index:Volume
    properties:
      name: flow-v2
      size: 1
      chapUser: chapuser2
      chapSecret: ${chapPw}
outputs:
  pw: ${chapPw}
  pwConcat: "pw-${chapPw}"
  copied: ${v1.chapSecret}
  iqn: ${v1.iqn}
""",
}

#: stacks that must be refused at plan: (text, line of the field, field)
REFUSED = {
    "CHAP secret copied into metadata": (HEAD + """\
  v2:
    type: datera:index:Volume
    properties:
      name: flow-v2
      size: 1
      metadata:
        note: "${v1.chapSecret}"
""", 20, "metadata"),
    "secret config into metadata": (HEAD + """\
  v2:
    type: datera:index:Volume
    properties:
      name: flow-v2
      size: 1
      metadata: {note: "pw=${chapPw}"}
""", 20, "metadata"),
    "secret config into a name": (HEAD + """\
  v2:
    type: datera:index:Volume
    properties:
      name: "v-${chapPw}"
      size: 1
""", 18, "name"),
    "secret through a variable into a description": (HEAD.replace("resources:", "variables:\n  note: ${chapPw}\nresources:") + """\
  gold:
    type: datera:index:VolumeType
    properties:
      name: gold
      description: ${note}
""", 21, "description"),
}


def leaks(text: str) -> dict[str, int]:
    return {s: text.count(s) for s in SECRETS if s in text}


def _cli(stack: Path, sim, *args: str) -> subprocess.CompletedProcess[str]:
    from tests.fault.test_secrets import _cli as cli

    return cli(stack, sim, *args, password=SAN_PW)


def _write(d: Path, text: str) -> Path:
    d.mkdir(parents=True)
    (d / "Pulumi.yaml").write_text(text)
    # the secret's value comes from the stack's config file, as users keep it
    (d / "Pulumi.dev.yaml").write_text(f"config:\n  flow:chapPw: {CFG_SECRET}\n")
    return d / "Pulumi.yaml"


def _dsp_text(sim) -> str:
    """Everything the DSP holds: app_instances with their metadata."""
    c = client_for(sim)
    try:
        ais = list(c.list("/app_instances", tenant="/root"))
        metas = [c.get(f"/app_instances/{a['id']}/metadata", tenant="/root") for a in ais]
    finally:
        c.close()
    return json.dumps([ais, metas], default=str)


@pytest.fixture
def secret_sim(make_sim):
    return make_sim(users={"admin": SAN_PW})


def test_secret_flow_engine(secret_sim, tmp_path, figure):
    """Every run: 0 occurrences of the secrets outside sensitive fields; refused stacks are
    refused at plan with file:line and the field, before any write."""
    sim = secret_sim
    found: dict[str, dict[str, int]] = {}
    runs = 0
    for label, text in ACCEPTED.items():
        stack = _write(tmp_path / f"ok-{runs}", text)
        outs = {cmd: _cli(stack, sim, *cmd.split()) for cmd in ("preview", "preview --json", "up --yes")}
        assert outs["up --yes"].returncode == 0, outs["up --yes"].stderr[-3000:]
        outs["state show"] = _cli(stack, sim, "state", "show", "v2")
        outs["up again"] = _cli(stack, sim, "up", "--yes")  # writes the backup
        assert "pw" in outs["up --yes"].stdout and "(sensitive)" in outs["up --yes"].stdout
        plan = json.loads(outs["preview --json"].stdout)
        assert plan["outputs"]["pw"] == plan["outputs"]["pwConcat"] == "(sensitive)", plan["outputs"]
        for cmd, p in outs.items():
            runs += 1
            found[f"{label}: {cmd}"] = leaks(p.stdout + p.stderr)
        state_dir = stack.parent / ".datera-iac"
        assert any(state_dir.glob("*/dev.json.bak"))  # .datera-iac/<project>/
        found[f"{label}: state files"] = leaks("\n".join(
            p.read_text(errors="replace") for p in state_dir.rglob("*") if p.is_file()))
    for label, (text, line, field) in REFUSED.items():
        stack = _write(tmp_path / f"no-{runs}", text)
        writes_before = sum(n for k, n in sim.counters().items()
                            if k.split()[0] in ("POST", "PUT", "DELETE") and "login" not in k)
        for cmd in ("preview", "up --yes"):
            p = _cli(stack, sim, *cmd.split())
            runs += 1
            found[f"{label}: {cmd}"] = leaks(p.stdout + p.stderr)
            assert p.returncode != 0, (label, cmd, p.stdout[-2000:])
            assert f"Pulumi.yaml:{line}:" in p.stderr and f"field {field!r}" in p.stderr \
                and "not a sensitive field" in p.stderr, (label, p.stderr[-2000:])
            assert "Traceback" not in p.stderr
        writes_after = sum(n for k, n in sim.counters().items()
                           if k.split()[0] in ("POST", "PUT", "DELETE") and "login" not in k)
        assert writes_after == writes_before, label
    found["DSP objects and metadata"] = leaks(_dsp_text(sim))
    found["simulator request log"] = leaks(json.dumps(sim.request_log(), default=str))
    occurrences = sum(sum(v.values()) for v in found.values())
    figure("secret_flow", front_end="engine", runs=runs, places=len(found), occurrences=occurrences)
    assert not any(found.values()), {k: v for k, v in found.items() if v}
    # the secrets did reach their sensitive fields (else the test would pass vacuously)
    c = client_for(sim)
    try:
        auth = {a["name"]: a["storage_instances"][0]["auth"]["type"] for a in c.list("/app_instances", tenant="/root")}
    finally:
        c.close()
    assert auth == {"flow-v1": "chap", "flow-v2": "chap"}, auth


def test_secret_config_reaches_its_sensitive_field(secret_sim, tmp_path):
    """The secret config value is what the DSP got as v2's CHAP secret: a digest of it in
    the state matches, and changing it plans an update of chapSecret only."""
    from datera_iac.engine.core import Workspace
    from datera_iac.engine.state import secret_matches

    stack = _write(tmp_path / "s", ACCEPTED["secret config into chapSecret, outputs"])
    cfg = {"san_login": "admin", "san_password": SAN_PW}
    ws = Workspace(stack_file=stack, endpoint=secret_sim.http_url, embedded=False, provider_config=cfg)
    try:
        _, result = ws.up(quiet=True)
        assert result is not None and result.ok, result and result.failures
        st = ws.load_state()
        assert secret_matches(st.resources["v2"].spec["chap_secret"], CFG_SECRET)
        assert secret_matches(st.outputs["pw"], CFG_SECRET)
        assert secret_matches(st.outputs["pwConcat"], "pw-" + CFG_SECRET)
    finally:
        ws.close()
    ws = Workspace(stack_file=stack, endpoint=secret_sim.http_url, embedded=False, provider_config=cfg,
                   config={"chapPw": "Rotated-S3cr-1x"})
    try:
        plan = ws.preview()
    finally:
        ws.close()
    changed = {(s.name, c.name) for s in plan.changes for c in s.changes}
    assert changed == {("v2", "chap_secret")}, changed


def test_secret_flow_pulumi(secret_sim, tmp_path, figure):
    """The Pulumi provider: a secret (Pulumi's secret marker, as a program passes
    ``pulumi.Output.secret`` or another resource's secret output) in a sensitive property
    works and stays marked in every response; in metadata or a name it is refused by Check
    naming the property - the same rule as the engine's. 0 occurrences outside secret
    markers in the responses, the plugin's debug log and on the DSP."""
    from datera_iac.pulumi._codec import Secret
    from datera_iac.pulumi.testing import plain
    from tests.fault.test_secrets import _outside_secrets, debug_plugin

    sim = secret_sim
    V = "datera:index:Volume"
    log_path = str(tmp_path / "plugin.log")
    found: dict[str, list[str]] = {}
    with debug_plugin(sim, log_path, SAN_PW) as rpc:
        ok = {"size": 1, "chapUser": "chapuser", "chapSecret": Secret(CFG_SECRET)}
        checked = plain(rpc.check(V, "flow-vol", ok).inputs)
        made = rpc.create(V, "flow-vol", checked)
        props = plain(made.properties)
        assert props["chapSecret"] == Secret(CFG_SECRET)
        found["sensitive property: check"] = _outside_secrets(checked, SECRETS)
        found["sensitive property: create"] = _outside_secrets(props, SECRETS)
        refused = {
            "metadata value": {"size": 1, "metadata": {"note": Secret(CHAP)}},
            "whole metadata": {"size": 1, "metadata": Secret({"note": CHAP})},
            "name": {"size": 1, "name": Secret("v-" + CFG_SECRET)},
        }
        for label, news in refused.items():
            resp = rpc.check(V, "flow-bad", news)
            failures = list(resp.failures)
            prop = "name" if label == "name" else "metadata"
            assert [f.property for f in failures] == [prop], (label, failures)
            assert "not a sensitive property" in failures[0].reason
            found[f"refused {label}: check"] = (_outside_secrets(plain(resp.inputs), SECRETS)
                                                + [s for s in SECRETS if s in str(failures)])
        rpc.delete(V, "flow-vol", made.id, props)
    found["plugin log"] = [s for s in SECRETS if s in Path(log_path).read_text(errors="replace")]
    found["DSP objects and metadata"] = list(leaks(_dsp_text(sim)))
    figure("secret_flow", front_end="pulumi", runs=1 + len(refused), places=len(found),
           occurrences=sum(len(v) for v in found.values()))
    assert not any(found.values()), {k: v for k, v in found.items() if v}


TF_FLOW = """
terraform {
  required_providers {
    datera = { source = "datera/datera" }
  }
}
variable "san_password" {
  type      = string
  ephemeral = true
}
variable "chap" {
  type      = string
  sensitive = true
  ephemeral = true
}
locals {
  chap_copy = var.chap
}
provider "datera" {
  san_password = var.san_password
}
resource "datera_volume" "a" {
  name                   = "flow-tf-a"
  size                   = 1
  chap_user              = "chapuser"
  chap_secret_wo         = var.chap
  chap_secret_wo_version = 1
}
resource "datera_volume" "b" {
  name                   = "flow-tf-b"
  size                   = 1
  chap_user              = "chapuser2"
  chap_secret_wo         = local.chap_copy
  chap_secret_wo_version = 1
}
output "iqn" {
  value = datera_volume.a.iqn
}
"""

#: an ephemeral (secret) value copied into metadata: Terraform itself refuses it
TF_INTO_METADATA = """
resource "datera_volume" "c" {
  name     = "flow-tf-c"
  size     = 1
  metadata = { note = local.chap_copy }
}
"""


@pytest.mark.terraform
def test_secret_flow_terraform(secret_sim, make_tf, figure):
    """The DSP password and a CHAP secret given as Terraform variables (``ephemeral``, the
    form docs/security.md recommends) and passed on through a local: the password reaches
    the provider block, the secret two volumes' write-only ``chap_secret_wo``. 0 clear-text
    occurrences in plan and apply output with TF_LOG=debug (the provider's own debug log
    included), the saved plan file (unzipped) and its JSON (``terraform show -json``),
    terraform.tfstate and Terraform's data dir; the DSP did get the CHAP secret. Copying the
    secret into metadata is refused by Terraform before any call."""
    import zipfile

    sim = secret_sim
    tf = make_tf(sim, name="flow", TF_LOG="debug", DATERA_DEBUG="true",
                 TF_VAR_san_password=SAN_PW, TF_VAR_chap=CHAP)
    tf.env.pop("DATERA_SAN_PASSWORD", None)  # only the variable carries the password
    tf.write(TF_FLOW)
    runs: dict[str, subprocess.CompletedProcess[str]] = {}
    runs["init"] = tf.run("init", "-no-color")
    runs["plan -out"] = tf.run("plan", "-no-color", "-out=tfplan")
    runs["show -json tfplan"] = tf.run("show", "-json", "tfplan")
    with zipfile.ZipFile(tf.dir / "tfplan") as z:
        plan_file = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    runs["apply tfplan"] = tf.run("apply", "-auto-approve", "-no-color", "tfplan")
    runs["plan again"] = tf.plan()
    assert runs["plan again"].returncode == 0, runs["plan again"].stdout[-2000:]
    found = {f"terraform {k}": leaks(p.stdout + p.stderr) for k, p in runs.items()}
    found["saved plan file (unzipped)"] = leaks(plan_file)
    found["terraform.tfstate"] = leaks((tf.dir / "terraform.tfstate").read_text())
    found["data dir (.terraform, intents)"] = leaks("\n".join(
        p.read_text(errors="replace") for p in (tf.dir / ".terraform").rglob("*")
        if p.is_file() and p.stat().st_size < 1_000_000 and not p.is_symlink()))
    assert "datera" in runs["apply tfplan"].stderr.lower()  # the debug log was captured
    c = client_for(sim)
    try:
        auth = {a["name"]: a["storage_instances"][0]["auth"]["type"]
                for a in c.list("/app_instances", tenant="/root")}
    finally:
        c.close()
    assert auth == {"flow-tf-a": "chap", "flow-tf-b": "chap"}, auth
    assert sim.dump().count(CHAP) >= 2  # the DSP's own store holds the secret twice
    writes = sum(n for k, n in sim.counters().items()
                 if k.split()[0] in ("POST", "PUT", "DELETE") and "login" not in k)
    tf.write(TF_FLOW + TF_INTO_METADATA)
    refused = tf.run("plan", "-no-color", ok=(1,))
    assert "ephemeral" in refused.stderr.lower(), refused.stderr[-2000:]
    found["refused plan (secret into metadata)"] = leaks(refused.stdout + refused.stderr)
    assert sum(n for k, n in sim.counters().items()
               if k.split()[0] in ("POST", "PUT", "DELETE") and "login" not in k) == writes
    found["DSP objects and metadata"] = leaks(_dsp_text(sim))
    occurrences = sum(sum(v.values()) for v in found.values())
    figure("secret_flow", front_end="terraform", runs=len(runs) + 1, places=len(found),
           occurrences=occurrences)
    assert not any(found.values()), {k: v for k, v in found.items() if v}
