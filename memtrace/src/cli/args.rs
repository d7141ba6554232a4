//! Value parsers shared by the subcommands.
use std::time::Duration;

/// Parses `30` (seconds), `30s`, `500ms`, `2m` or `1h`.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (examples: 30, 30s, 500ms, 2m, 1h)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" => value,
        "ms" => value / 1000.0,
        "m" | "min" | "mins" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{text:?} must be longer than zero"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a time offset into a recording: a duration, or `0`.
pub fn offset(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    duration(text)
}

/// Parses a ring-buffer size in MiB (a power of two).
pub fn ring_mib(text: &str) -> Result<u32, String> {
    let mib: u32 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of MiB"))?;
    if !mib.is_power_of_two() || mib > 1024 {
        return Err(format!(
            "{mib} MiB: the ring size must be a power of two up to 1024"
        ));
    }
    Ok(mib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_and_without_units() {
        assert_eq!(duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
    }

    #[test]
    fn bad_durations_are_explained() {
        assert!(duration("").is_err());
        assert!(duration("abc").is_err());
        assert!(duration("0").is_err());
        assert!(
            duration("5 parsecs")
                .expect_err("unit")
                .contains("unknown unit")
        );
    }

    #[test]
    fn ring_sizes_are_powers_of_two() {
        assert_eq!(ring_mib("8"), Ok(8));
        assert!(ring_mib("3").is_err());
        assert!(ring_mib("x").is_err());
    }
}
