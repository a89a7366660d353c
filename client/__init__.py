"""Python workload client: Keycloak client_credentials token + mTLS call (`python -m client`)."""
