"""One-run convergence (issue 16, case 9): after any successful ``up`` of an unchanged
stack, ``preview --detailed-exitcode`` exits 0 and the next ``up`` makes 0 DSP writes."""

from __future__ import annotations

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


# ---- 9b: attachment CHAP and volume CHAP have one owner ---------------------------------

CHAP_SECRET = "s3cret-s3cret-1"
NODE = "ssh://root@node0:22"
CHAP_STACK = textwrap.dedent("""\
    name: conv
    runtime: yaml
    resources:
      v:
        type: datera:index:Volume
        properties: {name: chap-vol, size: 1, chapUser: chapuser, chapSecret: %s}
      a:
        type: datera:index:NodeAttachment
        properties:
          volumeId: ${v.id}
          node: %s
          chapUsername: chapuser
          chapSecret: ${v.chapSecret}
    """) % (CHAP_SECRET, NODE)
#: the shape that flipped: the attachment turns CHAP on, the Volume declares none
FLIPPING = CHAP_STACK.replace(", chapUser: chapuser, chapSecret: %s}" % CHAP_SECRET, "}") \
    .replace("${v.chapSecret}", CHAP_SECRET)


def _needkit():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "needs"))
    import needkit

    return needkit


def _auth_puts(sim) -> int:
    return sum(n for k, n in sim.counters().items() if k.startswith("PUT ") and k.endswith("/auth"))


def test_case9b_chap_attachment_converges_and_the_target_never_flips(sim, tmp_path):
    """CHAP declared on the Volume and used by its attachment: the first up sets it once;
    each later preview is empty and each later up makes 0 DSP writes (no auth PUT: the
    target is never without CHAP)."""
    nk = _needkit()
    dsp = nk.client_for(sim)
    node = nk.sim_fabric_node(tmp_path / "n0", dsp, iqn="iqn.2024-01.org.example:n0")
    ws = lambda text: nk.engine_ws(sim, tmp_path / "s", text, runner={NODE: node})
    _, r = ws(CHAP_STACK).up()
    assert r.ok, r.failures
    [ai] = nk.app_instances(dsp)
    assert ai["storage_instances"][0]["auth"]["type"] == "chap"
    assert _auth_puts(sim) <= 1
    for _ in range(3):
        before, auth = writes(sim), _auth_puts(sim)
        plan = ws(CHAP_STACK).preview()
        assert not plan.errors and not plan.changes, (plan.errors, plan.changes)
        _, r = ws(CHAP_STACK).up()
        assert r.ok and not r.done, (r.failures, r.done)
        assert writes(sim) == before and _auth_puts(sim) == auth
    assert len(node.sessions) == 2


def test_case9b_attachment_chap_on_a_volume_without_converges(sim, tmp_path):
    """The shape that flipped CHAP off and on at every run (the attachment turns it on,
    the Volume declares none): the Volume leaves CHAP it does not declare to its
    attachment, so later runs plan nothing and write nothing."""
    nk = _needkit()
    dsp = nk.client_for(sim)
    node = nk.sim_fabric_node(tmp_path / "n0", dsp, iqn="iqn.2024-01.org.example:n0")
    ws = lambda text: nk.engine_ws(sim, tmp_path / "s", text, runner={NODE: node})
    _, r = ws(FLIPPING).up()
    assert r.ok, r.failures
    for _ in range(2):
        before, auth = writes(sim), _auth_puts(sim)
        plan = ws(FLIPPING).preview()
        assert not plan.errors and not plan.changes, (plan.errors, plan.changes)
        _, r = ws(FLIPPING).up()
        assert r.ok and not r.done and writes(sim) == before and _auth_puts(sim) == auth
    [ai] = nk.app_instances(dsp)
    assert ai["storage_instances"][0]["auth"]["type"] == "chap"


def test_case9b_attachment_chap_other_than_its_volumes_is_refused_at_plan_time(sim, tmp_path):
    """A Volume declaring CHAP owns it: an attachment with other credentials (or none)
    is refused by the plan, before any write (it failed at apply: the attachment never
    overwrites a volume's CHAP), also when only the Volume's declaration changes."""
    nk = _needkit()
    dsp = nk.client_for(sim)
    node = nk.sim_fabric_node(tmp_path / "n0", dsp, iqn="iqn.2024-01.org.example:n0")
    ws = lambda text: nk.engine_ws(sim, tmp_path / "s", text, runner={NODE: node})
    other_user = CHAP_STACK.replace("chapUsername: chapuser", "chapUsername: otheruser")
    plan, r = ws(other_user).up()
    assert r is None and writes(sim) == 0 and not nk.app_instances(dsp)
    assert any("chap_user differs from volume 'chap-vol'" in e for e in plan.errors), plan.errors
    no_chap = CHAP_STACK.replace("      chapUsername: chapuser\n", "").replace(
        "      chapSecret: ${v.chapSecret}\n", "")
    plan = ws(no_chap).preview()
    assert any("has no CHAP, and volume 'chap-vol' declares CHAP user" in e
               for e in plan.errors), plan.errors
    # converged; then the Volume's CHAP user changes alone: refused, nothing written
    _, r = ws(CHAP_STACK).up()
    assert r.ok, r.failures
    before = writes(sim)
    other = CHAP_STACK.replace("chapUser: chapuser", "chapUser: otheruser")
    plan, r = ws(other).up()
    assert r is None and writes(sim) == before
    assert any("chap_user differs from volume 'chap-vol'" in e for e in plan.errors), plan.errors


