# Invariants of OpenBao's own operators (operator.tf), checked on a plan against
# a mocked provider: `terraform -chdir=terraform/pki test`. The real server
# refuses what these policies leave out: tests/integration/test_vault_server.py.

mock_provider "vault" {
  # The AppRole mount's path at plan time, as the real one ("approle") is.
  override_during = plan

  mock_resource "vault_auth_backend" {
    defaults = {
      path = "approle"
    }
  }
}

variables {
  vault_ca_cert_file = "/dev/null"
  operator_approle   = "terraform-pki"
}

run "operator_keeps_managing_its_own_role_and_policy" {
  command = plan

  assert {
    condition = alltrue([for p in [
      "path \"sys/policies/acl/terraform-pki\"",
      "path \"auth/approle/role/terraform-pki\"",
      "path \"auth/approle/role/terraform-pki/*\"",
      "path \"auth/token/create\"",
    ] : strcontains(vault_policy.operator.policy, p)])
    error_message = "The operator policy must let later applies manage the operator's own policy and role (and make the provider's child token), or the next apply locks itself out."
  }

  assert {
    condition = (
      vault_approle_auth_backend_role.this["terraform-pki"].token_policies == toset(["terraform-pki"]) &&
      vault_approle_auth_backend_role.this["terraform-pki"].token_type == "service"
    )
    error_message = "The operator AppRole carries only its policy, in a service token (a batch token cannot make the provider's child token)."
  }
}

run "operator_policy_grants_nothing_outside_what_terraform_manages" {
  command = plan

  assert {
    condition = alltrue([for p in [
      "sys/seal", "sys/raw", "sys/audit/", "sys/generate-root", "sys/storage", "sys/config",
      "sys/policies/acl/*", "sys/policies/acl/default", "auth/token/create-orphan", "sys/mounts/*",
      "sys/auth/*", "path \"*\"",
    ] : !strcontains(vault_policy.operator.policy, p)])
    error_message = "The operator policy may not reach sys/seal, sys/raw, audit devices, root generation, storage, server config, other policies, orphan tokens or other mounts."
  }

  assert {
    condition     = length(regexall("path \"sys/mounts/pki_[a-z_]+\" ", vault_policy.operator.policy)) == 4
    error_message = "The operator may mount exactly the four PKI mounts."
  }
}

run "break_glass_may_only_generate_a_root_token" {
  command = plan

  assert {
    condition = (
      length(regexall("path \"", vault_policy.break_glass.policy)) == 2 &&
      length(regexall("path \"sys/generate-root-token/(attempt|update)\"", vault_policy.break_glass.policy)) == 2
    )
    error_message = "The break-glass policy must hold sys/generate-root-token/attempt and /update and nothing else."
  }
}
