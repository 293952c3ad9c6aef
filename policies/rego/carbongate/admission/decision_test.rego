package carbongate.admission_test

import rego.v1

import data.carbongate.admission

# ---------------------------------------------------------------- builders

# A fixed platform config, so these tests say what the logic does whatever a
# platform team later sets in config/data.json (tested on its own below).
config := {
	"default_tier": "2",
	"default_mode": "enforce",
	"unlabelled_mode": "dryrun",
	"home_region": "GB",
	"default_duration_s": 3600,
	"tiers": {
		"1": {"max_delay_s": 0, "default_delay_s": 0, "threshold_g_per_kwh": 0, "min_saving_pct": 100,
			"may_defer": false, "may_shift": false},
		"2": {"max_delay_s": 7200, "default_delay_s": 3600, "threshold_g_per_kwh": 200, "min_saving_pct": 10,
			"may_defer": true, "may_shift": true, "max_latency_ms": 20},
		"3": {"max_delay_s": 86400, "default_delay_s": 43200, "threshold_g_per_kwh": 150, "min_saving_pct": 10,
			"may_defer": true, "may_shift": true},
	},
	"regions": {
		"GB": {"node_labels": {"topology.kubernetes.io/region": "europe-west2"}, "latency_ms": 0},
		"DE": {"node_labels": {"topology.kubernetes.io/region": "europe-west3"}, "latency_ms": 15},
		"NO": {"node_labels": {"topology.kubernetes.io/region": "norwayeast"}, "latency_ms": 25},
	},
	"network_kwh_per_gb": 0.06,
	"budgets": {"warn_percent": 80, "exhausted_action": "cleanest-only", "exhausted_tiers": ["3"],
		"cleanest_max_g_per_kwh": 100},
	"exempt_namespaces": ["kube-system", "kube-public", "kube-node-lease"],
}

t0 := time.parse_rfc3339_ns("2026-11-22T12:00:00Z")

hour_ns := 3600000000000

window(hours, mean) := {"start_ns": t0 + hours * hour_ns, "mean_g_per_kwh": mean}

region(now_g, windows) := {
	"now_g_per_kwh": now_g, "signal": "average", "stale": false, "source": "trace",
	"observed_at": "2026-11-22T11:30:00Z", "fresh_until_ns": t0 + hour_ns, "move_g": 0, "windows": windows,
}

# GB at 412 now, 300 in an hour, 96 at 15:00 and 50 tomorrow morning.
dirty_home := region(412, [window(0, 400), window(1, 300), window(3, 96), window(20, 50)])

base := {
	"now": "2026-11-22T12:00:00Z", "now_ns": t0, "operation": "CREATE", "dry_run": false,
	"kind": "Job", "namespace": "ml-team",
	"namespace_labels": {"carbongate.io/tier": "3", "carbongate.io/team": "ml"},
	"object": {"kind": "Job", "metadata": {"name": "nightly-train"}},
	"user": {"username": "alice"}, "own_namespace": "carbongate",
	"workload": {
		"labels": {}, "annotations": {}, "owner_kind": null, "owner_name": null,
		"template_decision": null, "expected_duration_s": 3600, "max_delay_s": 43200,
		"regions": [], "data_region": null, "data_gb": 0, "energy_kwh": 2.0, "parse_errors": [],
	},
	"plan": {"home_region": "GB", "regions": {"GB": dirty_home}},
	"budget": null,
}

# The input with some fields changed (objects merge, other values replace).
review(changes) := object.union(base, changes)

decide(changes) := d if {
	d := admission.decision with input as review(changes)
		with data.carbongate.config as config
		with data.carbongate.budgets as {}
}

decide_with_budget(changes, budget) := d if {
	d := admission.decision with input as review(changes)
		with data.carbongate.config as config
		with data.carbongate.budgets as {"period": "2026-11", "teams": {"ml": budget}}
}

decide_with_config(changes, changed_config) := d if {
	d := admission.decision with input as review(changes)
		with data.carbongate.config as object.union(config, changed_config)
		with data.carbongate.budgets as {}
}

regions(plan_regions) := {"plan": {"home_region": "GB", "regions": plan_regions}}

