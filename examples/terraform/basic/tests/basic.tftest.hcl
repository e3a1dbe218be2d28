# terraform test: create the stack, then grow the volume and change its QoS in place.
# Run from examples/terraform/basic with the provider installed (see datera_iac_tf/README.md)
# and DATERA_* pointing at a DSP or the simulator: terraform test
#
# The suite works in a tenant of its own, so it also passes after `terraform apply` made
# the example's team-a objects (tenant names are unique on a DSP), and leaves those alone.
variables {
  tenant = "team-a-tftest"
}

run "create" {
  assert {
    condition     = datera_volume.db.size == 10 && datera_volume.db.op_state == "available"
    error_message = "the volume is not available at 10 GiB"
  }
  assert {
    condition     = startswith(datera_volume.db.iqn, "iqn.2013-05.com.daterainc")
    error_message = "the volume has no Datera target IQN"
  }
  assert {
    condition     = datera_volume_type.gold.extra_specs["DF:replica_count"] == "3"
    error_message = "the volume type does not carry DF:replica_count"
  }
  assert {
    condition     = length(data.datera_volumes.team.ids) == 1
    error_message = "datera_volumes did not find the volume"
  }
}

run "grow_and_retype_in_place" {
  variables {
    size = 20
    iops = 2000
  }
  assert {
    condition     = datera_volume.db.size == 20
    error_message = "the volume did not grow"
  }
  assert {
    condition     = datera_volume.db.id == run.create.volume_id
    error_message = "the volume was replaced instead of updated in place"
  }
}
