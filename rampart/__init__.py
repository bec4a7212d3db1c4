"""Rampart: the Python side of the kit (lab harness, password and ACL logic, PKI)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
