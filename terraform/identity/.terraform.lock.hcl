# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "zerotrust.local/zerotrust/keycloak" {
  version     = "0.1.0"
  constraints = "0.1.0"
  hashes = [
    "h1:Ea7OipM10Jo+Mxq3QlJbjgncViv8Ts8PurtwA8zMqog=",
  ]
}
