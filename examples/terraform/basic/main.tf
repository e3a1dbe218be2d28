# A tenant, a Cinder-compatible volume type, a volume of that type and a snapshot of it.
#
# The provider reads its connection from the environment when the block is empty:
#   export DATERA_SAN_IP=10.0.0.10 DATERA_SAN_LOGIN=admin DATERA_SAN_PASSWORD=...
# (or DATERA_ENDPOINT=http://127.0.0.1:7717 for the bundled simulator: datera-iac dsp serve)
terraform {
  required_providers {
    datera = {
      source = "datera/datera"
    }
  }
}

provider "datera" {}

variable "tenant" {
  type    = string
  default = "team-a"
}

variable "size" {
  description = "Volume size in GiB: grows in place; a smaller value is refused at plan time."
  type        = number
  default     = 10
}

variable "iops" {
  description = "Total IOPS limit of the gold type (a QoS change is an in-place retype)."
  type        = number
  default     = 1000
}

resource "datera_tenant" "team" {
  name        = var.tenant
  description = "Managed by Terraform"
}

resource "datera_volume_type" "gold" {
  name           = "gold"
  description    = "3 replicas, IOPS capped"
  replica_count  = 3
  total_iops_max = var.iops
}

resource "datera_volume" "db" {
  name        = "db-1"
  size        = var.size
  tenant      = datera_tenant.team.id
  volume_type = datera_volume_type.gold.name
  extra_specs = datera_volume_type.gold.extra_specs
  metadata    = { owner = "dba" }

  timeouts = {
    create = "10m"
    delete = "5m"
  }
}

resource "datera_snapshot" "nightly" {
  volume_id = datera_volume.db.id
}

data "datera_system" "dsp" {}

data "datera_volumes" "team" {
  tenant     = datera_tenant.team.id
  name_regex = "^db-"
  depends_on = [datera_volume.db]
}

output "volume_id" {
  value = datera_volume.db.id
}

output "iqn" {
  value = datera_volume.db.iqn
}

output "portals" {
  value = datera_volume.db.portals
}

output "cinder_type_command" {
  value = datera_volume_type.gold.openstack_command
}

output "dsp_version" {
  value = data.datera_system.dsp.sw_version
}

output "team_volumes" {
  value = data.datera_volumes.team.ids
}
