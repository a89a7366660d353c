# Least privilege: one policy per consumer. Nothing here grants sys/, other
# mounts, or another identity's role; the root token is used only to apply
# this configuration (bootstrap).

# Rotation agent for serving certs: issue from the server role, read CA/CRL.
resource "vault_policy" "server_certs" {
  name   = "server-certs"
  policy = <<-EOT
    path "${module.server_ca.issuing_mount}/issue/${vault_pki_secret_backend_role.server.name}" {
      capabilities = ["update"]
    }
    path "${module.server_ca.issuing_mount}/cert/ca_chain" {
      capabilities = ["read"]
    }
    path "${module.server_ca.issuing_mount}/crl" {
      capabilities = ["read"]
    }
  EOT
}

# One per workload identity: issue (or sign a CSR) for ITS role only.
resource "vault_policy" "client" {
  for_each = local.identities

  name   = "client-${each.key}"
  policy = <<-EOT
    path "${module.client_ca.issuing_mount}/issue/${vault_pki_secret_backend_role.client[each.key].name}" {
      capabilities = ["update"]
    }
    path "${module.client_ca.issuing_mount}/sign/${vault_pki_secret_backend_role.client[each.key].name}" {
      capabilities = ["update"]
    }
    path "${module.client_ca.issuing_mount}/cert/ca_chain" {
      capabilities = ["read"]
    }
    path "${module.client_ca.issuing_mount}/crl" {
      capabilities = ["read"]
    }
  EOT
}

# Revocation operator: revoke by serial and rebuild the CRLs nginx loads.
resource "vault_policy" "revoker" {
  name   = "revoker"
  policy = <<-EOT
    path "${module.client_ca.issuing_mount}/revoke" {
      capabilities = ["update"]
    }
    path "${module.server_ca.issuing_mount}/revoke" {
      capabilities = ["update"]
    }
    path "${module.client_ca.issuing_mount}/crl/rotate" {
      capabilities = ["read"]
    }
    path "${module.server_ca.issuing_mount}/crl/rotate" {
      capabilities = ["read"]
    }
    path "${module.client_ca.root_mount}/crl/rotate" {
      capabilities = ["read"]
    }
    path "${module.server_ca.root_mount}/crl/rotate" {
      capabilities = ["read"]
    }
  EOT
}
