"""Issue 21: a destroy's dependents check (issue 16) reads many volumes from one listing of
their tenant, not one GET each, and still refuses a volume with a snapshot made outside."""

from __future__ import annotations

from datera_iac.cli import main
from tests.fault.conftest import volume_stack

N = 15  # more than the default parallelism (10): the engine asks in bulk



def test_destroy_checks_snapshots_from_one_listing(dsp_env, tmp_path, capsys):
    """15 volumes, one with a snapshot made outside: `destroy` refuses naming it with one
    listing and no per-volume GET (a GET per volume before); without the snapshot the
    destroy makes two writes per volume and reads no volume alone."""
    sim = dsp_env
    (tmp_path / "Pulumi.yaml").write_text(volume_stack("many", N))
    ep = ["--endpoint", sim.http_url]
    assert main(["up", "--yes", *ep]) == 0
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    client = DspClient(DateraConfig.from_mapping(
        {"endpoint": sim.http_url, "san_login": "admin", "san_password": "password"},
        use_env=False))
    ai = next(a for a in client.list("/app_instances") if a["name"] == "many-007")
    url = f"/app_instances/{ai['id']}/storage_instances/storage-1/volumes/volume-1/snapshots"
    ts = str(client.post(url, {})["timestamp"])

    def used_by(argv: list[str]) -> tuple[int, dict[str, int]]:
        before = dict(sim.counters())
        rc = main(argv)
        return rc, {k: n - before.get(k, 0) for k, n in sim.counters().items()
                    if n != before.get(k, 0)}

    capsys.readouterr()
    rc, used = used_by(["destroy", "--yes", *ep])
    assert rc == 1 and f"Snapshot {ts} of volume many-007" in capsys.readouterr().out
    assert "GET /v2.2/app_instances/:id" not in used, used
    assert not [k for k in used if k.split()[0] in ("PUT", "DELETE", "POST") and "login" not in k], used

    client.delete(f"{url}/{ts}")
    rc, used = used_by(["destroy", "--yes", *ep])
    assert rc == 0, capsys.readouterr()
    assert "GET /v2.2/app_instances/:id" not in used, used
    assert used["PUT /v2.2/app_instances/:id"] == N and used["DELETE /v2.2/app_instances/:id"] == N
    assert [a["name"] for a in client.list("/app_instances")] == []
