"""Datera block storage with Pulumi: a tenant, a volume type, two volumes, a snapshot, a
clone made from the snapshot, a clone of a volume, and the database volume attached to a node.

Every class comes from ``datera_iac.pulumi`` (generated from the resource core); the
provider configuration (``datera:endpoint``, ``datera:sanLogin``, ``datera:sanPassword``...)
uses the cinder.conf option names of the Cinder Datera driver, in camelCase.
"""

import pulumi

from datera_iac.pulumi import NodeAttachment, Snapshot, Tenant, Volume, VolumeType

config = pulumi.Config()
size = config.get_int("volumeSize") or 10
node = config.get("attachNode") or "local"
chap_secret = config.get_secret("chapSecret")

tenant = Tenant("apps", name="apps", description="Example tenant managed by Pulumi")

# A Cinder volume type: its extra_specs output is the policy volumes apply.
gold = VolumeType("gold", name="gold", description="Two replicas, capped writes",
                  replica_count=2, write_iops_max=5000)

db = Volume(
    "db",
    name="database",
    size=size,
    tenant=tenant.id,
    volume_type=gold.name,
    extra_specs=gold.extra_specs,
    snapshot_policies=["nightly:1day:7"],
)
logs = Volume("logs", name="logs", size=5, tenant=tenant.id)

nightly = Snapshot("db-snap", volume_id=db.id)
restored = Volume("db-restored", name="database-restored", size=size, tenant=tenant.id,
                  snapshot_id=nightly.id)
scratch = Volume("db-scratch", name="database-scratch", size=size, tenant=tenant.id,
                 clone_of=db.id)

# attachNode: "local" (this host), ssh://user@host, or "none" to skip the attachment
attachment = None if node == "none" else NodeAttachment(
    "db-on-node",
    volume_id=db.id,
    node=node,
    chap_user="dbnode" if chap_secret is not None else None,
    chap_secret=chap_secret,
)

pulumi.export("tenant", tenant.id)
pulumi.export("db_id", db.id)
pulumi.export("db_iqn", db.iqn)
pulumi.export("db_portals", db.portals)
pulumi.export("snapshot_id", nightly.id)
pulumi.export("restored_id", restored.id)
pulumi.export("scratch_id", scratch.id)
if attachment is not None:
    pulumi.export("db_device", attachment.device_path)
pulumi.export("gold_openstack_command", gold.openstack_command)
