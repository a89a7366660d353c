# The realm that issues workload tokens, the resource server (zerotrust-api),
# one confidential client per workload identity, and the roles the verifier
# checks. Each workload's access token carries: azp = its client_id (which must
# equal its certificate's CN), aud containing zerotrust-api, its realm roles,
# its client roles on zerotrust-api, and org/department claims.

locals {
  # identity => list of { identity, role } pairs, flattened for for_each.
  realm_grants = {
    for g in flatten([
      for id, v in var.workload_identities : [for r in v.realm_roles : { id = id, role = r }]
    ]) : "${g.id}/${g.role}" => g
  }
  client_grants = {
    for g in flatten([
      for id, v in var.workload_identities : [for r in v.client_roles : { id = id, role = r }]
    ]) : "${g.id}/${g.role}" => g
  }
  custom_claims = {
    for g in flatten([
      for id, v in var.workload_identities : [
        { id = id, claim = "org", value = v.org },
        { id = id, claim = "department", value = v.department },
      ]
    ]) : "${g.id}/${g.claim}" => g
  }
}

resource "keycloak_realm" "this" {
  realm                       = var.realm
  enabled                     = true
  display_name                = "Zero-trust workloads"
  registration_allowed        = false
  ssl_required                = "all"
  access_token_lifespan       = "${var.access_token_lifespan_seconds}s"
  sso_session_idle_timeout    = "${var.sso_session_idle_seconds}s"
  sso_session_max_lifespan    = "${var.sso_session_max_seconds}s"
  default_signature_algorithm = "RS256"
  revoke_refresh_token        = true

  security_defenses {
    brute_force_detection {
      permanent_lockout          = false
      max_login_failures         = var.brute_force_max_failures
      wait_increment_seconds     = var.brute_force_wait_seconds
      max_failure_wait_seconds   = var.brute_force_wait_seconds
      failure_reset_time_seconds = 43200
    }
  }
}

# The resource server: no login flow of any kind (the modern bearer-only). It
# authenticates with a certificate too (none is ever issued for its name), so no
# client secret exists for it in Terraform's state either.
resource "keycloak_openid_client" "api" {
  realm_id                     = keycloak_realm.this.id
  client_id                    = var.api_client_id
  name                         = "Zero-trust protected API (resource server)"
  enabled                      = true
  access_type                  = "CONFIDENTIAL"
  client_authenticator_type    = "client-x509"
  standard_flow_enabled        = false
  implicit_flow_enabled        = false
  direct_access_grants_enabled = false
  service_accounts_enabled     = false

  extra_config = {
    "x509.subjectdn"                      = "CN=${var.api_client_id}"
    "x509.allow.regex.pattern.comparison" = "false"
  }
}

# One confidential client per workload identity, client_credentials only, that
# authenticates with its certificate and nothing else (RFC 8705 tls_client_auth):
# no client secret exists in Terraform, its state or the state folder. Keycloak
# takes the certificate from its own TLS handshake (--https-client-auth=request,
# trusting the client root CA only) and accepts it when the subject DN is exactly
# CN=<identity> (string comparison, no regex), and binds the access token to it
# (cnf.x5t#S256, which the verifier requires).
# A workload in var.disabled_workloads gets no new token (incident response:
# `zt revoke <serial> --disable-client`, undone by `zt enable-client <id>`).
resource "keycloak_openid_client" "workload" {
  for_each = var.workload_identities

  realm_id                     = keycloak_realm.this.id
  client_id                    = each.key
  name                         = "Workload ${each.key}"
  enabled                      = !contains(var.disabled_workloads, each.key)
  access_type                  = "CONFIDENTIAL"
  client_authenticator_type    = "client-x509"
  standard_flow_enabled        = false
  implicit_flow_enabled        = false
  direct_access_grants_enabled = false
  service_accounts_enabled     = true
  full_scope_allowed           = true

  extra_config = {
    "x509.subjectdn"                             = "CN=${each.key}"
    "x509.allow.regex.pattern.comparison"        = "false"
    "tls.client.certificate.bound.access.tokens" = "true"
  }
}

# aud += zerotrust-api, so the API can tell tokens meant for it.
resource "keycloak_openid_audience_protocol_mapper" "api_audience" {
  for_each = keycloak_openid_client.workload

  realm_id                 = keycloak_realm.this.id
  client_id                = each.value.id
  name                     = "audience-${var.api_client_id}"
  included_client_audience = keycloak_openid_client.api.client_id
  add_to_id_token          = false
  add_to_access_token      = true
}

# org/department are properties of the workload's registration, so they are
# hard-coded claim mappers on its client (managed in the same identity entry)
# rather than attributes of the service-account user, which Keycloak's
# declarative user profile would reject unless each attribute were declared.
resource "keycloak_openid_hardcoded_claim_protocol_mapper" "claim" {
  for_each = local.custom_claims

  realm_id            = keycloak_realm.this.id
  client_id           = keycloak_openid_client.workload[each.value.id].id
  name                = "claim-${each.value.claim}"
  claim_name          = each.value.claim
  claim_value         = each.value.value
  claim_value_type    = "String"
  add_to_id_token     = false
  add_to_access_token = true
  add_to_userinfo     = false
}
