"""Bring-up, rotation and status commands for the zero-trust gateway (`python -m scripts.zt`)."""