passive_fields := {"warnings": [], "annotations": {}, "region": null, "node_affinity": null, "not_before": null,
	"deadline": null}

# ---------------------------------------------------------------- what is decided at all

test_updates_are_not_applicable if {
	d := decide({"operation": "UPDATE"})
	d.action == "admit"
	d.reason == "not-applicable"
	d.message == "carbongate decides only Pod and Job CREATE, not Job UPDATE"
	object.subset(d, passive_fields)
}

test_other_kinds_are_not_applicable if {
	decide({"kind": "Deployment"}).reason == "not-applicable"
}

test_exempt_namespaces_are_admitted_without_annotations if {
	d := decide({"namespace": "kube-system"})
	d.reason == "exempt"
	object.subset(d, passive_fields)
}

test_carbongates_own_namespace_is_exempt if {
	decide({"namespace": "carbongate"}).reason == "exempt"
}

test_pods_of_a_decided_job_are_not_gated_again if {
	d := decide({"kind": "Pod", "workload": {"template_decision": "defer", "owner_kind": "Job"}})
	d.reason == "exempt"
	d.message == "already decided by carbongate (defer)"
	d.annotations == {}
}

test_tier_one_is_never_changed if {
	d := decide({"namespace_labels": {"carbongate.io/tier": "1"}})
	d.reason == "tier-1"
	d.tier == "1"
	object.subset(d, passive_fields)
}

test_enforcement_off_is_admitted_without_warnings if {
	d := decide({
		"namespace_labels": {"carbongate.io/enforcement": "off"},
		"workload": {"parse_errors": ["carbongate.io/max-delay: '12x' is not a duration"]},
	})
	d.reason == "enforcement-off"
	d.mode == "off"
	d.warnings == []
}

# ---------------------------------------------------------------- grid data

test_stale_home_data_admits_unchanged_with_its_age if {
	d := decide(regions({"GB": object.union(dirty_home, {"stale": true, "observed_at": "2026-11-22T09:15:00Z"})}))
	d.action == "admit"
	d.reason == "stale-data"
	d.annotations == {}
	d.warnings == ["carbongate: grid data for GB is stale (observed 2h45m ago at 2026-11-22T09:15:00Z); admitted unchanged"]
}

test_home_data_past_its_fresh_until_is_stale if {
	d := decide(regions({"GB": object.union(dirty_home, {"observed_at": "2026-11-22T08:00:00Z", "fresh_until_ns": t0})}))
	d.reason == "stale-data"
}

test_missing_plan_admits_for_lack_of_data if {
	d := decide({"plan": null})
	d.reason == "no-data"
	d.warnings == ["carbongate: no grid data for GB; admitted unchanged"]
}

test_missing_clock_admits_for_lack_of_data if {
	d := admission.decision with input as object.remove(review({}), ["now_ns"])
		with data.carbongate.config as config
	d.reason == "no-data"
	d.message == "the input has no now_ns; admitted unchanged"
}

test_a_stale_candidate_region_is_not_used if {
	d := decide(object.union(
		{"workload": {"regions": ["GB", "NO"]}},
		regions({"GB": dirty_home, "NO": object.union(region(30, [window(0, 30)]), {"stale": true})}),
	))
	d.action == "defer"
	d.region == "GB"
}

# ---------------------------------------------------------------- clean enough now

test_clean_now_admits_with_annotations if {
	d := decide(regions({"GB": region(120, [window(0, 120), window(3, 40)])}))
	d.action == "admit"
	d.reason == "clean-now"
	d.message == "GB 120 gCO2/kWh now is at or below the tier-3 threshold 150"
	d.warnings == []
	d.annotations == {
		"carbongate.io/decision": "admit", "carbongate.io/reason": "clean-now",
		"carbongate.io/region": "GB", "carbongate.io/intensity": "120",
	}
}

test_a_window_less_than_min_saving_cleaner_admits if {
	d := decide(regions({"GB": region(412, [window(0, 400), window(2, 370)])}))
	d.reason == "no-better-window"
	d.message == "the best window (GB 370 gCO2/kWh) is not 10% cleaner than now (400)"
}

