"""Image inputs are checked at plan time: a missing file, an unsupported or mismatched
format, a bad checksum, an image larger than the volume or an unusable image_node is an
InputError naming the field, with 0 requests to the DSP (Python API and engine preview).
Also the VolumeImage kind's inputs and id. No data plane needed."""

from __future__ import annotations

import struct

import pytest

from datera_iac.errors import InputError
from datera_iac.resources import KINDS
from tests.images.conftest import MIB, raw_image

VOLUME = KINDS["Volume"]
VOLUME_IMAGE = KINDS["VolumeImage"]
SHA = "sha256:" + "ab" * 32


def qcow2_header(path, virtual_size: int) -> None:
    """A qcow2 file header (magic, version 3, virtual size at offset 24)."""
    head = b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", virtual_size)
    path.write_bytes(head + b"\0" * (512 - len(head)))


@pytest.fixture
def files(tmp_path):
    img = raw_image(tmp_path, size=1 * MIB)
    iso = tmp_path / "cd.iso"
    iso.write_bytes(b"\0" * 0x8001 + b"CD001" + b"\0" * 2043)
    big = tmp_path / "big.qcow2"
    qcow2_header(big, 3 << 30)
    return {"img": str(img), "iso": str(iso), "big": str(big), "dir": str(tmp_path)}


def bad_cases(files):
    return [
        ({"source_image": files["dir"] + "/missing.raw"}, "source_image", "does not exist"),
        ({"source_image": "ftp://example.com/x.raw"}, "source_image", "scheme"),
        ({"source_image": "https://user:pw@example.com/x.raw"}, "source_image", "password"),
        ({"source_image": files["img"], "source_image_format": "iso"},
         "source_image_format", "not supported"),
        ({"source_image": files["iso"]}, "source_image_format", "iso image"),
        ({"source_image": files["img"], "source_image_format": "qcow2"},
         "source_image_format", "no qcow2 header"),
        ({"source_image": files["big"], "source_image_format": "raw"},
         "source_image_format", "is qcow2, not raw"),
        ({"source_image": files["big"]}, "size", "needs 3 GiB"),
        ({"source_image": files["img"], "source_image_checksum": "md5:0123"},
         "source_image_checksum", "SHA-256"),
        ({"source_image": files["img"], "source_image_checksum": "sha256:xyz"},
         "source_image_checksum", "SHA-256"),
        ({"source_image_checksum": SHA}, "source_image_checksum", "without source_image"),
        ({"source_image": files["img"], "clone_of": "/root/abc"}, "source_image",
         "both set"),
        ({"source_image": files["img"], "image_node": "ssh://root@10.0.0.1"}, "image_node",
         "ssh"),
        ({"source_image": files["img"], "image_node": "libiscsi://not-an-iqn"}, "image_node",
         "IQN"),
        ({"source_image": files["img"], "image_node": "local?lun=x"}, "image_node", "lun"),
        ({"source_image": files["img"], "image_node": "local?mode=fast"}, "image_node",
         "unknown"),
    ]


def test_bad_image_inputs_fail_in_spec_from_with_no_request(sim, files):
    """Every bad case names its field and a fix; the simulator serves 0 requests."""
    sim.reset()
    for extra, field, words in bad_cases(files):
        with pytest.raises(InputError) as e:
            VOLUME.spec_from({"name": "from-image", "size": 1, **extra}, resource="disk")
        assert e.value.field == field, (extra, e.value)
        assert words in str(e.value) and e.value.fix, (extra, str(e.value))
        assert e.value.resource == "disk"
    assert sim.counters() == {} or all(n == 0 for n in sim.counters().values())


def test_good_image_inputs_normalize(files):
    """A checksum is lower-case hex without its prefix; vhd means qemu's vpc; a
    libiscsi node with port and LUN parses; an image that fits is accepted."""
    spec = VOLUME.spec_from({"name": "from-image", "size": 1, "source_image": files["img"],
                             "source_image_checksum": SHA.upper().replace("SHA256", "sha256"),
                             "source_image_format": "RAW",
                             "image_node": "libiscsi://iqn.2024-01.org.example:a?port=3261&lun=1"})
    assert spec.source_image_checksum == "ab" * 32 and spec.source_image_format == "raw"
    assert VOLUME.spec_from({"name": "from-vhd", "size": 4, "source_image": "https://h/x.vhd",
                             "source_image_format": "vhd"}).source_image_format == "vpc"
    big = VOLUME.spec_from({"name": "big-one", "size": 3, "source_image": files["big"]})
    assert big.size == 3


