# Adopt objects that already exist on the DSP (made by Cinder, the DSP UI or datera-iac).
#
#   terraform plan -generate-config-out=generated.tf   # optional: let Terraform write the blocks
#   terraform apply                                    # imports; the next plan is empty
#
# Import ids: a tenant by path (/root/team-a); a volume by <tenant>/<app_instance id>, its
# name, or a Cinder reference [tenant:]ai:si:vol; a snapshot by <volume id>/<timestamp>;
# a materialized volume type by its app template name.
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
  default = "legacy"
}

variable "volume_name" {
  type    = string
  default = "OS-volume-1"
}

import {
  to = datera_tenant.legacy
  id = "/root/${var.tenant}"
}

import {
  to = datera_volume.legacy
  id = "/root/${var.tenant}/${var.volume_name}"
}

resource "datera_tenant" "legacy" {
  name = var.tenant
}

resource "datera_volume" "legacy" {
  name   = var.volume_name
  size   = 5
  tenant = datera_tenant.legacy.id
}
