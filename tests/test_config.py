"""DateraConfig: cinder.conf names, defaults, parsing, env fallbacks and config errors."""

from __future__ import annotations

import logging
import warnings

import attrs
import pytest

from datera_iac.config import (
    CINDER,
    DEPRECATED,
    UNIT,
    DateraConfig,
    env_name,
    parse_volume_type_defaults,
)
from datera_iac.errors import ConfigError
from datera_iac.resources.base import DOC, SENSITIVE

BASE = {"san_ip": "10.0.0.5", "san_password": "s3cret-pw"}

#: The Datera driver's own options (cinder 29 d_opts) plus the san/chap options it reads.
CINDER_OPTIONS = {
    "san_ip": None,
    "san_login": "admin",
    "san_password": "",
    "datera_api_port": None,
    "datera_api_version": None,
    "datera_ldap_server": None,
    "datera_503_timeout": 120,
    "datera_503_interval": 5,
    "datera_debug": False,
    "datera_debug_replica_count_override": False,
    "datera_tenant_id": None,
    "datera_enable_image_cache": False,
    "datera_image_cache_volume_type_id": None,
    "datera_disable_profiler": False,
    "datera_disable_extended_metadata": False,
    "datera_disable_template_override": False,
    "datera_volume_type_defaults": {},
    "volume_backend_name": None,
    "use_chap_auth": False,
    "chap_username": None,
    "chap_password": None,
    "driver_client_cert": None,
    "driver_client_cert_key": None,
}
OWN_OPTIONS = {
    "endpoint": None,
    "tls_verify": True,
    "ca_bundle": None,
    "request_timeout": 60,
    "unreachable_timeout": 5,
    "api_version": None,
    "refresh": "fast",
}


def make(**kw):
    return DateraConfig.from_mapping({**BASE, **kw}, env={})


def test_every_option_with_cinder_default():
    """Every cinder.conf option exists under its cinder name with the driver's default."""
    fields = {f.name: f for f in attrs.fields(DateraConfig)}
    assert set(fields) == set(CINDER_OPTIONS) | set(OWN_OPTIONS)
    for name, default in {**CINDER_OPTIONS, **OWN_OPTIONS}.items():
        f = fields[name]
        got = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default
        assert got == default, name
        assert f.metadata[CINDER] is (name in CINDER_OPTIONS), name


def test_metadata_doc_unit_sensitive():
    """Each field has a one-line doc; units on durations; passwords are sensitive."""
    for f in attrs.fields(DateraConfig):
        doc = f.metadata[DOC]
        assert doc and "\n" not in doc and doc.endswith("."), f.name
        assert f.metadata[SENSITIVE] is (f.name in {"san_password", "chap_password"}), f.name
    fields = attrs.fields(DateraConfig)
    assert fields.datera_503_timeout.metadata[UNIT] == "seconds"
    assert fields.datera_503_interval.metadata[UNIT] == "seconds"
    assert fields.request_timeout.metadata[UNIT] == "seconds"
    assert fields.datera_api_port.metadata[DEPRECATED]
    assert fields.datera_api_version.metadata[DEPRECATED]


def test_password_never_in_repr_or_errors():
    """repr, redacted() and error messages never show a password."""
    cfg = make(use_chap_auth="true", chap_username="chapuser", chap_password="chap-secret-1")
    assert "s3cret-pw" not in repr(cfg) and "chap-secret-1" not in repr(cfg)
    red = cfg.redacted()
    assert red["san_password"] == "***" and red["chap_password"] == "***"
    assert red["san_login"] == "admin"
    with pytest.raises(ConfigError) as e:
        DateraConfig(san_ip="h", san_password=12345)  # type: ignore[arg-type]
    assert str(e.value) == "san_password: expected a string, got (sensitive)"


def test_defaults_and_derived_values():
    """Endpoint defaults to https on 7718; TLS verification is on by default."""
    cfg = make()
    assert cfg.base_url == "https://10.0.0.5:7718"
    assert cfg.verify is True
    assert cfg.datera_503_interval == 5 and cfg.datera_503_timeout == 120
    assert cfg.datera_disable_profiling is False
    assert make(san_ip="fd00::5").base_url == "https://[fd00::5]:7718"
    assert make(endpoint="http://127.0.0.1:9999/").base_url == "http://127.0.0.1:9999"
    assert make(tls_verify="false").verify is False


