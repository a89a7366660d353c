variable "keycloak_url" {
  description = "Keycloak base URL (its configured hostname; issuer URLs derive from it)."
  type        = string
  default     = "https://localhost:8443"

  validation {
    condition     = can(regex("^https://", var.keycloak_url))
    error_message = "Keycloak must be reached over HTTPS."
  }
}

variable "keycloak_admin_username" {
  description = "Bootstrap admin of the master realm (generated at first start, .state/keycloak/admin.json)."
  type        = string
}

variable "keycloak_admin_password" {
  description = "Password of the bootstrap admin."
  type        = string
  sensitive   = true
}

variable "server_ca_bundle_file" {
  description = "PEM bundle of the server CA; the only trust root for Keycloak's certificate."
  type        = string
}

variable "realm" {
  description = "Name of the realm that issues workload tokens."
  type        = string
  default     = "zerotrust"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,35}$", var.realm))
    error_message = "realm must be a lowercase name, 2-36 characters."
  }
}

variable "api_client_id" {
  description = "client_id of the resource server; access tokens must carry it in `aud`."
  type        = string
  default     = "zerotrust-api"
}

variable "access_token_lifespan_seconds" {
  description = "Access token lifetime in seconds (short: a stolen token is useful briefly)."
  type        = number
  default     = 300

  validation {
    condition     = var.access_token_lifespan_seconds >= 60 && var.access_token_lifespan_seconds <= 3600
    error_message = "access_token_lifespan_seconds must be between 60 and 3600."
  }
}

variable "sso_session_idle_seconds" {
  description = "SSO session idle timeout in seconds (also bounds refresh tokens)."
  type        = number
  default     = 1800

  validation {
    condition     = var.sso_session_idle_seconds >= 300 && var.sso_session_idle_seconds <= 86400
    error_message = "sso_session_idle_seconds must be between 300 and 86400."
  }
}

variable "sso_session_max_seconds" {
  description = "SSO session maximum lifespan in seconds."
  type        = number
  default     = 1800

  validation {
    condition     = var.sso_session_max_seconds >= 300 && var.sso_session_max_seconds <= 86400
    error_message = "sso_session_max_seconds must be between 300 and 86400."
  }
}

variable "brute_force_max_failures" {
  description = "Failed logins before a temporary lockout."
  type        = number
  default     = 5

  validation {
    condition     = var.brute_force_max_failures >= 1 && var.brute_force_max_failures <= 30
    error_message = "brute_force_max_failures must be between 1 and 30."
  }
}

variable "brute_force_wait_seconds" {
  description = "Lockout duration after too many failures, in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.brute_force_wait_seconds >= 60 && var.brute_force_wait_seconds <= 86400
    error_message = "brute_force_wait_seconds must be between 60 and 86400."
  }
}

variable "api_client_roles" {
  description = "Client roles defined on the resource server."
  type        = list(string)
  default     = ["read", "write"]
}

variable "workload_identities" {
  description = "Workload identities (shared with terraform/pki via ../shared/identities.auto.tfvars): per client_id its realm roles, client roles on the API, and the org/department claims."
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
  validation {
    condition     = alltrue(flatten([for v in values(var.workload_identities) : [for r in v.realm_roles : contains(["viewer", "operator", "admin"], r)]]))
    error_message = "realm_roles may only name viewer, operator or admin."
  }
}

variable "disabled_workloads" {
  description = "Workload identities whose Keycloak client is disabled (no new tokens), e.g. after their key leaked. Kept by `zt revoke --disable-client` / `zt enable-client` in the state folder and passed as TF_VAR_disabled_workloads (.state/env.sh exports it for hand-run Terraform)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.disabled_workloads : contains(keys(var.workload_identities), id)])
    error_message = "disabled_workloads may only name workload identities of workload_identities."
  }
}
