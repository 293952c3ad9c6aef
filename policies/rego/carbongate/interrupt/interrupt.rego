# METADATA
# title: Pause and resume of an interruptible Job
# description: |
#   Whether a Job annotated carbongate.io/interruptible: "true" runs now or
#   waits, from its slice plan (planner/slices.py: the cleanest slices that
#   still cover its remaining work before the deadline) and the facts the
#   controller read from the API (running or paused, run time so far, pauses
#   taken). The controller enforces the completion guarantee itself, without
#   this policy: once the remaining work and overheads reach the time left it
#   resumes the Job and never pauses it again (input.workload.final). This
#   policy only decides inside that bound, and never pauses on data it cannot
#   trust: no usable plan means run. Time comes only from input.now_ns.
package carbongate.interrupt

import rego.v1

import data.carbongate.admission.freshness
import data.carbongate.lib.durations
import data.carbongate.lib.units

# METADATA
# description: |
#   {"run", "reason", "message", "g_per_kwh"}: run is true for deadline,
#   not-interruptible, no-plan, clean-slice, max-pauses and min-slice; false
#   for dirty-now (pause a running Job) and waiting (keep a paused one paused).
# entrypoint: true
decision := {
	"run": reason in running_reasons,
	"reason": reason,
	"message": message,
	"g_per_kwh": now_g_per_kwh,
}

running_reasons := {"deadline", "not-interruptible", "no-plan", "clean-slice", "max-pauses", "min-slice"}

workload := input.workload

plan := input.plan

now_ns := input.now_ns

tier := workload.tier if is_string(workload.tier) else := data.carbongate.config.default_tier

settings := object.get(data.carbongate.config.tiers, [tier, "interruptible"], null)

usable if freshness.usable(object.get(plan, "region", null), now_ns)

now_g_per_kwh := plan.region.now_g_per_kwh if usable

else := null

default reason := "waiting"

reason := "deadline" if {
	deadline_reached
} else := "not-interruptible" if {
	not is_object(settings)
} else := "no-plan" if {
	not usable_plan
} else := "clean-slice" if {
	plan.run_now == true
} else := "max-pauses" if {
	workload.running == true
	workload.pauses >= settings.max_pauses
} else := "min-slice" if {
	workload.running == true
	workload.slice_s < settings.min_slice_s
} else := "dirty-now" if {
	workload.running == true
}

deadline_reached if workload.final == true

deadline_reached if now_ns >= workload.resume_by_ns

usable_plan if {
	usable
	plan.feasible == true
}

message := sprintf("running: %s", [explain[reason]]) if reason in running_reasons

else := sprintf("paused: %s", [explain[reason]])

# Partial: an entry whose facts are missing is absent, not the whole document.
explain["deadline"] := sprintf("%s of work left and the deadline %s leave no room for another pause", [
	durations.human(workload.remaining_s), durations.minute(workload.deadline_ns),
])

explain["not-interruptible"] := sprintf("tier %s has no interruption settings", [tier])

explain["no-plan"] := "no usable grid data or no plan of slices: never paused blind"

explain["clean-slice"] := sprintf("a planned slice runs now (%s)", [intensity_text])

explain["max-pauses"] := sprintf("it has taken its %d pauses", [settings.max_pauses])

explain["min-slice"] := sprintf("its slice has run %s of the minimum %s", [
	durations.human(workload.slice_s), durations.human(settings.min_slice_s),
])

explain["dirty-now"] := sprintf("no planned slice now (%s); next from %s", [intensity_text, next_text])

explain["waiting"] := sprintf("the next planned slice starts %s (%s now)", [next_text, intensity_text])

intensity_text := sprintf("%s gCO2/kWh", [units.intensity(now_g_per_kwh)]) if is_number(now_g_per_kwh)

else := "no fresh grid data"

next_text := durations.minute(plan.next_start_ns) if is_number(plan.next_start_ns)

else := "none"
