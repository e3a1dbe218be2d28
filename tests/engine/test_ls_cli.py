"""`datera-iac ls`: JSON for pipelines, a table on request (or a terminal), the stack's
state marks what it manages as 'already managed', and an option of another listing is
refused in one line."""

from __future__ import annotations

import json

from datera_iac.cli import main
from datera_iac.resources.manage import ALREADY_OURS


def test_ls_json_table_and_managed(sim, sim_ws, tmp_path, monkeypatch, capsys):
    ws = sim_ws()
    plan, result = ws.up()
    assert result.ok
    f = str(ws.stack_file)
    monkeypatch.chdir(tmp_path)
    base = ["-f", f, "--endpoint", sim.http_url]

    assert main(["ls", "volumes", "--tenant", "team-a", "--json", *base]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["vol-one", "vol-two"]
    assert rows[0]["id"] == ws.load_state().resources["v1"].id

    assert main(["ls", "volumes", "--tenant", "team-a", "--table", *base]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "VOLUME_TYPE", "REPLICA_COUNT", "OP_STATE", "ID"]
    assert [ln.split()[0] for ln in lines[1:]] == ["vol-one", "vol-two"]

    # not a TTY (captured): JSON without asking
    assert main(["ls", "snapshots", "--tenant", "team-a", *base]) == 0
    (snap,) = json.loads(capsys.readouterr().out)
    assert snap["id"] == ws.load_state().resources["snap"].id

    assert main(["ls", "manageable", "--tenant", "team-a", *base]) == 0
    verdicts = {r["name"]: r["reason_not_safe"] for r in json.loads(capsys.readouterr().out)}
    assert verdicts == {"vol-one": ALREADY_OURS, "vol-two": ALREADY_OURS}

    assert main(["ls", "tenants", "--volume", "x", *base]) == 1
    err = capsys.readouterr().err
    assert "--volume does not apply to `ls tenants`" in err and "Traceback" not in err
