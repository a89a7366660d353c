# The backup AppRole (backup.tf) may take a raft snapshot and nothing else,
# and the operator may manage it. Checked on a plan against a mocked provider:
# `terraform -chdir=terraform/pki test`. The real server's answers (a snapshot
# taken, a restore refused): tests/integration/test_backup.py.

mock_provider "vault" {
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

run "backup_policy_reads_the_raft_snapshot_and_nothing_else" {
  command = plan

  assert {
    condition = (
      length(regexall("path \"", vault_policy.backup.policy)) == 1 &&
      length(regexall("path \"sys/storage/raft/snapshot\" \\{\\s*capabilities = \\[\"read\"\\]\\s*\\}", vault_policy.backup.policy)) == 1
    )
    error_message = "The backup policy must hold exactly one path, sys/storage/raft/snapshot, with read only (no snapshot-force, no update: a backup token cannot restore)."
  }
}

run "backup_approle_carries_only_its_policy" {
  command = plan

  assert {
    condition = (
      vault_approle_auth_backend_role.this["backup"].token_policies == toset(["backup"]) &&
      vault_approle_auth_backend_role.this["backup"].token_bound_cidrs == toset(["127.0.0.0/8"]) &&
      output.operator_approles.backup == "backup"
    )
    error_message = "The backup AppRole carries only the backup policy, is bound to loopback, and is named in operator_approles."
  }
}

run "operator_manages_the_backup_role_and_policy" {
  command = plan

  assert {
    condition = alltrue([for p in [
      "path \"sys/policies/acl/backup\"",
      "path \"auth/approle/role/backup\"",
      "path \"auth/approle/role/backup/*\"",
    ] : strcontains(vault_policy.operator.policy, p)])
    error_message = "The operator policy must let later applies manage the backup AppRole and its policy."
  }
}
