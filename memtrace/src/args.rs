//! Pure parsers of command-line values (durations, time offsets, ring sizes, percentages): no
//! I/O, so that the CLI, its tests and the fuzzer share them. Durations are computed in integer
//! nanoseconds: no float can round a huge input into a panic or a tiny one into zero unnoticed.
use std::time::Duration;

/// The longest duration accepted: 100 years of 365 days. Longer is surely a typo, and it keeps
/// every later sum (deadlines, nanosecond counters in a `u64`) far from overflowing.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The units a duration may carry, with their length in nanoseconds.
const UNITS: [(&[&str], u128); 6] = [
    (&["ns"], 1),
    (&["us", "µs", "μs"], 1_000),
    (&["ms"], 1_000_000),
    (&["", "s", "sec", "secs"], 1_000_000_000),
    (&["m", "min", "mins"], 60_000_000_000),
    (&["h"], 3_600_000_000_000),
];

/// Fraction digits kept: more cannot change a result rounded to nanoseconds (an hour is
/// 3.6e12 ns), and fewer keeps `fraction * unit` inside a `u128`.
const FRACTION_DIGITS: usize = 18;

/// Why a command-line value was refused. clap prints it after "invalid value 'X' for
/// '--option'", so each message is the reason only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not a number followed by an optional unit.
    #[error("not a duration (examples: 30, 30s, 500ms, 250us, 2m, 1h)")]
    NotADuration,
    /// A unit memtrace does not know.
    #[error("unknown unit {unit:?} (use ns, us, ms, s, m or h)")]
    UnknownUnit { unit: String },
    /// Zero where a length of time is needed.
    #[error("must be longer than zero")]
    Zero,
    /// Shorter than the nanosecond the kernel's clocks count in.
    #[error("rounds to zero nanoseconds (the shortest duration is 1ns)")]
    BelowNanosecond,
    /// Longer than [`MAX_DURATION`].
    #[error("longer than the maximum of 100 years")]
    TooLong,
    /// A ring-buffer size that is not a number.
    #[error("not a number of MiB")]
    NotMib,
    /// A ring-buffer size the kernel would refuse or memtrace will not allocate.
    #[error("the ring size must be a power of two from 1 to {max} MiB")]
    RingSize { max: u32 },
    /// A percentage that is not a number.
    #[error("not a percentage (examples: 10, 2.5)")]
    NotAPercent,
    /// `nan`, `inf`: Rust's float parser takes them, but no share of time is one.
    #[error("not a finite number (examples: 10, 2.5)")]
    NotFinite,
    /// A share of time below zero.
    #[error("must be zero or more")]
    Negative,
    /// Not a whole number of bytes with an optional unit.
    #[error("not a size (examples: 64M, 1G, 512KiB, 1048576)")]
    NotASize,
    /// A file size beyond what memtrace will write.
    #[error("larger than the maximum of 1 PiB")]
    TooLarge,
}

/// The largest size [`size`] accepts: a petabyte of recording is already a mistake.
pub const MAX_SIZE: u64 = 1 << 50;

/// Parses a size in bytes: a whole number with an optional binary unit (`k`/`KiB`, `M`/`MiB`,
/// `G`/`GiB`, `T`/`TiB`; `B` or none for bytes), more than zero, at most [`MAX_SIZE`].
pub fn size(text: &str) -> Result<u64, ValueError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "k" | "K" | "KiB" | "KB" => 10,
        "M" | "MiB" | "MB" => 20,
        "G" | "GiB" | "GB" => 30,
        "T" | "TiB" | "TB" => 40,
        _ => return Err(ValueError::NotASize),
    };
    if number.is_empty() {
        return Err(ValueError::NotASize);
    }
    let value: u64 = match number.trim_start_matches('0') {
        "" => 0,
        digits => digits.parse().map_err(|_| ValueError::TooLarge)?,
    };
    if value == 0 {
        return Err(ValueError::Zero);
    }
    match value.checked_mul(1 << shift) {
        Some(bytes) if bytes <= MAX_SIZE => Ok(bytes),
        _ => Err(ValueError::TooLarge),
    }
}

/// Parses `30` (seconds), `30s`, `1.5s`, `500ms`, `250us` (or `µs`), `100ns`, `2m` or `1h`:
/// more than zero, at most [`MAX_DURATION`], rounded to the nearest nanosecond.
pub fn duration(text: &str) -> Result<Duration, ValueError> {
    match nanoseconds(text)? {
        Parsed::Zero => Err(ValueError::Zero),
        Parsed::BelowNanosecond => Err(ValueError::BelowNanosecond),
        Parsed::Ns(ns) => Ok(Duration::from_nanos(ns)),
    }
}

