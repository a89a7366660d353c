# The server and client CA hierarchies are separate (main.tf): a certificate
# from one is useless where the other is trusted. Checked on a plan against a
# mocked provider: `terraform -chdir=terraform/pki test`. The module itself
# (one hierarchy) is tested in terraform/pki/modules/ca/tests.

mock_provider "vault" {}

variables {
  vault_ca_cert_file = "/dev/null"
  operator_approle   = "terraform-pki"
}

run "server_role_issues_serving_certs_only" {
  command = plan

  assert {
    condition = (
      vault_pki_secret_backend_role.server.server_flag == true &&
      vault_pki_secret_backend_role.server.client_flag == false
    )
    error_message = "The server role must issue serverAuth certificates only (server_flag = true, client_flag = false)."
  }

  assert {
    condition     = vault_pki_secret_backend_role.server.backend == module.server_ca.issuing_mount
    error_message = "The server role must live on the server issuing mount."
  }
}

run "client_roles_issue_client_certs_only" {
  command = plan

  assert {
    condition     = length(vault_pki_secret_backend_role.client) == length(var.workload_identities)
    error_message = "There must be one client role per workload identity."
  }

  assert {
    condition = alltrue([for r in vault_pki_secret_backend_role.client : (
      r.client_flag == true && r.server_flag == false && r.backend == module.client_ca.issuing_mount
    )])
    error_message = "Every client role must issue clientAuth certificates only (client_flag = true, server_flag = false), from the client issuing mount."
  }
}

run "server_and_client_cas_are_separate_hierarchies" {
  command = plan

  assert {
    condition = length(distinct([
      module.server_ca.root_mount, module.server_ca.issuing_mount,
      module.client_ca.root_mount, module.client_ca.issuing_mount,
    ])) == 4
    error_message = "The server and client hierarchies must use four distinct mounts (own root, own issuing CA)."
  }

  assert {
    condition = (
      module.server_ca.root_mount == "pki_server_root" && module.server_ca.issuing_mount == "pki_server" &&
      module.client_ca.root_mount == "pki_client_root" && module.client_ca.issuing_mount == "pki_client"
    )
    error_message = "Mounts are pki_server_root/pki_server and pki_client_root/pki_client (scripts and policies name them)."
  }
}

run "only_the_server_intermediate_is_name_constrained" {
  command = plan

  assert {
    condition = length(module.server_ca.issuing_permitted_dns_domains) > 0 && alltrue([
      for d in values(module.server_ca.issuing_permitted_dns_domains) : d == tolist(["localhost"])
    ])
    error_message = "The server issuing CA must be name-constrained to localhost, so it can never vouch for another name."
  }

  assert {
    condition = length(module.client_ca.issuing_permitted_dns_domains) > 0 && alltrue([
      for d in values(module.client_ca.issuing_permitted_dns_domains) : d == null
    ])
    error_message = "The client issuing CA carries no DNS name constraint (its leaves' CNs are identities, not host names)."
  }
}
