//! The timeline: one row per recording interval with the machine's context and the processes
//! that stalled most, flagged when a process's stall share or PSI passes its threshold.
use std::{
    collections::BTreeMap,
    io::{self, Write},
};

use super::units;
use crate::{
    model::{
        Model,
        machine::{MachineInterval, share_pct},
        timeline::{Interval, StallCategory},
    },
    samples::{
        machine::Thresholds,
        zones::{AllocatorEvents, StallZones, ZoneSample},
    },
};

/// How many processes a row lists when none is singled out.
const TOP_PER_ROW: usize = 3;

/// One process in one interval.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ProcessShare {
    pub pid: u32,
    pub comm: String,
    /// Stalled thread-time as a share of the interval, in %: above 100 with several stalled
    /// threads; kinds can nest (a swap-in fault may contain memcg reclaim).
    pub stalled_pct: f64,
    /// Share per kind (kinds with time only).
    pub by_kind: BTreeMap<StallCategory, f64>,
}

/// A process whose memory moved in one interval.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryMove {
    pub pid: u32,
    pub comm: String,
    /// Its memory (resident + swap) at the interval's close, KiB; 0 when it ended.
    pub memory_kb: u64,
    /// The change over the interval, KiB: from 0 for a process that started in it, down to 0
    /// for one that ended.
    pub change_kb: i64,
}

/// One interval.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TimelineRow {
    /// Start, in seconds since the recording started.
    pub start_s: f64,
    /// Length in milliseconds, fractional: the last interval is cut short where the run ended,
    /// often less than a millisecond after the last full one.
    pub len_ms: f64,
    /// A process's stall share or PSI `some` passed its threshold.
    pub flagged: bool,
    pub machine: MachineInterval,
    /// kswapd CPU time as a share of one CPU over the interval (all nodes), in %; `null` in
    /// recordings made before memtrace measured it.
    pub kswapd_cpu_pct: Option<f64>,
    /// kswapd awake time (wake to sleep, naps and CPU waits included) as a share of the
    /// interval (all nodes), in %. (Reports of memtrace 0.1.0 had `kswapd_busy_pct`, the same
    /// awake share under a misleading name.)
    #[serde(default, alias = "kswapd_busy_pct")]
    pub kswapd_awake_pct: f64,
    /// Each zone's free pages against its watermarks, read every 100 ms (empty in recordings
    /// made before memtrace read them).
    #[serde(default)]
    pub zones: Vec<ZoneSample>,
    /// The zones as the interval's stalls began, read in the kernel at each, by kind.
    #[serde(default)]
    pub stall_zones: BTreeMap<StallCategory, StallZones>,
    /// The allocator's fallbacks between migrate types and the compaction attempts.
    #[serde(default)]
    pub allocator: AllocatorEvents,
    pub processes: Vec<ProcessShare>,
    /// The processes whose memory moved most over the interval (3, and every `--pid` one that
    /// moved), largest change first; empty in recordings made before memtrace read memory.
    #[serde(default)]
    pub memory_moves: Vec<MemoryMove>,
}

impl TimelineRow {
    /// The lowest watermark any zone's free pages fell below in a reading of the interval:
    /// `<min` (allocations reclaim directly), `<low` (kswapd wakes), `ok`, or `-` without
    /// readings.
    pub fn watermark_mark(&self) -> &'static str {
        if self.zones.iter().any(|z| z.below_min > 0) {
            "<min"
        } else if self.zones.iter().any(|z| z.below_low > 0) {
            "<low"
        } else if self.zones.is_empty() {
            "-"
        } else {
            "ok"
        }
    }
}

impl TimelineRow {
    /// End, in seconds since the recording started.
    pub fn end_s(&self) -> f64 {
        self.start_s + self.len_ms / 1000.0
    }
}

/// The thresholds as a report shows them: numbers, zero or more, with the same effect. JSON has
/// no NaN or infinity (serde would write `null`); the command line refuses them and negative
/// values, but a recording made before it did may hold them. NaN and +inf flag nothing, as
/// `f64::MAX` does; a negative value or -inf flags every process share and PSI reading, as 0
/// does (neither is ever negative).
pub fn shown_thresholds(thresholds: Thresholds) -> Thresholds {
    let shown = |pct: f64| {
        if pct.is_nan() || pct == f64::INFINITY {
            f64::MAX
        } else {
            // `+ 0.0` turns -0 into 0.
            pct.max(0.0) + 0.0
        }
    };
    Thresholds {
        stall_pct: shown(thresholds.stall_pct),
        psi_pct: shown(thresholds.psi_pct),
    }
}

