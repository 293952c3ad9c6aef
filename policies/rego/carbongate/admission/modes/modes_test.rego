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

test_default_mode_applies_without_a_label if {
	modes.mode({}, {"default_mode": "warn"}) == "warn"
	modes.warnings({}, config) == []
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