test_no_window_at_all_admits if {
	d := decide(regions({"GB": region(412, [])}))
	d.reason == "no-better-window"
	d.message == "no forecast window covers the expected duration"
}

test_running_now_at_home_is_admitted_when_it_is_the_best if {
	d := decide_with_config(regions({"GB": region(412, [window(0, 300), window(2, 350)])}), {"tiers": {"3": {"min_saving_pct": 0}}})
	d.action == "admit"
	d.reason == "no-better-window"
	d.message == "running now is the best choice"
}

# ---------------------------------------------------------------- defer

test_dirty_now_defers_to_the_cleanest_window_within_the_delay if {
	d := decide({"workload": {"max_delay_s": 4 * 3600}})
	d.action == "defer"
	d.reason == "cleaner-window"
	d.region == "GB"
	d.not_before == "2026-11-22T15:00:00Z"
	d.deadline == "2026-11-22T17:00:00Z"
	d.message == "deferred until 2026-11-22T15:00Z"
	d.node_affinity == null
	d.warnings == ["carbongate: deferred until 2026-11-22T15:00Z (GB 412 gCO2/kWh now, 96 forecast); deadline 2026-11-22T17:00Z"]
	d.annotations == {
		"carbongate.io/decision": "defer", "carbongate.io/reason": "cleaner-window",
		"carbongate.io/not-before": "2026-11-22T15:00:00Z", "carbongate.io/deadline": "2026-11-22T17:00:00Z",
		"carbongate.io/region": "GB", "carbongate.io/intensity": "412",
	}
}

test_windows_after_the_latest_start_are_not_chosen if {
	decide({"workload": {"max_delay_s": 2 * 3600}}).not_before == "2026-11-22T13:00:00Z"
}

test_a_longer_request_than_the_tier_allows_is_capped_with_a_warning if {
	d := decide({"workload": {"max_delay_s": 48 * 3600}})
	d.not_before == "2026-11-23T08:00:00Z"
	d.deadline == "2026-11-23T13:00:00Z"
	d.warnings[0] == "carbongate: max-delay 2d is more than tier 3 allows; waiting at most 1d"
}

test_no_requested_delay_takes_the_tier_default if {
	d := decide({"workload": {"max_delay_s": null, "expected_duration_s": null}})
	d.deadline == "2026-11-23T01:00:00Z"
}

test_staging_waits_at_most_two_hours if {
	d := decide({"namespace_labels": {"carbongate.io/tier": "2"}, "workload": {"max_delay_s": null}})
	d.tier == "2"
	d.not_before == "2026-11-22T13:00:00Z"
}

test_equal_windows_go_to_the_earliest if {
	d := decide(regions({"GB": region(412, [window(0, 400), window(2, 90), window(4, 90)])}))
	d.not_before == "2026-11-22T14:00:00Z"
}

# ---------------------------------------------------------------- shift

test_a_cleaner_region_now_shifts_the_workload if {
	d := decide(object.union(
		{"workload": {"regions": ["GB", "NO"], "max_delay_s": 0}},
		regions({"GB": dirty_home, "NO": region(31, [window(0, 31)])}),
	))
	d.action == "shift"
	d.reason == "cleaner-region"
	d.region == "NO"
	d.not_before == null
	d.deadline == null
	d.message == "shifted to NO"
	d.node_affinity == {"key": "topology.kubernetes.io/region", "values": ["norwayeast"], "required": true}
	d.warnings == ["carbongate: shifted to NO (31 gCO2/kWh vs GB 412 now)"]
	d.annotations["carbongate.io/region"] == "NO"
	not d.annotations["carbongate.io/not-before"]
}

test_a_later_window_elsewhere_defers_and_shifts if {
	d := decide(object.union(
		{"workload": {"regions": ["GB", "NO"]}},
		regions({"GB": dirty_home, "NO": region(60, [window(0, 60), window(2, 20)])}),
	))
	d.action == "defer"
	d.region == "NO"
	d.node_affinity.values == ["norwayeast"]
	d.warnings == ["carbongate: deferred until 2026-11-22T14:00Z in NO (GB 412 gCO2/kWh now, NO 20 forecast); deadline 2026-11-23T01:00Z"]
}

