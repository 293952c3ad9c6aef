# METADATA
# title: Grid data freshness
# description: |
#   Whether a region's grid data can be acted on. Data is stale when the feed
#   flagged it, or when input.now has reached its fresh_until_ns: the moment
#   its provider's next point was due plus the settings' grace (computed once,
#   in Python, from the provider's own cadence - an hourly series stays fresh
#   through its hour). Stale, missing or index-only data (no gCO2/kWh) is not
#   used: deferring work on numbers nobody can trust costs more than it saves.
#   For the home region this means admitting unchanged with a warning that
#   says how old the data is.
package carbongate.admission.freshness

import rego.v1

import data.carbongate.lib.durations

# METADATA
# description: Whether region_plan (an entry of input.plan.regions) can be acted on at now_ns.
usable(region_plan, now_ns) if not problem("", region_plan, now_ns)

# METADATA
# description: |
#   Why a region's data cannot be used ({"reason", "text"}), undefined when it
#   can. region_plan is null when the plan has no entry for the region.
problem(region, region_plan, now_ns) := {"reason": "no-data", "text": sprintf("no grid data for %s", [region])} if {
	not is_object(region_plan)
} else := {"reason": "stale-data", "text": sprintf("grid data for %s is stale (%s)", [region, age])} if {
	stale(region_plan, now_ns)
	age := age_text(object.get(region_plan, "observed_at", ""), now_ns)
} else := {"reason": "no-data", "text": sprintf("grid data for %s has no intensity in gCO2/kWh (signal %v)", [
	region,
	object.get(region_plan, "signal", "unknown"),
])} if {
	not is_number(object.get(region_plan, "now_g_per_kwh", null))
}

stale(region_plan, _) if object.get(region_plan, "stale", true) != false

stale(region_plan, now_ns) if now_ns >= object.get(region_plan, "fresh_until_ns", 0)

stale(region_plan, _) if not is_number(object.get(region_plan, "fresh_until_ns", null))

# METADATA
# description: How old the data is, in words for the warning.
age_text(observed_at, now_ns) := sprintf("observed %s ago at %s", [durations.human(age), observed_at]) if {
	age := durations.age_s(observed_at, now_ns)
} else := "observed at an unknown time"
