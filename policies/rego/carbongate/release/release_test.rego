package carbongate.release_test

import rego.v1

import data.carbongate.release

hour_ns := 3600000000000

t0 := time.parse_rfc3339_ns("2026-11-21T12:00:00Z")

workload := {
	"kind": "Pod", "namespace": "ml-team", "name": "train", "tier": "3",
	"annotations": {"carbongate.io/region": "GB"},
	"not_before": "2026-11-21T15:00:00Z", "not_before_ns": t0 + (3 * hour_ns),
	"deadline": "2026-11-21T20:00:00Z", "deadline_ns": t0 + (8 * hour_ns),
	"expected_duration_s": 7200, "release_by_ns": t0 + (6 * hour_ns),
}

window(offset_h, mean) := {"start_ns": t0 + (offset_h * hour_ns), "mean_g_per_kwh": mean}

region(now_g, windows) := {
	"now_g_per_kwh": now_g, "signal": "average", "stale": false, "source": "trace",
	"observed_at": "2026-11-21T11:30:00Z", "fresh_until_ns": t0 + (48 * hour_ns), "move_g": 0.0, "windows": windows,
}

# The admission plan: 15:00 is the cleanest window before the deadline.
planned_windows := [window(0, 400), window(1, 380), window(2, 300), window(3, 120), window(4, 200)]

plan := {"home_region": "GB", "regions": {"GB": region(400, planned_windows)}}

decide(now, w, p) := d if {
	d := release.decision with input as {"now": time.format(now), "now_ns": now, "workload": w, "plan": p}
}

test_waits_before_the_planned_window if {
	d := decide(t0, workload, plan)
	d.release == false
	d.reason == "waiting"
	not d.not_before
	d.message == "waiting until 2026-11-21T15:00Z (release by 2026-11-21T18:00Z)"
	d.g_per_kwh == 400
}

test_releases_when_the_planned_window_opens if {
	d := decide(workload.not_before_ns, workload, plan)
	d.release == true
	d.reason == "window-open"
	d.region == "GB"
}

# Tier 2 keeps a threshold (its delays are short); tier 3 ships with none.
tier2 := object.union(workload, {"tier": "2"})

test_releases_when_intensity_is_under_the_tier_threshold if {
	clean := {"home_region": "GB", "regions": {"GB": region(140, planned_windows)}}
	d := decide(t0, tier2, clean)
	d.reason == "clean-now"
	d.release == true
	d.message == "released: GB is at 140 gCO2/kWh now, under the tier 2 threshold of 200"
}

test_tier3_waits_for_its_window_however_clean_now_is if {
	clean := {"home_region": "GB", "regions": {"GB": region(140, planned_windows)}}
	d := decide(t0, workload, clean)
	d.release == false
	d.reason == "waiting"
}

test_threshold_equal_is_not_under_it if {
	at_threshold := {"home_region": "GB", "regions": {"GB": region(150, planned_windows)}}
	decide(t0, workload, at_threshold).reason == "waiting"
}

test_stale_data_never_releases_early_on_intensity if {
	stale := {"home_region": "GB", "regions": {"GB": object.union(region(10, planned_windows), {"stale": true})}}
	d := decide(t0, workload, stale)
	d.reason == "waiting"
	d.g_per_kwh == null
}

test_tier_without_a_threshold_is_never_released_on_intensity if {
	tier_one := object.union(workload, {"tier": "1"})
	clean := {"home_region": "GB", "regions": {"GB": region(1, planned_windows)}}
	decide(t0, tier_one, clean).reason == "waiting"
}

test_deadline_forces_release_whatever_the_grid if {
	dirty := {"home_region": "GB", "regions": {"GB": region(900, [])}}
	late := object.union(workload, {"not_before_ns": t0 + (7 * hour_ns)})
	d := decide(workload.release_by_ns, late, dirty)
	d.release == true
	d.reason == "deadline"
	d.message == "released: the deadline 2026-11-21T20:00:00Z leaves no more room"
}

test_deadline_forces_release_without_any_grid_data if {
	d := decide(workload.release_by_ns + 1, object.union(workload, {"not_before_ns": null}), {"home_region": "GB", "regions": {}})
	d.reason == "deadline"
}