/// The rows of a model. With `focus` pids, each row lists those; otherwise the most stalled.
pub fn rows(model: &Model, thresholds: &Thresholds, focus: &[u32]) -> Vec<TimelineRow> {
    let origin = model.header.start_mono_ns;
    model
        .timeline
        .intervals()
        .iter()
        .zip(&model.machine)
        .map(|(interval, machine)| row(model, interval, machine, origin, thresholds, focus))
        .collect()
}

/// The row of the last closed interval, for the live line.
pub fn last_row(model: &Model, thresholds: &Thresholds, focus: &[u32]) -> Option<TimelineRow> {
    let intervals = model.timeline.intervals();
    let index = intervals.len().checked_sub(1)?;
    Some(row(
        model,
        &intervals[index],
        model.machine.get(index)?,
        model.header.start_mono_ns,
        thresholds,
        focus,
    ))
}

fn row(
    model: &Model,
    interval: &Interval,
    machine: &MachineInterval,
    origin: u64,
    thresholds: &Thresholds,
    focus: &[u32],
) -> TimelineRow {
    let len = interval.len_ns();
    let mut processes: Vec<ProcessShare> = interval
        .stalls
        .iter()
        .filter(|((pid, _), _)| focus.is_empty() || focus.contains(pid))
        .map(|(&(pid, start_ns), (comm, ns))| ProcessShare {
            pid,
            // Its latest name if it is still kept (an exec renames it), else the one it had.
            comm: model.name_of(pid, start_ns).unwrap_or(comm).to_string(),
            stalled_pct: share_pct(ns.iter().sum(), len),
            by_kind: StallCategory::ALL
                .iter()
                .filter(|c| ns[**c as usize] > 0)
                .map(|&c| (c, share_pct(ns[c as usize], len)))
                .collect(),
        })
        .collect();
    processes.sort_by(|a, b| {
        b.stalled_pct
            .total_cmp(&a.stalled_pct)
            .then(a.pid.cmp(&b.pid))
    });
    if focus.is_empty() {
        processes.truncate(TOP_PER_ROW);
    }
    let worst = processes.first().map_or(0.0, |p| p.stalled_pct);
    TimelineRow {
        start_s: interval.start_ns.saturating_sub(origin) as f64 / 1e9,
        len_ms: len as f64 / 1e6,
        flagged: thresholds.flags(worst, machine.psi_some_pct),
        machine: *machine,
        kswapd_cpu_pct: interval.kswapd_cpu_ns.map(|ns| share_pct(ns, len)),
        kswapd_awake_pct: share_pct(interval.kswapd_awake_ns.values().sum(), len),
        zones: interval.zones.clone(),
        stall_zones: interval.stall_zones.clone(),
        allocator: interval.allocator.clone(),
        processes,
        memory_moves: interval
            .memory
            .iter()
            .filter(|c| focus.is_empty() || focus.contains(&c.pid))
            .map(|c| MemoryMove {
                pid: c.pid,
                comm: model
                    .name_of(c.pid, c.start_ns)
                    .unwrap_or(&c.comm)
                    .to_string(),
                memory_kb: c.total_kb,
                change_kb: c.delta_kb,
            })
            .collect(),
    }
}

/// The largest memory move of a row, as the terminal shows it: `leak[812] +16.0M→412M`.
fn memory_cell(row: &TimelineRow) -> String {
    let Some(m) = row.memory_moves.first() else {
        return "-".into();
    };
    let comm: String = units::printable(&m.comm).chars().take(12).collect();
    format!(
        "{comm}[{}] {}→{}",
        m.pid,
        units::signed_kb(m.change_kb as f64),
        units::bytes(m.memory_kb * 1024)
    )
}

