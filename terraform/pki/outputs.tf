output "server_ca_bundle_pem" {
  description = "Server CA bundle (issuing + root, PEM): what every client trusts for OpenBao, Keycloak and nginx."
  value       = module.server_ca.ca_bundle_pem
}

output "client_ca_bundle_pem" {
  description = "Client CA bundle (issuing + root, PEM): the ONLY CA nginx trusts for client certificates."
  value       = module.client_ca.ca_bundle_pem
}

output "client_root_ca_pem" {
  description = "Client root CA certificate (PEM): Keycloak's trust anchor for workloads authenticating with their certificate (RFC 8705); unchanged by an issuing-CA rollover."
  value       = module.client_ca.root_certificate_pem
}

output "server_issuing_ca_pem" {
  description = "Server issuing CA certificate (PEM)."
  value       = module.server_ca.issuing_certificate_pem
}

output "client_issuing_ca_pem" {
  description = "Client issuing CA certificate (PEM); the verifier checks client certs were issued by it."
  value       = module.client_ca.issuing_certificate_pem
}

output "ca_serials" {
  description = "Serial numbers of the four CA certificates (they must survive restarts)."
  value = {
    server_root    = module.server_ca.root_serial
    server_issuing = module.server_ca.issuing_serial
    client_root    = module.client_ca.root_serial
    client_issuing = module.client_ca.issuing_serial
  }
}

output "client_issuing_serials" {
  description = "Serial of each client issuing-CA generation (a rollover revokes the old one at the root)."
  value       = module.client_ca.issuing_serials
}

output "mounts" {
  description = "PKI mount paths by role in the hierarchy."
  value = {
    server_root    = module.server_ca.root_mount
    server_issuing = module.server_ca.issuing_mount
    client_root    = module.client_ca.root_mount
    client_issuing = module.client_ca.issuing_mount
  }
}

output "server_role" {
  description = "Role on the server issuing mount for serving certs."
  value       = vault_pki_secret_backend_role.server.name
}

output "client_roles" {
  description = "Client-cert role name per workload identity."
  value       = { for id, r in vault_pki_secret_backend_role.client : id => r.name }
}

output "approle_mount" {
  description = "Mount path of the AppRole auth method."
  value       = vault_auth_backend.approle.path
}

output "approle_credentials" {
  description = "role_id/secret_id per consumer AppRole; written to .state/vault/approle/<name>.json (0600) by the bring-up."
  sensitive   = true
  value = {
    for name, r in vault_approle_auth_backend_role.this : name => {
      role_id   = r.role_id
      secret_id = vault_approle_auth_backend_role_secret_id.this[name].secret_id
    }
  }
}

output "operator_approles" {
  description = "AppRoles that operate OpenBao itself (operator.tf, backup.tf): `terraform` applies this root after the bootstrap, `break_glass` may only run sys/generate-root-token (with the unseal key), `backup` may only take a raft snapshot."
  value = {
    terraform   = vault_approle_auth_backend_role.this[var.operator_approle].role_name
    break_glass = vault_approle_auth_backend_role.this[local.break_glass_approle].role_name
    backup      = vault_approle_auth_backend_role.this[local.backup_approle].role_name
  }
}
