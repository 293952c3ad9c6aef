# METADATA
# title: Release of a deferred workload
# description: |
#   Whether a gated Pod or suspended Job goes now, and why. It goes when its
#   planned window opens, when the grid where it will run is already cleaner
#   than its tier's threshold, when someone breaks the glass
#   (carbongate.io/release-now: "true") or when its deadline forces it. While it
#   waits, a fresh forecast may show a cleaner or earlier window than the one
#   planned at admission: the decision then carries the new not_before (a
#   re-plan). The controller enforces the deadline itself, without this policy,
#   so a broken policy or engine can delay a release only up to release_by.
#   Time comes only from input.now_ns.
package carbongate.release

import rego.v1

import data.carbongate.admission.freshness
import data.carbongate.lib.durations
import data.carbongate.lib.units

release_now_annotation := "carbongate.io/release-now"

region_annotation := "carbongate.io/region"

# METADATA
# description: |
#   {"release", "reason", "region", "message", "g_per_kwh", "not_before"?,
#   "node_affinity"?}: reason is break-glass, window-open, clean-now, deadline
#   or waiting; not_before is present when a re-plan moves the window.
# entrypoint: true
decision := object.union(base, replanned)

base := {
	"release": reason != "waiting",
	"reason": reason,
	"region": region,
	"message": message,
	"g_per_kwh": now_g_per_kwh,
	"node_affinity": node_affinity(region),
}

replanned := {"not_before": durations.rfc3339(better_window.start_ns), "not_before_ns": better_window.start_ns} if {
	reason == "waiting"
	better_window.start_ns != workload.not_before_ns
} else := {}

workload := input.workload

now_ns := input.now_ns

tier := workload.tier if is_string(workload.tier) else := data.carbongate.config.default_tier

tier_config := object.get(data.carbongate.config.tiers, tier, {})

# The region the workload runs in: what admission annotated, else home.
region := workload.annotations[region_annotation] if {
	is_string(workload.annotations[region_annotation])
	workload.annotations[region_annotation] != ""
} else := input.plan.home_region

region_plan := object.get(object.get(input.plan, "regions", {}), region, null)

usable if freshness.usable(region_plan, now_ns)

now_g_per_kwh := region_plan.now_g_per_kwh if usable

else := null

default reason := "waiting"

reason := "break-glass" if {
	workload.annotations[release_now_annotation] == "true"
} else := "window-open" if {
	window_open
} else := "clean-now" if {
	clean_now
} else := "deadline" if {
	is_number(workload.release_by_ns)
	now_ns >= workload.release_by_ns
}

# The planned window has opened, or a re-plan finds the cleanest window starts now.
window_open if {
	is_number(workload.not_before_ns)
	now_ns >= workload.not_before_ns
}

window_open if better_window.start_ns <= now_ns

clean_now if {
	threshold := object.get(tier_config, "threshold_g_per_kwh", 0)
	threshold > 0
	is_number(now_g_per_kwh)
	now_g_per_kwh < threshold
}

# METADATA
# description: |
#   The cleanest candidate window that still starts by release_by (lowest mean,
#   ties to the earliest), when it beats the planned one: strictly cleaner, or
#   as clean and earlier. Undefined on unusable data or when nothing beats it.
better_window := best if {
	usable
	best := cleanest(reachable_windows)
	best.start_ns != workload.not_before_ns # still the planned window: nothing to re-plan
	beats(best, planned_mean)
}

reachable_windows := [w |
	some w in object.get(region_plan, "windows", [])
	w.start_ns <= workload.release_by_ns
]

# Lowest mean first, then earliest start: one pass for the lowest mean, one for
# the earliest start at it (a pairwise comparison of every window costs n^2).
cleanest(windows) := {"start_ns": start, "mean_g_per_kwh": lowest} if {
	count(windows) > 0
	lowest := min([w.mean_g_per_kwh | some w in windows])
	start := min([w.start_ns | some w in windows; w.mean_g_per_kwh == lowest])
}

# Mean of the planned window as the current forecast sees it; null when it is
# no longer among the candidates (then any reachable window is a fair re-plan).
planned_mean := w.mean_g_per_kwh if {
	some w in reachable_windows
	w.start_ns == workload.not_before_ns
} else := null

beats(_, null)

beats(w, mean) if w.mean_g_per_kwh < mean

beats(w, mean) if {
	w.mean_g_per_kwh == mean
	w.start_ns < workload.not_before_ns
}

node_affinity(r) := {"key": key, "values": [labels[key]]} if {
	r != input.plan.home_region
	labels := data.carbongate.config.regions[r].node_labels
	some key in ["topology.kubernetes.io/region"]
	is_string(labels[key])
} else := null

# Only the chosen outcome's text is built: the messages decide nothing.
message := sprintf("released: %s", [released_text(reason)]) if {
	reason != "waiting"
} else := sprintf("waiting until %s (release by %s)", [
	durations.minute(object.get(replanned, "not_before_ns", workload.not_before_ns)),
	durations.minute(workload.release_by_ns),
])

released_text("break-glass") := sprintf("%s was set", [release_now_annotation])

released_text("window-open") := sprintf("the planned window opened (%s %s)", [region, intensity_text])

released_text("clean-now") := sprintf("%s is at %s, under the tier %s threshold of %s", [
	region, intensity_text, tier,
	units.intensity(object.get(tier_config, "threshold_g_per_kwh", 0)),
])

released_text("deadline") := sprintf("the deadline %s leaves no more room", [object.get(workload, "deadline", "")])

intensity_text := sprintf("%s gCO2/kWh now", [units.intensity(now_g_per_kwh)]) if is_number(now_g_per_kwh)

else := "no fresh grid data"
