# One CA hierarchy: a self-signed root in its own mount and an issuing
# intermediate in another. The root mount never issues leaves; only the
# intermediate mount carries roles. The server and client hierarchies are two
# instances of this module with independent keys.

locals {
  root_path         = "pki_${var.name}_root"
  intermediate_path = "pki_${var.name}"
  title             = title(var.name)
}

# bao secrets enable -path=pki_<name>_root -max-lease-ttl=<root ttl> pki
resource "vault_mount" "root" {
  path                      = local.root_path
  type                      = "pki"
  description               = "${local.title} root CA (signs the ${var.name} intermediate only)"
  default_lease_ttl_seconds = 3600
  max_lease_ttl_seconds     = var.root_ttl_seconds
}

# bao write pki_<name>_root/root/generate/internal common_name="..." key_type=ec key_bits=256 ttl=<root ttl>
resource "vault_pki_secret_backend_root_cert" "this" {
  backend      = vault_mount.root.path
  type         = "internal"
  common_name  = "ZeroTrust ${local.title} Root CA"
  organization = var.organization
  ttl          = var.root_ttl_seconds
  key_type     = "ec"
  key_bits     = 256
  issuer_name  = "root"
}

# bao secrets enable -path=pki_<name> -max-lease-ttl=<intermediate ttl> pki
resource "vault_mount" "intermediate" {
  path        = local.intermediate_path
  type        = "pki"
  description = "${local.title} issuing CA"
  # Never above the maximum (a short-lifetime profile has leaves of minutes).
  default_lease_ttl_seconds = min(3600, var.max_leaf_ttl_seconds)
  # Caps every leaf this mount issues, whatever a role or request asks for.
  max_lease_ttl_seconds = var.max_leaf_ttl_seconds
}

# One issuing CA per generation, all in the same mount (OpenBao multi-issuer).
# A rollover adds a generation (the newest becomes the mount's default issuer,
# so every new leaf comes from it) and, after clients were reissued, removes
# the old one. The first generation keeps the historic name so its CN does
# not change.
locals {
  latest = var.issuing_generations[length(var.issuing_generations) - 1]
  issuing_cn = {
    for g in var.issuing_generations :
    g => g == "1" ? "ZeroTrust ${local.title} Issuing CA" : "ZeroTrust ${local.title} Issuing CA G${g}"
  }
}

# Upgrade path from the single-intermediate layout (before generations).
moved {
  from = vault_pki_secret_backend_intermediate_cert_request.this
  to   = vault_pki_secret_backend_intermediate_cert_request.this["1"]
}

moved {
  from = vault_pki_secret_backend_root_sign_intermediate.this
  to   = vault_pki_secret_backend_root_sign_intermediate.this["1"]
}

moved {
  from = vault_pki_secret_backend_intermediate_set_signed.this
  to   = vault_pki_secret_backend_intermediate_set_signed.this["1"]
}

# bao write pki_<name>/intermediate/generate/internal common_name="..." key_type=ec
resource "vault_pki_secret_backend_intermediate_cert_request" "this" {
  for_each = local.issuing_cn

  backend      = vault_mount.intermediate.path
  type         = "internal"
  common_name  = each.value
  organization = var.organization
  key_type     = "ec"
  key_bits     = 256
}

# bao write pki_<name>_root/root/sign-intermediate csr=@csr ttl=<intermediate ttl> max_path_length=0
resource "vault_pki_secret_backend_root_sign_intermediate" "this" {
  for_each = local.issuing_cn

  backend               = vault_mount.root.path
  csr                   = vault_pki_secret_backend_intermediate_cert_request.this[each.key].csr
  common_name           = each.value
  organization          = var.organization
  ttl                   = var.intermediate_ttl_seconds
  max_path_length       = 0
  permitted_dns_domains = length(var.permitted_dns_domains) > 0 ? var.permitted_dns_domains : null
  issuer_ref            = vault_pki_secret_backend_root_cert.this.issuer_id
  # Dropping a generation (end of a rollover) revokes its issuing CA at the
  # root, so nginx (which trusts the root) refuses every leaf it ever issued.
  revoke = true
}

# bao write pki_<name>/intermediate/set-signed certificate=@signed.pem
resource "vault_pki_secret_backend_intermediate_set_signed" "this" {
  for_each = local.issuing_cn

  backend     = vault_mount.intermediate.path
  certificate = vault_pki_secret_backend_root_sign_intermediate.this[each.key].certificate
}

# bao write pki_<name>/config/issuers default=<newest generation's issuer>
resource "vault_pki_secret_backend_config_issuers" "this" {
  backend = vault_mount.intermediate.path
  default = vault_pki_secret_backend_intermediate_set_signed.this[local.latest].imported_issuers[0]
}

# Every mount publishes where to fetch its CA certificate (AIA), its CRL and
# its OCSP responder, so a relying party can check any certificate of the
# hierarchy, the issuing CA's own included (its URLs come from the root mount).
# bao write pki_<name>[_root]/config/urls issuing_certificates=<addr>/v1/<mount>/ca \
#   crl_distribution_points=<addr>/v1/<mount>/crl ocsp_servers=<addr>/v1/<mount>/ocsp
resource "vault_pki_secret_backend_config_urls" "root" {
  backend                 = vault_mount.root.path
  issuing_certificates    = ["${var.vault_address}/v1/${local.root_path}/ca"]
  crl_distribution_points = ["${var.vault_address}/v1/${local.root_path}/crl"]
  ocsp_servers            = ["${var.vault_address}/v1/${local.root_path}/ocsp"]
}

resource "vault_pki_secret_backend_config_urls" "intermediate" {
  backend                 = vault_mount.intermediate.path
  issuing_certificates    = ["${var.vault_address}/v1/${local.intermediate_path}/ca"]
  crl_distribution_points = ["${var.vault_address}/v1/${local.intermediate_path}/crl"]
  ocsp_servers            = ["${var.vault_address}/v1/${local.intermediate_path}/ocsp"]
}

# auto_rebuild = false: OpenBao then rebuilds the mount's CRL inside every
# revocation (revokeCert, internal/builtin/logical/pki/crl_util.go), so a
# certificate revoked by any path (zt revoke, the revoker AppRole, `bao write
# .../revoke`, Terraform's revoke = true above) is in the published CRL when
# the call returns. With auto_rebuild on, a revocation waits for the periodic
# rebuild, which only happens within auto_rebuild_grace_period of expiry. The
# price: nothing rebuilds a CRL just because it is about to expire, so someone
# must call crl/rotate before crl_expiry (the revoker policy allows it on all
# four mounts; the bring-up's CRL refresh does it for the client mounts).
# bao write pki_<name>[_root]/config/crl expiry=<crl_expiry> auto_rebuild=false \
#   ocsp_expiry=<ocsp_expiry>
resource "vault_pki_secret_backend_crl_config" "root" {
  backend      = vault_mount.root.path
  expiry       = var.crl_expiry
  auto_rebuild = false
  ocsp_expiry  = var.ocsp_expiry
}

resource "vault_pki_secret_backend_crl_config" "intermediate" {
  backend      = vault_mount.intermediate.path
  expiry       = var.crl_expiry
  auto_rebuild = false
  ocsp_expiry  = var.ocsp_expiry
}
