"""The Rego policies and their platform settings, shipped as package data."""

from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parent / "rego"