test_equal_windows_at_home_and_elsewhere_stay_home if {
	d := decide(object.union(
		{"workload": {"regions": ["GB", "DE"]}},
		regions({"GB": region(412, [window(0, 400), window(2, 90)]), "DE": region(300, [window(0, 300), window(2, 90)])}),
	))
	d.region == "GB"
	d.node_affinity == null
}

test_moving_data_that_costs_more_than_it_saves_keeps_the_workload_home if {
	# 2 kWh x (96 - 31) g/kWh = 130 g saved < 500 g to move the data.
	d := decide(object.union(
		{"workload": {"regions": ["GB", "NO"], "data_gb": 100}},
		regions({"GB": dirty_home, "NO": object.union(region(31, [window(0, 31)]), {"move_g": 500})}),
	))
	d.action == "defer"
	d.region == "GB"
}

test_staging_does_not_shift_beyond_its_latency_budget if {
	d := decide(object.union(
		{"namespace_labels": {"carbongate.io/tier": "2"}, "workload": {"regions": ["GB", "NO"]}},
		regions({"GB": dirty_home, "NO": region(31, [window(0, 31)])}),
	))
	d.region == "GB"
}

test_regions_not_asked_for_are_not_used if {
	d := decide(regions({"GB": dirty_home, "NO": region(31, [window(0, 31)])}))
	d.region == "GB"
}

test_unknown_requested_regions_are_reported if {
	d := decide({"workload": {"regions": ["GB", "MARS"]}})
	d.warnings[0] == `carbongate: region "MARS" in carbongate.io/regions is not configured; ignored`
}

# ---------------------------------------------------------------- modes and warnings

test_warn_mode_says_what_would_have_happened if {
	d := decide({
		"namespace_labels": {"carbongate.io/enforcement": "warn"},
		"workload": {"max_delay_s": 4 * 3600, "parse_errors": ["carbongate.io/data-gb: 'lots' is not a number"]},
	})
	d.mode == "warn"
	d.action == "defer"
	d.warnings == [
		"carbongate (warn mode): carbongate.io/data-gb: 'lots' is not a number",
		"carbongate (warn mode): would have deferred until 2026-11-22T15:00Z (GB 412 gCO2/kWh now, 96 forecast); deadline 2026-11-22T17:00Z",
	]
}

test_dryrun_decides_but_says_nothing if {
	d := decide({"namespace_labels": {"carbongate.io/enforcement": "dryrun"}})
	d.mode == "dryrun"
	d.action == "defer"
	d.warnings == []
}

test_an_unknown_mode_enforces_the_default_with_a_warning if {
	d := decide({"namespace_labels": {"carbongate.io/enforcement": "loud"}})
	d.mode == "enforce"
	d.warnings[0] == `carbongate: enforcement "loud" on the namespace is not a mode (enforce, warn, dryrun, off); using enforce`
}

test_an_unknown_tier_is_reported_and_the_next_source_used if {
	d := decide({"workload": {"labels": {"carbongate.io/tier": "gold"}}})
	d.tier == "3"
	d.warnings[0] == `carbongate: tier "gold" on the workload label is not a configured tier (1, 2, 3); using tier 3`
}

test_parse_errors_become_warnings if {
	d := decide({"workload": {"parse_errors": ["carbongate.io/max-delay: '12x' is not a duration"]}})
	d.warnings[0] == "carbongate: carbongate.io/max-delay: '12x' is not a duration"
}

# ---------------------------------------------------------------- budgets

ml(used_kg, state) := {"limit_g": 800000, "used_g": used_kg * 1000, "percent": (used_kg / 800) * 100, "state": state}

test_a_team_near_its_budget_is_warned if {
	d := decide_with_budget({}, ml(652, "warn"))
	d.action == "defer"
	d.warnings[0] == "carbongate: team ml has used 652 of 800 kgCO2e in 2026-11 (82%)"
}