def test_ca_bundle(tmp_path):
    """ca_bundle must exist, becomes requests' verify, and conflicts with tls_verify=false."""
    pem = tmp_path / "ca.pem"
    pem.write_text("x")
    assert make(ca_bundle=str(pem)).verify == str(pem)
    with pytest.raises(ConfigError, match=r"^ca_bundle: no such file, got '/nope.pem'$"):
        make(ca_bundle="/nope.pem")
    with pytest.raises(ConfigError, match="ca_bundle: given together with tls_verify=false"):
        make(ca_bundle=str(pem), tls_verify=False)


def test_parsing_strings():
    """Strings from cinder.conf / env are parsed into typed values."""
    cfg = make(
        datera_503_timeout="2.5", datera_503_interval="1", datera_debug="True",
        datera_disable_profiler="yes", request_timeout="7", api_version="v2.1",
    )
    assert cfg.datera_503_timeout == 2.5 and cfg.datera_503_interval == 1
    assert cfg.datera_debug is True and cfg.datera_disable_profiler is True
    assert cfg.request_timeout == 7 and cfg.api_version == "2.1"
    with pytest.warns(DeprecationWarning):
        assert make(datera_api_port=7717).datera_api_port == "7717"  # YAML writes a number


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"datera_debgu": True}, "unknown option 'datera_debgu' (did you mean 'datera_debug'?)"),
        (
            {"datera_disable_profiling": True},
            "unknown option 'datera_disable_profiling' (did you mean 'datera_disable_profiler'?)",
        ),
        ({"datera_503_timeout": "soon"}, "datera_503_timeout: expected a number of seconds, got 'soon'"),
        ({"datera_503_interval": 0}, "datera_503_interval: expected a number of seconds > 0, got 0"),
        ({"datera_503_timeout": -1}, "datera_503_timeout: expected a number of seconds >= 0, got -1"),
        ({"datera_debug": "maybe"}, "datera_debug: expected true or false, got 'maybe'"),
        ({"api_version": "3"}, "api_version: expected 2.2 or 2.1 (or null to probe the DSP), got '3'"),
        ({"endpoint": "ftp://x"}, "endpoint: expected a URL like https://10.0.0.5:7718, got 'ftp://x'"),
        (
            {"endpoint": "https://x:7718/v2.2"},
            "endpoint: expected scheme://host[:port] without a path, got 'https://x:7718/v2.2'",
        ),
        (
            {"san_ip": "https://10.0.0.5"},
            "san_ip: expected a host name or IP address (put URLs in endpoint), got 'https://10.0.0.5'",
        ),
        (
            {"datera_tenant_id": "bad name"},
            "datera_tenant_id: tenant name segment 'bad name' may hold only letters, digits, "
            "'_', '-', '.', got 'bad name'",
        ),
        (
            {"datera_enable_image_cache": True},
            "datera_image_cache_volume_type_id: required when datera_enable_image_cache is true "
            "(set it to the Cinder volume type id for cache volumes)",
        ),
        (
            {"use_chap_auth": True, "chap_username": "u"},
            "chap_username: use_chap_auth is true but chap_username or chap_password is not set "
            "(set both, or set use_chap_auth to false)",
        ),
        ({"san_password": None}, "san_password: not set (set san_password, or $DATERA_SAN_PASSWORD)"),
        (
            {"san_ip": None},
            "san_ip: the DSP address is not set (set san_ip, endpoint, or DATERA_SAN_IP)",
        ),
    ],
)
def test_bad_config_errors(kw, message):
    """Bad values raise ConfigError naming the option and the fix."""
    with pytest.raises(ConfigError) as e:
        make(**kw)
    assert str(e.value) == message


