"""carbongate: carbon-aware admission for Kubernetes (shared settings and CLI)."""

__version__ = "0.1.0"
