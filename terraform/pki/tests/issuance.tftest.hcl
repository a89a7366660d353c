# Invariants of issuance, checked on a plan against a mocked provider (no
# OpenBao needed): `terraform -chdir=terraform/pki test`. The same rules are
# exercised against the real server by tests/integration/test_issuance.py.

mock_provider "vault" {}

variables {
  vault_ca_cert_file = "/dev/null"
  operator_approle   = "terraform-pki"
}

run "client_roles_issue_only_their_identity" {
  command = plan

  assert {
    condition = alltrue([for id, r in vault_pki_secret_backend_role.client : (
      r.allowed_domains == tolist([id]) && r.allow_bare_domains && !r.allow_subdomains &&
      !r.allow_glob_domains && !r.allow_wildcard_certificates && !r.allow_any_name &&
      !r.allow_localhost && !r.allow_ip_sans && length(r.allowed_uri_sans) == 0 &&
      length(r.allowed_other_sans) == 0 && r.cn_validations == tolist(["hostname"]) &&
      !r.use_csr_common_name && !r.use_csr_sans && r.client_flag && !r.server_flag
    )])
    error_message = "A client role must issue exactly its identity: no other name, SAN, CSR name or server use."
  }
}

run "client_policies_pin_the_common_name_to_the_identity" {
  command = plan

  assert {
    condition = alltrue([for id, p in vault_policy.client : (
      length(regexall("required_parameters = \\[\"common_name\"", p.policy)) == 2 &&
      length(regexall("\"common_name\" = \\[\"${id}\"\\]", p.policy)) == 2 &&
      length(regexall("allowed_parameters", p.policy)) == 2
    )])
    error_message = "issue/ and sign/ in each client policy must require common_name and allow only the identity."
  }
}

run "ca_mounts_rebuild_crls_on_revocation_and_publish_ocsp" {
  command = plan

  module {
    source = "./modules/ca"
  }

  variables {
    name                     = "client"
    organization             = "Test"
    root_ttl_seconds         = 315360000
    intermediate_ttl_seconds = 157680000
    max_leaf_ttl_seconds     = 86400
    vault_address            = "https://127.0.0.1:8200"
    crl_expiry               = "72h"
    ocsp_expiry              = "5m"
  }

  assert {
    condition = alltrue([
      for c in [vault_pki_secret_backend_crl_config.root, vault_pki_secret_backend_crl_config.intermediate] :
      c.auto_rebuild == false && c.ocsp_expiry == "5m" && c.expiry == "72h"
    ])
    error_message = "Both mounts must rebuild their CRL on every revocation (auto_rebuild = false) and set ocsp_expiry."
  }

  assert {
    condition = alltrue([
      for u in [vault_pki_secret_backend_config_urls.root, vault_pki_secret_backend_config_urls.intermediate] :
      length(u.ocsp_servers) == 1 && length(u.crl_distribution_points) == 1 && length(u.issuing_certificates) == 1
    ])
    error_message = "Both mounts must publish issuing-certificate, CRL and OCSP URLs."
  }
}

run "ocsp_expiry_is_bounded" {
  command = plan

  variables {
    ocsp_expiry = "25h"
  }

  expect_failures = [var.ocsp_expiry]
}
