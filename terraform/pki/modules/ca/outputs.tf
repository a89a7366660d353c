output "root_mount" {
  description = "Mount path of the root CA."
  value       = vault_mount.root.path
}

output "issuing_mount" {
  description = "Mount path of the issuing (intermediate) CA; roles live here."
  value       = vault_mount.intermediate.path
}

output "root_certificate_pem" {
  description = "Root CA certificate (PEM): the trust anchor of this hierarchy."
  value       = vault_pki_secret_backend_root_cert.this.certificate
}

output "issuing_certificate_pem" {
  description = "Every current issuing CA certificate (PEM), newest first."
  value       = join("", [for g in reverse(var.issuing_generations) : "${trimspace(vault_pki_secret_backend_root_sign_intermediate.this[g].certificate)}\n"])
}

output "ca_bundle_pem" {
  description = "Current issuing CAs (newest first) then the root (PEM), the bundle relying parties load."
  value       = join("", concat([for g in reverse(var.issuing_generations) : "${trimspace(vault_pki_secret_backend_root_sign_intermediate.this[g].certificate)}\n"], ["${trimspace(vault_pki_secret_backend_root_cert.this.certificate)}\n"]))
}

output "root_serial" {
  description = "Serial number of the root CA certificate."
  value       = vault_pki_secret_backend_root_cert.this.serial_number
}

output "issuing_serial" {
  description = "Serial number of the newest issuing CA certificate (the one issuing leaves)."
  value       = vault_pki_secret_backend_root_sign_intermediate.this[local.latest].serial_number
}

output "issuing_serials" {
  description = "Serial number of each issuing CA generation."
  value       = { for g, c in vault_pki_secret_backend_root_sign_intermediate.this : g => c.serial_number }
}

output "issuing_permitted_dns_domains" {
  description = "Per issuing CA generation, the DNS name constraint the root signed into it (null: none)."
  value       = { for g, c in vault_pki_secret_backend_root_sign_intermediate.this : g => c.permitted_dns_domains }
}