/// Writes the timeline, one line per interval; `!!` marks flagged ones.
pub fn write(rows: &[TimelineRow], out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "\ntimeline (!! = a process stalled or PSI passed the threshold; WMARK: the lowest \
         watermark a zone's free pages fell below, <low wakes kswapd, <min makes allocations \
         reclaim directly):"
    )?;
    writeln!(
        out,
        "{:>9}  {:>11} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7} {:>5}  {:<30}  STALLED PROCESSES",
        "TIME",
        "PSI SOME/FU",
        "FREE",
        "AVAIL",
        "SWAPUSED",
        "SWPIN/s",
        "SWPOUT/s",
        "KSWAPD%",
        "WMARK",
        "MEMORY MOVED MOST"
    )?;
    for row in rows {
        let psi = match (row.machine.psi_some_pct, row.machine.psi_full_pct) {
            (Some(s), Some(f)) => format!("{s:.0}%/{f:.0}%"),
            _ => "-".to_string(),
        };
        let kb = |v: u64| units::bytes(v * 1024);
        let procs: Vec<String> = row
            .processes
            .iter()
            .map(|p| {
                let kinds: Vec<String> = p
                    .by_kind
                    .iter()
                    .map(|(k, v)| format!("{} {}", k.short(), units::share(*v)))
                    .collect();
                format!(
                    "{}[{}] {} ({})",
                    units::printable(&p.comm),
                    p.pid,
                    units::share(p.stalled_pct),
                    kinds.join(" ")
                )
            })
            .collect();
        let line = format!(
            "{} {:>7.1}s  {:>11} {:>8} {:>8} {:>8} {:>9} {:>9} {:>7} {:>5}  {:<30}  {}",
            if row.flagged { "!!" } else { "  " },
            row.start_s,
            psi,
            kb(row.machine.mem_free_kb),
            kb(row.machine.mem_available_kb),
            kb(row.machine.swap_used_kb),
            units::count(row.machine.pswpin_per_s.round() as u64),
            units::count(row.machine.pswpout_per_s.round() as u64),
            row.kswapd_cpu_pct
                .map_or("-".to_string(), |pct| format!("{pct:.0}%")),
            row.watermark_mark(),
            memory_cell(row),
            procs.join(", ")
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{
        Header, IntervalSample, StallTime,
        growth::{MemoryInterval, MemoryReading},
        machine::MachineSample,
    };

    #[test]
    fn rows_flag_the_stalled_interval_and_not_the_quiet_one() {
        let start = MachineSample {
            mono_ns: 1_000,
            psi_some_us: Some(0),
            psi_full_us: Some(0),
            ..Default::default()
        };
        let mut model = Model::new(Header {
            start_mono_ns: 1_000,
            machine: start,
            ..Header::default()
        });
        let interval = |index: u64, end_ns: u64, psi: u64| IntervalSample {
            index,
            start_ns: 1_000 + index * 1_000_000_000,
            end_ns,
            machine: MachineSample {
                mono_ns: end_ns,
                psi_some_us: Some(psi),
                ..start
            },
            ..IntervalSample::default()
        };
        model.apply(&interval(0, 1_000_001_000, 0));
        // 400 ms of memcg reclaim in the second interval.
        let mut second = interval(1, 2_000_001_000, 300_000);
        second.stall_time.push(StallTime {
            interval: 1,
            pid: 42,
            start_ns: 0,
            ns: vec![(StallCategory::MemcgReclaim, 400_000_000)],
        });
        model.apply(&second);
        let rows = rows(&model, &Thresholds::default(), &[]);
        assert_eq!(rows.len(), 2);
        assert!(!rows[0].flagged);
        assert!(rows[1].flagged);
        assert_eq!(rows[1].processes[0].pid, 42);
        assert!((rows[1].processes[0].stalled_pct - 40.0).abs() < 0.01);
        assert_eq!(rows[1].machine.psi_some_pct, Some(30.0));
        assert_eq!(rows[1].start_s, 1.0);
        let mut text = Vec::new();
        write(&rows, &mut text).expect("render");
        let text = String::from_utf8(text).expect("utf-8");
        assert_eq!(
            text.lines().filter(|l| l.starts_with("!!")).count(),
            1,
            "{text}"
        );
        assert!(text.contains("memcg 40%"), "{text}");
    }

    #[test]
    fn rows_show_the_process_whose_memory_moved_most() {
        let mut model = Model::new(Header {
            start_mono_ns: 1_000,
            ..Header::default()
        });
        let reading = |pid: u32, anon_kb: u64| MemoryReading {
            pid,
            start_ns: 2_000,
            comm: format!("leak{pid}"),
            rss_anon_kb: anon_kb,
            ..MemoryReading::default()
        };
        for index in 0..3u64 {
            let end_ns = 1_000 + (index + 1) * 1_000_000_000;
            let mut sample = IntervalSample {
                index,
                start_ns: end_ns - 1_000_000_000,
                end_ns,
                machine: MachineSample {
                    mono_ns: end_ns,
                    ..Default::default()
                },
                ..IntervalSample::default()
            };
            sample.memory = MemoryInterval {
                read_ns: end_ns,
                readings: match index {
                    0 => vec![reading(7, 1024), reading(8, 1024)],
                    1 => vec![reading(7, 1024 + 16 * 1024), reading(8, 2048)],
                    _ => Vec::new(),
                },
                gone: if index == 2 {
                    vec![reading(8, 0).key()]
                } else {
                    Vec::new()
                },
                ..MemoryInterval::default()
            };
            model.apply(&sample);
        }
        let rows = rows(&model, &Thresholds::default(), &[]);
        let moves: Vec<Vec<(u32, i64, u64)>> = rows
            .iter()
            .map(|r| {
                r.memory_moves
                    .iter()
                    .map(|m| (m.pid, m.change_kb, m.memory_kb))
                    .collect()
            })
            .collect();
        assert_eq!(
            moves,
            [
                vec![(7, 1024, 1024), (8, 1024, 1024)],
                vec![(7, 16 * 1024, 17 * 1024), (8, 1024, 2048)],
                vec![(8, -2048, 0)],
            ]
        );
        // With a focus, only its processes.
        let focused = super::rows(&model, &Thresholds::default(), &[8]);
        assert!(
            focused
                .iter()
                .all(|r| r.memory_moves.iter().all(|m| m.pid == 8))
        );
        let mut text = Vec::new();
        write(&rows, &mut text).expect("render");
        let text = String::from_utf8(text).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[2].contains("WMARK  MEMORY MOVED MOST"), "{text}");
        assert!(lines[3].contains("leak7[7] +1.00M→1.00M"), "{text}");
        assert!(lines[4].contains("leak7[7] +16.0M→17.0M"), "{text}");
        assert!(lines[5].contains("leak8[8] -2.00M→0B"), "{text}");
        assert!(lines.iter().all(|l| !l.ends_with(' ')), "{text}");
    }

    #[test]
    fn the_last_row_keeps_its_length_when_the_run_ends_just_after_a_boundary() {
        let mut model = Model::new(Header {
            start_mono_ns: 1_000,
            ..Header::default()
        });
        let interval = |index: u64, start_ns: u64, end_ns: u64| IntervalSample {
            index,
            start_ns,
            end_ns,
            machine: MachineSample {
                mono_ns: end_ns,
                ..Default::default()
            },
            ..IntervalSample::default()
        };
        model.apply(&interval(0, 1_000, 1_000_001_000));
        // The run stopped 437.5 µs after the first interval closed.
        model.apply(&interval(1, 1_000_001_000, 1_000_438_500));
        let rows = rows(&model, &Thresholds::default(), &[]);
        let lengths: Vec<f64> = rows.iter().map(|r| r.len_ms).collect();
        assert_eq!(lengths, [1000.0, 0.4375]);
        assert!((rows[1].end_s() - 1.000_437_5).abs() < 1e-12, "{rows:?}");
    }

    #[test]
    fn the_watermark_column_names_the_lowest_one_crossed() {
        let zone = |below_low, below_min| ZoneSample {
            node: 0,
            zone: "Normal".into(),
            readings: 10,
            below_low,
            below_min,
            ..ZoneSample::default()
        };
        let row = |zones: Vec<ZoneSample>| TimelineRow {
            start_s: 1.0,
            len_ms: 1000.0,
            flagged: false,
            machine: MachineInterval::default(),
            kswapd_cpu_pct: Some(0.0),
            kswapd_awake_pct: 0.0,
            zones,
            stall_zones: BTreeMap::new(),
            allocator: AllocatorEvents::default(),
            processes: Vec::new(),
            memory_moves: Vec::new(),
        };
        let rows = [
            row(Vec::new()),
            row(vec![zone(0, 0)]),
            row(vec![zone(0, 0), zone(3, 0)]),
            row(vec![zone(3, 0), zone(4, 2)]),
        ];
        let marks: Vec<&str> = rows.iter().map(TimelineRow::watermark_mark).collect();
        assert_eq!(marks, ["-", "ok", "<low", "<min"]);
        let mut out = Vec::new();
        write(&rows, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].contains("KSWAPD% WMARK  MEMORY MOVED MOST"),
            "{text}"
        );
        for (line, mark) in lines[3..].iter().zip(marks) {
            assert!(
                line.contains(&format!("0% {mark:>5}")),
                "{mark} in {line:?}"
            );
        }
    }

    #[test]
    fn thresholds_are_shown_as_numbers_with_the_same_effect() {
        let shown = |stall_pct: f64, psi_pct: f64| {
            let t = shown_thresholds(Thresholds { stall_pct, psi_pct });
            (t.stall_pct, t.psi_pct)
        };
        assert_eq!(shown(10.0, 2.5), (10.0, 2.5));
        assert_eq!(shown(f64::NAN, f64::INFINITY), (f64::MAX, f64::MAX));
        assert_eq!(shown(f64::NEG_INFINITY, -5.0), (0.0, 0.0));
        assert!(shown(-0.0, 0.0).0.is_sign_positive());
        // Same flags as the originals, on every share and PSI reading a row can have.
        for original in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -5.0, -0.0, 7.0] {
            let t = Thresholds {
                stall_pct: original,
                psi_pct: original,
            };
            let s = shown_thresholds(t);
            for value in [0.0_f64, 6.9, 7.0, 100.0, 1e300] {
                for psi in [None, Some(0.0), Some(value.min(100.0))] {
                    assert_eq!(
                        t.flags(value, psi),
                        s.flags(value, psi),
                        "{original} at {value}, {psi:?}"
                    );
                }
            }
        }
    }
}
