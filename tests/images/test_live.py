"""Images through a live iSCSI target: the simulator with its tgtd data plane, stacks
deployed by the engine, bytes moved by qemu-img's userspace initiator
(``image_node: libiscsi://...``). Checks what an operator relies on: the volume holds the
image (read back independently, by SHA-256), the export file has the same SHA-256, the
image cache fills once and clones after (counted on the simulator), a second ``up`` writes
nothing, destroy removes the exported file, and a bad checksum stops before any write."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading

import pytest

from datera_iac.errors import InputError, NodeError
from datera_iac.resources.imaging import UserspaceTransport, cache_name, export_volume
from datera_iac.resources import KINDS
from tests.images.conftest import INIT, MIB, ctx_for, raw_image, sha256, writes

pytestmark = pytest.mark.tgt


def node(dp) -> str:
    return f"libiscsi://{INIT}?port={dp.port}&lun=1"


def read_back(server, dp, volume_id: str, size: int, tmp_path) -> str:
    """SHA-256 of the volume's first ``size`` bytes, read with a fresh client."""
    ctx = ctx_for(server)
    out = tmp_path / f"readback-{volume_id.rsplit('/', 1)[-1]}.raw"
    try:
        return export_volume(ctx, volume_id, str(out), size=size,
                             transport=UserspaceTransport(INIT, port=dp.port, lun=1))
    finally:
        ctx.client.close()
        out.unlink(missing_ok=True)


def count(server, method: str, needle: str) -> int:
    return sum(n for k, n in writes(server).items()
               if k.startswith(method + " ") and k.endswith(needle))


def image_stack(img, dp, *, export_dir=None, names=("from-image",), sizes=(1,),
                checksum: str | None = None) -> str:
    lines = ["name: images", "runtime: yaml", "resources:"]
    for i, (name, size) in enumerate(zip(names, sizes)):
        lines += [f"  disk{i}:", "    type: datera:index:Volume", "    properties:",
                  f"      name: {name}", f"      size: {size}",
                  f"      sourceImage: '{img}'", f"      imageNode: '{node(dp)}'"]
        if checksum:
            lines.append(f"      sourceImageChecksum: 'sha256:{checksum}'")
    if export_dir is not None:
        lines += ["  export:", "    type: datera:index:VolumeImage", "    properties:",
                  "      volumeId: ${disk0.id}", f"      path: '{export_dir}/export.raw'",
                  f"      sizeBytes: {os.path.getsize(img)}", f"      imageNode: '{node(dp)}'",
                  "outputs:", "  exportSha: ${export.sha256}"]
    return "\n".join(lines) + "\n"


def test_stack_with_source_image_and_export(dsp, make_ws, tmp_path):
    """up: the volume holds the image (checksum verified before create, read back after),
    the VolumeImage file has the image's SHA-256; a second up plans nothing and writes
    nothing; destroy removes the volume and the file."""
    server, dp = dsp
    img = raw_image(tmp_path, seed=b"stack")
    want = sha256(img)
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    ws = make_ws(server, image_stack(img, dp, export_dir=out_dir, checksum=want))
    plan, result = ws.up()
    assert not plan.errors and result is not None and result.ok, (plan.errors, result)
    vid = ws.load_state().resources["disk0"].id
    assert read_back(server, dp, vid, os.path.getsize(img), tmp_path) == want
    exported = out_dir / "export.raw"
    assert sha256(exported) == want and os.path.getsize(exported) == os.path.getsize(img)
    assert result.outputs["exportSha"] == want
    assert [p.name for p in out_dir.iterdir()] == ["export.raw"]  # no partial file left
    # the temporary access is gone: no initiator left on the volume, which is offline again
    ai = ctx_for(server).client.get(f"/app_instances/{vid.rsplit('/', 1)[-1]}")
    assert ai["storage_instances"][0]["acl_policy"]["initiators"] == []
    before = writes(server)
    plan2, _ = make_ws(server, image_stack(img, dp, export_dir=out_dir, checksum=want)).up()
    assert not plan2.changes and not plan2.drift and writes(server) == before
    _, result3 = make_ws(server, image_stack(img, dp, export_dir=out_dir,
                                             checksum=want)).up(destroy=True)
    assert result3 is not None and result3.ok
    assert not exported.exists()
    assert KINDS["Volume"].read(ctx_for(server), vid) is None


