# CHAP secrets that exist only while Terraform runs (Terraform 1.11+): the ephemeral
# resource makes them, the volume's write-only arguments take them, and neither the state
# nor a saved plan ever holds them. Each run makes new secrets, but only a new
# *_wo_version applies them, so rotating is:
#   terraform apply -var chap_version=2
# (an initiator then needs the new secret: give it the same ephemeral value in the same
# run, e.g. datera_node_attachment's chap_secret_wo).
terraform {
  required_providers {
    datera = {
      source = "datera/datera"
    }
  }
}

provider "datera" {}

variable "chap_version" {
  description = "Bump to apply new CHAP secrets (rotation)."
  type        = number
  default     = 1
}

ephemeral "datera_chap_credentials" "db" {
  mutual = true
}

resource "datera_volume" "db" {
  name                             = "tf-eph-chap"
  size                             = 1
  chap_user                        = "tf-eph-target"
  chap_secret_wo                   = ephemeral.datera_chap_credentials.db.secret
  chap_secret_wo_version           = var.chap_version
  chap_initiator_user              = "tf-eph-init"
  chap_initiator_secret_wo         = ephemeral.datera_chap_credentials.db.initiator_secret
  chap_initiator_secret_wo_version = var.chap_version
}