/// Parses a time offset into a recording: a duration, or zero (`0`, `0s`).
pub fn offset(text: &str) -> Result<Duration, ValueError> {
    match nanoseconds(text)? {
        Parsed::Zero | Parsed::BelowNanosecond => Ok(Duration::ZERO),
        Parsed::Ns(ns) => Ok(Duration::from_nanos(ns)),
    }
}

/// The largest ring buffer memtrace allocates, in MiB.
pub const MAX_RING_MIB: u32 = 1024;

/// Parses a ring-buffer size in MiB (a power of two up to [`MAX_RING_MIB`]).
pub fn ring_mib(text: &str) -> Result<u32, ValueError> {
    let mib: u32 = text.trim().parse().map_err(|_| ValueError::NotMib)?;
    if !mib.is_power_of_two() || mib > MAX_RING_MIB {
        return Err(ValueError::RingSize { max: MAX_RING_MIB });
    }
    Ok(mib)
}

/// Parses a percentage threshold (`10`, `2.5`): a finite number, zero or more. Above 100 is
/// allowed: a process with several stalled threads can stall more than 100 % of an interval.
pub fn percent(text: &str) -> Result<f64, ValueError> {
    let value: f64 = text.trim().parse().map_err(|_| ValueError::NotAPercent)?;
    if !value.is_finite() {
        return Err(ValueError::NotFinite);
    }
    if value < 0.0 {
        return Err(ValueError::Negative);
    }
    // `-0` is zero; keep the JSON's `0.0` free of a sign.
    Ok(value + 0.0)
}

/// A duration's value before the zero checks, which differ between durations and offsets.
enum Parsed {
    Zero,
    BelowNanosecond,
    Ns(u64),
}

