"""A datera-iac stack written in Python.

Run it with ``datera-iac up -f examples/python/__main__.py`` (or ``cd examples/python &&
datera-iac up``: its Pulumi.yaml says ``runtime: python``). With no DSP configured the bundled
simulator is used. Configuration comes from ``--config key=value`` or
``Pulumi.<stack>.yaml``:

    datera-iac up -f examples/python/__main__.py -c replicas=2 -c volumes=3

Nothing here talks to the DSP: constructing a resource only declares it. Attribute access
(``vol.id``, ``gold.extra_specs``) gives a reference that the engine resolves once the
referenced object exists, and that orders the graph.
"""

from datera_iac import engine

cfg = engine.config
replicas = int(cfg.get("replicas", 3))
count = int(cfg.get("volumes", 2))

team = engine.Tenant("team", name="analytics", description="Analytics team volumes")

gold = engine.VolumeType("gold", name="gold", description="Replicated, IOPS capped",
                         replica_count=replicas, total_iops_max=20000)

volumes = []
for i in range(count):
    vol = engine.Volume(
        f"data-{i}",
        name=f"analytics-data-{i}",
        size=50,
        tenant=team.id,
        volume_type=gold.name,
        extra_specs=gold.extra_specs,
        # the first volume holds the catalogue: never delete or replace it by accident
        opts=engine.ResourceOptions(protect=(i == 0)),
    )
    volumes.append(vol)

nightly = engine.Snapshot("data-0-snap", volume_id=volumes[0].id)
restore = engine.Volume("data-0-restore", name="analytics-data-0-restore", size=50,
                        tenant=team.id, snapshot_id=nightly.id)

engine.export("tenant", team.id)
engine.export("volume_ids", [v.id for v in volumes])
engine.export("iqn_of_first", volumes[0].iqn)
engine.export("gold_openstack_command", gold.openstack_command)
