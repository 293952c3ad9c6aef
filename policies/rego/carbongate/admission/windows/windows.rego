# METADATA
# title: Regions and windows
# description: |
#   Where and when a workload could run. The planner (Python) computes the
#   candidate windows with their mean intensity; this package keeps those the
#   policy allows (a region asked for, a tier that may shift, within the
#   latency budget, starting no later than the latest start) and picks one:
#   the lowest mean, ties to the earliest start, then to the home region.
#   Another region only counts when the emissions saved exceed those of moving
#   the workload's data there (the carbon breakeven point).
package carbongate.admission.windows

import rego.v1

# METADATA
# description: |
#   The regions a workload may run in: those it asked for (a list) that the
#   platform configures, else home; for a tier that may not shift only home;
#   never a region beyond the tier's latency budget. Never empty.
allowed(requested, home, tier_config, config) := regions if {
	regions := {r | some r in asked(requested, home, config); may_run(r, home, tier_config, config)}
	count(regions) > 0
} else := {home}

asked(requested, home, config) := known if {
	known := {r | some r in requested; known_region(r, config)}
	count(known) > 0
} else := {home}

may_run(region, home, _, _) if region == home

may_run(region, home, tier_config, config) if {
	region != home
	object.get(tier_config, "may_shift", false) == true
	within_latency(config.regions[region], tier_config)
}

within_latency(_, tier_config) if not is_number(object.get(tier_config, "max_latency_ms", null))

within_latency(region_config, tier_config) if {
	object.get(region_config, "latency_ms", 0) <= tier_config.max_latency_ms
}

known_region(region, config) if {
	is_string(region)
	is_object(config.regions[region])
}

# METADATA
# description: A warning for each requested region the platform does not configure.
unknown_region_warnings(requested, config) := [sprintf("region %s in carbongate.io/regions is not configured; ignored", [json.marshal(r)]) |
	some r in requested
	not known_region(r, config)
]

# METADATA
# description: |
#   A region's windows that are well formed and start no later than latest_ns.
#   region_plan is an entry of input.plan.regions.
within(region_plan, latest_ns) := [w |
	some w in region_plan.windows
	is_number(w.start_ns)
	w.start_ns <= latest_ns
	is_number(w.mean_g_per_kwh)
]

# METADATA
# description: |
#   The lowest-mean window of a list, ties to the earliest start, then to the
#   first listed. One pass over an array of sort keys [mean, start, index]
#   (arrays compare element by element), not a set: a plan holds hundreds of
#   windows and hashing that many keys per decision costs milliseconds.
lowest(ws) := ws[key[2]] if {
	key := min([[w.mean_g_per_kwh, w.start_ns, i] | some i, w in ws])
}

# METADATA
# description: The earliest window of a list at or below limit_g_per_kwh, ties to the lowest mean.
earliest_at_most(ws, limit_g_per_kwh) := lowest([w | some w in clean; w.start_ns == first]) if {
	clean := [w | some w in ws; w.mean_g_per_kwh <= limit_g_per_kwh]
	first := min([w.start_ns | some w in clean])
}

# METADATA
# description: |
#   Per region (a set of usable regions), its best window within latest_ns,
#   tagged with the region and the cost of moving the data there (move_g).
region_bests(plan_regions, regions, latest_ns) := {r: tagged(r, plan_regions[r], w) |
	some r in regions
	w := lowest(within(plan_regions[r], latest_ns))
}

# METADATA
# description: Per region, its earliest window at or below limit_g_per_kwh within latest_ns, tagged.
region_firsts(plan_regions, regions, latest_ns, limit_g_per_kwh) := {r: tagged(r, plan_regions[r], w) |
	some r in regions
	w := earliest_at_most(within(plan_regions[r], latest_ns), limit_g_per_kwh)
}

tagged(region, region_plan, window) := object.union(window, {"region": region, "move_g": move_g(region_plan)})

move_g(region_plan) := region_plan.move_g if is_number(region_plan.move_g)

else := 0

# METADATA
# description: |
#   The mean intensity of running now at home: the home window that starts at
#   (or just before) now, else the current reading.
run_now(plan_regions, home, now_ns) := min([w.mean_g_per_kwh | some w in started; w.start_ns == latest]) if {
	started := within(plan_regions[home], now_ns)
	latest := max([w.start_ns | some w in started])
} else := plan_regions[home].now_g_per_kwh

# METADATA
# description: |
#   Among tagged windows (one per region): the lowest mean, ties to the
#   earliest start, then home, then the region name.
best(tagged_windows, home) := preferred([w | some w in tied; w.start_ns == first], home) if {
	low := min([w.mean_g_per_kwh | some w in tagged_windows])
	tied := [w | some w in tagged_windows; w.mean_g_per_kwh == low]
	first := min([w.start_ns | some w in tied])
}

# METADATA
# description: Among tagged windows: the earliest start, ties to the lowest mean, then home, then the region name.
first(tagged_windows, home) := preferred([w | some w in tied; w.mean_g_per_kwh == low], home) if {
	start := min([w.start_ns | some w in tagged_windows])
	tied := [w | some w in tagged_windows; w.start_ns == start]
	low := min([w.mean_g_per_kwh | some w in tied])
}

preferred(tied, home) := tied[key[2]] if {
	key := min({[away(w.region, home), w.region, i] | some i, w in tied})
}

away(region, home) := 0 if region == home

else := 1

# METADATA
# description: |
#   The regions the policy may choose from (bests maps region to its best
#   tagged window): home, and another region only when it is worth moving
#   there. home_g_per_kwh is what running at home would emit per kWh (its
#   best window, else its run-now intensity).
counted(bests, home, home_g_per_kwh, energy_kwh) := {r |
	some r, w in bests
	region_counts(r, w, home, home_g_per_kwh, energy_kwh)
}

region_counts(region, _, home, _, _) if region == home

region_counts(region, window, home, home_g_per_kwh, energy_kwh) if {
	region != home
	worth_moving(energy_kwh, home_g_per_kwh, window.mean_g_per_kwh, window.move_g)
}

# METADATA
# description: |
#   The breakeven: energy_kwh x (home - region intensity) must exceed move_g,
#   the emissions of moving the data. With no data to move, any cleaner region
#   pays off, even when the workload's energy is unknown.
worth_moving(_, home_g_per_kwh, region_g_per_kwh, move_g) if {
	move_g <= 0
	region_g_per_kwh < home_g_per_kwh
}

worth_moving(energy_kwh, home_g_per_kwh, region_g_per_kwh, move_g) if {
	is_number(energy_kwh)
	energy_kwh * (home_g_per_kwh - region_g_per_kwh) > move_g
}

# METADATA
# description: The windows of the given regions only, as a list.
only(tagged_by_region, regions) := [w | some r, w in tagged_by_region; r in regions]
