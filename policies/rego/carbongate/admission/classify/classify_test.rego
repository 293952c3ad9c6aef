package carbongate.admission.classify_test

import rego.v1

import data.carbongate.admission.classify

config := {"default_tier": "2", "tiers": {"1": {}, "2": {}, "3": {}}}

tier_labels(value) := {"carbongate.io/tier": value}

test_the_namespace_tier_is_the_mandate_a_workload_label_cannot_override if {
	classify.tier(tier_labels("1"), tier_labels("3"), config) == "3"
	classify.tier_source(tier_labels("1"), tier_labels("3"), config) == "namespace label"
	classify.refused(tier_labels("1"), tier_labels("3"), config) == "1"
	classify.tier_warnings(tier_labels("1"), tier_labels("3"), config) == [
		"tier 1 on the workload label is refused: the platform set tier 3 for this namespace (3 allowed here); using tier 3",
	]
}

test_a_stricter_workload_tier_is_refused_too_unless_allowed if {
	classify.tier(tier_labels("3"), tier_labels("1"), config) == "1"
	classify.refused(tier_labels("3"), tier_labels("1"), config) == "3"
}

test_the_namespace_may_allow_other_tiers if {
	labels := object.union(tier_labels("3"), {"carbongate.io/allowed-tiers": "2, 3"})
	classify.tier(tier_labels("2"), labels, config) == "2"
	classify.tier_source(tier_labels("2"), labels, config) == "workload label"
	not classify.refused(tier_labels("2"), labels, config)
	classify.tier_warnings(tier_labels("2"), labels, config) == []
	classify.tier(tier_labels("1"), labels, config) == "3"
	classify.tier_warnings(tier_labels("1"), labels, config) == [
		"tier 1 on the workload label is refused: the platform set tier 3 for this namespace (2, 3 allowed here); using tier 3",
	]
}

test_the_platform_config_may_allow_a_tier_everywhere if {
	lenient := object.union(config, {"mandate": {"workload_may_choose": ["3"]}})
	classify.tier(tier_labels("3"), tier_labels("2"), lenient) == "3"
	classify.tier(tier_labels("1"), tier_labels("2"), lenient) == "2"
}

test_a_workload_label_equal_to_the_mandate_is_taken_without_a_warning if {
	classify.tier(tier_labels("3"), tier_labels("3"), config) == "3"
	classify.tier_source(tier_labels("3"), tier_labels("3"), config) == "workload label"
	classify.tier_warnings(tier_labels("3"), tier_labels("3"), config) == []
}

test_without_a_namespace_tier_the_default_is_the_mandate if {
	classify.tier({}, {}, config) == "2"
	classify.tier_source({}, {}, config) == "default"
	classify.tier_warnings({}, {}, config) == []
	classify.tier(tier_labels("1"), {}, config) == "2"
	classify.refused(tier_labels("1"), {}, config) == "1"
}

test_namespace_label_applies_when_the_workload_has_none if {
	classify.tier({}, tier_labels("1"), config) == "1"
	classify.tier_source({}, tier_labels("1"), config) == "namespace label"
}

test_unknown_workload_tier_falls_back_to_the_namespace_with_a_warning if {
	classify.tier(tier_labels("5"), tier_labels("3"), config) == "3"
	classify.tier_warnings(tier_labels("5"), tier_labels("3"), config) == [
		`tier "5" on the workload label is not a configured tier (1, 2, 3); using tier 3`,
	]
}

test_unknown_tiers_everywhere_fall_back_to_the_default if {
	classify.tier(tier_labels("gold"), tier_labels("x"), config) == "2"
	count(classify.tier_warnings(tier_labels("gold"), tier_labels("x"), config)) == 2
}

test_an_unknown_namespace_tier_is_not_reported_when_the_workload_tier_is_used if {
	lenient := object.union(config, {"mandate": {"workload_may_choose": ["3"]}})
	classify.tier_warnings(tier_labels("3"), tier_labels("x"), lenient) == []
}

test_team_comes_from_the_workload_then_the_namespace if {
	classify.team({"carbongate.io/team": "ml"}, {"carbongate.io/team": "data"}) == "ml"
	classify.team({}, {"carbongate.io/team": "data"}) == "data"
	classify.team({}, {}) == null
}
