variable "vault_address" {
  description = "OpenBao/Vault API address (loopback, TLS)."
  type        = string
  default     = "https://127.0.0.1:8200"

  validation {
    condition     = can(regex("^https://(127\\.[0-9.]+|localhost):[0-9]+$", var.vault_address))
    error_message = "vault_address must be an https URL on loopback."
  }
}

variable "vault_ca_cert_file" {
  description = "PEM file the provider trusts for OpenBao's listener (the bootstrap cert, then the server CA bundle)."
  type        = string
}

variable "workload_identities" {
  description = "Workload identities (shared with terraform/identity via ../shared/identities.auto.tfvars). Each key gets a client-cert role whose only allowed CN is the key. Only the keys are used here."
  type = map(object({
    realm_roles  = list(string)
    client_roles = list(string)
    org          = string
    department   = string
  }))

  validation {
    condition     = alltrue([for k in keys(var.workload_identities) : can(regex("^[a-z][a-z0-9-]{1,62}$", k))])
    error_message = "Identity names must be lowercase DNS labels (a-z, 0-9, '-'), 2-63 characters."
  }
}

variable "organization" {
  description = "Organization (O) in CA subjects."
  type        = string
  default     = "ZeroTrust Gateway"
}

variable "client_cert_ttl_seconds" {
  description = "Default and maximum lifetime of a workload (client) certificate, in seconds. The renewal scheduler (zt renew --every auto) rotates a certificate at 2/3 of its life and runs every tenth of the shortest lifetime in play, so 2 minutes is the shortest that still leaves a margin for one failed run (the short-lifetime profile: zt lifetimes, kept in the state folder)."
  type        = number
  default     = 86400

  validation {
    condition     = var.client_cert_ttl_seconds >= 120 && var.client_cert_ttl_seconds <= 604800
    error_message = "client_cert_ttl_seconds must be between 2 minutes and 7 days."
  }
}

variable "server_cert_ttl_seconds" {
  description = "Default and maximum lifetime of a serving certificate, in seconds. At least 5 minutes: renewed at 2/3 of its life, a serving certificate then has 100 s left for the reload (Keycloak re-reads its file every 30 s)."
  type        = number
  default     = 2592000

  validation {
    condition     = var.server_cert_ttl_seconds >= 300 && var.server_cert_ttl_seconds <= 7776000
    error_message = "server_cert_ttl_seconds must be between 5 minutes and 90 days."
  }
}

variable "root_ca_ttl_seconds" {
  description = "Lifetime of each root CA, in seconds (default 10 years)."
  type        = number
  default     = 315360000

  validation {
    condition     = var.root_ca_ttl_seconds >= 31536000
    error_message = "A root CA should live at least a year."
  }
}

variable "issuing_ca_ttl_seconds" {
  description = "Lifetime of each issuing (intermediate) CA, in seconds (default 5 years); must be below the root's."
  type        = number
  default     = 157680000

  validation {
    condition     = var.issuing_ca_ttl_seconds >= 2592000
    error_message = "An issuing CA should live at least 30 days."
  }
}

variable "crl_expiry" {
  description = "CRL validity (Vault duration) on all four mounts. OpenBao rebuilds a mount's CRL on every revocation (auto_rebuild off) but not as it nears expiry; nginx fails closed on an expired client CRL, so the CRL watcher (and zt renew) calls crl/rotate on all four mounts once a third of this has passed."
  type        = string
  default     = "72h"

  validation {
    # Minutes: the number before "m", or 60 x the number before "h". At least 3m, so the
    # watcher's rebuild at a third of it (1 min) is many polls ahead of nextUpdate.
    condition = can(regex("^[1-9][0-9]*[mh]$", var.crl_expiry)) && try(
      (endswith(var.crl_expiry, "h") ? 60 * tonumber(trimsuffix(var.crl_expiry, "h")) : tonumber(trimsuffix(var.crl_expiry, "m"))) >= 3,
      false,
    )
    error_message = "crl_expiry must be a whole number of minutes or hours, at least 3m, e.g. \"72h\" or \"3m\"."
  }
}

variable "ocsp_expiry" {
  description = "Validity of OCSP responses on all four mounts (Vault duration, minutes or hours, 1m-24h): the nextUpdate of each response. A relying party that caches OCSP responses (nginx's ssl_ocsp_cache does) may keep a \"good\" answer for a certificate revoked since, for up to this long, so it is short here (OpenBao's default is 12h). The gateway itself enforces revocation through CRLs (docs/revocation.md)."
  type        = string
  default     = "5m"

  validation {
    # Minutes: the number before "m", or 60 x the number before "h".
    condition = can(regex("^[1-9][0-9]*[mh]$", var.ocsp_expiry)) && try(
      (endswith(var.ocsp_expiry, "h") ? 60 * tonumber(trimsuffix(var.ocsp_expiry, "h")) : tonumber(trimsuffix(var.ocsp_expiry, "m"))) <= 1440,
      false,
    )
    error_message = "ocsp_expiry must be a whole number of minutes or hours between 1m and 24h, e.g. \"12h\"."
  }
}

variable "approle_token_ttl_seconds" {
  description = "Lifetime of tokens obtained by AppRole login (rotation agents), in seconds."
  type        = number
  default     = 900

  validation {
    condition     = var.approle_token_ttl_seconds >= 60 && var.approle_token_ttl_seconds <= 3600
    error_message = "approle_token_ttl_seconds must be between 1 minute and 1 hour."
  }
}

variable "operator_approle" {
  description = "Name of the operator AppRole and its policy: the scoped identity that applies this root after the bootstrap (operator.tf). The bring-up passes scripts/config.py VAULT_OPERATOR_APPROLE, so the Python side can log in before it can read any output."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,62}$", var.operator_approle)) && !startswith(var.operator_approle, "client-")
    error_message = "operator_approle must be a lowercase DNS label outside the client-* names."
  }
}

variable "client_issuing_generations" {
  description = "Client issuing-CA generations, oldest first; the last issues new workload certs. `python -m scripts.zt rollover-client-ca begin|finish` edits this through TF_VAR (state folder), see README."
  type        = list(string)
  default     = ["1"]
}
