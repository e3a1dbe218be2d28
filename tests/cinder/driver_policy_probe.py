"""Runs INSIDE the cinder venv (cinder 29.0.0 + dfs-sdk 1.2.27), never in the project's
interpreter: it does not import datera_iac.

Reads cases from stdin as JSON ``[{"specs": {...}, "qos": {...} | null, "defaults":
"k:v,...", "debug": bool, "size": int}, ...]`` and writes, for each, what the real driver computes:
``{"policies": ...}`` from ``datera_common._get_policies_for_volume_type`` over
``DateraDriver._init_vendor_properties`` (with ``datera_volume_type_defaults`` parsed by
oslo.config's DictOpt type), and ``{"qos": ...}`` from ``DateraApi._update_qos_2_2``
(the performance_policy it would POST). The driver's methods run unchanged on a stub
``self`` that records the POST instead of sending it.
"""

import collections
import collections.abc
import json
import sys

# dfs-sdk 1.2.27 still imports these names from ``collections`` (removed in Python 3.10).
for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable", "Callable"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from dfs_sdk import exceptions as dexc  # noqa: E402
from oslo_config import types  # noqa: E402

from cinder.volume import driver as base_driver
from cinder.volume.drivers.datera import datera_api22 as api22
from cinder.volume.drivers.datera import datera_common as datc
from cinder.volume.drivers.datera import datera_iscsi


class _Conf(dict):
    def get(self, key, default=None):  # the driver calls configuration.get(...)
        return dict.get(self, key, default)


class _PerfPolicy:
    def __init__(self):
        self.created = None

    def get(self, tenant=None):
        raise dexc.ApiNotFoundError("no performance policy")

    def create(self, tenant=None, **kwargs):
        self.created = kwargs


class _Dvol:
    def __init__(self):
        self.performance_policy = _PerfPolicy()


class _Driver:
    _set_property = base_driver.BaseVD._set_property
    _init_vendor_properties = datera_iscsi.DateraDriver._init_vendor_properties
    _update_qos_2_2 = api22.DateraApi._update_qos_2_2

    def __init__(self, defaults, debug):
        self.defaults = defaults
        self.configuration = _Conf(datera_debug_replica_count_override=debug)
        self.dvol = _Dvol()

    def get_tenant(self, project_id):
        return None

    def cvol_to_dvol(self, volume, tenant=None):
        return self.dvol


def run(case):
    defaults = types.Dict()(case["defaults"]) if case["defaults"] else {}
    drv = _Driver(defaults, case["debug"])
    qos = case.get("qos")
    # the driver reads QoS specs from Cinder's DB; answer with the case's instead
    datc.qos_specs.get_qos_specs = lambda ctxt, qid: {"specs": dict(qos or {})}
    vtype = {"extra_specs": dict(case["specs"]), "qos_specs_id": "q" if qos else None}
    policies = datc._get_policies_for_volume_type(drv, vtype)
    volume = {"project_id": "p", "size": case["size"], "volume_type_id": "t"}
    drv._update_qos_2_2(volume, dict(policies))
    return {"policies": policies, "qos": drv.dvol.performance_policy.created or {}}


if __name__ == "__main__":
    json.dump([run(c) for c in json.load(sys.stdin)], sys.stdout)