def test_volume_type_defaults():
    """key:value,... without DF: is parsed and typed through the one parser of the option
    (cinder.parse_type_defaults, the driver's rules); each error is one whole message."""
    cfg = make(datera_volume_type_defaults="iops_per_gb:100, bandwidth_per_gb:200,round_robin:True")
    assert cfg.datera_volume_type_defaults == {
        "iops_per_gb": 100, "bandwidth_per_gb": 200, "round_robin": True,
    }
    assert parse_volume_type_defaults({"replica_count": "2", "placement_mode": "all_flash"}) == {
        "replica_count": 2, "placement_mode": "all_flash",
    }
    assert parse_volume_type_defaults("") == {}
    # above the DSP's maximum: the driver has no maximum, the DSP rejects it at create
    assert make(datera_volume_type_defaults="total_iops_max:10000000").datera_volume_type_defaults \
        == {"total_iops_max": 10_000_000}
    cases = {
        "DF:iops_per_gb:100": "key 'DF:iops_per_gb' has a DF: prefix (write 'iops_per_gb'; the "
        "driver reads this option's keys without DF: and would ignore this one)",
        "iops_per_gbb:1": "unknown key 'iops_per_gbb' (did you mean 'iops_per_gb'?)",
        "replica_count:9": "key 'replica_count': 9 is above the DSP's maximum 5; replica_count "
        "must be an integer 1..5",
        "total_iops_max:-3": "key 'total_iops_max': -3 is below the minimum 0; total_iops_max "
        "must be an integer 0..10000000",
        "total_iops_max:10000001": "key 'total_iops_max': 10000001 is above the DSP's maximum "
        "10000000; total_iops_max must be an integer 0..10000000",
        "placement_mode:fast": "key 'placement_mode': 'fast' is not a placement mode; "
        "placement_mode must be one of hybrid, single_flash, all_flash",
        "iops_per_gb": "'iops_per_gb' is not key:value (write e.g. "
        "iops_per_gb:100,bandwidth_per_gb:200)",
        "iops_per_gb:1,iops_per_gb:2": "key 'iops_per_gb' is given twice (oslo.config refuses "
        "a duplicate key); keep one",
        "round_robin:true": "key 'round_robin': 'true' is not True or False (the driver "
        "compares with the exact string 'True', so 'true' would mean False); write True or False",
    }
    for text, msg in cases.items():
        with pytest.raises(ConfigError) as e:
            make(datera_volume_type_defaults=text)
        assert str(e.value) == "datera_volume_type_defaults: " + msg, text


def test_env_fallbacks():
    """DATERA_<OPTION> fills what the mapping lacks; the mapping wins; empty env is unset."""
    env = {
        "DATERA_SAN_IP": "10.1.1.1",
        "DATERA_SAN_LOGIN": "ops",
        "DATERA_SAN_PASSWORD": "from-env",
        "DATERA_503_TIMEOUT": "30",
        "DATERA_TENANT_ID": "Map",
        "DATERA_TLS_VERIFY": "0",
        "DATERA_LDAP_SERVER": "",
    }
    cfg = DateraConfig.from_mapping({"san_login": "explicit"}, env=env)
    assert (cfg.san_ip, cfg.san_login, cfg.san_password) == ("10.1.1.1", "explicit", "from-env")
    assert cfg.datera_503_timeout == 30 and cfg.datera_tenant_id == "Map"
    assert cfg.tls_verify is False and cfg.datera_ldap_server is None
    assert DateraConfig.from_env(env).san_login == "ops"
    assert env_name("datera_503_interval") == "DATERA_503_INTERVAL"
    assert env_name("endpoint") == "DATERA_ENDPOINT"
    with pytest.raises(ConfigError, match=r"^datera_503_timeout \(from \$DATERA_503_TIMEOUT\): "):
        DateraConfig.from_mapping(BASE, env={"DATERA_503_TIMEOUT": "x"})
    assert DateraConfig.from_mapping(BASE, env=env, use_env=False).datera_503_timeout == 120


def test_env_names_unique():
    """Each live option has its own environment variable; deprecated ones read none
    (DATERA_API_VERSION is api_version, the replacement of datera_api_version)."""
    live = [f.name for f in attrs.fields(DateraConfig) if not f.metadata[DEPRECATED]]
    assert len({env_name(n) for n in live}) == len(live)
    cfg = DateraConfig.from_mapping(BASE, env={"DATERA_API_VERSION": "2.1", "DATERA_API_PORT": "1"})
    assert (cfg.api_version, cfg.datera_api_version, cfg.datera_api_port) == ("2.1", None, None)


