# Attach a volume to the machine running Terraform (node = "local") or to a remote node
# over SSH, log in on every portal with dm-multipath, and mount it. Needs open-iscsi and
# multipath-tools on the node, and root (iscsiadm). Destroy unmounts, logs out, removes the
# initiator from the volume's ACL, then deletes the volume.
terraform {
  required_providers {
    datera = {
      source = "datera/datera"
    }
  }
}

provider "datera" {}

variable "node" {
  description = "'local' or ssh://user@host[:port]"
  type        = string
  default     = "local"
}

resource "datera_volume" "data" {
  name = "app-data"
  size = 20
}

resource "datera_node_attachment" "data" {
  volume_id   = datera_volume.data.id
  node        = var.node
  multipath   = true
  filesystem  = "ext4"
  mount_point = "/mnt/app-data"

  timeouts = {
    create = "5m"
    delete = "5m"
  }
}

output "device" {
  description = "Stable path: /dev/disk/by-id/dm-uuid-mpath-<wwid>"
  value       = datera_node_attachment.data.device_path
}
