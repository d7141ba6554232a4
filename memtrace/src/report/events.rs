//! The per-event log (`--min-stall`): every stall, major fault or swap-in at or above a
//! threshold, printed as it arrives, in the spirit of drsnoop.
use std::io::{self, Write};

use memtrace_common::{FaultClass, zone_state};

use super::{gfp::GfpNames, units};
use crate::{collect::decode::Record, samples::comm_str};

/// Column headings of the log.
pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<12} {:>7} {:<16} {:<15} {:>9} {:>7} {:>5} {:<8}  GFP",
        "TIME", "PID", "COMM", "KIND", "LATENCY", "PAGES", "ORDER", "BEGAN"
    )
}

/// The zones as a stall began, from its `zone_state` word: `<min`, `<low` or `ok` (the worst
/// zone of the node against its watermarks) and `/o8` (the highest zone's largest free order);
/// `-` when not read.
pub fn began(word: u32) -> String {
    if zone_state::read(word) == 0 {
        return "-".into();
    }
    let mark = if zone_state::under_min(word) != 0 {
        "<min"
    } else if zone_state::under_low(word) != 0 {
        "<low"
    } else {
        "ok"
    };
    match zone_state::largest_free_order(word) {
        Some(order) => format!("{mark}/o{order}"),
        None => mark.into(),
    }
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
            "{:<12} {:>7} {:<16} {:<15} {:>9} {:>7} {:>5} {:<8}  {}",
            wall_of(event.start_ns + event.latency_ns),
            event.tgid,
            units::printable(&comm_str(&event.comm)),
            stall.name(),
            units::duration_ns(event.latency_ns),
            event.nr_reclaimed,
            event.order,
            began(event.zones),
            gfp.decode(event.gfp_flags)
        ),
        Record::Fault { event, class }
            if *class != FaultClass::Minor && event.latency_ns >= min_ns =>
        {
            writeln!(
                out,
                "{:<12} {:>7} {:<16} {:<15} {:>9} {:>7} {:>5} {:<8}  -",
                wall_of(event.start_ns + event.latency_ns),
                event.tgid,
                units::printable(&comm_str(&event.comm)),
                class.name(),
                units::duration_ns(event.latency_ns),
                event.swapin_pages,
                "-",
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
    use memtrace_common::{EventKind, FaultEvent, StallEvent, StallKind, SwapDir, SwapEvent};

    use super::*;
    use crate::report::fixture::{self, render};

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
            zones: 0,
            memcg_id: 0,
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
    fn began_shows_the_worst_zone_and_the_largest_free_order() {
        use zone_state::{ORDER_SHIFT, READ_SHIFT, UNDER_LOW_SHIFT, UNDER_MIN_SHIFT};
        let read = 0b110 << READ_SHIFT;
        assert_eq!(began(0), "-");
        assert_eq!(
            began(read | (0b100 << UNDER_MIN_SHIFT) | (0b100 << UNDER_LOW_SHIFT)),
            "<min"
        );
        assert_eq!(
            began(read | (0b010 << UNDER_LOW_SHIFT) | (11 << ORDER_SHIFT)),
            "<low/o10"
        );
        assert_eq!(began(read | (9 << ORDER_SHIFT)), "ok/o8");
    }

    #[test]
    fn wall_labels_have_millisecond_precision() {
        let label = wall_label(1_500_000_000, 2_000_000_000, 1_700_000_000_000_000_000);
        assert_eq!(label.len(), 12, "{label}");
        assert!(label.ends_with(".500"), "{label}");
    }

    fn fault(class: FaultClass, latency_ns: u64, swapin_pages: u32) -> Record {
        let mut comm = [0u8; 16];
        comm[..8].copy_from_slice(b"postgres");
        Record::Fault {
            event: FaultEvent {
                kind: EventKind::Fault as u32,
                class: class as u32,
                tgid: 100,
                tid: 101,
                start_ns: 7_000_000,
                latency_ns,
                swapin_pages,
                comm,
                ..FaultEvent::default()
            },
            class,
        }
    }

    /// A stall of `latency_ns` for an order-2 `GFP_KERNEL` allocation.
    fn kernel_stall(latency_ns: u64) -> Record {
        match stall(latency_ns) {
            Record::Stall { mut event, stall } => {
                event.order = 2;
                event.gfp_flags = fixture::GFP_KERNEL;
                event.start_ns = 1_000;
                Record::Stall { event, stall }
            }
            other => other,
        }
    }

    fn gfp() -> GfpNames {
        let bits = fixture::gfp_bits();
        GfpNames::from_enum(bits.iter().map(|(n, b)| (n.as_str(), *b)))
    }

    /// The log as `cli::output` writes it: the header, then the records that qualify.
    fn log(records: &[Record], min_ns: u64) -> String {
        let gfp = gfp();
        render(|out| {
            write_header(out)?;
            for record in records {
                write_if_slow(record, min_ns, &gfp, |ns| format!("mono{ns}"), out)?;
            }
            Ok(())
        })
    }

    #[test]
    fn stall_rows_have_order_and_decoded_gfp_under_their_headings() {
        let text = log(&[kernel_stall(2_000_000)], 2_000_000);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let (header, row) = (lines[0], lines[1]);
        assert_eq!(
            header.split_whitespace().collect::<Vec<_>>(),
            [
                "TIME", "PID", "COMM", "KIND", "LATENCY", "PAGES", "ORDER", "BEGAN", "GFP"
            ]
        );
        // The row ends at the stall's end (start + latency), as the label says.
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            [
                "mono2001000",
                "4242",
                "stress",
                "memcg_reclaim",
                "2.00ms",
                "32",
                "2",
                "-",
                "GFP_KERNEL"
            ]
        );
        // Left-aligned columns start under their heading, right-aligned ones end under it.
        let starts = |line: &str, word: &str| line.find(word).expect(word);
        let ends = |line: &str, word: &str| starts(line, word) + word.len();
        assert_eq!(starts(header, "COMM"), starts(row, "stress"));
        assert_eq!(starts(header, "KIND"), starts(row, "memcg_reclaim"));
        assert_eq!(starts(header, "GFP"), starts(row, "GFP_KERNEL"));
        assert_eq!(ends(header, "PID"), ends(row, "4242"));
        assert_eq!(ends(header, "LATENCY"), ends(row, "2.00ms"));
        assert_eq!(ends(header, "ORDER"), row.find(" - ").expect("began"));
        assert_eq!(starts(header, "BEGAN"), row.find("- ").expect("began"));
    }

    #[test]
    fn slow_major_faults_and_swap_ins_are_logged_minor_faults_never() {
        let text = log(
            &[
                fault(FaultClass::Minor, 900_000_000, 0),
                fault(FaultClass::MajorSwap, 5_000_000, 8),
                fault(FaultClass::MajorFile, 4_999_999, 0),
                fault(FaultClass::MajorFile, 12_000_000, 0),
            ],
            5_000_000,
        );
        let rows: Vec<Vec<&str>> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(
            rows,
            [
                [
                    "mono12000000",
                    "100",
                    "postgres",
                    "swap_in",
                    "5.00ms",
                    "8",
                    "-",
                    "-",
                    "-"
                ],
                [
                    "mono19000000",
                    "100",
                    "postgres",
                    "major_file",
                    "12.0ms",
                    "0",
                    "-",
                    "-",
                    "-"
                ],
            ],
            "{text}"
        );
    }

    #[test]
    fn other_records_are_not_logged() {
        let swap = Record::Swap {
            event: SwapEvent {
                kind: EventKind::Swap as u32,
                dir: SwapDir::Out as u32,
                tgid: 90,
                pages: 32,
                memcg_id: 501,
                ts_ns: 1,
                comm: [0; 16],
            },
            dir: SwapDir::Out,
        };
        let mut out = Vec::new();
        write_if_slow(&swap, 0, &gfp(), |_| "t".into(), &mut out).expect("write");
        write_if_slow(
            &fault(FaultClass::Minor, 1, 0),
            0,
            &gfp(),
            |_| "t".into(),
            &mut out,
        )
        .expect("write");
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    }
}
