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
#   Every window of the given regions (a set; usable data only) starting no
#   later than latest_ns, each tagged with its region and move_g.
candidates(plan_regions, regions, latest_ns) := [object.union(w, {"region": r, "move_g": move_g(plan_regions[r])}) |
	some r in sort(regions)
	some w in plan_regions[r].windows
	is_number(w.start_ns)
	is_number(w.mean_g_per_kwh)
	w.start_ns <= latest_ns
]

move_g(region_plan) := region_plan.move_g if is_number(region_plan.move_g)

else := 0

# METADATA
# description: |
#   The mean intensity of running now at home: the home window that starts at
#   (or just before) now, else the current reading.
run_now(plan_regions, home, now_ns) := min({w.mean_g_per_kwh | some w in started; w.start_ns == latest}) if {
	started := [w | some w in plan_regions[home].windows; is_number(w.start_ns); is_number(w.mean_g_per_kwh); w.start_ns <= now_ns]
	latest := max({w.start_ns | some w in started})
} else := plan_regions[home].now_g_per_kwh

# METADATA
# description: The lowest mean, ties to the earliest start, then home, then the region name.
best(cands, home) := cands[key[4]] if {
	key := min({[c.mean_g_per_kwh, c.start_ns, away(c.region, home), c.region, i] | some i, c in cands})
}

# METADATA
# description: The earliest window at or below limit_g_per_kwh, ties to the lowest mean, then home.
first_clean(cands, limit_g_per_kwh, home) := cands[key[4]] if {
	key := min({[c.start_ns, c.mean_g_per_kwh, away(c.region, home), c.region, i] |
		some i, c in cands
		c.mean_g_per_kwh <= limit_g_per_kwh
	})
}

away(region, home) := 0 if region == home

else := 1

# METADATA
# description: |
#   The candidates the policy may choose from: home's, and another region's
#   only when it is worth moving there (see worth_moving). home_g_per_kwh is
#   what running at home would emit per kWh (its best window or its reading).
choosable(cands, home, home_g_per_kwh, energy_kwh) := [c |
	some c in cands
	region_counts(c.region, cands, home, home_g_per_kwh, energy_kwh)
]

region_counts(region, _, home, _, _) if region == home

region_counts(region, cands, home, home_g_per_kwh, energy_kwh) if {
	region != home
	own := best([c | some c in cands; c.region == region], home)
	worth_moving(energy_kwh, home_g_per_kwh, own.mean_g_per_kwh, own.move_g)
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
# description: The best the home region itself offers among the candidates, else its run-now intensity.
home_reference(cands, home, run_now_g_per_kwh) := own.mean_g_per_kwh if {
	own := best([c | some c in cands; c.region == home], home)
} else := run_now_g_per_kwh
