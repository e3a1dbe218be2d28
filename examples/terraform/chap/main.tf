# A volume with CHAP whose secret never reaches terraform.tfstate (Terraform 1.11+).
#
# chap_secret_wo is a write-only argument: Terraform hands it to the provider at plan and
# apply and stores it nowhere (not in the state, not in a saved plan). Feed it from an
# ephemeral variable (or an ephemeral resource, e.g. a secret manager):
#   export TF_VAR_chap_secret='12-16 chars'   # or: terraform apply -var chap_secret=...
# Terraform cannot compare a value it never stores, so changing the secret alone plans
# nothing. To rotate it, set the new secret and bump the version; the next apply writes it
# to the DSP in place:
#   TF_VAR_chap_secret='new secret here' terraform apply -var chap_secret_version=2
# The older chap_secret argument still works but is stored in the state in clear
# (deprecated; the provider warns).
terraform {
  required_providers {
    datera = {
      source = "datera/datera"
    }
  }
}

provider "datera" {}

variable "chap_secret" {
  description = "Target CHAP secret (12-16 characters); never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "chap_secret_version" {
  description = "Bump to apply a new chap_secret (rotation)."
  type        = number
  default     = 1
}

resource "datera_volume" "secure" {
  name                   = "secure-1"
  size                   = 10
  chap_user              = "dbhost"
  chap_secret_wo         = var.chap_secret
  chap_secret_wo_version = var.chap_secret_version
}

output "iqn" {
  value = datera_volume.secure.iqn
}

output "chap_auth" {
  description = "none, chap or mchap: what the DSP enforces"
  value       = datera_volume.secure.chap_auth
}