def test_an_update_of_a_chap_volume_writes_its_auth_only_when_the_secret_changed(sim, tmp_path):
    """A volume with CHAP: an update of its size or QoS sends no auth PUT; a changed
    chap_secret sends exactly one (before: the state's digest of the secret made every
    update re-send the secret)."""
    nk = _needkit()
    vol = ("name: conv\nruntime: yaml\nresources:\n  v:\n    type: datera:index:Volume\n"
           "    properties: {name: chap-vol, size: %d, chapUser: chapuser, chapSecret: %s, "
           "extraSpecs: {'DF:total_iops_max': '%d'}}\n")
    ws = lambda size, secret, iops: nk.engine_ws(sim, tmp_path / "s", vol % (size, secret, iops))
    _, r = ws(1, CHAP_SECRET, 1000).up()
    assert r.ok, r.failures
    for size, iops in ((2, 1000), (2, 2000)):
        before, auth = writes(sim), _auth_puts(sim)
        _, r = ws(size, CHAP_SECRET, iops).up()
        assert r.ok and r.done, (r.failures, r.done)
        assert writes(sim) > before and _auth_puts(sim) == auth
    auth = _auth_puts(sim)
    _, r = ws(2, "an0ther-s3cret", 2000).up()
    assert r.ok and r.done, (r.failures, r.done)
    assert _auth_puts(sim) == auth + 1


# ---- 9c: clones and volumes from snapshots checked with the source's live values --------

HEAD = "name: conv\nruntime: yaml\nresources:\n"


def test_case9c_clone_below_its_sources_live_values_is_refused_at_plan_time(dsp_env, tmp_path,
                                                                            capsys):
    """A clone declared smaller than its source's live size, or with fewer replicas, and a
    volume from a snapshot with fewer replicas than the snapshot's volume: refused by the
    plan with the live values, no DSP write (before: the plan passed and the apply failed
    after the copy was made)."""
    sim = dsp_env
    ep = ["--endpoint", sim.http_url]
    from datera_iac.config import DateraConfig
    from datera_iac.dsp import DspClient

    c = DspClient(DateraConfig.from_mapping({"endpoint": sim.http_url, "san_login": "admin",
                                             "san_password": "password"}, use_env=False))
    # a source someone made (size 2, 3 replicas) that has grown to 4 GiB since
    ai = c.post("/app_instances", {"name": "src-vol", "storage_instances": [{
        "name": "storage-1", "volumes": [{"name": "volume-1", "size": 2, "replica_count": 3}]}]})
    vol = ai["storage_instances"][0]["volumes"][0]
    snap = c.post(f"{vol['path']}/snapshots", {})
    c.put(vol["path"], {"size": 4})
    src, snap_id = f"/root/{ai['id']}", f"/root/{ai['id']}/{snap['timestamp']}"
    cases = {
        f"clone: {{name: small-clone, size: 3, cloneOf: \"{src}\"}}":
            ("field 'size'", f"source volume {src} is 4 GiB, the clone declares 3 GiB"),
        f"clone: {{name: rc-clone, size: 4, cloneOf: \"{src}\", "
        "extraSpecs: {\"DF:replica_count\": \"2\"}}":
            ("DF:replica_count", "DF:replica_count 2 is lower than the 3 replicas"),
        f"fromsnap: {{name: rc-restore, size: 2, snapshotId: \"{snap_id}\", "
        "extraSpecs: {\"DF:replica_count\": \"1\"}}":
            ("DF:replica_count", "DF:replica_count 1 is lower than the 3 replicas of the "
                                 "volume of snapshot"),
    }
    for decl, (field, text) in cases.items():
        name, body = decl.split(": ", 1)
        (tmp_path / "Pulumi.yaml").write_text(
            HEAD + f"  {name}:\n    type: datera:index:Volume\n    properties: {body}\n")
        before = writes(sim)
        assert main(["preview", *ep]) == 1
        out = capsys.readouterr()
        assert field in out.out and text in out.out, out
        assert main(["up", "--yes", *ep]) == 1
        capsys.readouterr()
        assert writes(sim) == before
    # a source created in the same run: its declared size counts
    (tmp_path / "Pulumi.yaml").write_text(
        HEAD + "  n:\n    type: datera:index:Volume\n    properties: {name: n-src, size: 5}\n"
        "  c2:\n    type: datera:index:Volume\n    properties: {name: n-clone, size: 4, "
        "cloneOf: \"${n.id}\"}\n")
    assert main(["preview", *ep]) == 1
    assert "source volume n-src is 5 GiB, the clone declares 4 GiB" in capsys.readouterr().out
    # at or above the source's values it plans and applies, then converges
    (tmp_path / "Pulumi.yaml").write_text(
        HEAD + f"  ok:\n    type: datera:index:Volume\n    properties: {{name: ok-clone, "
        f"size: 4, cloneOf: \"{src}\", extraSpecs: {{\"DF:replica_count\": \"3\"}}}}\n"
        f"  ok2:\n    type: datera:index:Volume\n    properties: {{name: ok-restore, "
        f"size: 2, snapshotId: \"{snap_id}\"}}\n")
    assert main(["up", "--yes", *ep]) == 0, capsys.readouterr()
    capsys.readouterr()
    _converged(sim, capsys, ep)
