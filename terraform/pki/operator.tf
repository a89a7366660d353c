# Who operates OpenBao once the bootstrap is over. No token is permanent: the
# first `make up` applies this root ONCE with the root token `bao operator
# init` returned, writes the AppRole credentials below to the state folder,
# checks that a plan as the operator AppRole shows no changes, and revokes the
# root token (auth/token/revoke-self). Every later apply, and `zt`, logs in as
# the operator AppRole (scripts/services/openbao.py terraform_token).
#
# operator (var.operator_approle): exactly what this root manages. The four PKI
#   mounts and every path in them, the AppRole auth mount, the AppRole roles
#   and ACL policies written here (its own included, so later applies can
#   still manage it), child tokens for the provider, and the list of audit
#   devices. It cannot seal, read sys/raw or a raft snapshot, mount anything
#   else, create or remove an audit device, or generate a root token. It can
#   widen its own policy, as any identity that manages its policy can; that
#   takes a change here, and the change is in the audit log.
# break-glass: only sys/generate-root-token/*. OpenBao 2.5.3 turned the
#   unauthenticated sys/generate-root/* endpoints off by default (CVE-2026-5807)
#   and since 2.6 `bao operator generate-root` calls the authenticated ones, so
#   a root token now takes this AppRole AND the unseal key (README,
#   "Break-glass"). On its own it can only start or cancel an attempt.
#
# The audit device is not a resource here: OpenBao refuses to create audit
# devices through the API since 2.3.2 (CVE-2025-54997: a file device writes
# wherever its creator says) unless the server sets
# unsafe_allow_api_audit_creation, which we do not. vault/config.hcl.tmpl
# declares it instead, so no token (this one included) can add, change or
# remove it; the operator may only list devices.

locals {
  pki_mounts = [
    module.server_ca.root_mount,
    module.server_ca.issuing_mount,
    module.client_ca.root_mount,
    module.client_ca.issuing_mount,
  ]

  break_glass_approle = "break-glass"

  # The AppRole roles and ACL policies this root writes (a role and its policy
  # share a name); "client-*" is the prefix of one per workload identity.
  managed_names = ["server-certs", "revoker", "client-*", var.operator_approle, local.break_glass_approle, local.backup_approle]
}

# bao policy write terraform-pki <templates/operator-policy.hcl.tftpl, rendered>
resource "vault_policy" "operator" {
  name = var.operator_approle
  policy = templatefile("${path.module}/templates/operator-policy.hcl.tftpl", {
    pki_mounts    = local.pki_mounts
    approle_mount = vault_auth_backend.approle.path
    managed_names = local.managed_names
  })
}

# bao policy write break-glass <file holding the policy below>
resource "vault_policy" "break_glass" {
  name   = local.break_glass_approle
  policy = <<-EOT
    path "sys/generate-root-token/attempt" {
      capabilities = ["read", "update", "delete"]
    }
    path "sys/generate-root-token/update" {
      capabilities = ["update"]
    }
  EOT
}
