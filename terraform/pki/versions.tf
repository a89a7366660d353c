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
  # The token comes from VAULT_TOKEN (the root token, bootstrap only);
  # it is never written to a file in the repo or to Terraform state.
  skip_child_token = false
}
