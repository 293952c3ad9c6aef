# METADATA
# title: Delays and durations
# description: |
#   How long a workload may wait and how long it runs. A workload's own
#   max-delay is honoured up to its tier's cap; without one, the tier's
#   default applies; a tier that may not defer gets no delay at all. The
#   expected duration falls back to the platform default so the deadline and
#   the windows are computed for a real length of time.
package carbongate.admission.delays

import rego.v1

import data.carbongate.lib.durations

# METADATA
# description: The longest a workload of this tier may wait, in seconds.
cap_s(tier_config) := object.get(tier_config, "max_delay_s", 0) if {
	object.get(tier_config, "may_defer", false) == true
} else := 0

# METADATA
# description: The delay the policy works with - requested (seconds or null) capped by the tier.
max_delay_s(requested, tier_config) := min([requested, cap_s(tier_config)]) if {
	is_number(requested)
	requested >= 0
} else := min([object.get(tier_config, "default_delay_s", 0), cap_s(tier_config)])

# METADATA
# description: A warning when the requested delay is more than the tier allows.
warnings(requested, tier, tier_config) := [sprintf("max-delay %s is more than tier %s allows; waiting at most %s", [
	durations.human(requested),
	tier,
	durations.human(cap_s(tier_config)),
])] if {
	is_number(requested)
	requested > cap_s(tier_config)
} else := []

# METADATA
# description: The expected run time in seconds - requested when positive, else the platform default.
duration_s(requested, config) := requested if {
	is_number(requested)
	requested > 0
} else := config.default_duration_s
