"""Unmanage instead of delete from a YAML stack (issue 18): a Volume's
``unmanageOnDelete`` is recorded in the state without a DSP write (as ``retainOnDelete``); a volume that leaves the stack (or a
destroy) is then planned as ``forget`` (not delete) and released: ``rename`` renames it
the Cinder driver's way (``UNMANAGED-<name>``), ``keep`` leaves it as it is. Its snapshots
stay with it (no cascade refusal: nothing is deleted)."""

from __future__ import annotations

import json

import pytest

from datera_iac.cli import main

STACK = """
name: unmanage
runtime: yaml
resources:
  v1:
    type: datera:index:Volume
    properties:
      name: db-u1
      size: 1
%(v1)s
  v2:
    type: datera:index:Volume
    properties:
      name: db-u2
      size: 1
%(v2)s
  s1:
    type: datera:index:Snapshot
    properties:
      volumeId: ${v1.id}
"""


def _write(path, v1: str = "", v2: str = "") -> list[str]:
    path.write_text(STACK % {"v1": "      " + v1 if v1 else "", "v2": "      " + v2 if v2 else ""})
    return ["-f", str(path)]


def _names(dsp) -> dict[str, str]:
    return {ai["id"]: ai["name"] for ai in dsp.list("/app_instances")}


def test_unmanage_on_delete_renames_or_keeps(sim, dsp_client, writes, tmp_path, capsys,
                                             monkeypatch):
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    f = tmp_path / "Pulumi.yaml"
    common = ["--endpoint", sim.http_url]
    assert main(["up", *_write(f), *common, "--yes"]) == 0
    before = writes()
    # declaring it touches the state only (like retainOnDelete), never the DSP
    args = _write(f, "unmanageOnDelete: rename", "unmanageOnDelete: keep")
    assert main(["preview", *args, *common, "--detailed-exitcode"]) == 0
    assert main(["up", *args, *common, "--yes"]) == 0
    assert writes() == before
    ids = dict(_names(dsp_client))

    # destroy: both forgotten, not deleted; the snapshot goes first (it is the stack's)
    capsys.readouterr()
    assert main(["preview", *args, *common, "--destroy", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    acts = {a["name"]: (a["action"], a.get("reason")) for a in plan["actions"]}
    assert acts["v1"] == ("forget", "unmanage_on_delete: rename (renamed UNMANAGED-<name>)"), acts
    assert acts["v2"] == ("forget", "unmanage_on_delete: keep"), acts
    assert acts["s1"][0] == "delete"
    assert main(["destroy", *args, *common, "--yes"]) == 0
    names = _names(dsp_client)
    assert sorted(names.values()) == ["UNMANAGED-db-u1", "db-u2"], names
    assert set(names) == set(ids)


def test_unmanaged_volume_keeps_its_snapshots(sim, dsp_client, tmp_path, capsys, monkeypatch):
    """A volume leaving the stack with snapshots made elsewhere: a delete would be refused
    (issue 16, no silent cascade); unmanaging it takes nothing with it, so it goes ahead."""
    monkeypatch.setenv("DATERA_SAN_LOGIN", "admin")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "password")
    f = tmp_path / "Pulumi.yaml"
    common = ["--endpoint", sim.http_url]
    assert main(["up", *_write(f, "unmanageOnDelete: rename"), *common, "--yes"]) == 0
    ai = next(a for a in dsp_client.list("/app_instances") if a["name"] == "db-u1")
    vol = f"{ai['path']}/storage_instances/storage-1/volumes/volume-1"
    dsp_client.post(f"{vol}/snapshots", {"uuid": "00000000-0000-4000-8000-00000000aaaa"})
    f.write_text("name: unmanage\nruntime: yaml\nresources: {}\n")
    capsys.readouterr()
    assert main(["up", "-f", str(f), *common, "--yes"]) == 0, capsys.readouterr().err
    names = _names(dsp_client)
    assert "UNMANAGED-db-u1" in names.values() and "db-u2" not in names.values(), names
    assert len(list(dsp_client.list(f"{vol}/snapshots"))) == 1  # made outside: kept


def test_unmanage_on_delete_is_checked():
    from datera_iac.errors import InputError
    from datera_iac.resources.volume import VolumeSpec

    with pytest.raises(InputError, match="unmanage_on_delete"):
        VolumeSpec(name="vol-x", size=1, unmanage_on_delete="yes")