test_break_glass_releases_at_once_and_says_so if {
	urgent := object.union(workload, {"annotations": {"carbongate.io/release-now": "true"}})
	d := decide(t0, urgent, plan)
	d.release == true
	d.reason == "break-glass"
	d.message == "released: carbongate.io/release-now was set"
}

test_break_glass_needs_the_exact_value_true if {
	casual := object.union(workload, {"annotations": {"carbongate.io/release-now": "yes"}})
	decide(t0, casual, plan).reason == "waiting"
}

test_a_cleaner_window_in_a_new_forecast_moves_not_before if {
	newer := {"home_region": "GB", "regions": {"GB": region(400, [window(0, 400), window(3, 120), window(5, 60)])}}
	d := decide(t0, workload, newer)
	d.reason == "waiting"
	d.not_before == "2026-11-21T17:00:00Z"
	d.not_before_ns == t0 + (5 * hour_ns)
}

test_an_equally_clean_earlier_window_moves_not_before_earlier if {
	newer := {"home_region": "GB", "regions": {"GB": region(400, [window(0, 400), window(2, 120), window(3, 120)])}}
	decide(t0, workload, newer).not_before == "2026-11-21T14:00:00Z"
}

test_a_window_after_release_by_is_not_a_better_plan if {
	newer := {"home_region": "GB", "regions": {"GB": region(400, [window(3, 120), window(7, 10)])}}
	not decide(t0, workload, newer).not_before
}

test_a_replan_whose_best_window_is_now_releases if {
	newer := {"home_region": "GB", "regions": {"GB": region(400, [window(0, 50), window(3, 120)])}}
	d := decide(t0, workload, newer)
	d.release == true
	d.reason == "window-open"
}

test_stale_forecast_never_replans if {
	newer := {"home_region": "GB", "regions": {"GB": object.union(region(400, [window(0, 50), window(5, 10)]), {"stale": true})}}
	d := decide(t0, workload, newer)
	d.reason == "waiting"
	not d.not_before
}

test_shifted_workload_releases_with_its_region_affinity if {
	shifted := object.union(tier2, {"annotations": {"carbongate.io/region": "NO"}})
	two := {"home_region": "GB", "regions": {"GB": region(400, planned_windows), "NO": region(30, [])}}
	d := decide(t0, shifted, two)
	d.reason == "clean-now"
	d.region == "NO"
	d.node_affinity == {"key": "topology.kubernetes.io/region", "values": ["norwayeast"]}
}

test_home_region_release_narrows_nothing if {
	decide(workload.not_before_ns, workload, plan).node_affinity == null
}

test_workload_without_region_annotation_runs_at_home if {
	bare := object.union(workload, {"annotations": {}})
	decide(workload.not_before_ns, bare, plan).region == "GB"
}

test_a_forecast_without_the_planned_window_replans_to_the_cleanest_reachable if {
	shorter := {"home_region": "GB", "regions": {"GB": region(400, [window(0, 400), window(1, 390), window(2, 395)])}}
	decide(t0, workload, shorter).not_before == "2026-11-21T13:00:00Z"
}

test_missing_tier_uses_the_default_tier if {
	untiered := object.remove(workload, ["tier"])
	clean := {"home_region": "GB", "regions": {"GB": region(190, planned_windows)}}
	decide(t0, untiered, clean).reason == "clean-now"
}

test_the_cleanest_window_ties_to_the_earliest_whatever_their_order if {
	unordered := {"home_region": "GB", "regions": {"GB": region(400, [
		window(4, 100), window(3, 150), window(2, 100), window(5, 100),
	])}}
	d := decide(t0, workload, unordered)
	d.not_before == "2026-11-21T14:00:00Z"
	d.message == "waiting until 2026-11-21T14:00Z (release by 2026-11-21T18:00Z)"
}

test_each_release_says_its_own_reason if {
	decide(workload.not_before_ns, workload, plan).message == "released: the planned window opened (GB 400 gCO2/kWh now)"
	stale := {"home_region": "GB", "regions": {"GB": object.union(region(400, planned_windows), {"stale": true})}}
	decide(workload.not_before_ns, workload, stale).message == "released: the planned window opened (GB no fresh grid data)"
}
