# METADATA
# title: Who may call the OPA sidecar's REST API, and for what
# description: >-
#   OPA runs with --authentication=token --authorization=basic, so every
#   request is decided here first (kube-mgmt's README shows the pattern).
#   Each caller holds its own bearer token, mounted from the
#   carbongate-opa-tokens Secret into its container and into OPA's
#   environment. The feed may only replace the grid document, governance
#   only the budgets document; the webhook manages carbongate's own
#   policies and config, replaces the budgets document (which governance
#   publishes as a ConfigMap the pod mounts) and asks for decisions. It
#   never writes the grid: that stays the feed's alone. Nobody may touch this
#   policy (it is loaded from a file, not through the API) or any other
#   part of data. What this buys: the feed, which parses answers from
#   outside providers, can corrupt at most the grid document.
#   Tests: tests/deploy/test_deploy_opa_authz.py.
package system.authz

# Deny unless a rule below allows.
default allow := false

# The kubelet's probes and Prometheus: health and metrics carry no data.
allow if {
	input.method == "GET"
	input.path[0] in {"health", "metrics"}
}

# An authenticated caller doing one of the things granted to it.
allow if {
	some grant in grants[caller]
	input.method in grant.methods
	within(input.path, grant.path, grant.prefix)
}

# The name whose token the request carries. Tokens come from OPA's own
# environment, so the Secret never appears in a ConfigMap or in this file.
caller := name if {
	some name, token in tokens
	input.identity == token
}

tokens[name] := token if {
	some name, variable in token_variables
	token := environment[variable]
	count(token) >= 32
}

# OPA's process environment (the tokens arrive there from the Secret).
environment := opa.runtime().env

token_variables := {
	"webhook": "CARBONGATE_TOKEN_WEBHOOK",
	"feed": "CARBONGATE_TOKEN_FEED",
	"governance": "CARBONGATE_TOKEN_GOVERNANCE",
}

# path: the request path split on "/"; prefix: whether deeper paths match too.
grants := {
	"feed": [{"methods": {"PUT"}, "path": ["v1", "data", "carbongate", "grid"], "prefix": false}],
	"governance": [{"methods": {"PUT"}, "path": ["v1", "data", "carbongate", "budgets"], "prefix": false}],
	"webhook": [
		# The decision the webhook asks for on every admission.
		{"methods": {"POST"}, "path": ["v1", "data", "carbongate", "admission", "decision"], "prefix": false},
		# Readiness: is a grid document loaded?
		{"methods": {"GET"}, "path": ["v1", "data", "carbongate", "grid"], "prefix": false},
		# The budgets governance published (the mounted ConfigMap's file).
		{"methods": {"PUT"}, "path": ["v1", "data", "carbongate", "budgets"], "prefix": false},
		# The platform config (policies/rego/carbongate/config/data.json).
		{"methods": {"GET", "PUT", "DELETE"}, "path": ["v1", "data", "carbongate", "config"], "prefix": true},
		# Listing policies (OPA splits GET /v1/policies/ into [..., "policies", ""]),
		# then pushing carbongate's own (ids carbongate-policy/...). A module
		# may declare any package, so this token is as powerful as OPA itself:
		# it lives only in the webhook container, which runs nothing else.
		{"methods": {"GET"}, "path": ["v1", "policies"], "prefix": false},
		{"methods": {"GET"}, "path": ["v1", "policies", ""], "prefix": false},
		{"methods": {"GET", "PUT", "DELETE"}, "path": ["v1", "policies", "carbongate-policy"], "prefix": true},
	],
}

within(path, granted, false) if path == granted

within(path, granted, true) if {
	count(path) > count(granted)
	array.slice(path, 0, count(granted)) == granted
}

within(path, granted, true) if path == granted
