"""Images to and from volumes over a live iSCSI target: the simulator with its tgtd data
plane, written and read with qemu-img's libiscsi driver (UserspaceTransport). Also the image
cache (datera_enable_image_cache): fill once, clone after, rebuild on a changed image."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import threading
from typing import Any

import pytest

from datera_iac.config import DateraConfig
from datera_iac.dsp import DspClient
from datera_iac.errors import InputError, NodeError
from datera_iac.resources.imaging import (
    UserspaceTransport,
    cache_name,
    cached_snapshot_for,
    export_volume,
    fetch_image,
    fill_volume,
    volume_from_image,
)
from datera_iac.resources.base import Context, Timeouts
from datera_iac.resources.volume import Volume
from datera_iac.sim import SimServer
from datera_iac.sim.dataplane import TgtDataPlane
from tests.tools import needs

pytestmark = pytest.mark.tgt
_needs = needs("tgtd", "tgtadm", "qemu-img", "qemu-img iscsi driver")

INIT = "iqn.2024-01.org.example:imager"
MIB = 1 << 20


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    dp = TgtDataPlane(portals=["127.0.0.1", "127.0.0.2"],
                      data_dir=tmp_path_factory.mktemp("img-luns"))
    dp.start()
    server = SimServer(dataplane=dp, portals=["127.0.0.1", "127.0.0.2"]).start()
    try:
        yield server, dp
    finally:
        server.stop()
        dp.stop()


def ctx_for(server: Any, **conf: Any) -> Context:
    cfg = DateraConfig.from_mapping({"endpoint": server.http_url, "san_login": "admin",
                                     "san_password": "password", **conf})
    return Context(client=DspClient(cfg), config=cfg,
                   timeouts=Timeouts(create=20, update=20, delete=20, read=20))


@pytest.fixture
def env(live):
    server, dp = live
    server.reset()
    dp.reset()
    return ctx_for(server), UserspaceTransport(INIT, port=dp.port, lun=1), dp


def sha(path: Any, n: int | None = None) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(n) if n else f.read()).hexdigest()


def raw_image(tmp_path, name="img.raw", size=3 * MIB, seed=b"") -> str:
    p = tmp_path / name
    p.write_bytes(hashlib.sha256(seed).digest() * (size // 32))
    return str(p)


def new_volume(ctx, name="img-vol", size=1) -> str:
    vk = Volume()
    return vk.create(ctx, vk.spec_from({"name": name, "size": size})).id


def test_raw_image_round_trip(env, tmp_path):
    """A raw image written to a volume reads back with the same SHA-256; access is
    revoked and the volume offlined afterwards."""
    ctx, tr, _dp = env
    src = raw_image(tmp_path)
    vid = new_volume(ctx)
    img = fill_volume(ctx, vid, src, transport=tr)
    assert img.format == "raw" and img.sha256 == sha(src)
    back = tmp_path / "back.raw"
    got = export_volume(ctx, vid, str(back), size=os.path.getsize(src), transport=tr)
    assert got == img.sha256
    ai = ctx.client.get(f"/app_instances/{vid.rsplit('/', 1)[-1]}")
    assert ai["admin_state"] == "offline"
    assert ai["storage_instances"][0]["acl_policy"]["initiators"] == []


def test_qcow2_image_is_converted(env, tmp_path):
    """A qcow2 image lands on the volume as its raw content; export to qcow2 works too."""
    ctx, tr, _dp = env
    src = raw_image(tmp_path, seed=b"q")
    qcow = tmp_path / "img.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, str(qcow)],
                   check=True, timeout=60)
    vid = new_volume(ctx, "qcow-vol")
    img = fill_volume(ctx, vid, str(qcow), transport=tr)
    assert img.format == "qcow2" and img.virtual_size == os.path.getsize(src)
    back = tmp_path / "back.raw"
    assert export_volume(ctx, vid, str(back), size=img.virtual_size, transport=tr) == sha(src)
    out = tmp_path / "out.qcow2"
    export_volume(ctx, vid, str(out), fmt="qcow2", size=img.virtual_size, transport=tr)
    info = subprocess.run(["qemu-img", "info", "--output=json", str(out)], check=True,
                          capture_output=True, text=True, timeout=60).stdout
    assert '"format": "qcow2"' in info


def test_http_image(env, tmp_path):
    """An http:// image is downloaded, checksummed and written."""
    ctx, tr, _dp = env
    src = raw_image(tmp_path, seed=b"http")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(tmp_path), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/img.raw"
        vid = new_volume(ctx, "http-vol")
        img = fill_volume(ctx, vid, url, transport=tr)
        assert img.sha256 == sha(src)
        with pytest.raises(NodeError, match="HTTP 404"):
            fill_volume(ctx, vid, url + ".missing", transport=tr)
    finally:
        httpd.shutdown()
        httpd.server_close()
    back = tmp_path / "b.raw"
    assert export_volume(ctx, vid, str(back), size=os.path.getsize(src), transport=tr) == sha(src)


def test_image_larger_than_volume_is_refused(env, tmp_path):
    """An image that does not fit is an InputError before anything is written."""
    ctx, tr, _dp = env
    big = tmp_path / "big.qcow2"  # a tiny file with a 2 GiB virtual size
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(big), "2G"], check=True,
                   timeout=60)
    vid = new_volume(ctx, "small-vol", size=1)
    with pytest.raises(InputError, match="needs 2 GiB"):
        fill_volume(ctx, vid, str(big), transport=tr)
    with pytest.raises(InputError, match="source_image"):
        with fetch_image(str(tmp_path / "nope.raw")):
            pass


def test_image_cache_fill_clone_invalidate(live, tmp_path):
    """Cache on: the first volume fills a cache volume + snapshot; the second clones it
    (no second write); both read back the image; a changed image rebuilds the cache."""
    server, dp = live
    server.reset()
    dp.reset()
    ctx = ctx_for(server, datera_enable_image_cache=True,
                  datera_image_cache_volume_type_id="cache-type")
    writes: list[str] = []

    class Counting(UserspaceTransport):
        def write(self, ctx, volume_id, image):
            writes.append(volume_id)
            super().write(ctx, volume_id, image)

    tr = Counting(INIT, port=dp.port, lun=1)
    src = raw_image(tmp_path, seed=b"v1")
    a = volume_from_image(ctx, {"name": "from-img-a", "size": 2}, src, transport=tr)
    b = volume_from_image(ctx, {"name": "from-img-b", "size": 1}, src, transport=tr)
    assert len(writes) == 1  # only the cache volume was written
    cache = Volume().find(ctx, Volume().spec_from({"name": cache_name(src), "size": 1}))
    assert cache is not None and cache.spec.metadata["image_sha256"] == sha(src)
    assert a.spec.size == 2
    for vid in (a.id, b.id):
        out = tmp_path / "o.raw"
        assert export_volume(ctx, vid, str(out), size=os.path.getsize(src),
                             transport=tr) == sha(src)
    # the same path now holds a newer image: the cache is rebuilt, not reused
    raw_image(tmp_path, seed=b"v2")
    snap = cached_snapshot_for(ctx, src, transport=tr)
    assert len(writes) == 2 and snap is not None
    cache2 = Volume().find(ctx, Volume().spec_from({"name": cache_name(src), "size": 1}))
    assert cache2.id != cache.id and cache2.spec.metadata["image_sha256"] == sha(src)
    # cache off: no snapshot, the caller fills the volume itself
    assert cached_snapshot_for(ctx_for(server), src, transport=tr) is None
