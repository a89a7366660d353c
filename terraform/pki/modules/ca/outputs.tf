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
  description = "Issuing (intermediate) CA certificate (PEM)."
  value       = vault_pki_secret_backend_root_sign_intermediate.this.certificate
}

output "ca_bundle_pem" {
  description = "Intermediate then root (PEM), the bundle relying parties load."
  value       = "${trimspace(vault_pki_secret_backend_root_sign_intermediate.this.certificate)}\n${trimspace(vault_pki_secret_backend_root_cert.this.certificate)}\n"
}

output "root_serial" {
  description = "Serial number of the root CA certificate."
  value       = vault_pki_secret_backend_root_cert.this.serial_number
}

output "issuing_serial" {
  description = "Serial number of the issuing CA certificate."
  value       = vault_pki_secret_backend_root_sign_intermediate.this.serial_number
}
