"""The ``datera`` Terraform provider: resources and data sources derived from the core.

:class:`DateraProvider` implements ``tf.iface.Provider``. Its configuration block is
:class:`datera_iac.config.DateraConfig` (every field optional in HCL; ``from_mapping`` applies
the ``DATERA_*`` environment fallbacks and validates), its resources are the registered
kinds (``datera_iac.resources.KINDS``), one :class:`datera_iac_tf.resources.KindResource` each.

The DSP client is created once per provider process, at ``ConfigureProvider``; a resource
operation gets a :class:`~datera_iac.resources.base.Context` with that client, the config,
the node command runner and the resource's timeouts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import attrs
from tf.iface import DataSource, Provider, Resource
from tf.schema import Schema
from tf.utils import Diagnostics

from datera_iac.errors import ConfigError
from datera_iac.resources.base import SENSITIVE, Context, Kind, Timeouts
from datera_iac_tf.adapter import KindAdapter, has_unknown
from datera_iac.resources.batching import DeleteChecks, SharedListings
from datera_iac_tf.diagnostics import report
from datera_iac_tf.resources import PREFIX, resource_class
from datera_iac_tf.schema import provider_schema

__all__ = ["PROVIDER_ADDRESS", "PROVIDER_VERSION", "DateraProvider", "default_kinds"]

#: The provider's source address. Users write ``source = "datera/datera"``.
PROVIDER_ADDRESS = "registry.terraform.io/datera/datera"
PROVIDER_VERSION = "0.1.0"

log = logging.getLogger("datera_iac_tf")

_KIND_ORDER = ("Tenant", "VolumeType", "Volume", "Snapshot", "NodeAttachment")


def default_kinds() -> list[Kind[Any, Any]]:
    """Every registered kind, once each, in a stable order."""
    import datera_iac.resources  # noqa: F401 - registers the kinds that exist
    from datera_iac.resources.base import KINDS

    seen: dict[int, Kind[Any, Any]] = {}
    for k in KINDS.values():
        seen.setdefault(id(k), k)
    order = {n: i for i, n in enumerate(_KIND_ORDER)}
    return sorted(seen.values(), key=lambda k: (order.get(k.name, 99), k.name))


class DateraProvider(Provider):
    """tf Provider over the resource core.

    ``kinds``, ``config_cls``, ``client_factory`` and ``runner`` default to the real ones;
    tests pass a toy kind or a recording client.
    """

    def __init__(
        self,
        kinds: Iterable[Kind[Any, Any]] | None = None,
        *,
        config_cls: type | None = None,
        client_factory: Callable[[Any], Any] | None = None,
        runner: Any = None,
        data_sources: Iterable[type[DataSource]] | None = None,
    ) -> None:
        self._kinds = list(kinds) if kinds is not None else default_kinds()
        self.adapters = {k.tf_type: KindAdapter(k) for k in self._kinds}
        #: one refresh wave's list calls, shared by every kind's read batcher; the
        #: servicer drops them around each apply (:meth:`SharedListings.writing`)
        self.listings = SharedListings()
        for a in self.adapters.values():
            if a.batcher is not None:
                a.batcher.listings = self.listings
        #: the listings an apply's delete checks share (``KindAdapter.delete``); the
        #: servicer marks every apply with :meth:`DeleteChecks.writing`
        self.delete_checks = DeleteChecks(self._kinds)
        self._resource_classes = [resource_class(a) for a in self.adapters.values()]
        self._config_cls = config_cls
        self._client_factory = client_factory
        self._runner = runner
        self._data_sources = list(data_sources) if data_sources is not None else None
        self.config: Any = None
        self.client: Any = None
        self._lock = threading.Lock()

    # ---- tf.iface.Provider ------------------------------------------------------------

    def get_model_prefix(self) -> str:
        return PREFIX

    def full_name(self) -> str:
        return PROVIDER_ADDRESS

    @property
    def config_cls(self) -> type:
        if self._config_cls is None:
            from datera_iac.config import DateraConfig

            self._config_cls = DateraConfig
        return self._config_cls

    def _env_name(self) -> Callable[[str], str] | None:
        import sys

        mod = sys.modules.get(self.config_cls.__module__)
        return getattr(mod, "env_name", None)

    def get_provider_schema(self, diags: Diagnostics) -> Schema:
        return provider_schema(self.config_cls, self._env_name())

    def validate_config(self, diags: Diagnostics, config: dict) -> None:
        """Nothing to check before configure: every value may come from the environment."""

    def configure_provider(self, diags: Diagnostics, config: dict) -> None:
        """Build the DateraConfig (HCL values win over ``DATERA_*`` variables) and the
        client. Errors name the option; the password never appears."""
        values = {k: v for k, v in (config or {}).items() if v is not None}
        if any(has_unknown(v) for v in values.values()):
            # Terraform configures before values from other resources are known (a plan
            # that creates them); planning needs no DSP, and a read or apply will be
            # configured again with known values.
            log.debug("provider configuration has unknown values; deferring")
            return
        try:
            self.configure(values)
        except Exception as e:  # noqa: BLE001
            report(diags, e, what="provider configuration", secrets=self.secrets(config))

    def configure(self, values: dict[str, Any]) -> None:
        """Configure from plain values (also used by tests and the bench)."""
        from_mapping = getattr(self.config_cls, "from_mapping", None)
        cfg = from_mapping(values) if from_mapping else self.config_cls(**values)
        factory = self._client_factory
        if factory is None:
            from datera_iac.dsp import DspClient

            factory = DspClient
        with self._lock:
            self.config = cfg
            self.client = factory(cfg)

    def get_resources(self) -> list[type[Resource]]:
        return list(self._resource_classes)

    def get_functions(self) -> list[type[Any]]:
        from datera_iac_tf.functions import FUNCTIONS

        return list(FUNCTIONS)

    def get_data_sources(self) -> list[type[DataSource]]:
        if self._data_sources is None:
            from datera_iac_tf.data_sources import data_source_classes

            self._data_sources = data_source_classes(self)
        return list(self._data_sources)

    # ---- for resources and data sources -------------------------------------------------

    def context(self, timeouts: Timeouts | None = None) -> Context:
        """A Context for one operation. Raises ConfigError before ConfigureProvider."""
        if self.client is None:
            raise ConfigError(
                "the datera provider is not configured (a provider block, or DATERA_SAN_IP / "
                "DATERA_SAN_LOGIN / DATERA_SAN_PASSWORD in the environment)"
            )
        return Context(
            client=self.client,
            config=self.config,
            runner=self._runner if self._runner is not None else _default_runner(),
            timeouts=timeouts or Timeouts(),
            log=logging.getLogger("datera_iac"),
        )

    def secrets(self, config: dict | None = None) -> list[str]:
        """Sensitive configuration values, to scrub from any message."""
        out: list[str] = []
        source: Any = config if config is not None else self.config
        if source is None:
            return out
        for f in attrs.fields(self.config_cls):
            if not f.metadata.get(SENSITIVE):
                continue
            v = source.get(f.name) if isinstance(source, dict) else getattr(source, f.name, None)
            if isinstance(v, str) and v:
                out.append(v)
        return out

    def kind(self, tf_type: str) -> Kind[Any, Any]:
        return self.adapters[tf_type].kind


def _default_runner() -> Any:
    """The node helper's local runner (NodeAttachment needs one); None if not built."""
    try:
        from datera_iac.node.runner import LocalRunner
    except ImportError:  # pragma: no cover - the node helper is optional
        return None
    return LocalRunner()

