# This file is maintained automatically by "terraform init".
# Manual edits may be lost in future updates.

provider "registry.terraform.io/hashicorp/vault" {
  version     = "5.9.0"
  constraints = "5.9.0"
  hashes = [
    "h1:6IAUlCCsnI3hvWhydljdzkkkbF65YK7Wu4ZgeLVM1go=",
  ]
}