def test_engine_preview_refuses_missing_image_with_no_request(sim, files, make_ws):
    """A YAML stack whose sourceImage does not exist fails at preview, naming the
    resource and the field, before any request to the DSP."""
    sim.reset()
    ws = make_ws(sim, f"""\
name: images
runtime: yaml
resources:
  disk:
    type: datera:index:Volume
    properties:
      name: from-image
      size: 1
      sourceImage: {files['dir']}/missing.raw
""")
    with pytest.raises(InputError) as e:
        ws.preview()
    assert e.value.field == "source_image" and e.value.resource == "disk"
    assert "does not exist" in str(e.value)
    assert not any(sim.counters().values())


def test_diff_rules(files):
    """A changed image or checksum re-creates the volume; the format and image_node are
    create-time settings changed in place; a side that does not know the image (a read:
    the DSP does not record it) is no change."""
    a = VOLUME.spec_from({"name": "from-image", "size": 1, "source_image": files["img"]})
    with pytest.raises(InputError, match="needs 3 GiB"):
        VOLUME.spec_from({"name": "from-image", "size": 1, "source_image": files["big"]})
    b = VOLUME.spec_from({"name": "from-image", "size": 3, "source_image": files["big"]})
    d = VOLUME.diff(a, b)
    assert d.replace and "source_image" in d.replaces
    seen = VOLUME.spec_from({"name": "from-image", "size": 1})
    assert not VOLUME.diff(a, seen).changed and not VOLUME.diff(seen, a).changed
    c = VOLUME.spec_from({"name": "from-image", "size": 1, "source_image": files["img"],
                          "image_node": "libiscsi://iqn.2024-01.org.example:a"})
    local = VOLUME.spec_from({"name": "from-image", "size": 1, "source_image": files["img"],
                              "image_node": "local"})
    d = VOLUME.diff(local, c)
    assert d.fields == ("image_node",) and not d.replace


def test_volume_image_inputs_and_id(files):
    """Path must be absolute in an existing directory; format raw|qcow2; size_bytes a
    multiple of 512; the id carries every input and reads back as the same spec."""
    spec = VOLUME_IMAGE.spec_from({"volume_id": "/root/abc", "path": files["dir"] + "/o.qcow2",
                                   "format": "QCOW2", "size_bytes": "1048576",
                                   "image_node": "libiscsi://iqn.2024-01.org.example:a?lun=1"})
    oid = VOLUME_IMAGE.id_for(spec)
    assert oid.startswith(files["dir"] + "/o.qcow2?")
    assert VOLUME_IMAGE.spec_for_id(oid) == spec
    for extra, field in [({"path": "relative.raw"}, "path"),
                         ({"path": files["dir"] + "/no/such/dir/x.raw"}, "path"),
                         ({"path": files["dir"] + "/x.raw", "format": "vmdk"}, "format"),
                         ({"path": files["dir"] + "/x.raw", "size_bytes": 1000}, "size_bytes"),
                         ({"path": files["dir"] + "/x.raw", "image_node": "ssh://h"},
                          "image_node"),
                         ({"path": files["dir"] + "/x.raw", "chap_user": "imguser"},
                          "chap_secret")]:
        with pytest.raises(InputError) as e:
            VOLUME_IMAGE.spec_from({"volume_id": "/root/abc", **extra}, resource="export")
        assert e.value.field == field and e.value.resource == "export", extra
    with pytest.raises(InputError):
        VOLUME_IMAGE.spec_for_id(files["dir"] + "/o.raw")
    # read of a file that is not there is "gone", and delete of it succeeds
    gone = VOLUME_IMAGE.id_for(VOLUME_IMAGE.spec_from({"volume_id": "/root/abc",
                                                       "path": files["dir"] + "/none.raw"}))
    assert VOLUME_IMAGE.read(None, gone) is None
    VOLUME_IMAGE.delete(None, gone)


def test_docs_yaml_example_is_valid():
    """The first YAML stack in docs/images.md validates as written (its image is a URL,
    so no file is needed)."""
    from pathlib import Path

    import yaml

    from datera_iac.resources.base import snake

    text = (Path(__file__).resolve().parents[2] / "docs" / "images.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    doc = yaml.safe_load(block.replace("sha256:4f0b6c0e...", "sha256:" + "4f" * 32))
    for name, res in doc["resources"].items():
        kind = KINDS[res["type"]]
        spec = kind.spec_from({snake(k): v for k, v in res["properties"].items()},
                              resource=name)
        assert spec.source_image.startswith("https://")
