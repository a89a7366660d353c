variable "name" {
  description = "Short name of this CA hierarchy (\"server\" or \"client\"); mounts are pki_<name>_root and pki_<name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{1,30}$", var.name))
    error_message = "name must be lower snake_case, 2-31 characters."
  }
}

variable "organization" {
  description = "Organization (O) placed in both CA subjects."
  type        = string
}

variable "root_ttl_seconds" {
  description = "Lifetime of the self-signed root CA certificate, in seconds."
  type        = number
}

variable "intermediate_ttl_seconds" {
  description = "Lifetime of the issuing (intermediate) CA certificate, in seconds; must be shorter than the root's."
  type        = number
}

variable "max_leaf_ttl_seconds" {
  description = "Upper bound for any leaf issued by the intermediate mount, in seconds."
  type        = number
}

variable "permitted_dns_domains" {
  description = "Name constraint on the intermediate CA (empty: none). The server CA uses [\"localhost\"] so it can never vouch for another name."
  type        = list(string)
  default     = []
}

variable "vault_address" {
  description = "Base URL clients use to reach OpenBao; written into the AIA/CRL/OCSP URLs of issued certificates."
  type        = string
}

variable "crl_expiry" {
  description = "How long a published CRL stays valid (Vault duration, e.g. \"72h\"). OpenBao rebuilds a CRL on every revocation (auto_rebuild off) but never because it nears expiry, so whoever relies on it must call crl/rotate well before (nginx refuses every client once the client CRL expires)."
  type        = string
}

variable "ocsp_expiry" {
  description = "Validity of the OCSP responses of both mounts (Vault duration, e.g. \"12h\"; sets nextUpdate). A relying party caching OCSP responses may keep a \"good\" answer for a revoked certificate that long."
  type        = string
}

variable "issuing_generations" {
  description = "Issuing-CA generations, oldest first; the last one issues new leaves. Add one to start a rollover, drop the old one to finish it (see README, client-CA rollover)."
  type        = list(string)
  default     = ["1"]

  validation {
    condition     = length(var.issuing_generations) >= 1 && alltrue([for g in var.issuing_generations : can(regex("^[0-9]+$", g))])
    error_message = "issuing_generations must be a non-empty list of numbers, e.g. [\"1\", \"2\"]."
  }
}
