//! Numbers for humans: durations with 3 significant digits and counts with k/M suffixes; and
//! names from the traced machine made safe to print.
use std::{borrow::Cow, fmt::Write as _};

/// `964ns`, `9.33µs`, `154ms`, `1.20s`.
pub fn duration_ns(ns: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1e9, "s"), (1e6, "ms"), (1e3, "µs")];
    let value = ns as f64;
    for (scale, unit) in UNITS {
        if value >= scale {
            return format!("{}{unit}", three_digits(value / scale));
        }
    }
    format!("{ns}ns")
}

/// `999`, `12.3k`, `251k`, `1.20M`.
pub fn count(n: u64) -> String {
    let value = n as f64;
    if n < 1000 {
        return n.to_string();
    }
    let (scaled, unit) = if value < 1e6 {
        (value / 1e3, "k")
    } else if value < 1e9 {
        (value / 1e6, "M")
    } else {
        (value / 1e9, "G")
    };
    format!("{}{unit}", three_digits(scaled))
}

/// `512B`, `12.0M`, `1.50G` (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [(f64, &str); 3] = [(1_073_741_824.0, "G"), (1_048_576.0, "M"), (1024.0, "K")];
    let value = n as f64;
    for (scale, unit) in UNITS {
        if value >= scale {
            return format!("{}{unit}", three_digits(value / scale));
        }
    }
    format!("{n}B")
}

/// A change of size in KiB, signed: `+8.00M`, `-120K`.
pub fn signed_kb(kb: f64) -> String {
    let sign = if kb < 0.0 { "-" } else { "+" };
    format!("{sign}{}", bytes((kb.abs() * 1024.0) as u64))
}

/// Sizes in the OOM block's longer form: `12.0 MiB`, `340 KiB`, `17 B`.
pub fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (scale, unit) in UNITS {
        if bytes >= scale {
            return format!("{:.1} {unit}", bytes as f64 / scale as f64);
        }
    }
    format!("{bytes} B")
}

/// A share in % for a terminal column: whole percents from 1 %, one decimal below, and
/// `<0.1%` for a share too small for that, so that something that happened never reads `0%`.
pub fn share(pct: f64) -> String {
    if pct <= 0.0 || pct >= 0.995 {
        format!("{pct:.0}%")
    } else if pct >= 0.05 {
        format!("{pct:.1}%")
    } else {
        "<0.1%".to_string()
    }
}

/// A rate per second, as `count` does.
pub fn rate(n: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "0".to_string();
    }
    count((n as f64 / seconds).round() as u64)
}

/// `text` with every control and invisible formatting character escaped (`\n`, `\x1b`,
/// `\u{202e}`), so that a name a process chose itself (`prctl(PR_SET_NAME)`, a cgroup's
/// directory) cannot move the cursor, recolour the terminal, forge a line or reorder text. Every
/// text renderer passes names through it; JSON has its own escaping.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if !needs_escape(c) => out.push(c),
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) and the invisible ones that reorder or hide text: zero-width
/// and bidirectional marks, embeddings, overrides and isolates, separators, the BOM.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}')
}

fn three_digits(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_that_happened_never_reads_zero() {
        assert_eq!(share(0.0), "0%");
        assert_eq!(share(0.01), "<0.1%");
        assert_eq!(share(0.3), "0.3%");
        assert_eq!(share(0.99), "1.0%");
        assert_eq!(share(1.0), "1%");
        assert_eq!(share(42.4), "42%");
        assert_eq!(share(250.0), "250%");
    }

    #[test]
    fn durations_keep_three_digits() {
        assert_eq!(duration_ns(0), "0ns");
        assert_eq!(duration_ns(964), "964ns");
        assert_eq!(duration_ns(9_330), "9.33µs");
        assert_eq!(duration_ns(12_345), "12.3µs");
        assert_eq!(duration_ns(154_200_000), "154ms");
        assert_eq!(duration_ns(1_200_000_000), "1.20s");
    }

    #[test]
    fn names_are_escaped_for_the_terminal() {
        assert!(matches!(printable("postgres"), Cow::Borrowed("postgres")));
        assert_eq!(printable("µs-wörker"), "µs-wörker");
        assert_eq!(printable("evil\x1b[31m\nred"), "evil\\x1b[31m\\nred");
        assert_eq!(printable("a\tb\rc\0d\x7f"), "a\\tb\\rc\\x00d\\x7f");
        assert_eq!(printable("\u{9b}31m"), "\\x9b31m");
        assert_eq!(printable("abc\u{202e}fdp.exe"), "abc\\u{202e}fdp.exe");
        assert_eq!(printable("zero\u{200b}width"), "zero\\u{200b}width");
        // Backslashes that were there already are left alone: names rarely hold them.
        assert_eq!(printable("a\\nb"), "a\\nb");
    }

    #[test]
    fn counts_use_suffixes() {
        assert_eq!(count(999), "999");
        assert_eq!(count(12_345), "12.3k");
        assert_eq!(count(251_200), "251k");
        assert_eq!(count(1_200_000), "1.20M");
        assert_eq!(rate(500, 0.5), "1.00k");
        assert_eq!(rate(5, 0.0), "0");
        assert_eq!(bytes(512), "512B");
        assert_eq!(bytes(3 << 30), "3.00G");
    }
}
