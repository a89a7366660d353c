# Workload identities: the ONE list both Terraform roots read.
#
# terraform/pki creates a client-cert role + AppRole per key (the cert's CN is
# the key); terraform/identity creates a Keycloak client per key (its client_id
# is the key) with these roles and claims. Both roots load this file through a
# symlink named identities.auto.tfvars, so adding a workload is one entry here
# followed by `make up` (which applies pki, then identity).
workload_identities = {
  "python-client" = {
    realm_roles  = ["viewer"]
    client_roles = ["read"]
    org          = "acme"
    department   = "payments"
  }
  "batch-worker" = {
    realm_roles  = ["operator"]
    client_roles = ["read", "write"]
    org          = "globex"
    department   = "batch"
  }
}
