package carbongate.admission.delays_test

import rego.v1

import data.carbongate.admission.delays

batch := {"max_delay_s": 86400, "default_delay_s": 43200, "may_defer": true}

production := {"max_delay_s": 0, "default_delay_s": 0, "may_defer": false}

test_requested_delay_within_the_cap_is_kept if {
	delays.max_delay_s(5400, batch) == 5400
	delays.warnings(5400, "3", batch) == []
}

test_requested_delay_beyond_the_cap_is_capped_with_a_warning if {
	delays.max_delay_s(172800, batch) == 86400
	delays.warnings(172800, "3", batch) == ["max-delay 2d is more than tier 3 allows; waiting at most 1d"]
}

test_absent_delay_takes_the_tier_default if {
	delays.max_delay_s(null, batch) == 43200
	delays.warnings(null, "3", batch) == []
}

test_negative_delay_takes_the_tier_default if {
	delays.max_delay_s(-5, batch) == 43200
}

test_a_tier_that_may_not_defer_waits_zero if {
	delays.max_delay_s(3600, object.union(batch, {"may_defer": false})) == 0
	delays.max_delay_s(null, production) == 0
}

test_a_default_above_the_cap_is_capped if {
	delays.max_delay_s(null, {"max_delay_s": 600, "default_delay_s": 3600, "may_defer": true}) == 600
}

test_expected_duration_is_used_when_positive if {
	delays.duration_s(7200, {"default_duration_s": 3600}) == 7200
}

test_missing_or_zero_duration_takes_the_platform_default if {
	delays.duration_s(null, {"default_duration_s": 3600}) == 3600
	delays.duration_s(0, {"default_duration_s": 3600}) == 3600
}
