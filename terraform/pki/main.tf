# Two independent CA hierarchies (separate mounts, separate keys):
#   server: signs serving certs for OpenBao, Keycloak and nginx (serverAuth only,
#           name-constrained to "localhost")
#   client: signs workload identities (clientAuth only, one role per identity)
# nginx trusts ONLY the client hierarchy for client certs; clients trust ONLY
# the server hierarchy for servers. A cert from one is useless in the other.

locals {
  identities = toset(keys(var.workload_identities))

  # The only names a serving certificate carries (scripts/pki/certs.py
  # issue_server_cert asks for exactly these); the server role and the
  # server-certs policy both read them from here.
  server_common_name = "localhost"
  server_ip_san      = "127.0.0.1"
}

module "server_ca" {
  source = "./modules/ca"

  name                     = "server"
  organization             = var.organization
  root_ttl_seconds         = var.root_ca_ttl_seconds
  intermediate_ttl_seconds = var.issuing_ca_ttl_seconds
  max_leaf_ttl_seconds     = var.server_cert_ttl_seconds
  permitted_dns_domains    = [local.server_common_name]
  vault_address            = var.vault_address
  crl_expiry               = var.crl_expiry
  ocsp_expiry              = var.ocsp_expiry
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
  ocsp_expiry              = var.ocsp_expiry
}

# The policy (policies.tf, server-certs) pins the request to these two names;
# the role refuses a CSR's own names and wildcards as a second line:
# bao write pki_server/roles/server allowed_domains=localhost allow_bare_domains=true \
#   allow_localhost=true allow_ip_sans=true allow_wildcard_certificates=false \
#   cn_validations=hostname use_csr_common_name=false use_csr_sans=false \
#   server_flag=true client_flag=false key_type=ec
resource "vault_pki_secret_backend_role" "server" {
  backend                     = module.server_ca.issuing_mount
  name                        = "server"
  ttl                         = var.server_cert_ttl_seconds
  max_ttl                     = var.server_cert_ttl_seconds
  allowed_domains             = [local.server_common_name]
  allow_bare_domains          = true
  allow_subdomains            = false
  allow_glob_domains          = false
  allow_wildcard_certificates = false
  allow_any_name              = false
  allow_localhost             = true
  allow_ip_sans               = true
  allowed_uri_sans            = []
  allowed_other_sans          = []
  enforce_hostnames           = true
  cn_validations              = ["hostname"]
  use_csr_common_name         = false
  use_csr_sans                = false
  server_flag                 = true
  client_flag                 = false
  key_type                    = "ec"
  key_bits                    = 256
  key_usage                   = ["DigitalSignature", "KeyAgreement"]
  require_cn                  = true
}

# One role per workload identity; the only name it can issue is the identity.
# OpenBao matches allowed_domains case-insensitively (CN=PYTHON-CLIENT passes
# the role for python-client), so the exact, case-sensitive match is the
# client-<id> policy's allowed_parameters (policies.tf); the role refuses the
# rest: e-mail CNs (cn_validations=hostname), subdomains, wildcards, IP/URI/
# other SANs, and a CSR's own CN or SANs on sign/<id>:
# bao write pki_client/roles/<id> allowed_domains=<id> allow_bare_domains=true \
#   allow_subdomains=false allow_wildcard_certificates=false allow_localhost=false \
#   allow_ip_sans=false cn_validations=hostname use_csr_common_name=false \
#   use_csr_sans=false server_flag=false client_flag=true max_ttl=<client ttl>
resource "vault_pki_secret_backend_role" "client" {
  for_each = local.identities

  backend                     = module.client_ca.issuing_mount
  name                        = each.key
  ttl                         = var.client_cert_ttl_seconds
  max_ttl                     = var.client_cert_ttl_seconds
  allowed_domains             = [each.key]
  allow_bare_domains          = true
  allow_subdomains            = false
  allow_glob_domains          = false
  allow_wildcard_certificates = false
  allow_any_name              = false
  allow_localhost             = false
  allow_ip_sans               = false
  allowed_uri_sans            = []
  allowed_other_sans          = []
  enforce_hostnames           = true
  cn_validations              = ["hostname"]
  use_csr_common_name         = false
  use_csr_sans                = false
  server_flag                 = false
  client_flag                 = true
  key_type                    = "ec"
  key_bits                    = 256
  key_usage                   = ["DigitalSignature"]
  require_cn                  = true
}