def test_env_default_is_os_environ(monkeypatch):
    """Without an explicit env, os.environ is read."""
    monkeypatch.setenv("DATERA_SAN_IP", "192.0.2.7")
    monkeypatch.setenv("DATERA_SAN_PASSWORD", "pw-from-os")
    assert DateraConfig.from_mapping({}).san_ip == "192.0.2.7"


def test_deprecated_options_warn(caplog):
    """datera_api_port / datera_api_version are accepted with a DeprecationWarning and a log line."""
    with caplog.at_level(logging.WARNING, logger="datera_iac.config"):
        with pytest.warns(DeprecationWarning) as record:
            cfg = make(datera_api_port="7717", datera_api_version="v2")
    assert sorted(str(w.message).split(" is ")[0] for w in record) == [
        "datera_api_port", "datera_api_version",
    ]
    assert cfg.datera_api_port == "7717" and cfg.datera_api_version == "2"
    assert cfg.base_url == "https://10.0.0.5:7718"  # ignored, as by the cinder 29 driver
    assert any("datera_api_version is deprecated" in r.message for r in caplog.records)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make()  # no warning when unset


@pytest.mark.parametrize(
    ("tenant_id", "project", "expected"),
    [
        (None, None, "/root"),
        (None, "abc", "/root"),
        ("Map", "0123abcd", "/root/OS-0123abcd"),
        ("map", "p1", "/root/OS-p1"),
        ("MAP", "p1", "/root/OS-p1"),
        ("xyz", None, "/root/xyz"),
        ("/root/xyz", None, "/root/xyz"),
        ("root/xyz", None, "/root/xyz"),
        ("rooted", None, "/root/rooted"),
        ("/root", None, "/root"),
    ],
)
def test_tenant_for(tenant_id, project, expected):
    """datera_tenant_id None/Map/name rules; /root/x stays /root/x (no 'contains root' quirk)."""
    assert make(datera_tenant_id=tenant_id).tenant_for(project) == expected


def test_tenant_for_map_needs_project():
    """Map without a project id is a ConfigError saying what to do."""
    with pytest.raises(ConfigError, match="datera_tenant_id: is 'Map', which needs"):
        make(datera_tenant_id="Map").tenant_for()


def test_direct_construction_validates():
    """Typed construction runs the same validators and is frozen."""
    cfg = DateraConfig(san_ip="h", san_password="p", datera_503_timeout=1.5)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        cfg.san_ip = "x"  # type: ignore[misc]
    with pytest.raises(ConfigError, match="datera_debug: expected true or false, got 'yes'"):
        DateraConfig(san_ip="h", san_password="p", datera_debug="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="values must already be typed"):
        DateraConfig(san_ip="h", san_password="p", datera_volume_type_defaults={"round_robin": "true"})


def test_docs_table_lists_every_option():
    """docs/configuration.md has one table row per option, with its default."""
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    rows: dict[str, str] = {}
    for line in text.split("## Options", 1)[1].split("## Details", 1)[0].splitlines():
        if line.startswith("| `"):
            rows[line.split("|")[1].strip().strip("`")] = line
    for f in attrs.fields(DateraConfig):
        assert f.name in rows, f.name
        assert f.metadata[DOC].replace("|", "\\|") in rows[f.name], f.name
        env = "— (see api_version)" if f.name == "datera_api_version" else (
            "—" if f.metadata[DEPRECATED] else f"`{env_name(f.name)}`")
        assert rows[f.name].endswith(f"| {env} |"), f.name


def test_refresh_is_fast_or_full():
    from datera_iac.config import DateraConfig
    from datera_iac.errors import ConfigError

    base = {"endpoint": "https://dsp:7718", "san_login": "a", "san_password": "p"}
    assert DateraConfig.from_mapping(base, use_env=False).refresh == "fast"
    assert DateraConfig.from_mapping({**base, "refresh": "full"}, use_env=False).refresh == "full"
    with pytest.raises(ConfigError, match="refresh.*fast or full"):
        DateraConfig.from_mapping({**base, "refresh": "slow"}, use_env=False)
