# Invariants of one CA hierarchy (root mount -> root CA -> intermediate CSR ->
# signed by the root -> set signed -> default issuer), checked on a plan
# against a mocked provider. The module is the root under test here; the
# server/client instances are tested in terraform/pki/tests.

mock_provider "vault" {}

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

run "root_and_issuing_ca_live_in_their_own_mounts" {
  command = plan

  assert {
    condition = (
      vault_mount.root.path == "pki_client_root" && vault_mount.root.type == "pki" &&
      vault_mount.intermediate.path == "pki_client" && vault_mount.intermediate.type == "pki"
    )
    error_message = "The root CA must be in pki_<name>_root and the issuing CA in pki_<name>, both PKI mounts."
  }

  assert {
    condition = (
      vault_mount.root.max_lease_ttl_seconds == var.root_ttl_seconds &&
      vault_mount.intermediate.max_lease_ttl_seconds == var.max_leaf_ttl_seconds
    )
    error_message = "The issuing mount must cap every leaf at max_leaf_ttl_seconds."
  }

  assert {
    condition = (
      vault_pki_secret_backend_root_cert.this.backend == "pki_client_root" &&
      vault_pki_secret_backend_root_cert.this.type == "internal" &&
      vault_pki_secret_backend_root_cert.this.key_type == "ec" &&
      vault_pki_secret_backend_root_cert.this.ttl == tostring(var.root_ttl_seconds)
    )
    error_message = "The root CA must be generated inside its own mount (internal key, EC), living root_ttl_seconds."
  }
}

run "one_generation_gives_one_issuing_ca" {
  command = plan

  assert {
    condition = (
      keys(vault_pki_secret_backend_intermediate_cert_request.this) == ["1"] &&
      keys(vault_pki_secret_backend_root_sign_intermediate.this) == ["1"] &&
      keys(vault_pki_secret_backend_intermediate_set_signed.this) == ["1"]
    )
    error_message = "The default issuing_generations must give exactly one intermediate, generation 1."
  }

  assert {
    condition = (
      vault_pki_secret_backend_intermediate_cert_request.this["1"].backend == "pki_client" &&
      vault_pki_secret_backend_intermediate_cert_request.this["1"].type == "internal" &&
      vault_pki_secret_backend_intermediate_cert_request.this["1"].common_name == "ZeroTrust Client Issuing CA" &&
      vault_pki_secret_backend_root_sign_intermediate.this["1"].backend == "pki_client_root" &&
      vault_pki_secret_backend_root_sign_intermediate.this["1"].common_name == "ZeroTrust Client Issuing CA" &&
      vault_pki_secret_backend_intermediate_set_signed.this["1"].backend == "pki_client"
    )
    error_message = "The CSR is generated in the issuing mount, signed by the root mount and set in the issuing mount; generation 1 keeps the historic CN."
  }
}

run "root_signs_intermediates_as_leaf_only_cas_it_can_revoke" {
  command = plan

  variables {
    issuing_generations = ["1", "2"]
  }

  assert {
    condition = alltrue([for s in vault_pki_secret_backend_root_sign_intermediate.this : (
      s.max_path_length == 0 && s.revoke == true && s.ttl == tostring(var.intermediate_ttl_seconds)
    )])
    error_message = "Every intermediate must be signed with max_path_length = 0 (no sub-CA), ttl = intermediate_ttl_seconds, and revoke = true (dropping a generation revokes it at the root)."
  }

  assert {
    condition     = alltrue([for s in vault_pki_secret_backend_root_sign_intermediate.this : s.permitted_dns_domains == null])
    error_message = "Without permitted_dns_domains the intermediate carries no name constraint."
  }
}

run "permitted_dns_domains_reach_the_root_signature" {
  command = plan

  variables {
    name                  = "server"
    permitted_dns_domains = ["localhost"]
    issuing_generations   = ["1", "2"]
  }

  assert {
    condition     = alltrue([for s in vault_pki_secret_backend_root_sign_intermediate.this : s.permitted_dns_domains == tolist(["localhost"])])
    error_message = "permitted_dns_domains must be passed to the root's signing of every intermediate (a name constraint in the CA certificate)."
  }
}

