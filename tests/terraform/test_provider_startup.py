"""The provider's start-up (issue 21): Terraform launches it 2-3 times per command and
waits for each go-plugin handshake, so nothing beyond gRPC and the plugin protocol's
messages is imported before the handshake line; the kinds, the ``tf`` framework and the
DSP client load afterwards, while Terraform connects. A warm start (certificate cached)
does not import ``cryptography`` either. The time itself is printed by
bench/bench_terraform.py (handshake <= 0.1 s), not asserted here."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from tfharness import REPO

PROBE = """
import json, os, sys
out = sys.argv[1]
real = sys.stdout.write
def write(s):
    if s.startswith("1|6|unix|"):
        with open(out, "w") as f:
            json.dump({"modules": sorted(m for m, v in sys.modules.items()
                                         if type(v).__name__ != "DeferredModule"), "line": s}, f)
        os._exit(0)
    return real(s)
sys.stdout.write = write
from datera_iac_tf.main import main
main()
"""

#: what a handshake may need: our launcher modules, gRPC, protobuf and the protocol's messages
ALLOWED_OURS = {"datera_iac_tf", "datera_iac_tf.main", "datera_iac_tf._serve", "datera_iac",
                "datera_iac.files", "datera_iac._launcher"}
FORBIDDEN = ("datera_iac.resources", "datera_iac.dsp", "datera_iac.config", "tf.provider",
             "tf.iface", "tf.schema", "requests", "attrs", "cattrs", "yaml",
             "grpc.aio", "asyncio")  # stand-ins until used (datera_iac._launcher.defer)


def _handshake(tmp_path: Path, cache: Path) -> dict:
    out = tmp_path / "modules.json"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TF_")},
           "TF_PLUGIN_MAGIC_COOKIE": "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
           "PLUGIN_PROTOCOL_VERSIONS": "6", "XDG_CACHE_HOME": str(cache),
           "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", PROBE, str(out)], env=env, timeout=60, check=True,
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def test_nothing_beyond_grpc_and_the_protocol_before_the_handshake(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _handshake(tmp_path, cache)  # generates and caches the certificate
    assert first["line"].startswith("1|6|unix|") and first["line"].split("|")[5].strip()
    cert = cache / "datera-iac" / "tf-provider-tls.json"
    assert stat.S_IMODE(cert.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.parent.stat().st_mode) == 0o700
    warm = _handshake(tmp_path, cache)
    assert warm["line"].split("|")[5] == first["line"].split("|")[5]  # the cached certificate
    mods = warm["modules"]
    ours = {m for m in mods if m.split(".")[0] in ("datera_iac_tf", "datera_iac")}
    assert ours <= ALLOWED_OURS, sorted(ours - ALLOWED_OURS)
    early = [m for m in mods if m.startswith(FORBIDDEN) or m.startswith("cryptography")]
    assert not early, early
    assert "grpc" in mods and "tf.gen.tfplugin_pb2" in mods


def test_a_module_left_for_later_loads_on_first_use(monkeypatch) -> None:
    from datera_iac._launcher import DeferredModule

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    lazy = DeferredModule("colorsys")
    monkeypatch.setitem(sys.modules, "colorsys", lazy)
    assert lazy.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    import colorsys

    assert colorsys is not lazy and sys.modules["colorsys"] is colorsys


def test_an_expired_or_damaged_certificate_is_replaced(tmp_path: Path) -> None:
    from datera_iac_tf._serve import server_certificate

    path = tmp_path / "tls.json"
    path.write_text("{not json")
    fresh = server_certificate(path)
    assert json.loads(path.read_text())["cert_der"] == fresh["cert_der"]
    path.write_text(json.dumps({**fresh, "not_after": 0}))
    assert server_certificate(path)["cert_der"] != fresh["cert_der"]


def test_the_schema_answer_is_cached_per_code_version(tmp_path: Path, monkeypatch) -> None:
    """The first launch per command is often asked only for the schema and the identity
    schemas: served from the cache of this code version, it never builds the provider; a changed source file (here
    the module that builds the provider) is another version."""
    from tf.gen import tfplugin_pb2 as pb

    from datera_iac_tf import _serve
    from datera_iac_tf.servicer import Servicer

    (tmp_path / "mods").mkdir()
    mod = tmp_path / "mods" / "tfprov_cached_build.py"
    mod.write_text("from tfprov_toy import toy_provider\n\n\ndef build():\n"
                   "    return toy_provider()\n")
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    import tfprov_cached_build

    app = tfprov_cached_build.build
    path = _serve._schema_cache(app)
    assert path is not None and path == _serve._schema_cache(app)
    built = []

    def build() -> Servicer:
        built.append(1)
        return Servicer(app())

    real = _serve._LazyServicer(build, lambda: path).GetProviderSchema(
        pb.GetProviderSchema.Request(), None)
    assert built == [1] and real.resource_schemas and path.exists()
    assert real.server_capabilities.get_provider_schema_optional

    def fail() -> Servicer:
        raise AssertionError("built")

    cached = _serve._LazyServicer(fail, lambda: path).GetProviderSchema(
        pb.GetProviderSchema.Request(), None)
    assert cached == real
    assert cached.SerializeToString() == real.SerializeToString()  # appended fields too

    # the identity schemas, asked on the same launch, the same way
    identity = _serve._LazyServicer(build, lambda: path).GetResourceIdentitySchemas(None, None)
    assert built == [1, 1]
    again = _serve._LazyServicer(fail, lambda: path).GetResourceIdentitySchemas(None, None)
    assert again.SerializeToString() == identity.SerializeToString()
    assert {p.name.split("-")[1] for p in path.parent.glob("tf-*.pb")} == {"schema", "identity"}

    st = mod.stat()
    os.utime(mod, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert _serve._schema_cache(app) != path


def test_stop_provider_is_answered_without_building_the_provider() -> None:
    """StopProvider ends the serve loop (as the controller's Shutdown does) and needs no
    provider: a launch asked only for the schema is not built just to be stopped."""
    from tf.gen import tfplugin_pb2 as pb

    from datera_iac_tf import _serve

    def fail() -> None:
        raise AssertionError("built")

    lazy = _serve._LazyServicer(fail)
    assert not lazy.stopped
    assert lazy.StopProvider(pb.StopProvider.Request(), None) == pb.StopProvider.Response()
    assert lazy.stopped


VALIDATE_ONLY = """
import sys
from tf.gen import tfplugin_pb2 as pb
from tf.utils import to_dynamic_value
from datera_iac_tf.provider import DateraProvider
from datera_iac_tf.servicer import Servicer

svc = Servicer(DateraProvider())
cfg = {f.name: None for f in svc.app.adapters["datera_volume"].schema.fields()}
cfg.update(name="vol-1", size=1, tenant="/root")
r = svc.ValidateResourceConfig(pb.ValidateResourceConfig.Request(
    type_name="datera_volume", config=to_dynamic_value(cfg)), None)
assert not r.diagnostics, r.diagnostics
print(sorted(m for m in sys.modules if m.startswith(("requests", "datera_iac.dsp", "urllib3"))))
"""


def test_a_launch_that_only_validates_loads_no_dsp_client() -> None:
    """Terraform's second launch per command only validates the configuration: the kinds
    load, the DSP client (requests, urllib3, the config) does not (~0.1 s of its CPU)."""
    out = subprocess.run([sys.executable, "-c", VALIDATE_ONLY], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    assert out.stdout.strip() == "[]", out.stdout
