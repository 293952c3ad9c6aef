package carbongate.lib.durations_test

import rego.v1

import data.carbongate.lib.durations

t_2026_11_22_13 := 1795352400000000000

test_seconds_become_nanoseconds if {
	durations.ns(90) == 90000000000
	durations.ns(1.5) == 1500000000
}

test_rfc3339_drops_sub_second_parts if {
	durations.rfc3339(t_2026_11_22_13 + 123456789) == "2026-11-22T13:00:00Z"
}

test_minute_format_is_short_utc if {
	durations.minute(t_2026_11_22_13 + durations.ns(5 * 3600)) == "2026-11-22T18:00Z"
}

test_human_durations_read_like_annotations if {
	durations.human(7200) == "2h"
	durations.human(5400) == "1h30m"
	durations.human(45) == "45s"
	durations.human(90061) == "1d1h1m1s"
	durations.human(3600.9) == "1h"
}

test_zero_and_negative_durations_read_zero if {
	durations.human(0) == "0s"
	durations.human(-30) == "0s"
}

test_age_counts_whole_seconds_since_an_instant if {
	durations.age_s("2026-11-22T11:00:00Z", t_2026_11_22_13 + 999) == 7200
}

test_age_of_an_unreadable_instant_is_undefined if {
	not durations.age_s("yesterday", t_2026_11_22_13)
}

test_age_of_an_unreadable_value_is_undefined if {
	not durations.age_s("2026-11-22T11:00:00Z", "now")
}

test_rfc3339_shape_accepts_offsets_and_fractions if {
	durations.is_rfc3339("2026-11-22T11:00:00.5+01:00")
	not durations.is_rfc3339("2026-11-22T11:00Z")
	not durations.is_rfc3339("2026-13-22T11:00:00Z")
}