def test_image_cache_fills_once_then_clones(dsp, make_ws, tmp_path):
    """With datera_enable_image_cache, two volumes from one image: the cache volume is the
    only one written (one temporary ACL grant + revoke), the second volume is a clone of
    its snapshot (3 app_instance POSTs, 1 snapshot POST), and both hold the image."""
    server, dp = dsp
    img = raw_image(tmp_path, seed=b"cache")
    stack = image_stack(img, dp, names=("web-a", "web-b"), sizes=(1, 2))
    ws = make_ws(server, stack, datera_enable_image_cache=True,
                 datera_image_cache_volume_type_id="image-cache")
    assert ws.parallel > 1  # created in parallel: the second waits for the cache fill
    plan, result = ws.up()
    assert not plan.errors and result is not None and result.ok, (plan.errors, result)
    assert count(server, "POST", "/app_instances") == 3  # cache + 2 clones
    assert count(server, "POST", "/snapshots") == 1
    assert count(server, "PUT", "/acl_policy/initiators") == 2  # one fill: add + remove
    ctx = ctx_for(server)
    cache = KINDS["Volume"].find(ctx, KINDS["Volume"].spec_from(
        {"name": cache_name(str(img)), "size": 1}))
    assert cache is not None and cache.spec.metadata["image_sha256"] == sha256(img)
    state = ws.load_state().resources
    for name, size in (("disk0", 1), ("disk1", 2)):
        obs = KINDS["Volume"].read(ctx, state[name].id)
        assert obs is not None and obs.spec.size == size
        assert read_back(server, dp, state[name].id, os.path.getsize(img), tmp_path) == \
            sha256(img)


def test_without_cache_each_volume_is_filled(dsp, make_ws, tmp_path):
    """Cache off (the default): each volume is created empty and written (2 POSTs, no
    snapshot, two grant/revoke pairs); a qcow2 image lands as its raw content."""
    server, dp = dsp
    raw = raw_image(tmp_path, seed=b"plain")
    qcow = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)],
                   check=True, timeout=60)
    ws = make_ws(server, image_stack(qcow, dp, names=("app-a", "app-b"), sizes=(1, 1)))
    plan, result = ws.up()
    assert not plan.errors and result is not None and result.ok, (plan.errors, result)
    assert count(server, "POST", "/app_instances") == 2
    assert count(server, "POST", "/snapshots") == 0
    assert count(server, "PUT", "/acl_policy/initiators") == 4
    for r in ws.load_state().resources.values():
        assert read_back(server, dp, r.id, os.path.getsize(raw), tmp_path) == sha256(raw)


def test_http_image_with_wrong_checksum_writes_nothing(dsp, tmp_path):
    """An http(s) image is downloaded and verified before the volume is created: a
    checksum mismatch is an InputError naming source_image_checksum, with 0 writes; the
    right checksum fills the volume."""
    server, dp = dsp
    img = raw_image(tmp_path, seed=b"http", size=2 * MIB)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(
        *a, directory=str(tmp_path), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    ctx = ctx_for(server)
    vk = KINDS["Volume"]
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{img.name}"
    try:
        bad = vk.spec_from({"name": "from-url", "size": 1, "source_image": url,
                            "source_image_checksum": "0" * 64, "image_node": node(dp)})
        with pytest.raises(InputError) as e:
            vk.create(ctx, bad)
        assert e.value.field == "source_image_checksum"
        assert writes(server) == {}
        good = vk.spec_from({"name": "from-url", "size": 1, "source_image": url,
                             "source_image_checksum": sha256(img), "image_node": node(dp)})
        obs = vk.create(ctx, good)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert obs.spec.source_image == url
    assert read_back(server, dp, obs.id, os.path.getsize(img), tmp_path) == sha256(img)


def test_failed_fill_leaves_no_volume(dsp, tmp_path):
    """A fill that fails (the initiator's LUN does not exist) deletes the new volume:
    create stays transactional."""
    server, dp = dsp
    img = raw_image(tmp_path, seed=b"fail")
    ctx = ctx_for(server)
    vk = KINDS["Volume"]
    spec = vk.spec_from({"name": "will-fail", "size": 1, "source_image": str(img),
                         "image_node": f"libiscsi://{INIT}?port={dp.port}&lun=7"})
    with pytest.raises(NodeError):
        vk.create(ctx, spec)
    assert vk.find(ctx, spec) is None
    assert list(ctx.client.list("/app_instances")) == []  # nor under the filling name


def test_interrupted_fill_is_never_adopted(dsp, tmp_path):
    """While it is filled a volume carries a temporary name, so crash recovery's find()
    does not take a half-filled volume for a finished one; the next create removes that
    leftover and starts over (one volume in the end, under its own name)."""
    from datera_iac.resources.imaging import filling_name

    server, dp = dsp
    img = raw_image(tmp_path, seed=b"crash")
    ctx = ctx_for(server)
    vk = KINDS["Volume"]
    spec = vk.spec_from({"name": "after-crash", "size": 1, "source_image": str(img),
                         "image_node": node(dp)})
    # what a run killed mid-copy leaves behind: a volume under the filling name
    vk.create(ctx, vk.spec_from({"name": filling_name(spec), "size": 1}))
    assert vk.find(ctx, spec) is None
    obs = vk.create(ctx, spec)
    names = sorted(a["name"] for a in ctx.client.list("/app_instances"))
    assert names == ["after-crash"]
    assert obs.spec.name == "after-crash" and vk.find(ctx, spec).id == obs.id
    assert read_back(server, dp, obs.id, os.path.getsize(img), tmp_path) == sha256(img)


def test_python_program(dsp, make_ws, tmp_path):
    """The same through a Python program (engine.Volume / engine.VolumeImage)."""
    server, dp = dsp
    img = raw_image(tmp_path, seed=b"python")
    prog = tmp_path / "stack" / "prog.py"
    prog.parent.mkdir(exist_ok=True)
    prog.write_text(f"""\
from datera_iac import engine

boot = engine.Volume("boot", name="py-boot", size=1, source_image={str(img)!r},
                     image_node={node(dp)!r})
out = engine.VolumeImage("out", volume_id=boot.id, path={str(tmp_path / 'py.qcow2')!r},
                         format="qcow2", size_bytes={os.path.getsize(img)},
                         image_node={node(dp)!r})
engine.export("sha", out.sha256)
""")
    ws = make_ws(server, "name: unused\nruntime: yaml\n")
    ws.stack_file = prog
    plan, result = ws.up()
    assert not plan.errors and result is not None and result.ok, (plan.errors, result)
    raw = tmp_path / "py.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw",
                    str(tmp_path / "py.qcow2"), str(raw)], check=True, timeout=60)
    assert sha256(raw) == sha256(img)
    assert result.outputs["sha"] == sha256(tmp_path / "py.qcow2")


