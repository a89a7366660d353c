# Realm roles form a ladder: admin ⊃ operator ⊃ viewer (composites), so a
# route that needs `viewer` also admits operators and admins.

resource "keycloak_role" "viewer" {
  realm_id    = keycloak_realm.this.id
  name        = "viewer"
  description = "Read access to the API"
}

resource "keycloak_role" "operator" {
  realm_id        = keycloak_realm.this.id
  name            = "operator"
  description     = "Write access to the API (includes viewer)"
  composite_roles = [keycloak_role.viewer.id]
}

resource "keycloak_role" "admin" {
  realm_id        = keycloak_realm.this.id
  name            = "admin"
  description     = "Administrative routes (includes operator)"
  composite_roles = [keycloak_role.operator.id]
}

# Client roles on the resource server (resource_access.zerotrust-api.roles).
resource "keycloak_role" "api" {
  for_each = toset(var.api_client_roles)

  realm_id    = keycloak_realm.this.id
  client_id   = keycloak_openid_client.api.id
  name        = each.key
  description = "${each.key} on ${var.api_client_id}"
}

locals {
  realm_roles = {
    viewer   = keycloak_role.viewer
    operator = keycloak_role.operator
    admin    = keycloak_role.admin
  }
}

resource "keycloak_openid_client_service_account_realm_role" "grant" {
  for_each = local.realm_grants

  realm_id                = keycloak_realm.this.id
  service_account_user_id = keycloak_openid_client.workload[each.value.id].service_account_user_id
  role                    = local.realm_roles[each.value.role].name
}

resource "keycloak_openid_client_service_account_role" "grant" {
  for_each = local.client_grants

  realm_id                = keycloak_realm.this.id
  service_account_user_id = keycloak_openid_client.workload[each.value.id].service_account_user_id
  client_id               = keycloak_openid_client.api.id
  role                    = keycloak_role.api[each.value.role].name
}
