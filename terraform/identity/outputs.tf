output "realm" {
  description = "Realm that issues workload tokens."
  value       = keycloak_realm.this.realm
}

output "issuer" {
  description = "Exact `iss` of this realm's tokens; the verifier compares it verbatim."
  value       = "${var.keycloak_url}/realms/${keycloak_realm.this.realm}"
}

output "jwks_uri" {
  description = "Where the verifier fetches the realm's signing keys."
  value       = "${var.keycloak_url}/realms/${keycloak_realm.this.realm}/protocol/openid-connect/certs"
}

output "token_endpoint" {
  description = "OAuth2 token endpoint (client_credentials)."
  value       = "${var.keycloak_url}/realms/${keycloak_realm.this.realm}/protocol/openid-connect/token"
}

output "api_client_id" {
  description = "Audience the API requires."
  value       = keycloak_openid_client.api.client_id
}

output "access_token_lifespan_seconds" {
  description = "Access token lifetime configured on the realm."
  value       = var.access_token_lifespan_seconds
}

output "workload_clients" {
  description = "client_id per workload identity (equal to its certificate CN)."
  value       = { for id, c in keycloak_openid_client.workload : id => c.client_id }
}
