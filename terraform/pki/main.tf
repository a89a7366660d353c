# Two independent CA hierarchies (separate mounts, separate keys):
#   server: signs serving certs for OpenBao, Keycloak and nginx (serverAuth only,
#           name-constrained to "localhost")
#   client: signs workload identities (clientAuth only, one role per identity)
# nginx trusts ONLY the client hierarchy for client certs; clients trust ONLY
# the server hierarchy for servers. A cert from one is useless in the other.

locals {
  identities = toset(keys(var.workload_identities))
}

module "server_ca" {
  source = "./modules/ca"

  name                     = "server"
  organization             = var.organization
  root_ttl_seconds         = var.root_ca_ttl_seconds
  intermediate_ttl_seconds = var.issuing_ca_ttl_seconds
  max_leaf_ttl_seconds     = var.server_cert_ttl_seconds
  permitted_dns_domains    = ["localhost"]
  vault_address            = var.vault_address
  crl_expiry               = var.crl_expiry
}

module "client_ca" {
  source = "./modules/ca"

  name                     = "client"
  issuing_generations      = var.client_issuing_generations
  organization             = var.organization
  root_ttl_seconds         = var.root_ca_ttl_seconds
  intermediate_ttl_seconds = var.issuing_ca_ttl_seconds
  max_leaf_ttl_seconds     = var.client_cert_ttl_seconds
  vault_address            = var.vault_address
  crl_expiry               = var.crl_expiry
}

# bao write pki_server/roles/server allowed_domains=localhost allow_bare_domains=true \
#   allow_localhost=true allow_ip_sans=true server_flag=true client_flag=false key_type=ec
resource "vault_pki_secret_backend_role" "server" {
  backend            = module.server_ca.issuing_mount
  name               = "server"
  ttl                = var.server_cert_ttl_seconds
  max_ttl            = var.server_cert_ttl_seconds
  allowed_domains    = ["localhost"]
  allow_bare_domains = true
  allow_subdomains   = false
  allow_glob_domains = false
  allow_any_name     = false
  allow_localhost    = true
  allow_ip_sans      = true
  enforce_hostnames  = true
  server_flag        = true
  client_flag        = false
  key_type           = "ec"
  key_bits           = 256
  key_usage          = ["DigitalSignature", "KeyAgreement"]
  require_cn         = true
}

# One role per workload identity; the only name it can issue is the identity:
# bao write pki_client/roles/<id> allowed_domains=<id> allow_bare_domains=true \
#   allow_subdomains=false allow_localhost=false allow_ip_sans=false \
#   server_flag=false client_flag=true max_ttl=<client ttl>
resource "vault_pki_secret_backend_role" "client" {
  for_each = local.identities

  backend            = module.client_ca.issuing_mount
  name               = each.key
  ttl                = var.client_cert_ttl_seconds
  max_ttl            = var.client_cert_ttl_seconds
  allowed_domains    = [each.key]
  allow_bare_domains = true
  allow_subdomains   = false
  allow_glob_domains = false
  allow_any_name     = false
  allow_localhost    = false
  allow_ip_sans      = false
  enforce_hostnames  = true
  server_flag        = false
  client_flag        = true
  key_type           = "ec"
  key_bits           = 256
  key_usage          = ["DigitalSignature"]
  require_cn         = true
}
