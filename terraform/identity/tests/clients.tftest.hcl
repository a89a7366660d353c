# Invariants of the realm and its clients (main.tf, roles.tf), checked on a
# plan against a mocked provider (no Keycloak needed):
# `terraform -chdir=terraform/identity test`. The workload identities are the
# real ones (identities.auto.tfvars, the shared file). The same rules are
# exercised against the real server by tests/integration/test_identity.py.

mock_provider "keycloak" {}

variables {
  keycloak_admin_username = "admin"
  keycloak_admin_password = "not-a-secret"
  server_ca_bundle_file   = "/dev/null"
  # Explicit, so a TF_VAR_disabled_workloads in the environment (.state/env.sh
  # exports the live list) cannot change what these runs see.
  disabled_workloads = []
}

run "realm_requires_tls_and_refuses_registration_and_brute_force" {
  command = plan

  assert {
    condition     = keycloak_realm.this.ssl_required == "all"
    error_message = "The realm must require TLS for every request (ssl_required = all)."
  }

  assert {
    condition     = keycloak_realm.this.registration_allowed == false
    error_message = "Self-registration must be off: identities come only from the identities file."
  }

  assert {
    condition = (
      length(keycloak_realm.this.security_defenses) == 1 &&
      length(keycloak_realm.this.security_defenses[0].brute_force_detection) == 1
    )
    error_message = "Brute force detection must be configured (no block turns it off)."
  }

  assert {
    condition = (
      keycloak_realm.this.security_defenses[0].brute_force_detection[0].max_login_failures == var.brute_force_max_failures &&
      keycloak_realm.this.security_defenses[0].brute_force_detection[0].max_failure_wait_seconds == var.brute_force_wait_seconds
    )
    error_message = "Brute force detection must lock out after brute_force_max_failures for brute_force_wait_seconds."
  }

  assert {
    condition = (
      keycloak_realm.this.access_token_lifespan == "${var.access_token_lifespan_seconds}s" &&
      keycloak_realm.this.revoke_refresh_token
    )
    error_message = "Access tokens must live access_token_lifespan_seconds, and refresh tokens must be single-use."
  }
}

run "api_client_has_no_login_flow" {
  command = plan

  assert {
    condition = (
      keycloak_openid_client.api.client_id == var.api_client_id &&
      keycloak_openid_client.api.access_type == "CONFIDENTIAL" &&
      !keycloak_openid_client.api.standard_flow_enabled &&
      !keycloak_openid_client.api.implicit_flow_enabled &&
      !keycloak_openid_client.api.direct_access_grants_enabled &&
      !keycloak_openid_client.api.service_accounts_enabled
    )
    error_message = "The resource server must be a confidential client with no flow at all: nothing may obtain a token as the API."
  }

  assert {
    condition     = keycloak_openid_client.api.client_authenticator_type == "client-x509"
    error_message = "The resource server must not authenticate with a secret (none may sit in Terraform's state)."
  }
}

run "workload_clients_use_client_credentials_only" {
  command = plan

  assert {
    condition     = toset(keys(keycloak_openid_client.workload)) == toset(keys(var.workload_identities))
    error_message = "There must be exactly one workload client per identity."
  }

  assert {
    condition = alltrue([for id, c in keycloak_openid_client.workload : (
      c.client_id == id && c.access_type == "CONFIDENTIAL" && c.service_accounts_enabled &&
      !c.standard_flow_enabled && !c.implicit_flow_enabled && !c.direct_access_grants_enabled
    )])
    error_message = "A workload client must be CONFIDENTIAL with client_id = its identity, and allow service accounts (client_credentials) only: no standard, implicit or direct-access grant."
  }

  assert {
    condition     = alltrue([for c in keycloak_openid_client.workload : c.enabled])
    error_message = "With disabled_workloads empty, every workload client must be enabled."
  }
}