test_the_input_copy_of_the_budget_is_used_when_none_is_published if {
	d := decide({"budget": object.union(ml(652, "warn"), {
		"team": "ml", "period": "2026-11",
		"period_start_ns": time.parse_rfc3339_ns("2026-11-01T00:00:00Z"),
		"period_end_ns": time.parse_rfc3339_ns("2026-12-01T00:00:00Z"),
	})})
	d.warnings[0] == "carbongate: team ml has used 652 of 800 kgCO2e in 2026-11 (82%)"
}

test_a_team_within_budget_gets_no_budget_warning if {
	count(decide_with_budget({}, ml(100, "ok")).warnings) == 1
}

test_an_exhausted_budget_waits_for_the_first_clean_window if {
	# 96 at 15:00 is under the 100 g limit: taken before the cleaner 50 tomorrow.
	d := decide_with_budget({}, ml(812, "exhausted"))
	d.action == "defer"
	d.reason == "budget-exhausted"
	d.not_before == "2026-11-22T15:00:00Z"
	d.warnings[0] == concat("", [
		"carbongate: team ml has used 812 of 800 kgCO2e in 2026-11 (102%); ",
		"budget exhausted: tier-3 work waits for windows at or below 100 gCO2/kWh",
	])
}

test_an_exhausted_budget_never_runs_at_a_dirty_now if {
	# Nothing under the limit and 180 now is below the tier threshold... of tier 2, not 3;
	# even a small saving is taken: the best window before the deadline.
	d := decide_with_budget(regions({"GB": region(180, [window(0, 180), window(2, 170)])}), ml(812, "exhausted"))
	d.action == "defer"
	d.reason == "budget-exhausted"
	d.not_before == "2026-11-22T14:00:00Z"
}

test_an_exhausted_budget_runs_now_when_now_is_clean_enough if {
	d := decide_with_budget(regions({"GB": region(80, [window(0, 80), window(2, 20)])}), ml(812, "exhausted"))
	d.action == "admit"
	d.reason == "budget-exhausted"
}

test_an_exhausted_budget_only_warns_other_tiers if {
	d := decide_with_budget({"namespace_labels": {"carbongate.io/tier": "2"}, "workload": {"max_delay_s": null}}, ml(812, "exhausted"))
	d.reason == "cleaner-window"
	d.warnings[0] == "carbongate: team ml has used 812 of 800 kgCO2e in 2026-11 (102%); budget exhausted"
}

test_an_exhausted_budget_refuses_when_the_config_says_deny if {
	d := admission.decision with input as review({})
		with data.carbongate.config as object.union(config, {"budgets": {"exhausted_action": "deny"}})
		with data.carbongate.budgets as {"period": "2026-11", "teams": {"ml": ml(812, "exhausted")}}
	d.action == "deny"
	d.reason == "budget-exhausted"
	d.message == "team ml has used 812 of 800 kgCO2e in 2026-11 (102%); budget exhausted: tier-3 workloads are refused until it resets"
	d.warnings == []
	d.annotations == {}
}

test_a_refusal_does_not_wait_for_grid_data if {
	d := admission.decision with input as review({"plan": null})
		with data.carbongate.config as object.union(config, {"budgets": {"exhausted_action": "deny"}})
		with data.carbongate.budgets as {"period": "2026-11", "teams": {"ml": ml(812, "exhausted")}}
	d.action == "deny"
}

test_a_refusal_in_warn_mode_is_a_warning if {
	d := admission.decision with input as review({"namespace_labels": {"carbongate.io/enforcement": "warn"}})
		with data.carbongate.config as object.union(config, {"budgets": {"exhausted_action": "deny"}})
		with data.carbongate.budgets as {"period": "2026-11", "teams": {"ml": ml(812, "exhausted")}}
	d.action == "deny"
	d.warnings == [concat("", [
		"carbongate (warn mode): would have denied: team ml has used 812 of 800 kgCO2e in 2026-11 (102%); ",
		"budget exhausted: tier-3 workloads are refused until it resets",
	])]
}

