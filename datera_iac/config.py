"""The shared DSP configuration: every cinder.conf option of the Cinder Datera driver.

One class, :class:`DateraConfig`, holds the options under their cinder.conf names (same
meaning, defaults and units as the driver, ``cinder/volume/drivers/datera``) plus our own
connection fields (``endpoint``, ``tls_verify``, ``ca_bundle``, ``request_timeout``,
``api_version``). Every front end derives its provider configuration from it: each field
carries ``metadata`` with :data:`~datera_iac.fields.DOC` (one line, from the driver's
help), :data:`~datera_iac.fields.SENSITIVE`, :data:`~datera_iac.fields.UNIT`, :data:`~datera_iac.fields.CINDER` (is it a
cinder.conf option) and :data:`~datera_iac.fields.DEPRECATED`.

There is one spelling per option, the cinder.conf name. :meth:`DateraConfig.from_mapping`
parses strings (``"true"``, ``"120"``, ``"iops_per_gb:100,bandwidth_per_gb:200"``), falls back
to environment variables (:func:`env_name`: ``DATERA_SAN_IP``, ``DATERA_503_TIMEOUT``...) and
rejects unknown keys, naming the nearest known one. Direct construction takes typed values and
runs the same validators. Errors are :class:`~datera_iac.errors.ConfigError` and never carry
a secret.

Why ``datera_disable_profiler``: that is the driver's real option name (cinder 10 to 29); the
project brief once spelled it ``datera_disable_profiling``, which is kept as a read-only alias
property so code written against that name still reads the value.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import attrs

from datera_iac import cinder
from datera_iac.errors import ConfigError
from datera_iac.names import did_you_mean
from datera_iac.fields import CINDER, DEPRECATED, PARSE, SENSITIVE, UNIT, option
from datera_iac.secrets import MASK, SHOWN
from datera_iac.tenants import tenant_path
from datera_iac.validators import parse_bool

__all__ = [
    "CINDER",
    "DEFAULT_HTTPS_PORT",
    "DEFAULT_HTTP_PORT",
    "DEPRECATED",
    "ENV_PREFIX",
    "UNIT",
    "DateraConfig",
    "env_name",
    "parse_volume_type_defaults",
    "tenant_path",
]

log = logging.getLogger(__name__)


if TYPE_CHECKING:  # attrs.Attribute is generic only to type checkers
    _Attr = attrs.Attribute[Any]
else:
    _Attr = attrs.Attribute

ENV_PREFIX: Final = "DATERA_"
DEFAULT_HTTPS_PORT: Final = 7718
DEFAULT_HTTP_PORT: Final = 7717

_API_VERSIONS = ("2.2", "2.1")


def env_name(option: str) -> str:
    """The environment variable that can supply ``option`` (a leading ``datera_`` is not
    doubled): ``san_ip`` -> ``DATERA_SAN_IP``; ``datera_503_timeout`` ->
    ``DATERA_503_TIMEOUT``; ``tls_verify`` -> ``DATERA_TLS_VERIFY``.

    Deprecated options are not read from the environment: ``DATERA_API_VERSION`` sets
    ``api_version``, the replacement of the deprecated ``datera_api_version``, and
    ``DATERA_API_PORT`` is ignored like ``datera_api_port`` itself.
    """
    return ENV_PREFIX + option.removeprefix("datera_").upper()


# ---- string parsers (from_mapping / env); each raises ValueError with a short reason ------


def _parse_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # YAML/HCL write ports and numeric ids as numbers
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


def _parse_number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                pass
    raise ValueError("expected a number of seconds")


def _parse_api_version(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[1:] if text[:1] in ("v", "V") else text


def parse_volume_type_defaults(value: Any) -> dict[str, Any]:
    """``datera_volume_type_defaults`` as typed values (``{"iops_per_gb": 100}``).

    The option has one parser, :func:`datera_iac.cinder.parse_type_defaults` (the driver's
    rules: oslo.config ``DictOpt`` syntax, keys without ``DF:``, the ``DF:`` property
    table's types and limits); this only turns its canonical strings into ints and bools.
    Raises :class:`ConfigError` naming the key and the fix.
    """
    if isinstance(value, str) and not value.strip():
        return {}
    return {name: cinder.typed_value(name, text)
            for name, text in cinder.parse_type_defaults(value).items()}


# ---- validators: raise ConfigError naming the option, never echoing a secret ----------


def _fail(attribute: _Attr, reason: str, value: Any) -> ConfigError:
    shown = SHOWN if attribute.metadata.get(SENSITIVE) else repr(value)
    return ConfigError(f"{attribute.name}: {reason}, got {shown}")


def _opt_str(_: Any, attribute: _Attr, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise _fail(attribute, "expected a non-empty string or null", value)


def _req_str(_: Any, attribute: _Attr, value: Any) -> None:
    if value is None or value == "":
        raise ConfigError(
            f"{attribute.name}: not set (set {attribute.name}, or ${env_name(attribute.name)})"
        )
    if not isinstance(value, str):
        raise _fail(attribute, "expected a string", value)


def _bool(_: Any, attribute: _Attr, value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(attribute, "expected true or false", value)


def _seconds(minimum: float, *, strict: bool) -> Callable[[Any, _Attr, Any], None]:
    def check(_: Any, attribute: _Attr, value: Any) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or value < minimum or (strict and value == minimum):
            rel = ">" if strict else ">="
            raise _fail(attribute, f"expected a number of seconds {rel} {minimum:g}", value)

    return check


def _san_ip(_: Any, attribute: _Attr, value: Any) -> None:
    _opt_str(_, attribute, value)
    if value is not None and ("://" in value or "/" in value):
        raise _fail(attribute, "expected a host name or IP address (put URLs in endpoint)", value)


def _endpoint(_: Any, attribute: _Attr, value: Any) -> None:
    if value is None:
        return
    _opt_str(_, attribute, value)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(attribute, "expected a URL like https://10.0.0.5:7718", value)
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise _fail(attribute, "expected scheme://host[:port] without a path", value)
    try:
        _ = parts.port
    except ValueError:
        raise _fail(attribute, "the port is not a number", value) from None


def _existing_file(_: Any, attribute: _Attr, value: Any) -> None:
    if value is None:
        return
    _opt_str(_, attribute, value)
    if not os.path.isfile(value):
        raise _fail(attribute, "no such file", value)


def _api_version(_: Any, attribute: _Attr, value: Any) -> None:
    if value is not None and value not in _API_VERSIONS:
        raise _fail(attribute, "expected 2.2 or 2.1 (or null to probe the DSP)", value)


def _refresh_mode(_: Any, attribute: _Attr, value: Any) -> None:
    if value not in ("fast", "full"):
        raise _fail(attribute, "expected fast or full", value)


def _tenant_id(_: Any, attribute: _Attr, value: Any) -> None:
    if value is None:
        return
    _opt_str(_, attribute, value)
    if value.lower() == "map":
        return
    try:
        tenant_path(value)
    except ValueError as e:
        raise _fail(attribute, str(e), value) from None


def _vt_defaults(_: Any, attribute: _Attr, value: Any) -> None:
    if not isinstance(value, Mapping):
        raise _fail(attribute, "expected a mapping", value)
    for key, val in value.items():
        prop = cinder.PROPERTIES.get(str(key))
        if prop is not None and (type(val) is not prop.type):
            raise _fail(attribute, "values must already be typed (use from_mapping to parse)",
                        value)
    if parse_volume_type_defaults(dict(value)) != dict(value):
        raise _fail(attribute, "values must already be typed (use from_mapping to parse)", value)


def _opt(*, parse: Callable[[Any], Any] = _parse_str, **kw: Any) -> Any:
    return option(parse=parse, **kw)


def _flag(*, default: bool = False, **kw: Any) -> Any:
    """A boolean option, read from text by :func:`~datera_iac.validators.parse_bool`."""
    return _opt(default=default, validator=_bool, parse=parse_bool, **kw)


@attrs.frozen(kw_only=True)
class DateraConfig:
    """Connection and driver options, under their cinder.conf names.

    Build it with :meth:`from_mapping` (strings parsed, environment fallbacks, unknown keys
    rejected) or directly with typed values. Raises :class:`ConfigError`.
    """

    # -- connection (san.py options the Datera driver uses) --
    san_ip: str | None = _opt(
        doc="IP address or host name of the DSP management interface (the SAN controller).",
        validator=_san_ip,
    )
    san_login: str = _opt(
        doc="Username for the DSP (the SAN controller).", default="admin", validator=_req_str
    )
    san_password: str = _opt(
        doc="Password for the DSP (the SAN controller).", default="", sensitive=True,
        validator=_req_str,
    )
    # -- Datera driver options (cinder/volume/drivers/datera, d_opts) --
    datera_api_port: str | None = _opt(
        doc="Datera API port (deprecated, ignored: the DSP is reached on endpoint).",
        deprecated="ignored as by the cinder 29 driver; set endpoint to choose the URL",
        validator=_opt_str,
    )
    datera_api_version: str | None = _opt(
        doc="Datera API version (deprecated: the version is probed, 2.2 then 2.1).",
        deprecated="use api_version to force a version; otherwise 2.2 then 2.1 are probed",
        validator=_opt_str,
        parse=_parse_api_version,
    )
    datera_ldap_server: str | None = _opt(
        doc="LDAP authentication server (sent as remote_server at login).",
        validator=_opt_str,
    )
    datera_503_timeout: float = _opt(
        doc="Timeout for HTTP 503 retry messages (total time a call keeps retrying).",
        default=120,
        unit="seconds",
        validator=_seconds(0, strict=False),
        parse=_parse_number,
    )
    datera_503_interval: float = _opt(
        doc="Interval between 503 retries.",
        default=5,
        unit="seconds",
        validator=_seconds(0, strict=True),
        parse=_parse_number,
    )
    datera_debug: bool = _flag(doc="True to log every DSP call and its result (secrets redacted).")
    datera_debug_replica_count_override: bool = _flag(
        doc="ONLY FOR DEBUG/TESTING PURPOSES: True to set the default replica_count to 1.",
    )
    datera_tenant_id: str | None = _opt(
        doc="Datera tenant: unset -> /root; 'Map' -> /root/OS-<project id>; else /root/<value>.",
        validator=_tenant_id,
    )
    datera_enable_image_cache: bool = _flag(
        doc="Set to True to enable Datera backend image caching.",
    )
    datera_image_cache_volume_type_id: str | None = _opt(
        doc="Cinder volume type id to use for cached volumes.",
        validator=_opt_str,
    )
    datera_disable_profiler: bool = _flag(
        doc="Set to True to disable profiling (per-call timing logs) in the Datera driver.",
    )
    datera_disable_extended_metadata: bool = _flag(
        doc="Set to True to disable sending additional metadata to the Datera backend.",
    )
    datera_disable_template_override: bool = _flag(
        doc="Set to True to disable automatic template override of the size on template creates.",
    )
    datera_volume_type_defaults: dict[str, Any] = _opt(
        doc="Volume-type defaults used when a type lacks a setting, key:value,... without DF:.",
        factory=dict,
        validator=_vt_defaults,
        parse=parse_volume_type_defaults,
    )
    # -- generic cinder backend options the Datera driver reads --
    volume_backend_name: str | None = _opt(
        doc="The backend name reported to Cinder (the driver reports 'Datera' when unset).",
        validator=_opt_str,
    )
    use_chap_auth: bool = _flag(doc="Option to enable/disable CHAP authentication for targets.")
    chap_username: str | None = _opt(doc="CHAP user name.", validator=_opt_str)
    chap_password: str | None = _opt(
        doc="Password for specified CHAP account name.", sensitive=True, validator=_opt_str
    )
    driver_client_cert: str | None = _opt(
        doc="Path to a client certificate (PEM) presented to the DSP.",
        validator=_existing_file,
    )
    driver_client_cert_key: str | None = _opt(
        doc="Path to the client certificate's private key (PEM).",
        validator=_existing_file,
    )
    # -- our connection fields (not cinder.conf options) --
    endpoint: str | None = _opt(
        doc="Full DSP URL, scheme://host[:port]; default https://<san_ip>:7718.",
        cinder=False,
        validator=_endpoint,
    )
    tls_verify: bool = _flag(
        doc="Verify the DSP's TLS certificate; false is an explicit, insecure opt-out.",
        default=True,
        cinder=False,
    )
    ca_bundle: str | None = _opt(
        doc="Path to a PEM CA bundle that signs the DSP's certificate (self-signed DSPs).",
        cinder=False,
        validator=_existing_file,
    )
    request_timeout: float = _opt(
        doc="Timeout of one HTTP request (connect and read).",
        default=60,
        unit="seconds",
        cinder=False,
        validator=_seconds(0, strict=True),
        parse=_parse_number,
    )
    unreachable_timeout: float = _opt(
        doc="How long calls retry a DSP that refuses connections or whose name does not "
            "resolve before the client judges it unreachable and fails every call at once.",
        default=5,
        unit="seconds",
        cinder=False,
        validator=_seconds(0, strict=False),
        parse=_parse_number,
    )
    api_version: str | None = _opt(
        doc="Force the REST API version (2.2 or 2.1); unset probes /api_versions.",
        cinder=False,
        validator=_api_version,
        parse=_parse_api_version,
    )
    refresh: str = _opt(
        doc="How a plan reads the DSP: fast (paged lists: about ten requests for 1,000 "
            "volumes, but no volume metadata, so metadata drift is not seen) or full (each "
            "object on its own, metadata included; a request or two per volume). The "
            "engine's --refresh flag overrides it for one run.",
        default="fast",
        cinder=False,
        validator=_refresh_mode,
    )

    def __attrs_post_init__(self) -> None:
        if self.san_ip is None and self.endpoint is None:
            raise ConfigError(
                "san_ip: the DSP address is not set (set san_ip, endpoint, or DATERA_SAN_IP)"
            )
        if self.ca_bundle is not None and not self.tls_verify:
            raise ConfigError(
                "ca_bundle: given together with tls_verify=false (keep ca_bundle to verify "
                "against it, or drop it to turn verification off)"
            )
        if self.datera_enable_image_cache and not self.datera_image_cache_volume_type_id:
            raise ConfigError(
                "datera_image_cache_volume_type_id: required when datera_enable_image_cache "
                "is true (set it to the Cinder volume type id for cache volumes)"
            )
        if self.use_chap_auth and not (self.chap_username and self.chap_password):
            raise ConfigError(
                "chap_username: use_chap_auth is true but chap_username or chap_password is "
                "not set (set both, or set use_chap_auth to false)"
            )
        if (self.driver_client_cert_key is not None) and self.driver_client_cert is None:
            raise ConfigError(
                "driver_client_cert: driver_client_cert_key is set without the certificate"
            )
        for f in attrs.fields(DateraConfig):
            reason = f.metadata.get(DEPRECATED)
            if reason and getattr(self, f.name) is not None:
                msg = f"{f.name} is deprecated: {reason}"
                warnings.warn(msg, DeprecationWarning, stacklevel=3)
                log.warning(msg)

    # ---- derived values ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The DSP URL without a version: ``endpoint`` or ``https://<san_ip>:7718``."""
        if self.endpoint is not None:
            return self.endpoint.rstrip("/")
        host = str(self.san_ip)
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return f"https://{host}:{DEFAULT_HTTPS_PORT}"

    @property
    def verify(self) -> bool | str:
        """The value for requests' ``verify``: the CA bundle path, True, or False."""
        if self.ca_bundle is not None:
            return self.ca_bundle
        return self.tls_verify

    @property
    def client_cert(self) -> tuple[str, str] | str | None:
        """The value for requests' ``cert``."""
        if self.driver_client_cert is None:
            return None
        if self.driver_client_cert_key is None:
            return self.driver_client_cert
        return (self.driver_client_cert, self.driver_client_cert_key)

    @property
    def datera_disable_profiling(self) -> bool:
        """Read-only alias of :attr:`datera_disable_profiler` (the cinder.conf name)."""
        return self.datera_disable_profiler

    @property
    def tenant_mode(self) -> str:
        """``"none"``, ``"map"`` or ``"name"`` (how :meth:`tenant_for` resolves)."""
        if self.datera_tenant_id is None:
            return "none"
        return "map" if self.datera_tenant_id.lower() == "map" else "name"

    def tenant_for(self, project_id: str | None = None) -> str:
        """The tenant path for a project, by the driver's ``datera_tenant_id`` rules.

        None -> ``/root``; ``Map`` (any case) -> ``/root/OS-<project_id>``; any other
        value -> ``/root/<value>`` (``/root/x`` stays ``/root/x``). We do not copy the
        driver's quirk of mapping every value that contains "root" to ``/root``.

        Raises :class:`ConfigError` for ``Map`` without a project id.
        """
        mode = self.tenant_mode
        if mode == "none":
            return "/root"
        if mode == "map":
            if not project_id:
                raise ConfigError(
                    "datera_tenant_id: is 'Map', which needs an OpenStack project id "
                    "(give the resource a project id, or set datera_tenant_id to a tenant name)"
                )
            return tenant_path(f"OS-{project_id}")
        return tenant_path(str(self.datera_tenant_id))

    def redacted(self) -> dict[str, Any]:
        """All options as plain data with secrets replaced by the mask (for display)."""
        out: dict[str, Any] = {}
        for f in attrs.fields(DateraConfig):
            value = getattr(self, f.name)
            if f.metadata.get(SENSITIVE) and value:
                value = MASK
            out[f.name] = dict(value) if isinstance(value, dict) else value
        return out

    # ---- construction from plain data ---------------------------------------------

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """Every option name, in declaration order."""
        return tuple(f.name for f in attrs.fields(cls))

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        use_env: bool = True,
    ) -> DateraConfig:
        """Build a config from cinder.conf-named keys, parsing strings, with env fallbacks.

        A key given in ``data`` (not None) wins; else the environment variable
        :func:`env_name` (non-empty; not for deprecated options) is used; else the default.
        ``env`` defaults to ``os.environ``. Raises :class:`ConfigError` for unknown keys (naming the nearest
        known one), unparsable values and invalid combinations.
        """
        data = dict(data or {})
        environ = os.environ if env is None else env
        names = cls.option_names()
        unknown = sorted(k for k in data if k not in names)
        if unknown:
            key = unknown[0]
            more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
            raise ConfigError(f"unknown option {key!r}{more}{did_you_mean(key, names)}")
        kwargs: dict[str, Any] = {}
        for f in attrs.fields(cls):
            raw = data.get(f.name)
            source = f.name
            if raw is None and use_env and not f.metadata.get(DEPRECATED):
                env_value = environ.get(env_name(f.name))
                if env_value not in (None, ""):
                    raw, source = env_value, f"{f.name} (from ${env_name(f.name)})"
            if raw is None:
                continue
            try:
                kwargs[f.name] = f.metadata[PARSE](raw)
            except ConfigError:
                raise
            except ValueError as e:
                shown = SHOWN if f.metadata.get(SENSITIVE) else repr(raw)
                raise ConfigError(f"{source}: {e}, got {shown}") from None
        return cls(**kwargs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DateraConfig:
        """Build a config from environment variables only."""
        return cls.from_mapping({}, env=env)
