//! The per-event log (`--min-stall`): every stall, major fault or swap-in at or above a
//! threshold, printed as it arrives, in the spirit of drsnoop.
use std::io::{self, Write};

use memtrace_common::FaultClass;

use super::{gfp::GfpNames, units};
use crate::{collect::decode::Record, samples::comm_str};

/// Column headings of the log.
pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<12} {:>7} {:<16} {:<15} {:>9} {:>7} {:>5}  GFP",
        "TIME", "PID", "COMM", "KIND", "LATENCY", "PAGES", "ORDER"
    )
}

/// Writes `record` if it is a stall (or a major fault or swap-in) of at least `min_ns`.
/// `wall_of` turns the record's CLOCK_MONOTONIC time into a wall-clock label.
pub fn write_if_slow(
    record: &Record,
    min_ns: u64,
    gfp: &GfpNames,
    wall_of: impl Fn(u64) -> String,
    out: &mut impl Write,
) -> io::Result<()> {
    match record {
        Record::Stall { event, stall } if event.latency_ns >= min_ns => writeln!(
            out,
            "{:<12} {:>7} {:<16} {:<15} {:>9} {:>7} {:>5}  {}",
            wall_of(event.start_ns + event.latency_ns),
            event.tgid,
            comm_str(&event.comm),
            stall.name(),
            units::duration_ns(event.latency_ns),
            event.nr_reclaimed,
            event.order,
            gfp.decode(event.gfp_flags)
        ),
        Record::Fault { event, class }
            if *class != FaultClass::Minor && event.latency_ns >= min_ns =>
        {
            writeln!(
                out,
                "{:<12} {:>7} {:<16} {:<15} {:>9} {:>7} {:>5}  -",
                wall_of(event.start_ns + event.latency_ns),
                event.tgid,
                comm_str(&event.comm),
                class.name(),
                units::duration_ns(event.latency_ns),
                event.swapin_pages,
                "-"
            )
        }
        _ => Ok(()),
    }
}

/// `HH:MM:SS.mmm` local time of a CLOCK_MONOTONIC instant, given the clocks read together now.
pub fn wall_label(mono_ns: u64, now_mono_ns: u64, now_unix_ns: u128) -> String {
    let unix_ns = now_unix_ns.saturating_sub(u128::from(now_mono_ns.saturating_sub(mono_ns)));
    let secs = (unix_ns / 1_000_000_000) as libc::time_t;
    let millis = (unix_ns / 1_000_000 % 1000) as u32;
    // SAFETY: zeroed tm is a valid out-parameter; localtime_r only writes it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    format!(
        "{:02}:{:02}:{:02}.{millis:03}",
        tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}

#[cfg(test)]
mod tests {
    use memtrace_common::{EventKind, StallEvent, StallKind};

    use super::*;

    fn stall(latency_ns: u64) -> Record {
        let mut comm = [0u8; 16];
        comm[..6].copy_from_slice(b"stress");
        let event = StallEvent {
            kind: EventKind::Stall as u32,
            stall: 1,
            tgid: 4242,
            tid: 4242,
            start_ns: 0,
            latency_ns,
            nr_reclaimed: 32,
            order: 0,
            gfp_flags: 0,
            detail: 0,
            _pad: 0,
            comm,
        };
        Record::Stall {
            event,
            stall: StallKind::MemcgReclaim,
        }
    }

    #[test]
    fn only_stalls_above_the_threshold_are_logged() {
        let mut out = Vec::new();
        let gfp = GfpNames::default();
        write_if_slow(&stall(999_999), 1_000_000, &gfp, |_| "t".into(), &mut out).expect("write");
        assert!(out.is_empty());
        write_if_slow(&stall(1_500_000), 1_000_000, &gfp, |_| "t".into(), &mut out).expect("write");
        let line = String::from_utf8(out).expect("utf-8");
        assert!(
            line.contains("4242")
                && line.contains("stress")
                && line.contains("memcg_reclaim")
                && line.contains("1.50ms")
                && line.contains("32"),
            "{line}"
        );
    }

    #[test]
    fn wall_labels_have_millisecond_precision() {
        let label = wall_label(1_500_000_000, 2_000_000_000, 1_700_000_000_000_000_000);
        assert_eq!(label.len(), 12, "{label}");
        assert!(label.ends_with(".500"), "{label}");
    }
}
