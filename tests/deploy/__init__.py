"""Deploy tests: rendered manifests against the Kubernetes schemas, RBAC against the code, the image."""
