# Lifetimes are settings (`zt lifetimes`, kept in the state folder and passed as
# TF_VAR_): the short-lifetime profile that proves scheduled renewal plans, the
# default profile is unchanged, and values below the bounds are refused. Checked on a
# plan against a mocked provider: `terraform -chdir=terraform/pki test`.

mock_provider "vault" {}

variables {
  vault_ca_cert_file = "/dev/null"
  operator_approle   = "terraform-pki"
}

run "default_profile_is_a_day_for_workloads_and_three_days_for_crls" {
  command = plan

  assert {
    condition = alltrue([for id, r in vault_pki_secret_backend_role.client :
    r.ttl == "86400" && r.max_ttl == "86400"])
    error_message = "By default a workload certificate lives 24 h (ttl = max_ttl = 86400)."
  }

  assert {
    condition     = var.crl_expiry == "72h" && var.server_cert_ttl_seconds == 2592000
    error_message = "By default CRLs are valid 72 h and serving certificates 30 days."
  }
}

run "short_profile_plans_two_minute_certificates_and_three_minute_crls" {
  command = plan

  variables {
    client_cert_ttl_seconds = 120
    server_cert_ttl_seconds = 300
    crl_expiry              = "3m"
  }

  assert {
    condition = alltrue([for id, r in vault_pki_secret_backend_role.client :
    r.ttl == "120" && r.max_ttl == "120"])
    error_message = "The short profile issues workload certificates of 120 s."
  }

  assert {
    condition = (
      vault_pki_secret_backend_role.server.ttl == "300" &&
      vault_pki_secret_backend_role.server.max_ttl == "300"
    )
    error_message = "The short profile issues serving certificates of 300 s."
  }
}

run "serving_certificates_under_five_minutes_are_refused" {
  command = plan

  variables {
    server_cert_ttl_seconds = 299
  }

  expect_failures = [var.server_cert_ttl_seconds]
}

run "client_certificates_under_two_minutes_are_refused" {
  command = plan

  variables {
    client_cert_ttl_seconds = 119
  }

  expect_failures = [var.client_cert_ttl_seconds]
}

run "crls_under_three_minutes_are_refused" {
  command = plan

  variables {
    crl_expiry = "2m"
  }

  expect_failures = [var.crl_expiry]
}

run "crl_expiry_without_a_unit_is_refused" {
  command = plan

  variables {
    crl_expiry = "180"
  }

  expect_failures = [var.crl_expiry]
}

run "crl_expiry_in_seconds_is_refused" {
  command = plan

  variables {
    crl_expiry = "180s"
  }

  expect_failures = [var.crl_expiry]
}
