package carbongate.interrupt_test

import rego.v1

import data.carbongate.interrupt

now_ns := 1700654400000000000 # 2023-11-22T12:00:00Z

hour_ns := 3600000000000

region := {
	"now_g_per_kwh": 320.0, "signal": "average", "stale": false, "observed_at": "2023-11-22T12:00:00Z",
	"fresh_until_ns": now_ns + hour_ns,
}

running := {
	"kind": "Job", "namespace": "ml", "name": "train", "tier": "3", "annotations": {},
	"running": true, "run_s": 7200, "remaining_s": 36000, "slice_s": 7200, "pauses": 0,
	"deadline_ns": now_ns + (40 * hour_ns), "resume_by_ns": now_ns + (20 * hour_ns), "final": false,
}

paused := object.union(running, {"running": false, "slice_s": 0, "pauses": 1})

dirty_plan := {"region": region, "feasible": true, "run_now": false, "next_start_ns": now_ns + (3 * hour_ns), "slices": []}

clean_plan := object.union(dirty_plan, {"run_now": true, "next_start_ns": null})

decide(w, p) := d if {
	d := interrupt.decision with input as {"now_ns": now_ns, "workload": w, "plan": p}
}

test_a_running_job_is_paused_when_no_slice_is_planned_now if {
	d := decide(running, dirty_plan)
	d.run == false
	d.reason == "dirty-now"
	d.message == "paused: no planned slice now (320 gCO2/kWh); next from 2023-11-22T15:00Z"
	d.g_per_kwh == 320.0
}

test_a_paused_job_resumes_when_its_slice_begins if {
	d := decide(paused, clean_plan)
	d.run == true
	d.reason == "clean-slice"
}

test_a_paused_job_waits_for_its_slice if {
	d := decide(paused, dirty_plan)
	d.run == false
	d.reason == "waiting"
	d.message == "paused: the next planned slice starts 2023-11-22T15:00Z (320 gCO2/kWh now)"
}

test_the_deadline_wins_over_everything if {
	decide(object.union(paused, {"resume_by_ns": now_ns}), dirty_plan).reason == "deadline"
	decide(object.union(running, {"final": true}), dirty_plan).run == true
}

test_no_pause_on_stale_or_missing_data_or_without_a_plan if {
	decide(running, object.union(dirty_plan, {"region": object.union(region, {"stale": true})})).reason == "no-plan"
	decide(running, object.remove(dirty_plan, ["region"])).reason == "no-plan"
	decide(running, object.union(dirty_plan, {"feasible": false})).reason == "no-plan"
	decide(paused, object.union(dirty_plan, {"feasible": false})).run == true
}

test_a_slice_shorter_than_the_minimum_is_not_cut if {
	d := decide(object.union(running, {"slice_s": 1800}), dirty_plan)
	d.run == true
	d.reason == "min-slice"
}

test_no_pause_once_the_pauses_are_spent if {
	decide(object.union(running, {"pauses": 4}), dirty_plan).reason == "max-pauses"
}

test_tiers_without_settings_are_never_paused if {
	decide(object.union(running, {"tier": "2"}), dirty_plan).reason == "not-interruptible"
	decide(object.union(running, {"tier": "1"}), dirty_plan).run == true
}
