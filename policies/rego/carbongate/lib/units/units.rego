# METADATA
# title: Quantities as text
# description: |
#   How intensities, emissions and percentages are written in warnings and
#   annotations: whole numbers, because "412 gCO2/kWh" is what a person reads
#   and the annotation values must be strings.
package carbongate.lib.units

import rego.v1

# METADATA
# description: An intensity in gCO2eq/kWh as a whole number ("412").
intensity(g_per_kwh) := sprintf("%d", [round(g_per_kwh)])

# METADATA
# description: Grams as whole kilograms ("652" for 652 000 g).
kilograms(grams) := sprintf("%d", [round(grams / 1000)])

# METADATA
# description: A percentage as a whole number with its sign ("82%").
percent(value) := sprintf("%d%%", [round(value)])

# METADATA
# description: How much cleaner `better` is than `reference`, in percent; 0 when the reference is not positive.
saving_pct(reference, better) := ((reference - better) / reference) * 100 if reference > 0

else := 0
