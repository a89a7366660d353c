# The module's input validations refuse a bad value: one run per rule, on a
# plan against a mocked provider. This folder is its own Terraform root for
# `terraform test` (`terraform -chdir=terraform/pki/modules/ca init
# -backend=false`, then `test`); tests/integration/test_terraform_tests.py
# does both.

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

run "name_is_lower_snake_case" {
  command = plan

  variables {
    name = "Client-CA"
  }

  expect_failures = [var.name]
}

run "issuing_generations_is_not_empty" {
  command = plan

  variables {
    issuing_generations = []
  }

  expect_failures = [var.issuing_generations]
}

run "issuing_generations_are_numbers" {
  command = plan

  variables {
    issuing_generations = ["1", "g2"]
  }

  expect_failures = [var.issuing_generations]
}