run "rollover_adds_an_intermediate_and_makes_it_the_default_issuer" {
  command = plan

  variables {
    issuing_generations = ["1", "2"]
  }

  # Issuer ids, CSRs and certificates are OpenBao's, unknown at plan time:
  # fixed values show how each generation's pieces are wired together.
  override_resource {
    target          = vault_pki_secret_backend_intermediate_cert_request.this["1"]
    override_during = plan
    values          = { csr = "csr-g1" }
  }

  override_resource {
    target          = vault_pki_secret_backend_intermediate_cert_request.this["2"]
    override_during = plan
    values          = { csr = "csr-g2" }
  }

  override_resource {
    target          = vault_pki_secret_backend_root_sign_intermediate.this["1"]
    override_during = plan
    values          = { certificate = "cert-g1", serial_number = "serial-g1" }
  }

  override_resource {
    target          = vault_pki_secret_backend_root_sign_intermediate.this["2"]
    override_during = plan
    values          = { certificate = "cert-g2", serial_number = "serial-g2" }
  }

  override_resource {
    target          = vault_pki_secret_backend_intermediate_set_signed.this["1"]
    override_during = plan
    values          = { imported_issuers = ["issuer-g1"] }
  }

  override_resource {
    target          = vault_pki_secret_backend_intermediate_set_signed.this["2"]
    override_during = plan
    values          = { imported_issuers = ["issuer-g2"] }
  }

  override_resource {
    target          = vault_pki_secret_backend_root_cert.this
    override_during = plan
    values          = { certificate = "cert-root", issuer_id = "issuer-root" }
  }

  assert {
    condition = (
      length(vault_pki_secret_backend_intermediate_cert_request.this) == 2 &&
      length(vault_pki_secret_backend_root_sign_intermediate.this) == 2 &&
      length(vault_pki_secret_backend_intermediate_set_signed.this) == 2
    )
    error_message = "Two generations must give two intermediates (CSR, signature, set-signed each)."
  }

  assert {
    condition = (
      vault_pki_secret_backend_intermediate_cert_request.this["1"].common_name == "ZeroTrust Client Issuing CA" &&
      vault_pki_secret_backend_intermediate_cert_request.this["2"].common_name == "ZeroTrust Client Issuing CA G2"
    )
    error_message = "Generation 1 keeps the historic CN; a later generation's CN names it (G<n>)."
  }

  assert {
    condition = alltrue([for g in ["1", "2"] : (
      vault_pki_secret_backend_root_sign_intermediate.this[g].csr == "csr-g${g}" &&
      vault_pki_secret_backend_root_sign_intermediate.this[g].issuer_ref == "issuer-root" &&
      vault_pki_secret_backend_intermediate_set_signed.this[g].certificate == "cert-g${g}"
    )])
    error_message = "Each generation's CSR must be signed by the root issuer and that signature set in the issuing mount."
  }

  assert {
    condition = (
      vault_pki_secret_backend_config_issuers.this.backend == "pki_client" &&
      vault_pki_secret_backend_config_issuers.this.default == "issuer-g2"
    )
    error_message = "The newest generation (the last of issuing_generations) must be the issuing mount's default issuer."
  }

  assert {
    condition = (
      output.issuing_serial == "serial-g2" &&
      output.issuing_serials == { "1" = "serial-g1", "2" = "serial-g2" } &&
      output.issuing_certificate_pem == "cert-g2\ncert-g1\n" &&
      output.ca_bundle_pem == "cert-g2\ncert-g1\ncert-root\n"
    )
    error_message = "Outputs must list every current issuing CA newest first (then the root in the bundle), and issuing_serial must be the newest's."
  }
}

run "crls_are_rebuilt_on_every_revocation" {
  command = plan

  assert {
    condition = alltrue([
      for c in [vault_pki_secret_backend_crl_config.root, vault_pki_secret_backend_crl_config.intermediate] :
      c.auto_rebuild == false && c.expiry == var.crl_expiry && c.ocsp_expiry == var.ocsp_expiry
    ])
    error_message = "Both mounts must rebuild their CRL inside every revocation (auto_rebuild = false), with crl_expiry and ocsp_expiry."
  }

  assert {
    condition = (
      vault_pki_secret_backend_crl_config.root.backend == "pki_client_root" &&
      vault_pki_secret_backend_crl_config.intermediate.backend == "pki_client"
    )
    error_message = "Each mount must have its own CRL configuration."
  }

  assert {
    condition = (
      vault_pki_secret_backend_config_urls.root.crl_distribution_points == tolist(["https://127.0.0.1:8200/v1/pki_client_root/crl"]) &&
      vault_pki_secret_backend_config_urls.root.ocsp_servers == tolist(["https://127.0.0.1:8200/v1/pki_client_root/ocsp"]) &&
      vault_pki_secret_backend_config_urls.intermediate.issuing_certificates == tolist(["https://127.0.0.1:8200/v1/pki_client/ca"]) &&
      vault_pki_secret_backend_config_urls.intermediate.crl_distribution_points == tolist(["https://127.0.0.1:8200/v1/pki_client/crl"]) &&
      vault_pki_secret_backend_config_urls.intermediate.ocsp_servers == tolist(["https://127.0.0.1:8200/v1/pki_client/ocsp"])
    )
    error_message = "Each mount must publish its own CA, CRL and OCSP URLs under vault_address."
  }
}

run "short_leaves_keep_the_issuing_mount_default_lease_below_its_maximum" {
  command = plan

  variables {
    max_leaf_ttl_seconds = 120
    crl_expiry           = "3m"
  }

  assert {
    condition = (
      vault_mount.intermediate.default_lease_ttl_seconds == 120 &&
      vault_mount.intermediate.max_lease_ttl_seconds == 120 &&
      vault_pki_secret_backend_crl_config.intermediate.expiry == "3m" &&
      vault_pki_secret_backend_crl_config.root.expiry == "3m"
    )
    error_message = "A short-lifetime profile: the issuing mount's default lease must not exceed its maximum, and both CRLs take crl_expiry."
  }
}
