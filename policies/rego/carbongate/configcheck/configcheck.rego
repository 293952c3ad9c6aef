# METADATA
# title: Platform config check
# description: |
#   What is wrong with a platform config (config/data.json), one sentence per
#   problem. The decision policies trust the config's shape, so an edit that
#   breaks it must fail `carbongate policy test` (the shipped config is checked
#   by configcheck_test.rego) instead of making decisions undefined.
package carbongate.configcheck

import rego.v1

known_modes := {"enforce", "warn", "dryrun", "off"}

known_exhausted_actions := {"cleanest-only", "deny"}

tier_numbers := ["max_delay_s", "default_delay_s", "threshold_g_per_kwh", "min_saving_pct"]

tier_flags := ["may_defer", "may_shift"]

# METADATA
# title: problems
# description: The problems of the loaded platform config (empty when it is sound).
# entrypoint: true
problems := errors(data.carbongate.config)

# METADATA
# description: Every problem of a config, sorted.
errors(config) := sort([e | some e in (((((top_errors(config) | tier_errors(config)) | interruptible_errors(config)) | region_errors(config)) | budget_errors(config)) | scope_errors(config))])

top_errors(config) := {e |
	some check in [
		[object.get(config, "default_tier", null) in object.keys(object.get(config, "tiers", {})), "default_tier is not one of tiers"],
		[object.get(config, "default_mode", null) in known_modes, "default_mode is not one of enforce, warn, dryrun, off"],
		[object.get(config, "home_region", null) in object.keys(object.get(config, "regions", {})), "home_region is not one of regions"],
		["1" in object.keys(object.get(config, "tiers", {})), `tiers has no "1" (production)`],
		[object.get(config, "unlabelled_mode", null) in known_modes, "unlabelled_mode is not one of enforce, warn, dryrun, off"],
		[not_in(config, "stale_after_s"), "stale_after_s is gone: grid data is stale by its provider's cadence plus the settings' grid.stale_grace_s"],
		[positive(object.get(config, "default_duration_s", null)), "default_duration_s must be a positive number"],
		[non_negative(object.get(config, "network_kwh_per_gb", null)), "network_kwh_per_gb must be a number >= 0"],
		[strings(object.get(config, "exempt_namespaces", null)), "exempt_namespaces must be a list of names"],
	]
	check[0] == false
	e := check[1]
}

tier_errors(config) := {sprintf("tiers.%s.%s must be a number >= 0", [id, field]) |
	some id, tier in object.get(config, "tiers", {})
	some field in tier_numbers
	non_negative(object.get(tier, field, null)) == false
} | {sprintf("tiers.%s.%s must be true or false", [id, field]) |
	some id, tier in object.get(config, "tiers", {})
	some field in tier_flags
	not is_boolean(object.get(tier, field, null))
} | {sprintf("tiers.%s.default_delay_s is more than its max_delay_s", [id]) |
	some id, tier in object.get(config, "tiers", {})
	tier.default_delay_s > tier.max_delay_s
} | {sprintf("tiers.%s.max_latency_ms must be a number >= 0 when set", [id]) |
	some id, tier in object.get(config, "tiers", {})
	non_negative(object.get(tier, "max_latency_ms", 0)) == false
}

# A tier's interruption settings are optional (absent: its Jobs are never paused);
# production (tier 1) is never paused, so it may not have them.
interruptible_errors(config) := {sprintf("tiers.%s.interruptible%s", [id, text]) |
	some id, tier in object.get(config, "tiers", {})
	settings := object.get(tier, "interruptible", null)
	settings != null
	some check in interruptible_checks(id, settings)
	check[0] == false
	text := check[1]
}

interruptible_checks(id, settings) := [[false, " must be an object"]] if {
	not is_object(settings)
} else := [
	[positive(object.get(settings, "min_slice_s", null)), ".min_slice_s must be a positive number"],
	[whole(object.get(settings, "max_pauses", null)), ".max_pauses must be a whole number >= 0"],
	[non_negative(object.get(settings, "pause_overhead_min", null)), ".pause_overhead_min must be a number >= 0"],
	[id != "1", " is not allowed: production (tier 1) is never paused"],
]

region_errors(config) := {sprintf("regions.%s.node_labels must name one label (key: value)", [id]) |
	some id, region in object.get(config, "regions", {})
	labels(object.get(region, "node_labels", null)) == false
} | {sprintf("regions.%s.latency_ms must be a number >= 0", [id]) |
	some id, region in object.get(config, "regions", {})
	non_negative(object.get(region, "latency_ms", null)) == false
}

budget_errors(config) := {e |
	budgets := object.get(config, "budgets", {})
	some check in [
		[percent(object.get(budgets, "warn_percent", null)), "budgets.warn_percent must be a number in (0, 100]"],
		[object.get(budgets, "exhausted_action", null) in known_exhausted_actions, "budgets.exhausted_action must be cleanest-only or deny"],
		[non_negative(object.get(budgets, "cleanest_max_g_per_kwh", null)), "budgets.cleanest_max_g_per_kwh must be a number >= 0"],
		[known_tiers(object.get(budgets, "exhausted_tiers", null), config), "budgets.exhausted_tiers must list configured tiers"],
	]
	check[0] == false
	e := check[1]
}

scope_errors(config) := {e |
	scope := object.get(config, "scope", {})
	mandate := object.get(config, "mandate", {})
	some check in [
		[strings(object.get(scope, "service_owner_kinds", null)), "scope.service_owner_kinds must be a list of kinds"],
		[strings(object.get(scope, "untouched_owner_kinds", null)), "scope.untouched_owner_kinds must be a list of kinds"],
		[is_boolean(object.get(scope, "services_may_shift", null)), "scope.services_may_shift must be true or false"],
		[known_tiers(object.get(mandate, "workload_may_choose", null), config), "mandate.workload_may_choose must list configured tiers"],
	]
	check[0] == false
	e := check[1]
}

not_in(config, key) := false if {
	object.get(config, key, null) != null
} else := true

# Total checks (true or false, never undefined) so each can sit in a list of checks.
positive(value) := true if {
	is_number(value)
	value > 0
} else := false

non_negative(value) := true if {
	is_number(value)
	value >= 0
} else := false

whole(value) := true if {
	is_number(value)
	value >= 0
	round(value) == value
} else := false

percent(value) := true if {
	is_number(value)
	value > 0
	value <= 100
} else := false

strings(value) := true if {
	is_array(value)
	every item in value {
		is_string(item)
	}
} else := false

labels(value) := true if {
	is_object(value)
	count(value) > 0
	every key, label in value {
		is_string(key)
		is_string(label)
	}
} else := false

known_tiers(value, config) := true if {
	is_array(value)
	every tier in value {
		tier in object.keys(object.get(config, "tiers", {}))
	}
} else := false
