package carbongate.configcheck_test

import rego.v1

import data.carbongate.configcheck

sound := {
	"default_tier": "2", "default_mode": "enforce", "unlabelled_mode": "dryrun", "home_region": "GB",
	"default_duration_s": 3600, "network_kwh_per_gb": 0.06,
	"tiers": {
		"1": {"max_delay_s": 0, "default_delay_s": 0, "threshold_g_per_kwh": 0, "min_saving_pct": 100,
			"may_defer": false, "may_shift": false},
		"3": {"max_delay_s": 86400, "default_delay_s": 43200, "threshold_g_per_kwh": 150, "min_saving_pct": 10,
			"may_defer": true, "may_shift": true, "max_latency_ms": 40},
		"2": {"max_delay_s": 7200, "default_delay_s": 3600, "threshold_g_per_kwh": 200, "min_saving_pct": 10,
			"may_defer": true, "may_shift": true},
	},
	"regions": {"GB": {"node_labels": {"topology.kubernetes.io/region": "europe-west2"}, "latency_ms": 0}},
	"budgets": {"warn_percent": 80, "exhausted_action": "deny", "exhausted_tiers": ["3"], "cleanest_max_g_per_kwh": 100},
	"exempt_namespaces": ["kube-system"],
	"scope": {"service_owner_kinds": ["ReplicaSet", "StatefulSet"], "untouched_owner_kinds": ["DaemonSet"],
		"services_may_shift": false},
	"mandate": {"workload_may_choose": []},
}

test_the_shipped_config_is_sound if {
	configcheck.problems == []
}

test_a_sound_config_has_no_problems if {
	configcheck.errors(sound) == []
}

test_top_level_mistakes_are_named if {
	broken := object.union(sound, {
		"default_tier": "4", "default_mode": "loud", "unlabelled_mode": "on", "home_region": "FR", "stale_after_s": 0,
		"default_duration_s": "1h", "network_kwh_per_gb": -1, "exempt_namespaces": ["kube-system", 3],
	})
	configcheck.errors(broken) == [
		"default_duration_s must be a positive number",
		"default_mode is not one of enforce, warn, dryrun, off",
		"default_tier is not one of tiers",
		"exempt_namespaces must be a list of names",
		"home_region is not one of regions",
		"network_kwh_per_gb must be a number >= 0",
		"stale_after_s is gone: grid data is stale by its provider's cadence plus the settings' grid.stale_grace_s",
		"unlabelled_mode is not one of enforce, warn, dryrun, off",
	]
}

test_scope_and_mandate_mistakes_are_named if {
	broken := object.union(sound, {
		"scope": {"service_owner_kinds": "ReplicaSet", "untouched_owner_kinds": [1], "services_may_shift": "no"},
		"mandate": {"workload_may_choose": ["4"]},
	})
	configcheck.errors(broken) == [
		"mandate.workload_may_choose must list configured tiers",
		"scope.service_owner_kinds must be a list of kinds",
		"scope.services_may_shift must be true or false",
		"scope.untouched_owner_kinds must be a list of kinds",
	]
}

test_a_config_without_a_production_tier_is_refused if {
	configcheck.errors(object.remove(sound, ["tiers"])) == [
		"budgets.exhausted_tiers must list configured tiers",
		"default_tier is not one of tiers",
		`tiers has no "1" (production)`,
	]
}

test_tier_mistakes_are_named if {
	broken := object.union(sound, {"tiers": {"2": {
		"max_delay_s": 600, "default_delay_s": 3600, "threshold_g_per_kwh": null, "min_saving_pct": "10%",
		"may_shift": "yes", "max_latency_ms": -5,
	}}})
	configcheck.errors(broken) == [
		"tiers.2.default_delay_s is more than its max_delay_s",
		"tiers.2.max_latency_ms must be a number >= 0 when set",
		"tiers.2.may_shift must be true or false",
		"tiers.2.min_saving_pct must be a number >= 0",
		"tiers.2.threshold_g_per_kwh must be a number >= 0",
	]
}

test_region_mistakes_are_named if {
	broken := object.union(sound, {"regions": {"NO": {"node_labels": {}, "latency_ms": "far"}}})
	configcheck.errors(broken) == [
		"regions.NO.latency_ms must be a number >= 0",
		"regions.NO.node_labels must name one label (key: value)",
	]
}

test_budget_mistakes_are_named if {
	broken := object.union(sound, {"budgets": {
		"warn_percent": 120, "exhausted_action": "panic", "exhausted_tiers": ["9"], "cleanest_max_g_per_kwh": null,
	}})
	configcheck.errors(broken) == [
		"budgets.cleanest_max_g_per_kwh must be a number >= 0",
		"budgets.exhausted_action must be cleanest-only or deny",
		"budgets.exhausted_tiers must list configured tiers",
		"budgets.warn_percent must be a number in (0, 100]",
	]
}

test_checks_are_total if {
	configcheck.positive("1") == false
	configcheck.percent(0) == false
	configcheck.strings("kube-system") == false
	configcheck.labels({"a": 1}) == false
	configcheck.known_tiers("3", sound) == false
}

test_interruption_settings_are_optional_and_checked if {
	good := object.union(sound, {"tiers": {"3": {"interruptible": {"min_slice_s": 3600, "max_pauses": 2, "pause_overhead_min": 10}}}})
	configcheck.errors(good) == []
	broken := object.union(sound, {"tiers": {
		"1": {"interruptible": {"min_slice_s": 3600, "max_pauses": 1, "pause_overhead_min": 0}},
		"2": {"interruptible": "yes"},
		"3": {"interruptible": {"min_slice_s": 0, "max_pauses": 1.5, "pause_overhead_min": -1}},
	}})
	configcheck.errors(broken) == [
		"tiers.1.interruptible is not allowed: production (tier 1) is never paused",
		"tiers.2.interruptible must be an object",
		"tiers.3.interruptible.max_pauses must be a whole number >= 0",
		"tiers.3.interruptible.min_slice_s must be a positive number",
		"tiers.3.interruptible.pause_overhead_min must be a number >= 0",
	]
}
