terraform {
  required_version = ">= 1.6"

  required_providers {
    # Our own minimal provider (terraform/providers/keycloak): its resources
    # are a compatible subset of the official keycloak/keycloak provider, which
    # the Go module proxy reachable here does not serve. Switching back is a
    # change of `source` and `version` only.
    keycloak = {
      source  = "zerotrust.local/zerotrust/keycloak"
      version = "= 0.1.0"
    }
  }

  # State lives in the ignored state folder; `make up` passes
  # -backend-config=path=<repo>/.state/terraform/identity.tfstate at init.
  backend "local" {}
}

provider "keycloak" {
  url       = var.keycloak_url
  realm     = "master"
  client_id = "admin-cli"
  username  = var.keycloak_admin_username
  password  = var.keycloak_admin_password
  # Verify Keycloak's certificate against the server CA only; never skip.
  root_ca_certificate      = file(var.server_ca_bundle_file)
  tls_insecure_skip_verify = false
}
