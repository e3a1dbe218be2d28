"""One-run convergence (issue 16, case 9): after any successful ``up`` of an unchanged
stack, ``preview --detailed-exitcode`` exits 0 and the next ``up`` makes 0 DSP writes."""

from __future__ import annotations

import os
import textwrap

import pytest

from datera_iac.cli import main

VT_STACK = textwrap.dedent("""\
    name: conv
    runtime: yaml
    resources:
      vt:
        type: datera:index:VolumeType
        properties:
          name: gold
          replicaCount: 2
          totalIopsMax: 5000
      v:
        type: datera:index:Volume
        properties:
          name: conv-vol
          size: 1
          volumeType: ${vt.name}
          extraSpecs: ${vt.extraSpecs}
      w:
        type: datera:index:Volume
        properties:
          name: conv-vol-2
          size: 1
          extraSpecs: ${vt.extraSpecs}
    """)


def writes(sim) -> int:
    """Write requests (POST/PUT/DELETE under /v2.x, logins excepted) served so far."""
    return sum(n for k, n in sim.counters().items()
               if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "/v2." in k
               and "login" not in k)


@pytest.fixture
def dsp_env(monkeypatch, sim, tmp_path):
    for k in list(os.environ):
        if k.startswith("DATERA_"):
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    monkeypatch.chdir(tmp_path)
    return sim


def _qos(sim, name: str) -> int | None:
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    c = DspClient(DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                             "san_password": "password"}, use_env=False))
    [ai] = [a for a in c.list("/app_instances") if a["name"] == name]
    vol = ai["storage_instances"][0]["volumes"][0]
    pp = c.get(f"{vol['path']}/performance_policy")
    return pp.get("total_iops_max")


def _converged(sim, capsys, ep) -> None:
    """The stack as it stands: preview exits 0 and an up makes no DSP write."""
    assert main(["preview", "--detailed-exitcode", *ep]) == 0, capsys.readouterr().out
    before = writes(sim)
    assert main(["up", "--yes", *ep]) == 0
    assert writes(sim) == before
    capsys.readouterr()


def test_case9a_volume_type_change_replans_its_volumes_in_the_same_run(dsp_env, tmp_path,
                                                                       capsys):
    """A VolumeType change whose extraSpecs feed two volumes: the preview shows the volumes'
    update, the one up applies it, and the stack is then converged (before: the volumes
    were updated only by the next run, preview --detailed-exitcode exited 2)."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    (tmp_path / "Pulumi.yaml").write_text(VT_STACK)
    assert main(["up", "--yes", *ep]) == 0
    _converged(sim, capsys, ep)
    assert _qos(sim, "conv-vol") == 5000
    (tmp_path / "Pulumi.yaml").write_text(VT_STACK.replace("5000", "7000"))
    assert main(["preview", *ep]) == 0
    out = capsys.readouterr().out
    assert "~ update   Volume v " in out and "~ update   Volume w " in out
    assert "Plan: 0 to create, 3 to update, 0 to delete." in out
    assert main(["up", "--yes", *ep]) == 0
    assert "Done in " in (out := capsys.readouterr()).out and "3 updated" in out.out
    assert _qos(sim, "conv-vol") == 7000 and _qos(sim, "conv-vol-2") == 7000
    _converged(sim, capsys, ep)


def test_case9a_outputs_the_plan_could_not_predict_are_replanned_during_apply(
        dsp_env, tmp_path, capsys, monkeypatch):
    """Without the kind's prediction of its new outputs (a kind whose outputs only the DSP
    can tell), the dependents planned "same" are re-planned once the VolumeType's update
    finished and updated in the same run."""
    from datera_iac.resources.base import Kind
    from datera_iac.resources.volume_type import VolumeType

    monkeypatch.setattr(VolumeType, "planned_outputs", Kind.planned_outputs)
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    (tmp_path / "Pulumi.yaml").write_text(VT_STACK)
    assert main(["up", "--yes", *ep]) == 0
    (tmp_path / "Pulumi.yaml").write_text(VT_STACK.replace("5000", "6000"))
    assert main(["preview", *ep]) == 0
    assert "Plan: 0 to create, 1 to update, 0 to delete." in capsys.readouterr().out
    assert main(["up", "--yes", *ep]) == 0
    out = capsys.readouterr()
    err = out.err
    assert "updated Volume v" in err and "updated Volume w" in err and "3 updated" in out.out
    assert _qos(sim, "conv-vol-2") == 6000
    _converged(sim, capsys, ep)
    # a VolumeType change that leaves extraSpecs alone re-plans the volumes to no write
    (tmp_path / "Pulumi.yaml").write_text(
        VT_STACK.replace("5000", "6000\n      description: gold tier"))
    before = writes(sim)
    assert main(["up", "--yes", *ep]) == 0
    out = capsys.readouterr()
    assert "1 updated" in out.out and "Volume " not in out.err
    assert writes(sim) == before  # a type that is not materialized has no DSP object
    _converged(sim, capsys, ep)