run "workload_clients_authenticate_with_their_certificate_only" {
  command = plan

  assert {
    condition     = alltrue([for c in keycloak_openid_client.workload : c.client_authenticator_type == "client-x509"])
    error_message = "A workload client must authenticate with its certificate (client-x509, RFC 8705 tls_client_auth), never with a secret."
  }

  assert {
    condition = alltrue([for id, c in keycloak_openid_client.workload : (
      c.extra_config["x509.subjectdn"] == "CN=${id}" &&
      c.extra_config["x509.allow.regex.pattern.comparison"] == "false"
    )])
    error_message = "A workload client must accept exactly the subject DN CN=<identity>, compared as a DN (no regular expression)."
  }

  assert {
    condition     = alltrue([for c in keycloak_openid_client.workload : c.extra_config["tls.client.certificate.bound.access.tokens"] == "true"])
    error_message = "A workload's access tokens must be bound to its certificate (cnf.x5t#S256)."
  }
}

run "workload_tokens_carry_the_api_audience" {
  command = plan

  assert {
    condition     = toset(keys(keycloak_openid_audience_protocol_mapper.api_audience)) == toset(keys(var.workload_identities))
    error_message = "Every workload client must have the audience mapper."
  }

  assert {
    condition = alltrue([for m in keycloak_openid_audience_protocol_mapper.api_audience : (
      m.included_client_audience == keycloak_openid_client.api.client_id &&
      m.add_to_access_token && !m.add_to_id_token
    )])
    error_message = "Each workload's access token (not its ID token) must get aud += the API client."
  }
}

# Client UUIDs are Keycloak's, unknown at plan time: fixed ids for the API
# client and two made-up identities show that each mapper hangs on its own
# workload's client.
run "mappers_hang_on_their_own_client" {
  command = plan

  variables {
    workload_identities = {
      "alpha-svc" = { realm_roles = ["viewer"], client_roles = ["read"], org = "o1", department = "d1" }
      "beta-svc"  = { realm_roles = ["admin"], client_roles = [], org = "o2", department = "d2" }
    }
  }

  override_resource {
    target          = keycloak_openid_client.api
    override_during = plan
    values = {
      id = "00000000-0000-0000-0000-000000000000"
    }
  }

  override_resource {
    target          = keycloak_openid_client.workload["alpha-svc"]
    override_during = plan
    values = {
      id = "00000000-0000-0000-0000-00000000000a"
    }
  }

  override_resource {
    target          = keycloak_openid_client.workload["beta-svc"]
    override_during = plan
    values = {
      id = "00000000-0000-0000-0000-00000000000b"
    }
  }

  assert {
    condition = alltrue([for id, m in keycloak_openid_audience_protocol_mapper.api_audience :
      m.client_id == keycloak_openid_client.workload[id].id
    ])
    error_message = "Each audience mapper must be on the client of its own workload."
  }

  assert {
    condition = alltrue([for k, m in keycloak_openid_hardcoded_claim_protocol_mapper.claim :
      m.client_id == keycloak_openid_client.workload[split("/", k)[0]].id
    ])
    error_message = "Each org/department mapper must be on the client of its own workload."
  }
}

run "grants_and_claims_follow_the_identities_file" {
  command = plan

  assert {
    condition = toset(keys(keycloak_openid_client_service_account_realm_role.grant)) == toset(flatten([
      for id, v in var.workload_identities : [for r in v.realm_roles : "${id}/${r}"]
    ]))
    error_message = "Each workload's service account must hold exactly the realm roles of its identity entry."
  }

  assert {
    condition = toset(keys(keycloak_openid_client_service_account_role.grant)) == toset(flatten([
      for id, v in var.workload_identities : [for r in v.client_roles : "${id}/${r}"]
    ]))
    error_message = "Each workload's service account must hold exactly the API client roles of its identity entry."
  }

  assert {
    condition = alltrue(flatten([for id, v in var.workload_identities : [
      keycloak_openid_hardcoded_claim_protocol_mapper.claim["${id}/org"].claim_value == v.org,
      keycloak_openid_hardcoded_claim_protocol_mapper.claim["${id}/department"].claim_value == v.department,
    ]]))
    error_message = "Each workload's token must carry the org and department of its identity entry."
  }
}

run "a_disabled_workload_gets_no_new_token" {
  command = plan

  variables {
    disabled_workloads = ["python-client"]
  }

  assert {
    condition     = keycloak_openid_client.workload["python-client"].enabled == false
    error_message = "A workload in disabled_workloads must have its client disabled."
  }

  assert {
    condition     = alltrue([for id, c in keycloak_openid_client.workload : c.enabled if id != "python-client"])
    error_message = "Disabling one workload must leave every other client enabled."
  }
}
