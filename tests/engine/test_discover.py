"""Discovery to code, engine side: `datera-iac import --discover` writes a Pulumi-YAML
stack for what the DSP holds; its preview shows imports only (no field change), `up`
adopts with 0 writes, and the next preview is empty."""

from __future__ import annotations

import pytest
import yaml

from datera_iac.cli import main
from datera_iac.resources import KINDS
from tests.engine.estate import make_estate


@pytest.fixture
def dsp_ctx(sim):
    """A Context on ``sim`` for making the estate behind the engine's back."""
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient
    from datera_iac.resources.base import Context

    cfg = DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                     "san_password": "password"}, use_env=False)
    client = DspClient(cfg)
    yield Context(client=client, config=cfg)
    client.close()


def test_discover_yaml_round_trip(sim, sim_ws, writes, dsp_ctx, tmp_path, monkeypatch, capsys):
    make_estate(dsp_ctx)
    out = tmp_path / "stack" / "Pulumi.yaml"
    monkeypatch.chdir(tmp_path)
    assert main(["import", "--discover", "--tenant", "team-a", "--out", str(out),
                 "--endpoint", sim.http_url]) == 0
    assert "wrote" in capsys.readouterr().out
    doc = yaml.safe_load(out.read_text())
    kinds = sorted(r["type"].split(":")[-1] for r in doc["resources"].values())
    assert kinds == ["Snapshot", "Snapshot", "Tenant", "Volume", "Volume", "Volume",
                     "VolumeType"]
    db = doc["resources"]["vol_db_1"]["properties"]
    assert db["tenant"] == "${tenant_team_a.id}" and db["volumeType"] == "${type_gold.name}"
    assert db["metadata"] == {"app": "db"} and db["snapshotPolicies"] == ["daily:1day:3"]
    assert all(r["options"]["import"] for r in doc["resources"].values())

    ws = sim_ws(out.read_text())
    plan = ws.preview()
    assert {s.action for s in plan.changes} == {"import"} and len(plan.changes) == 7
    assert all(not s.changes for s in plan.changes), [(s.name, s.changes) for s in plan.changes]
    before = writes()
    plan, result = ws.up()
    assert result.ok and writes() == before  # adopted without a write
    assert not sim_ws(out.read_text()).preview().changes


def test_discover_filters_and_secret_placeholder(sim, sim_ws, writes, dsp_ctx, tmp_path,
                                                 monkeypatch):
    """--filter keeps the matching volumes (and the types they use); a CHAP secret the DSP
    does not show becomes a secret config value the stack asks for, never a value."""
    make_estate(dsp_ctx)
    KINDS["Volume"].create(dsp_ctx, KINDS["Volume"].spec_from(
        {"name": "db-chap", "size": 1, "tenant": "team-a", "chap_user": "chapuser1",
         "chap_secret": "s3cret-s3cret-1"}))
    out = tmp_path / "Pulumi.yaml"
    monkeypatch.chdir(tmp_path)
    assert main(["import", "--discover", "--tenant", "team-a", "--filter", "name_regex=^db-",
                 "--filter", "metadata.app=db", "--out", str(out),
                 "--endpoint", sim.http_url]) == 0
    doc = yaml.safe_load(out.read_text())
    assert sorted(doc["resources"]) == ["tenant_team_a", "type_gold", "vol_db_1",
                                        "vol_db_1_snap_" + sorted(doc["resources"])[-1]
                                        .rsplit("_", 1)[-1]]
    out2 = tmp_path / "chap.yaml"
    assert main(["import", "--discover", "--tenant", "team-a", "--filter", "name_regex=chap",
                 "--out", str(out2), "--endpoint", sim.http_url]) == 0
    text = out2.read_text()
    assert "s3cret" not in text
    doc = yaml.safe_load(text)
    assert doc["config"] == {"volDbChapChapSecret": {"type": "string", "secret": True}}
    assert doc["resources"]["vol_db_chap"]["properties"]["chapSecret"] == \
        "${volDbChapChapSecret}"
    assert main(["import", "--discover", "--out", str(out2), "--endpoint", sim.http_url]) == 1
    assert main(["import", "--discover", "--filter", "colour=red", "--out",
                 str(tmp_path / "x.yaml"), "--endpoint", sim.http_url]) == 1
