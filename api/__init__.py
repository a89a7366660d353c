"""The protected API (Flask, served by gunicorn on a unix socket behind nginx)."""
