# Least privilege: one policy per consumer. Nothing here grants sys/, other
# mounts, or another identity's role. The policies of OpenBao's own operators
# (Terraform, break-glass) are in operator.tf.

# Rotation agent for serving certs: issue from the server role, read CA/CRL.
# The issue request may carry only the two serving names (scripts/pki/certs.py
# issue_server_cert sends exactly common_name=localhost, ip_sans=127.0.0.1) and
# a ttl; any other parameter, or another value, is a 403 from the ACL.
# bao policy write server-certs <file holding the policy below>
resource "vault_policy" "server_certs" {
  name   = "server-certs"
  policy = <<-EOT
    path "${module.server_ca.issuing_mount}/issue/${vault_pki_secret_backend_role.server.name}" {
      capabilities        = ["update"]
      required_parameters = ["common_name"]
      allowed_parameters = {
        "common_name" = ["${local.server_common_name}"]
        "ip_sans"     = ["${local.server_ip_san}"]
        "ttl"         = []
      }
    }
    path "${module.server_ca.issuing_mount}/cert/ca_chain" {
      capabilities = ["read"]
    }
    path "${module.server_ca.issuing_mount}/crl" {
      capabilities = ["read"]
    }
  EOT
}

# One per workload identity: issue (or sign a CSR) for ITS role only, and only
# its exact name. The role compares names case-insensitively, so the exact,
# case-sensitive match lives here: common_name must be sent and must equal the
# identity; ttl (and csr for sign) are the only other parameters accepted, so
# alt_names, ip_sans, uri_sans, other_sans, exclude_cn_from_sans, not_after,
# ... are a 403 by omission. hvac's generate_certificate/sign_certificate send
# common_name (+ csr) plus whatever extra_params holds.
# bao policy write client-<id> <file holding the policy below>
resource "vault_policy" "client" {
  for_each = local.identities

  name   = "client-${each.key}"
  policy = <<-EOT
    path "${module.client_ca.issuing_mount}/issue/${vault_pki_secret_backend_role.client[each.key].name}" {
      capabilities        = ["update"]
      required_parameters = ["common_name"]
      allowed_parameters = {
        "common_name" = ["${each.key}"]
        "ttl"         = []
      }
    }
    path "${module.client_ca.issuing_mount}/sign/${vault_pki_secret_backend_role.client[each.key].name}" {
      capabilities        = ["update"]
      required_parameters = ["common_name", "csr"]
      allowed_parameters = {
        "common_name" = ["${each.key}"]
        "csr"         = []
        "ttl"         = []
      }
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
# A revocation already rebuilds its mount's CRL (auto_rebuild = false, module
# ca); crl/rotate stays for refreshing a CRL before it expires.
# bao policy write revoker <file holding the policy below>
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
