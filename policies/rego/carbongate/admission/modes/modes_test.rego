package carbongate.admission.modes_test

import rego.v1

import data.carbongate.admission.modes

config := {"default_mode": "enforce"}

labels(value) := {"carbongate.io/enforcement": value}

test_each_known_mode_is_taken_from_the_namespace if {
	every value in ["enforce", "warn", "dryrun", "off"] {
		modes.mode(labels(value), config) == value
		modes.warnings(labels(value), config) == []
	}
}

test_a_namespace_labelled_with_a_tier_but_no_mode_takes_the_default_mode if {
	modes.mode({"carbongate.io/tier": "3"}, {"default_mode": "warn", "unlabelled_mode": "dryrun"}) == "warn"
	modes.warnings({"carbongate.io/tier": "3"}, config) == []
}

test_a_namespace_the_platform_has_not_labelled_is_decided_in_dryrun if {
	modes.mode({}, {"default_mode": "enforce", "unlabelled_mode": "dryrun"}) == "dryrun"
	modes.mode({"team": "ml"}, {"default_mode": "enforce", "unlabelled_mode": "dryrun"}) == "dryrun"
	modes.mode({}, {"default_mode": "enforce"}) == "dryrun"
	modes.warnings({}, config) == []
}

test_a_platform_may_choose_another_mode_for_unlabelled_namespaces if {
	modes.mode({}, {"default_mode": "enforce", "unlabelled_mode": "warn"}) == "warn"
}

test_unknown_mode_falls_back_to_the_default_with_a_warning if {
	modes.mode(labels("loud"), config) == "enforce"
	modes.warnings(labels("loud"), config) == [
		`enforcement "loud" on the namespace is not a mode (enforce, warn, dryrun, off); using enforce`,
	]
}

test_a_mode_that_is_not_a_string_is_reported_as_written if {
	modes.warnings(labels(true), config) == [
		"enforcement true on the namespace is not a mode (enforce, warn, dryrun, off); using enforce",
	]
}
