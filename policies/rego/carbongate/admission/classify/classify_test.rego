package carbongate.admission.classify_test

import rego.v1

import data.carbongate.admission.classify

config := {"default_tier": "2", "tiers": {"1": {}, "2": {}, "3": {}}}

tier_labels(value) := {"carbongate.io/tier": value}

test_workload_label_wins_over_namespace_label if {
	classify.tier(tier_labels("3"), tier_labels("1"), config) == "3"
	classify.tier_source(tier_labels("3"), tier_labels("1"), config) == "workload label"
}

test_namespace_label_applies_when_the_workload_has_none if {
	classify.tier({}, tier_labels("1"), config) == "1"
	classify.tier_source({}, tier_labels("1"), config) == "namespace label"
}

test_config_default_applies_without_labels if {
	classify.tier({}, {}, config) == "2"
	classify.tier_source({}, {}, config) == "default"
	classify.tier_warnings({}, {}, config) == []
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
	classify.tier_warnings(tier_labels("3"), tier_labels("x"), config) == []
}

test_a_tier_that_is_not_a_string_is_reported_as_written if {
	classify.tier_warnings(tier_labels(3), {}, config) == [
		"tier 3 on the workload label is not a configured tier (1, 2, 3); using tier 2",
	]
}

test_empty_tier_label_counts_as_absent if {
	classify.tier(tier_labels(""), tier_labels("3"), config) == "3"
	classify.tier_warnings(tier_labels(""), {}, config) == []
}

test_team_comes_from_the_workload_then_the_namespace if {
	classify.team({"carbongate.io/team": "ml"}, {"carbongate.io/team": "data"}) == "ml"
	classify.team({}, {"carbongate.io/team": "data"}) == "data"
}

test_team_is_null_when_nobody_names_one if {
	classify.team({"app": "x"}, {}) == null
}
