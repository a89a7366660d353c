# Every validation of variables.tf refuses a bad value: one run per rule, each
# on a plan against a mocked provider (`terraform -chdir=terraform/identity
# test`). Everything not set in a run is the real configuration (the shared
# identities file, the variables' defaults), which passes: see clients.tftest.hcl.

mock_provider "keycloak" {}

variables {
  keycloak_admin_username = "admin"
  keycloak_admin_password = "not-a-secret"
  server_ca_bundle_file   = "/dev/null"
  disabled_workloads      = []
}

run "keycloak_is_reached_over_https_only" {
  command = plan

  variables {
    keycloak_url = "http://localhost:8080"
  }

  expect_failures = [var.keycloak_url]
}

run "realm_name_is_a_lowercase_name" {
  command = plan

  variables {
    realm = "ZeroTrust"
  }

  expect_failures = [var.realm]
}

run "access_token_lifespan_has_a_lower_bound" {
  command = plan

  variables {
    access_token_lifespan_seconds = 59
  }

  expect_failures = [var.access_token_lifespan_seconds]
}

run "access_token_lifespan_has_an_upper_bound" {
  command = plan

  variables {
    access_token_lifespan_seconds = 3601
  }

  expect_failures = [var.access_token_lifespan_seconds]
}

run "sso_session_idle_timeout_is_bounded" {
  command = plan

  variables {
    sso_session_idle_seconds = 86401
  }

  expect_failures = [var.sso_session_idle_seconds]
}

run "sso_session_max_lifespan_is_bounded" {
  command = plan

  variables {
    sso_session_max_seconds = 299
  }

  expect_failures = [var.sso_session_max_seconds]
}

run "brute_force_max_failures_is_bounded" {
  command = plan

  variables {
    brute_force_max_failures = 0
  }

  expect_failures = [var.brute_force_max_failures]
}

run "brute_force_wait_is_bounded" {
  command = plan

  variables {
    brute_force_wait_seconds = 59
  }

  expect_failures = [var.brute_force_wait_seconds]
}

run "identity_names_are_lowercase_dns_labels" {
  command = plan

  variables {
    workload_identities = {
      "Python_Client" = { realm_roles = ["viewer"], client_roles = ["read"], org = "acme", department = "payments" }
    }
  }

  expect_failures = [var.workload_identities]
}

run "realm_roles_are_viewer_operator_or_admin" {
  command = plan

  variables {
    workload_identities = {
      "python-client" = { realm_roles = ["superuser"], client_roles = ["read"], org = "acme", department = "payments" }
    }
  }

  expect_failures = [var.workload_identities]
}

run "disabled_workloads_name_existing_identities" {
  command = plan

  variables {
    disabled_workloads = ["no-such-workload"]
  }

  expect_failures = [var.disabled_workloads]
}
