# METADATA
# title: Times and durations
# description: |
#   Formatting of instants and durations for decisions and warnings. Policies
#   never read the clock: every instant comes in as nanoseconds from the input
#   (input.now_ns, window start_ns), so a decision replayed on a trace is the
#   decision production made.
package carbongate.lib.durations

import rego.v1

ns_per_s := 1000000000

# METADATA
# description: Seconds (int or float) as whole nanoseconds.
ns(seconds) := round(seconds * ns_per_s)

# METADATA
# description: |
#   An instant as RFC 3339 to the second ("2026-11-22T18:00:00Z"), the form of
#   the not_before and deadline fields; sub-second parts are dropped so the
#   same instant always prints the same way.
rfc3339(t_ns) := time.format(t_ns - (t_ns % ns_per_s))

# METADATA
# description: An instant to the minute ("2026-11-22T18:00Z"), short enough for a kubectl warning.
minute(t_ns) := time.format([t_ns, "UTC", "2006-01-02T15:04Z07:00"])

# METADATA
# description: |
#   Whole seconds as the annotation syntax people write ("2h", "1h30m", "45s");
#   zero and negative durations read "0s".
human(seconds) := text if {
	s := floor(seconds)
	parts := [
		unit(floor(s / 86400), "d"),
		unit(floor((s % 86400) / 3600), "h"),
		unit(floor((s % 3600) / 60), "m"),
		unit(s % 60, "s"),
	]
	text := concat("", parts)
	text != ""
} else := "0s"

unit(n, suffix) := sprintf("%d%s", [n, suffix]) if n > 0

else := ""

# METADATA
# description: |
#   Whole seconds from an RFC 3339 instant to now; undefined when the instant
#   is not RFC 3339, so callers treat an unreadable time as missing data (the
#   engine raises on a builtin error, hence the shape check before parsing).
age_s(timestamp, now_ns) := floor((now_ns - time.parse_rfc3339_ns(timestamp)) / ns_per_s) if {
	is_rfc3339(timestamp)
	is_number(now_ns)
}

# METADATA
# description: Whether a value has the shape of an RFC 3339 instant with seconds.
is_rfc3339(value) if regex.match(rfc3339_pattern, value)

rfc3339_pattern := `^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`