test_malformed_workload_fields_are_read_as_absent if {
	d := decide({"workload": {"labels": null, "regions": "GB,NO", "parse_errors": "oops", "max_delay_s": "12h"}})
	d.action == "defer"
	d.region == "GB"
	d.warnings == ["carbongate: deferred until 2026-11-22T15:00Z (GB 412 gCO2/kWh now, 96 forecast); deadline 2026-11-23T01:00Z"]
}

# ---------------------------------------------------------------- info and the shipped config

test_info_explains_the_classification if {
	info := admission.info with input as review({"workload": {"regions": ["GB", "NO"]}})
		with data.carbongate.config as config
	info == {
		"applicable": true, "tier": "3", "tier_source": "namespace label", "team": "ml", "mode": "enforce",
		"exemption": null, "home_region": "GB", "max_delay_s": 43200, "duration_s": 3600,
		"regions": ["GB", "NO"], "usable_regions": ["GB"], "budget_state": "ok",
		"workload_class": "batch", "tier_refused": null, "budget_period": "this period",
	}
}

test_info_names_the_exemption if {
	info := admission.info with input as review({"namespace": "kube-system"})
		with data.carbongate.config as config
	info.exemption == {"reason": "exempt", "message": "namespace kube-system is exempt"}
}

test_home_defaults_to_the_config_when_the_plan_names_none if {
	info := admission.info with input as review({"plan": {"home_region": ""}})
		with data.carbongate.config as object.union(config, {"home_region": "DE"})
	info.home_region == "DE"
}

test_the_shipped_config_defers_a_dirty_batch_job if {
	d := admission.decision with input as review({})
	d.action == "defer"
	d.tier == "3"
}

# ---------------------------------------------------------------- scope

service_pod(owner) := {"kind": "Pod", "workload": {"owner_kind": owner, "owner_name": "web-7d9f"}}

test_a_replicaset_pod_is_never_deferred if {
	d := decide(service_pod("ReplicaSet"))
	d.action == "admit"
	d.reason == "service"
	d.message == "pods of a ReplicaSet are a service: never deferred"
	object.subset(d, passive_fields)
}

test_a_statefulset_pod_is_never_deferred_even_with_an_exhausted_budget if {
	d := decide_with_budget(service_pod("StatefulSet"), ml(900, "exhausted"))
	d.action == "admit"
	d.reason == "service"
}

test_a_daemonset_pod_is_never_touched if {
	d := decide(service_pod("DaemonSet"))
	d.reason == "untouched"
	object.subset(d, passive_fields)
}

test_a_service_may_only_be_steered_by_a_preferred_affinity_where_the_platform_allows_it if {
	shifting := {"scope": {"services_may_shift": true}}
	clean_no := regions({"GB": dirty_home, "NO": region(30, [window(0, 31), window(2, 10)])})
	d := decide_with_config(object.union(service_pod("ReplicaSet"), object.union(clean_no, {"workload": {"regions": ["GB", "NO"]}})), shifting)
	d.action == "shift"
	d.region == "NO"
	d.node_affinity.required == false
	d.not_before == null
}

test_a_service_that_may_shift_still_runs_now_at_home_when_nothing_is_cleaner_now if {
	d := decide_with_config(service_pod("ReplicaSet"), {"scope": {"services_may_shift": true}})
	d.action == "admit"
	d.not_before == null
}

test_an_exhausted_budget_never_holds_a_service_that_may_shift if {
	denying := object.union(config, {"scope": {"services_may_shift": true}, "budgets": {"exhausted_action": "deny"}})
	d := admission.decision with input as review(service_pod("ReplicaSet"))
		with data.carbongate.config as denying
		with data.carbongate.budgets as {"period": "2026-11", "teams": {"ml": ml(900, "exhausted")}}
	d.action == "admit"
}

test_a_bare_pod_and_a_cronjob_job_are_deferrable if {
	decide({"kind": "Pod"}).action == "defer"
	decide({"workload": {"owner_kind": "CronJob", "owner_name": "nightly"}}).action == "defer"
}

# ---------------------------------------------------------------- unlabelled namespaces

# The base input in a namespace without any label.
decide_unlabelled(changes) := d if {
	d := admission.decision with input as object.union(object.remove(base, ["namespace_labels"]), changes)
		with data.carbongate.config as config
		with data.carbongate.budgets as {}
}

