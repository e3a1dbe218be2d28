"""The first hour of a new user (issue 14, items 5 and 9): a wrong password fails before the
apply writes anything, summaries never say "Done"/"nothing to do" when something failed, and
the small CLI answers (empty sessions, the multipath header, a bogus --sw-version, cinder conf
without a password, destroy with nothing to delete)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from datera_iac.cli import cli, main
from datera_iac.engine.apply import ApplyResult, Failure
from datera_iac.engine.render import render_result
from tests.tools import require

STACK = """name: first
runtime: yaml
resources:
  v:
    type: datera:index:Volume
    properties:
      name: vol1
      size: 1
"""


def _writes(sim) -> int:
    return sum(n for k, n in sim.counters().items()
               if k.split(" ")[0] in ("POST", "PUT", "DELETE", "PATCH") and "login" not in k)


def test_wrong_password_fails_before_any_write_and_leaves_nothing_to_recover(
        sim, tmp_path, monkeypatch, capsys):
    (tmp_path / "Pulumi.yaml").write_text(STACK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "wrong-password")
    assert main(["up", "--yes", "--endpoint", sim.http_url]) == 1
    out = capsys.readouterr()
    assert "check san_login, san_password" in out.err
    assert "Done" not in out.out + out.err and "created" not in out.out + out.err
    assert _writes(sim) == 0
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    assert main(["up", "--yes", "--endpoint", sim.http_url]) == 0
    out = capsys.readouterr()
    assert "recovered" not in out.out + out.err  # no half-done create was journaled
    assert "Done in" in out.out and "1 created" in out.out


def test_summary_never_says_done_when_something_failed():
    failed = render_result(ApplyResult(failures=[Failure("v", "create", "HTTP 500")],
                                       skipped=["s"]), {})
    first = failed.splitlines()[0]
    assert "Done" not in failed and "nothing to do" not in failed
    assert re.match(r"Failed after \d+\.\ds: 1 operation\(s\) failed, nothing completed\.", first)
    assert "v (create): HTTP 500" in failed
    partial = render_result(ApplyResult(done={"create": 2}, failures=[Failure("v", "create", "x")]), {})
    assert partial.startswith("Failed after") and "2 created completed" in partial
    assert render_result(ApplyResult(), {}).startswith("Done in 0.0s: nothing to do.")


def test_destroy_with_nothing_to_delete_says_so(sim, tmp_path, monkeypatch, capsys):
    (tmp_path / "Pulumi.yaml").write_text(STACK)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    assert main(["destroy", "--yes", "--endpoint", sim.http_url]) == 0
    out = capsys.readouterr().out
    assert "Nothing to destroy" in out and "matches the stack" not in out


def test_node_sessions_says_when_there_are_none():
    require("iscsiadm")
    r = CliRunner().invoke(cli, ["node", "sessions"])
    assert r.exit_code == 0, r.output
    assert "no iSCSI sessions" in r.output


def test_multipath_header_follows_user_friendly_names():
    r = CliRunner().invoke(cli, ["node", "multipath-conf", "--user-friendly-names"])
    assert r.exit_code == 0, r.output
    head = r.output.splitlines()[1]
    assert "WWID" not in head and "mpathN" in head
    assert "user_friendly_names yes" in r.output
    r = CliRunner().invoke(cli, ["node", "multipath-conf"])
    assert "WWID-named maps" in r.output.splitlines()[1]


def test_dsp_serve_refuses_a_bogus_sw_version():
    r = CliRunner().invoke(cli, ["dsp", "serve", "--sw-version", "bogus"])
    assert r.exit_code == 2 and "'bogus' is not a product version" in r.output


def test_cinder_conf_does_not_need_the_password_it_masks(monkeypatch, capsys):
    monkeypatch.delenv("DATERA_SAN_PASSWORD", raising=False)
    assert main(["cinder", "conf", "--set", "san_ip=10.0.0.5"]) == 0
    out = capsys.readouterr()
    assert "san_password = ********" in out.out and "san_password is not set" in out.err
    assert main(["cinder", "conf", "--set", "san_ip=10.0.0.5", "--show-password"]) == 1
    assert "san_password: not set" in capsys.readouterr().err
