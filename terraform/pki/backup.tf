# Backups (`zt backup`, scripts/backup.py): a raft snapshot of OpenBao, taken
# with a token that can do exactly that. There is no standing root token and
# the operator AppRole may not read sys/storage (operator.tf), so the snapshot
# gets its own AppRole and policy: read sys/storage/raft/snapshot, nothing
# else. It cannot restore one (snapshot, snapshot-force: update), seal,
# unseal, issue, revoke or read a secret through the API; what it reads is
# the whole encrypted store, which only the unseal key opens, so the archive
# holding both is a secret (docs/operations.md, "Backup and restore").
#
# The policy and role are created after the operator policy that allows
# managing them (local.managed_names): on a stack from before this file, the
# first apply as the operator widens its own policy first.

locals {
  backup_approle = "backup"
}

# bao policy write backup <file holding the policy below>
resource "vault_policy" "backup" {
  name   = local.backup_approle
  policy = <<-EOT
    path "sys/storage/raft/snapshot" {
      capabilities = ["read"]
    }
  EOT

  depends_on = [vault_policy.operator]
}
