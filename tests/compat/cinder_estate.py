"""Make an estate on a DSP the way an OpenStack cloud does: volumes, a snapshot, a volume
from it and a clone through the real Cinder Datera driver (cinder 29 + dfs-sdk), and one
app_instance with a snapshot through dfs-sdk directly. Runs in the driver's virtualenv
(see ``tests/compat/cinder_venv.py``); prints the names it made as JSON.

Usage: python cinder_estate.py SAN_IP LOGIN PASSWORD None
"""

import json
import sys
from unittest import mock

import cinder_driver_lifecycle as lc  # noqa: E402  (sets up collections for dfs-sdk)


def main():
    out = {"cinder": [], "sdk": []}
    with mock.patch.object(lc.volume_types, "get_volume_type", lc._get_type), \
            mock.patch.object(lc.qos_specs, "get_qos_specs", lc._get_qos):
        d = lc.make_driver()
        d.do_setup(None)
        d.datera_version = d.datera_version or "3.3.5.0"
        v1 = lc.vol(10, "t-iops")
        d.create_volume(v1)
        v2 = lc.vol(5, "t-2way")
        d.create_volume(v2)
        s1 = lc.snap(v1)
        d.create_snapshot(s1)
        v3 = lc.vol(10, "t-2way")
        d.create_volume_from_snapshot(v3, s1)
        v4 = lc.vol(5, "t-2way")
        d.create_cloned_volume(v4, v2)
        for v in (v1, v2, v3, v4):
            out["cinder"].append(lc.ai_of(d, v)[0]["name"])

    from dfs_sdk import get_api

    api = get_api(lc.SAN_IP, lc.LOGIN, lc.PASSWORD, "v2.2", secure=True, immediate_login=True)
    ai = api.app_instances.create(name="sdk-app-1", storage_instances=[
        {"name": "storage-1", "volumes": [{"name": "volume-1", "size": 3,
                                           "replica_count": 2}]}])
    vol = ai.storage_instances.list()[0].volumes.list()[0]
    vol.snapshots.create()
    out["sdk"].append(ai["name"])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
