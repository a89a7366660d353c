# AppRole per consumer, OpenBao's own operators included (operator.tf). Tokens
# are short-lived and carry exactly one policy.
# Secret IDs are generated here and handed to the bring-up scripts through a
# sensitive output, which writes them to .state/vault/approle/<name>.json (0600).

locals {
  approle_policies = merge(
    { "server-certs" = vault_policy.server_certs.name, "revoker" = vault_policy.revoker.name },
    { (var.operator_approle) = vault_policy.operator.name, (local.break_glass_approle) = vault_policy.break_glass.name },
    { (local.backup_approle) = vault_policy.backup.name },
    { for id in local.identities : "client-${id}" => vault_policy.client[id].name },
  )
}

# bao auth enable approle
resource "vault_auth_backend" "approle" {
  type        = "approle"
  description = "Machine logins for rotation agents"
}

# bao write auth/approle/role/<name> token_policies=<policy> token_ttl=15m secret_id_num_uses=0
resource "vault_approle_auth_backend_role" "this" {
  for_each = local.approle_policies

  backend               = vault_auth_backend.approle.path
  role_name             = each.key
  token_policies        = [each.value]
  token_ttl             = var.approle_token_ttl_seconds
  token_max_ttl         = var.approle_token_ttl_seconds
  token_type            = "service"
  secret_id_num_uses    = 0
  bind_secret_id        = true
  token_bound_cidrs     = ["127.0.0.0/8"]
  secret_id_bound_cidrs = ["127.0.0.0/8"]
}

# bao write -f auth/approle/role/<name>/secret-id
resource "vault_approle_auth_backend_role_secret_id" "this" {
  for_each = vault_approle_auth_backend_role.this

  backend   = vault_auth_backend.approle.path
  role_name = each.value.role_name
}
