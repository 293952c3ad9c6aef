package carbongate.lib.units_test

import rego.v1

import data.carbongate.lib.units

test_intensity_is_rounded_to_whole_grams if {
	units.intensity(412.4) == "412"
	units.intensity(95.6) == "96"
}

test_grams_are_written_as_kilograms if {
	units.kilograms(652000) == "652"
	units.kilograms(799600) == "800"
}

test_percent_is_rounded_and_signed if {
	units.percent(81.5) == "82%"
}

test_saving_is_relative_to_the_reference if {
	units.saving_pct(400, 100) == 75
	units.saving_pct(400, 500) == -25
}

test_saving_against_a_zero_reference_is_zero if {
	units.saving_pct(0, 10) == 0
}