def test_chap_volume_is_filled_with_its_credentials(dsp, tmp_path):
    """A volume declaring target CHAP is written by logging in with its own credentials
    (the data plane refuses a login without them)."""
    server, dp = dsp
    img = raw_image(tmp_path, seed=b"chap")
    ctx = ctx_for(server)
    vk = KINDS["Volume"]
    obs = vk.create(ctx, vk.spec_from({"name": "chap-vol", "size": 1, "source_image": str(img),
                                       "chap_user": "imguser", "chap_secret": "s3cret-s3cret1",
                                       "image_node": node(dp)}))
    assert obs.outputs.chap_auth == "chap"
    from datera_iac.node.iscsi import Chap

    out = tmp_path / "chap-back.raw"
    with pytest.raises(InputError, match="requires CHAP"):  # refused without them
        export_volume(ctx, obs.id, str(out), size=os.path.getsize(img),
                      transport=UserspaceTransport(INIT, port=dp.port, lun=1))
    got = export_volume(ctx, obs.id, str(out), size=os.path.getsize(img),
                        transport=UserspaceTransport(INIT, port=dp.port, lun=1,
                                                     chap=Chap("imguser", "s3cret-s3cret1")))
    assert got == sha256(img)
    # the VolumeImage kind takes the volume's credentials; its id never carries the secret
    vi = KINDS["VolumeImage"]
    spec = vi.spec_from({"volume_id": obs.id, "path": str(tmp_path / "chap.raw"),
                         "size_bytes": os.path.getsize(img), "image_node": node(dp),
                         "chap_user": "imguser", "chap_secret": "s3cret-s3cret1"})
    made = vi.create(ctx, spec)
    assert made.outputs.sha256 == sha256(img) and "s3cret" not in made.id
    assert made.spec.chap_secret == "s3cret-s3cret1"  # kept from what was declared
    seen = vi.read(ctx, made.id)
    assert seen is not None and seen.spec.chap_secret is None
    assert not vi.diff(spec, seen.spec).changed  # an unreadable secret is no change


def test_local_node_copies_through_a_node_attachment(dsp, tmp_path):
    """The default image_node (local) attaches the volume to the node behind
    Context.runner with a temporary NodeAttachment and copies onto its stable device path.
    The node is a LoopbackNode: discovery and login go to the live target (ACL checked
    for real), the kernel half is simulated, so the copy command is asserted, not its
    bytes. The attachment is gone afterwards."""
    from datera_iac.node.testing import LoopbackNode

    server, dp = dsp
    img = raw_image(tmp_path, seed=b"kernel")
    fake = LoopbackNode(tmp_path / "node", initiator_iqn="iqn.2024-01.org.example:kernel",
                        installed=("iscsiadm", "multipath", "multipathd", "blkid", "wipefs",
                                   "blockdev", "mount", "umount", "qemu-img"))
    ctx = ctx_for(server)
    ctx.runner = fake
    vk = KINDS["Volume"]
    obs = vk.create(ctx, vk.spec_from({"name": "kernel-copy", "size": 1,
                                       "source_image": str(img),
                                       "image_node": f"local?port={dp.port}&lun=1"}))
    copies = [c for c in fake.commands if c[:2] == ["qemu-img", "convert"]]
    assert len(copies) == 1
    assert copies[0][-2] == str(img) and "/dev/disk/by-id/" in copies[0][-1]
    assert ["blockdev", "--flushbufs", copies[0][-1]] in fake.commands
    logins = [c for c in fake.commands if c[:1] == ["iscsiadm"] and "--login" in c]
    logouts = [c for c in fake.commands if c[:1] == ["iscsiadm"] and "--logout" in c]
    assert logins and len(logouts) == len(logins)
    ai = ctx.client.get(f"/app_instances/{obs.id.rsplit('/', 1)[-1]}")
    assert ai["name"] == "kernel-copy"
    assert ai["storage_instances"][0]["acl_policy"]["initiators"] == []
