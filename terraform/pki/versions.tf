terraform {
  required_version = ">= 1.6"

  required_providers {
    vault = {
      source  = "hashicorp/vault"
      version = "= 5.9.0"
    }
  }

  # State lives in the ignored state folder; `make up` passes
  # -backend-config=path=<repo>/.state/terraform/pki.tfstate at init.
  backend "local" {}
}

provider "vault" {
  address      = var.vault_address
  ca_cert_file = var.vault_ca_cert_file
  # The token comes from VAULT_TOKEN: the operator AppRole's (operator.tf),
  # or the root token for the one bootstrap apply. It is never written to a
  # file in the repo or to Terraform state.
  skip_child_token = false
}
