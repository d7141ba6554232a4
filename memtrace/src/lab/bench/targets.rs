//! The targets memtrace is held to, the verdict beside each figure, and how numbers are
//! written in the table. A missed target says by how much.

/// Largest acceptable slowdown of a fault-heavy program while memtrace traces it.
pub const OVERHEAD_MAX_PCT: f64 = 5.0;
/// Largest acceptable cost per fault as a multiple of the timed floor's (the cheapest programs
/// on the same hooks that time each fault exactly, with no attribution).
pub const FLOOR_MULTIPLE_MAX: f64 = 1.10;
/// Fault events per second memtrace must drain without losing any.
pub const EVENTS_MIN_PER_S: f64 = 1_000_000.0;
/// Largest acceptable resident memory of `memtrace record`, in MB (10^6 bytes) ...
pub const RSS_MAX_MB: f64 = 50.0;
/// ... while tracking this many processes.
pub const RSS_TARGET_PROCESSES: u64 = 10_000;
/// Longest acceptable time from launch to tracing.
pub const STARTUP_MAX_MS: f64 = 100.0;

/// Verdict of a slowdown in percent against [`OVERHEAD_MAX_PCT`].
pub fn overhead_verdict(pct: f64) -> String {
    if pct <= OVERHEAD_MAX_PCT {
        "met".into()
    } else {
        format!("missed by {:.1} pt", pct - OVERHEAD_MAX_PCT)
    }
}

/// Verdict of a multiple of the timed floor against [`FLOOR_MULTIPLE_MAX`].
pub fn floor_multiple_verdict(multiple: f64) -> String {
    // Judged as printed, to two decimals.
    let multiple = (multiple * 100.0).round() / 100.0;
    if multiple <= FLOOR_MULTIPLE_MAX {
        "met".into()
    } else {
        format!("missed by {:.2}×", multiple - FLOOR_MULTIPLE_MAX)
    }
}

/// Verdict of a figure that must stay at or below `limit`.
pub fn at_most(value: f64, limit: f64, unit: &str) -> String {
    if value <= limit {
        "met".into()
    } else {
        format!(
            "missed by {} {unit} ({:.0} % over)",
            decimal(value - limit),
            (value / limit - 1.0) * 100.0
        )
    }
}

/// Verdict of a figure that must reach at least `limit`.
pub fn at_least(value: f64, limit: f64, unit: &str) -> String {
    if value >= limit {
        "met".into()
    } else {
        format!(
            "missed by {} {unit} ({:.0} % of target)",
            thousands(limit - value),
            value / limit * 100.0
        )
    }
}

/// A ratio as a signed percentage: 1.053 is "+5.3 %", 0.98 is "−2.0 %".
pub fn signed_pct(ratio: f64) -> String {
    let pct = (ratio - 1.0) * 100.0;
    // Rounds to one decimal first, so that -0.04 does not print as "−0.0 %".
    // Adding 0.0 turns a negative zero into a positive one.
    let rounded = (pct * 10.0).round() / 10.0 + 0.0;
    if rounded < 0.0 {
        format!("−{:.1} %", -rounded)
    } else {
        format!("+{rounded:.1} %")
    }
}

/// A signed whole number with a true minus sign: "+150", "−20".
pub fn signed(value: f64) -> String {
    let rounded = value.round() + 0.0;
    if rounded < 0.0 {
        format!("−{}", thousands(-rounded))
    } else {
        format!("+{}", thousands(rounded))
    }
}

/// A range of multiples, as "1.10–1.34×"; with a negative end (a quick run's wide interval),
/// a true minus and an ellipsis, which a dash would run into: "−0.57 … 1.34×".
pub fn multiple_range(lo: f64, hi: f64) -> String {
    let two = |v: f64| {
        let rounded = (v * 100.0).round() / 100.0 + 0.0;
        if rounded < 0.0 {
            format!("−{:.2}", -rounded)
        } else {
            format!("{rounded:.2}")
        }
    };
    if (lo * 100.0).round() < 0.0 || (hi * 100.0).round() < 0.0 {
        format!("{} … {}×", two(lo), two(hi))
    } else {
        format!("{}–{}×", two(lo), two(hi))
    }
}

/// A range of ratios as signed percentages.
pub fn pct_range(min: f64, max: f64) -> String {
    format!("{} … {}", signed_pct(min), signed_pct(max))
}

/// A whole number with a space every three digits: 1 234 567.
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return value.to_string();
    }
    let digits = format!("{:.0}", value.abs());
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(digit);
    }
    if value.round() < 0.0 {
        format!("−{grouped}")
    } else {
        grouped
    }
}

/// A number with one decimal below 100 and none above.
pub fn decimal(value: f64) -> String {
    if value.abs() < 100.0 {
        format!("{value:.1}")
    } else {
        thousands(value)
    }
}

/// Kibibytes (as /proc counts them) in MB of 10^6 bytes.
pub fn kib_to_mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiple_ranges_keep_a_true_minus_apart_from_the_range() {
        assert_eq!(multiple_range(1.1, 1.344), "1.10–1.34×");
        assert_eq!(multiple_range(-0.571, 1.34), "−0.57 … 1.34×");
        assert_eq!(multiple_range(-0.001, 2.0), "0.00–2.00×");
    }

    #[test]
    fn overhead_verdicts() {
        assert_eq!(overhead_verdict(4.9), "met");
        assert_eq!(overhead_verdict(5.0), "met");
        assert_eq!(overhead_verdict(7.34), "missed by 2.3 pt");
    }

    #[test]
    fn floor_multiple_verdicts() {
        assert_eq!(floor_multiple_verdict(0.93), "met");
        assert_eq!(floor_multiple_verdict(1.10), "met");
        assert_eq!(floor_multiple_verdict(1.104), "met");
        assert_eq!(floor_multiple_verdict(1.22), "missed by 0.12×");
    }

    #[test]
    fn upper_and_lower_bounds() {
        assert_eq!(at_most(150.0, 200.0, "ms"), "met");
        assert_eq!(at_most(300.0, 200.0, "ms"), "missed by 100 ms (50 % over)");
        assert_eq!(at_least(1.2e6, 1e6, "events/s"), "met");
        assert_eq!(
            at_least(400_000.0, 1e6, "events/s"),
            "missed by 600 000 events/s (40 % of target)"
        );
    }

    #[test]
    fn percentages() {
        assert_eq!(signed_pct(1.053), "+5.3 %");
        assert_eq!(signed_pct(0.98), "−2.0 %");
        assert_eq!(signed_pct(0.9996), "+0.0 %");
        assert_eq!(pct_range(0.99, 1.02), "−1.0 % … +2.0 %");
        assert_eq!(signed(150.2), "+150");
        assert_eq!(signed(-1234.0), "−1 234");
        assert_eq!(signed(-0.3), "+0");
    }

    #[test]
    fn grouped_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1 000");
        assert_eq!(thousands(1_234_567.4), "1 234 567");
        assert_eq!(thousands(-12_345.0), "−12 345");
        assert_eq!(decimal(12.345), "12.3");
        assert_eq!(decimal(1234.4), "1 234");
    }

    #[test]
    fn kib_in_mb() {
        assert!((kib_to_mb(48_828) - 50.0).abs() < 0.01);
    }
}
