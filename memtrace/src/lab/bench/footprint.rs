//! Footprint: memtrace's resident memory and BPF map memory while it tracks many processes.
use std::{path::Path, time::Duration};

use super::{
    load, procfs,
    recorded::{self, TempReport},
    stats,
    table::Row,
    targets,
    tracers::{MEMTRACE, STOP_TIMEOUT},
};
use crate::Error;

/// How much to measure.
#[derive(Clone, Debug)]
pub struct FootprintPlan {
    /// Numbers of short-lived processes.
    pub counts: Vec<u64>,
    /// Recordings of each count: the peak moves with where the intervals fall in the burst.
    pub runs: usize,
    /// Pages each process touches.
    pub pages: usize,
}

/// What one recording used.
struct Measured {
    processes: u64,
    in_report: usize,
    resident: procfs::Resident,
    /// Peak over the whole life, final report included (from wait4).
    max_rss_kib: u64,
    map_bytes: u64,
}

/// The record process drains the ring at least once per interval (1 s): waiting a little
/// longer makes sure every process is in its model when the memory is read.
const DRAIN_WAIT: Duration = Duration::from_millis(1500);

impl Measured {
    /// VmHWM while it ran, or wait4's ru_maxrss over its whole life (final report included),
    /// whichever is higher.
    fn peak_mb(&self) -> f64 {
        targets::kib_to_mb(self.resident.hwm_kib.max(self.max_rss_kib))
    }
}

/// Records while each count of processes comes and goes, `plan.runs` times, and returns one
/// row per count.
pub fn run(exe: &Path, plan: &FootprintPlan) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for &count in &plan.counts {
        let mut runs = Vec::new();
        for _ in 0..plan.runs.max(1) {
            let m = measure(exe, count, plan.pages)?;
            progress!(
                "memtrace bench: footprint with {count} processes: RSS {} KiB, peak {} KiB, \
                 maps {} B",
                m.resident.rss_kib,
                m.max_rss_kib,
                m.map_bytes
            );
            runs.push(m);
        }
        rows.push(row(&runs));
    }
    Ok(rows)
}

fn measure(exe: &Path, count: u64, pages: usize) -> Result<Measured, Error> {
    let report = TempReport::new();
    let daemon = MEMTRACE.start(exe, Some(report.path()))?;
    let tree = load::run_spawn_tree(exe, count, pages);
    std::thread::sleep(DRAIN_WAIT);
    let resident = procfs::resident(daemon.pid());
    let map_bytes = procfs::bpf_map_bytes(daemon.pid());
    let (usage, _) = daemon.stop(STOP_TIMEOUT)?;
    let (tree, resident, map_bytes) = (tree?, resident?, map_bytes?);
    Ok(Measured {
        processes: tree.processes,
        in_report: recorded::read(report.path())?.processes.len(),
        resident,
        max_rss_kib: usage.max_rss_kib,
        map_bytes,
    })
}

/// The row of one count: the run with the median peak, the spread of the peaks, and the
/// verdict on the highest (every run must stay under the target).
fn row(runs: &[Measured]) -> Row {
    let mut by_peak: Vec<&Measured> = runs.iter().collect();
    by_peak.sort_by(|a, b| a.peak_mb().total_cmp(&b.peak_mb()));
    let (Some(lowest), Some(highest)) = (by_peak.first(), by_peak.last()) else {
        return Row::unavailable("footprint (memtrace record)", "—", "—", "no run");
    };
    let m = by_peak[by_peak.len() / 2];
    let at_target = m.processes >= targets::RSS_TARGET_PROCESSES;
    let peaks: Vec<f64> = by_peak.iter().map(|m| m.peak_mb()).collect();
    let median = stats::median(&peaks).unwrap_or(m.peak_mb());
    Row {
        measurement: "footprint (memtrace record)".into(),
        condition: format!(
            "{} traced ({} in the report)",
            processes(m.processes),
            targets::thousands(m.in_report as f64)
        ),
        result: format!(
            "peak RSS {median:.1} MB (median of {}); at the end RSS {:.1} MB (anon {:.1}, \
             file-backed incl. the ring mapping {:.1}); BPF maps {:.1} MB",
            runs.len(),
            targets::kib_to_mb(m.resident.rss_kib),
            targets::kib_to_mb(m.resident.anon_kib),
            targets::kib_to_mb(m.resident.file_kib),
            m.map_bytes as f64 / 1e6
        ),
        spread: format!("{:.1}–{:.1} MB", lowest.peak_mb(), highest.peak_mb()),
        target: if at_target {
            format!("peak RSS ≤ {} MB in every run", targets::RSS_MAX_MB)
        } else {
            "—".into()
        },
        verdict: if at_target {
            targets::at_most(highest.peak_mb(), targets::RSS_MAX_MB, "MB")
        } else {
            "—".into()
        },
    }
}

/// "1 process", "1 000 processes".
fn processes(n: u64) -> String {
    let noun = if n == 1 { "process" } else { "processes" };
    format!("{} {noun}", targets::thousands(n as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(peak_kib: u64, max_rss_kib: u64) -> Measured {
        Measured {
            processes: 10_000,
            in_report: 103,
            resident: procfs::Resident {
                rss_kib: 30_000,
                hwm_kib: peak_kib,
                anon_kib: 12_000,
                file_kib: 18_000,
            },
            max_rss_kib,
            map_bytes: 12_600_000,
        }
    }

    #[test]
    fn a_row_gives_the_median_peak_its_spread_and_judges_the_highest() {
        // Peaks 37.9, 48.8 (from wait4, the final report) and 51.2 MB (1 MB = 1000 KiB here
        // as `kib_to_mb` counts it).
        let kib = |mb: f64| (mb * 1e6 / 1024.0).round() as u64;
        let runs = [
            measured(kib(37.9), kib(30.0)),
            measured(kib(40.0), kib(48.8)),
            measured(kib(51.2), kib(50.0)),
        ];
        let three = row(&runs);
        assert!(
            three.result.starts_with("peak RSS 48.8 MB (median of 3)"),
            "{}",
            three.result
        );
        assert_eq!(three.spread, "37.9–51.2 MB");
        assert_eq!(three.target, "peak RSS ≤ 50 MB in every run");
        assert!(
            three.verdict.starts_with("missed by 1.2 MB"),
            "{}",
            three.verdict
        );
        let under = row(&runs[..2]);
        assert_eq!(under.verdict, "met");
    }

    #[test]
    fn process_counts_read_well() {
        assert_eq!(processes(1), "1 process");
        assert_eq!(processes(10_000), "10 000 processes");
    }
}