/// Splits `text` into digits, fraction and unit, and computes the rounded nanoseconds.
fn nanoseconds(text: &str) -> Result<Parsed, ValueError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = unit.trim();
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(ValueError::NotADuration);
    }
    let unit_ns = UNITS
        .iter()
        .find(|(names, _)| names.contains(&unit))
        .map(|&(_, ns)| ns)
        .ok_or_else(|| ValueError::UnknownUnit {
            unit: unit.to_string(),
        })?;
    let max_ns = MAX_DURATION.as_nanos();
    // Only digits are left, so the parse fails only when the number overflows a u128.
    let whole: u128 = match whole.trim_start_matches('0') {
        "" => 0,
        digits => digits.parse().map_err(|_| ValueError::TooLong)?,
    };
    let fraction = &fraction[..fraction.len().min(FRACTION_DIGITS)];
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| ValueError::NotADuration)?
    };
    // Round half up to whole nanoseconds.
    let fraction_ns = (fraction * unit_ns + scale / 2) / scale;
    let ns = whole
        .checked_mul(unit_ns)
        .and_then(|ns| ns.checked_add(fraction_ns))
        .ok_or(ValueError::TooLong)?;
    if ns > max_ns {
        return Err(ValueError::TooLong);
    }
    Ok(match ns {
        0 if whole == 0 && fraction == 0 => Parsed::Zero,
        0 => Parsed::BelowNanosecond,
        // At most MAX_DURATION's nanoseconds, which fit in a u64.
        ns => Parsed::Ns(ns as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_in_bytes_and_binary_units() {
        assert_eq!(size("1048576"), Ok(1 << 20));
        assert_eq!(size("64M"), Ok(64 << 20));
        assert_eq!(size(" 64 MiB "), Ok(64 << 20));
        assert_eq!(size("512k"), Ok(512 << 10));
        assert_eq!(size("1G"), Ok(1 << 30));
        assert_eq!(size("2TiB"), Ok(2 << 40));
        assert_eq!(size("100B"), Ok(100));
        assert_eq!(size("1024T"), Ok(MAX_SIZE));
        assert_eq!(size("1025T"), Err(ValueError::TooLarge));
        assert_eq!(size("99999999999999999999999"), Err(ValueError::TooLarge));
        assert_eq!(size("0M"), Err(ValueError::Zero));
        for bad in ["", "M", "1.5G", "-1", "10 parsecs", "1e6"] {
            assert_eq!(size(bad), Err(ValueError::NotASize), "{bad:?}");
        }
    }

    #[test]
    fn durations_with_and_without_units() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration(" 30 secs "), Ok(Duration::from_secs(30)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5."), Ok(Duration::from_secs(5)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("0.1s"), Ok(Duration::from_millis(100)));
    }

    #[test]
    fn latencies_in_micro_and_nanoseconds() {
        assert_eq!(duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(duration("250µs"), Ok(Duration::from_micros(250)));
        assert_eq!(duration("250μs"), Ok(Duration::from_micros(250)));
        assert_eq!(duration("100ns"), Ok(Duration::from_nanos(100)));
        assert_eq!(duration("1.5us"), Ok(Duration::from_nanos(1500)));
        // Rounded to the nearest nanosecond, half up.
        assert_eq!(duration("1.5ns"), Ok(Duration::from_nanos(2)));
        assert_eq!(duration("1.4ns"), Ok(Duration::from_nanos(1)));
        assert_eq!(duration("0.0000000015s"), Ok(Duration::from_nanos(2)));
        assert_eq!(duration("1ns"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn the_range_is_one_nanosecond_to_a_hundred_years() {
        assert_eq!(duration("0"), Err(ValueError::Zero));
        assert_eq!(duration("0.000ms"), Err(ValueError::Zero));
        assert_eq!(duration("0.1ns"), Err(ValueError::BelowNanosecond));
        assert_eq!(duration("0.0000000001s"), Err(ValueError::BelowNanosecond));
        assert_eq!(duration("3153600000"), Ok(MAX_DURATION));
        assert_eq!(duration("876000h"), Ok(MAX_DURATION));
        assert_eq!(duration("3153600000.000000001"), Err(ValueError::TooLong));
        assert_eq!(duration("876001h"), Err(ValueError::TooLong));
        // What the testers typed: u64::MAX seconds and more than a u64.
        assert_eq!(duration("18446744073709551615"), Err(ValueError::TooLong));
        assert_eq!(duration("99999999999999999999"), Err(ValueError::TooLong));
        assert_eq!(duration(&"9".repeat(200)), Err(ValueError::TooLong));
        assert_eq!(
            duration(&format!("{}h", "9".repeat(38))),
            Err(ValueError::TooLong)
        );
        // Leading zeros and long fractions are not mistaken for huge numbers.
        assert_eq!(
            duration(&format!("{}1s", "0".repeat(100))),
            Ok(Duration::from_secs(1))
        );
        assert_eq!(
            duration(&format!("1.{}", "0".repeat(100))),
            Ok(Duration::from_secs(1))
        );
    }

    #[test]
    fn bad_durations_are_explained() {
        assert_eq!(duration(""), Err(ValueError::NotADuration));
        assert_eq!(duration("."), Err(ValueError::NotADuration));
        assert_eq!(duration("1.2.3s"), Err(ValueError::NotADuration));
        assert_eq!(duration("-1s"), Err(ValueError::NotADuration));
        assert_eq!(duration("abc"), Err(ValueError::NotADuration));
        assert_eq!(
            duration("5 parsecs"),
            Err(ValueError::UnknownUnit {
                unit: "parsecs".into()
            })
        );
        assert_eq!(
            duration("1e3"),
            Err(ValueError::UnknownUnit { unit: "e3".into() })
        );
        let message = duration("5 parsecs").expect_err("unit").to_string();
        assert!(
            message.contains("unknown unit") && message.contains("us"),
            "{message}"
        );
        assert!(
            duration("1e99")
                .expect_err("exponent")
                .to_string()
                .contains("unknown unit")
        );
    }

    #[test]
    fn offsets_may_be_zero() {
        assert_eq!(offset("0"), Ok(Duration::ZERO));
        assert_eq!(offset("0s"), Ok(Duration::ZERO));
        assert_eq!(offset("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(offset("99999999999999999999"), Err(ValueError::TooLong));
        assert_eq!(offset("x"), Err(ValueError::NotADuration));
    }

    #[test]
    fn percentages_are_finite_and_not_negative() {
        assert_eq!(percent("10"), Ok(10.0));
        assert_eq!(percent(" 2.5 "), Ok(2.5));
        assert_eq!(percent("0"), Ok(0.0));
        assert_eq!(percent("250"), Ok(250.0));
        assert!(percent("-0").is_ok_and(|p| p == 0.0 && p.is_sign_positive()));
        for text in [
            "nan",
            "NaN",
            "inf",
            "-inf",
            "infinity",
            "+Infinity",
            "1e999",
        ] {
            assert_eq!(percent(text), Err(ValueError::NotFinite), "{text}");
        }
        assert_eq!(percent("-1"), Err(ValueError::Negative));
        assert_eq!(percent("-1e-9"), Err(ValueError::Negative));
        for text in ["", "ten", "10%", "1,5"] {
            assert_eq!(percent(text), Err(ValueError::NotAPercent), "{text}");
        }
    }

    #[test]
    fn ring_sizes_are_powers_of_two() {
        assert_eq!(ring_mib("8"), Ok(8));
        assert_eq!(ring_mib("1024"), Ok(1024));
        assert_eq!(ring_mib("3"), Err(ValueError::RingSize { max: 1024 }));
        assert_eq!(ring_mib("0"), Err(ValueError::RingSize { max: 1024 }));
        assert_eq!(ring_mib("2048"), Err(ValueError::RingSize { max: 1024 }));
        assert_eq!(ring_mib("x"), Err(ValueError::NotMib));
        assert_eq!(ring_mib("99999999999999999999"), Err(ValueError::NotMib));
    }
}
