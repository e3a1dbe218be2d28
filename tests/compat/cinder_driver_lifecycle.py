"""Drive the real OpenStack Cinder Datera driver (cinder 29, through dfs-sdk) against a DSP.

Runs inside a virtualenv that has ``cinder==29.0.0`` and ``dfs-sdk==1.2.27`` (see
``tests/compat/test_cinder_driver.py``), NOT in the project's environment. The driver and
the SDK are used unchanged: the DSP is reached at ``san_ip`` on the SDK's fixed ports
(7717/7718), so the simulator is started on a loopback address of its own.

What is faked here is only what a cinder-volume service would supply and that has no
DSP side: the oslo configuration object, the volume-type and QoS-spec database lookups,
and the Cinder volume/snapshot/attachment records (plain dicts, as the driver's own unit
tests use). Every step's observable result is printed as one JSON document on stdout; the
pytest side checks it and the simulator's store.

Usage: python cinder_driver_lifecycle.py SAN_IP LOGIN PASSWORD TENANT_MODE
"""

import collections
import collections.abc
import json
import sys
import uuid
from unittest import mock

# dfs-sdk 1.2.27 still imports these names from ``collections`` (removed in Python 3.10).
for _name in ("Mapping", "MutableMapping", "Sequence", "Iterable", "Callable", "Set"):
    if not hasattr(collections, _name):
        setattr(collections, _name, getattr(collections.abc, _name))

from cinder.volume import configuration as conf  # noqa: E402
from cinder.volume import qos_specs, volume_types  # noqa: E402
from cinder.volume.drivers.datera import datera_iscsi as datera  # noqa: E402

datera.datc.DEFAULT_SI_SLEEP = 0
datera.datc.DEFAULT_SNAP_SLEEP = 0

SAN_IP, LOGIN, PASSWORD, TENANT_MODE = sys.argv[1:5]
PROJECT = "0123456789abcdef0123456789abcdef"

TYPES = {
    # the seed's two example volume types, plus a QoS-spec-backed one for retype
    "t-2way": {"id": "t-2way", "name": "datera_2way", "qos_specs_id": None,
               "extra_specs": {"volume_backend_name": "datera", "DF:replica_count": "2"}},
    "t-iops": {"id": "t-iops", "name": "datera_iops", "qos_specs_id": "q-gold",
               "extra_specs": {"volume_backend_name": "datera", "DF:write_iops_max": "5000"}},
}
TYPES["t-4way"] = {"id": "t-4way", "name": "datera_4way", "qos_specs_id": None,
                   "extra_specs": {"volume_backend_name": "datera", "DF:replica_count": "4",
                                   "DF:total_iops_max": "9000"}}
QOS = {"q-gold": {"specs": {"DF:read_iops_max": "2000"}}}


def _get_type(ctxt, type_id, *a, **kw):
    return json.loads(json.dumps(TYPES[type_id]))


def _get_qos(ctxt, qos_id, *a, **kw):
    return json.loads(json.dumps(QOS[qos_id]))


def make_driver():
    cfg = mock.Mock(spec=conf.Configuration)
    cfg.san_ip = SAN_IP
    cfg.san_login = LOGIN
    cfg.san_password = PASSWORD
    cfg.san_is_local = True
    cfg.datera_api_port = "7717"
    cfg.datera_503_timeout = 10
    cfg.datera_503_interval = 1
    cfg.datera_debug = False
    cfg.datera_debug_replica_count_override = False
    cfg.datera_tenant_id = None if TENANT_MODE == "None" else TENANT_MODE
    cfg.datera_disable_profiler = False
    cfg.datera_ldap_server = ""
    cfg.datera_volume_type_defaults = {}
    cfg.datera_disable_template_override = False
    cfg.datera_disable_extended_metadata = False
    cfg.datera_enable_image_cache = False
    cfg.datera_image_cache_volume_type_id = ""
    cfg.driver_client_cert = None
    cfg.driver_client_cert_key = None
    cfg.filter_function = None
    cfg.goodness_function = None
    cfg.use_chap_auth = False
    cfg.chap_username = ""
    cfg.chap_password = ""
    cfg.safe_get = lambda name: {"volume_backend_name": "datera"}.get(name)
    driver = datera.DateraDriver(execute=mock.Mock(return_value=("", "")), configuration=cfg)
    driver.configuration.get = lambda *a, **kw: {}
    return driver


