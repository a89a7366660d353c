"""The processes the stack runs: OpenBao, Keycloak, the verifier and API under gunicorn, nginx."""