test_a_namespace_the_platform_has_not_labelled_is_decided_in_dryrun if {
	d := decide_unlabelled({})
	d.mode == "dryrun"
	d.action == "defer"
	d.warnings == []
}

test_a_namespace_with_only_a_mode_label_is_opted_in if {
	decide({"namespace_labels": {"carbongate.io/enforcement": "enforce"}}).mode == "enforce"
}

# ---------------------------------------------------------------- the platform's mandate

test_a_job_labelled_tier_1_in_a_tier_3_namespace_is_still_deferred_and_told_why if {
	d := decide({"workload": {"labels": {"carbongate.io/tier": "1"}}})
	d.action == "defer"
	d.tier == "3"
	d.tier_refused == "1"
	d.annotations["carbongate.io/tier-refused"] == "1"
	d.warnings[0] == "carbongate: tier 1 on the workload label is refused: the platform set tier 3 for this namespace (3 allowed here); using tier 3"
}

test_a_tier_the_namespace_allows_is_taken_without_a_refusal if {
	allowing := {"namespace_labels": {"carbongate.io/tier": "3", "carbongate.io/team": "ml", "carbongate.io/allowed-tiers": "1,3"}}
	d := decide(object.union(allowing, {"workload": {"labels": {"carbongate.io/tier": "1"}}}))
	d.reason == "tier-1"
	d.tier_refused == null
}

test_a_refused_tier_in_dryrun_is_still_reported_in_the_decision if {
	d := decide_unlabelled({"workload": {"labels": {"carbongate.io/tier": "1"}}})
	d.mode == "dryrun"
	d.tier_refused == "1"
	d.warnings == []
}

# ---------------------------------------------------------------- budget periods

test_an_exhausted_budget_of_an_earlier_period_does_not_hold_work if {
	october := {"period": "2026-10", "teams": {"ml": ml(900, "exhausted")},
		"period_start_ns": time.parse_rfc3339_ns("2026-10-01T00:00:00Z"),
		"period_end_ns": time.parse_rfc3339_ns("2026-11-01T00:00:00Z")}
	d := admission.decision with input as review({"namespace_labels": {"carbongate.io/tier": "3", "carbongate.io/team": "ml"}})
		with data.carbongate.config as object.union(config, {"budgets": {"exhausted_action": "deny"}})
		with data.carbongate.budgets as october
	d.action == "defer"
	d.reason == "cleaner-window"
	count(d.warnings) == 1
}

test_a_weekly_budget_names_its_week if {
	week := {"period": "2026-W47", "teams": {"ml": ml(652, "warn")},
		"period_start_ns": time.parse_rfc3339_ns("2026-11-16T00:00:00Z"),
		"period_end_ns": time.parse_rfc3339_ns("2026-11-23T00:00:00Z")}
	d := admission.decision with input as review({})
		with data.carbongate.config as config
		with data.carbongate.budgets as week
	d.warnings[0] == "carbongate: team ml has used 652 of 800 kgCO2e in 2026-W47 (82%)"
}

# ---------------------------------------------------------------- interruptible Jobs

interruptible_config := object.union(config, {"tiers": {"3": {"interruptible": {
	"min_slice_s": 3600, "max_pauses": 4, "pause_overhead_min": 15,
}}}})

test_an_interruptible_job_admitted_at_once_carries_its_deadline if {
	clean := regions({"GB": region(50, [window(0, 50), window(1, 300)])})
	d := decide_with_config(object.union(clean, {"workload": {"annotations": {"carbongate.io/interruptible": "true"}}}), interruptible_config)
	d.action == "admit"
	d.annotations["carbongate.io/deadline"] == "2026-11-23T01:00:00Z"
	not d.annotations["carbongate.io/not-before"]
}

test_a_job_that_is_not_interruptible_admitted_at_once_has_no_deadline if {
	clean := regions({"GB": region(50, [window(0, 50), window(1, 300)])})
	d := decide_with_config(clean, interruptible_config)
	d.action == "admit"
	not d.annotations["carbongate.io/deadline"]
}