def vol(size, type_id=None, vid=None):
    return {"id": vid or str(uuid.uuid4()), "size": size, "project_id": PROJECT,
            "volume_type_id": type_id, "display_name": "compat", "host": "compat@datera",
            "availability_zone": "nova", "bootable": False}


def snap(volume):
    return {"id": str(uuid.uuid4()), "volume_id": volume["id"], "project_id": PROJECT,
            "volume_size": volume["size"], "provider_location": None}


def ai_of(driver, volume):
    tenant = driver.get_tenant(volume["project_id"])
    return driver.cvol_to_ai(volume, tenant=tenant), tenant


def describe(driver, volume):
    ai, tenant = ai_of(driver, volume)
    si = ai.storage_instances.list(tenant=tenant)[0]
    v = si.volumes.list(tenant=tenant)[0]
    try:
        pp = dict(v.performance_policy.get(tenant=tenant))
        pp.pop("path", None)
    except Exception:  # noqa: BLE001 - 404 means "no policy"
        pp = None
    return {"name": ai["name"], "admin_state": ai["admin_state"], "size": v["size"],
            "replica_count": v["replica_count"], "performance_policy": pp,
            "acl": [i["path"] for i in si["acl_policy"]["initiators"]],
            "tenant": tenant}


def main():
    out = {}
    with mock.patch.object(volume_types, "get_volume_type", _get_type), \
            mock.patch.object(qos_specs, "get_qos_specs", _get_qos):
        d = make_driver()
        d.do_setup(None)
        out["apiv"] = d.apiv
        d.datera_version = d.datera_version or "3.3.5.0"
        stats = d.get_volume_stats(refresh=True)
        out["stats"] = {k: stats.get(k) for k in
                        ("volume_backend_name", "vendor_name", "storage_protocol",
                         "total_capacity_gb", "free_capacity_gb")}

        v1 = vol(10, "t-iops")
        d.create_volume(v1)
        out["create"] = describe(d, v1)

        d.extend_volume(v1, 20)
        v1["size"] = 20
        out["extend"] = describe(d, v1)

        s1 = snap(v1)
        d.create_snapshot(s1)
        v2 = vol(20, "t-iops")
        d.create_volume_from_snapshot(v2, s1)
        out["from_snapshot"] = describe(d, v2)

        v3 = vol(25, "t-2way")
        d.create_cloned_volume(v3, v1)
        out["clone"] = describe(d, v3)

        connector = {"initiator": "iqn.1993-08.org.debian:01:compat0001", "ip": "127.0.0.1",
                     "host": "compat", "multipath": True}
        d.create_export(None, v1, connector)
        conn = d.initialize_connection(v1, connector)
        out["attach"] = {"connection": conn, "volume": describe(d, v1)}

        attachment = mock.Mock(connector=connector)
        d.detach_volume(None, v1, attachment)
        out["detach"] = describe(d, v1)

        # replica_count may only grow on a DSP: retype 3 (driver default) -> 4, new QoS
        new_type = _get_type(None, "t-4way")
        diff = {"extra_specs": {"DF:replica_count": (None, "4")}}
        out["retype_result"] = d.retype(None, v1, new_type, diff, {"host": "compat@datera", "capabilities": {"volume_backend_name": "datera"}})
        v1["volume_type_id"] = "t-4way"
        out["retype"] = describe(d, v1)

        d.unmanage(v3)
        listing = d.get_manageable_volumes([v1, v2], None, 100, 0, ["size"], ["asc"])
        out["manageable"] = sorted(
            (r["reference"]["source-name"], r["safe_to_manage"]) for r in listing)

        v4 = vol(25, "t-2way")
        ref = {"source-name": f"{datera.datc.get_unmanaged(v3['id'])}:storage-1:volume-1"}
        out["manage_size"] = d.manage_existing_get_size(v4, ref)
        d.manage_existing(v4, ref)
        out["manage"] = describe(d, v4)

        d.delete_snapshot(s1)
        for v in (v2, v4, v1):
            d.delete_volume(v)
        # deleting what is already gone must not fail in the driver
        d.delete_volume(v1)
        out["done"] = True
    json.dump(out, sys.stdout, default=str)


if __name__ == "__main__":
    main()
