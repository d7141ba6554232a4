//! Footprint: memtrace's resident memory and BPF map memory while it tracks many processes.
use std::{path::Path, time::Duration};

use super::{
    load, procfs,
    recorded::{self, TempReport},
    table::Row,
    targets,
    tracers::{MEMTRACE, STOP_TIMEOUT},
};
use crate::Error;

/// How much to measure.
#[derive(Clone, Debug)]
pub struct FootprintPlan {
    /// Numbers of short-lived processes, one recording each.
    pub counts: Vec<u64>,
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

/// Records while each count of processes comes and goes, and returns one row per count.
pub fn run(exe: &Path, plan: &FootprintPlan) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for &count in &plan.counts {
        let m = measure(exe, count, plan.pages)?;
        progress!(
            "memtrace bench: footprint with {count} processes: RSS {} KiB, peak {} KiB, maps {} B",
            m.resident.rss_kib,
            m.max_rss_kib,
            m.map_bytes
        );
        rows.push(row(&m));
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

fn row(m: &Measured) -> Row {
    let at_target = m.processes >= targets::RSS_TARGET_PROCESSES;
    // VmHWM while it ran, or wait4's ru_maxrss over its whole life (final report included),
    // whichever is higher.
    let peak_mb = targets::kib_to_mb(m.resident.hwm_kib.max(m.max_rss_kib));
    Row {
        measurement: "footprint (memtrace record)".into(),
        condition: format!(
            "{} traced ({} in the report)",
            processes(m.processes),
            targets::thousands(m.in_report as f64)
        ),
        result: format!(
            "peak RSS {peak_mb:.1} MB; at the end RSS {:.1} MB (anon {:.1}, file-backed incl. \
             the ring mapping {:.1}); BPF maps {:.1} MB",
            targets::kib_to_mb(m.resident.rss_kib),
            targets::kib_to_mb(m.resident.anon_kib),
            targets::kib_to_mb(m.resident.file_kib),
            m.map_bytes as f64 / 1e6
        ),
        spread: "—".into(),
        target: if at_target {
            format!("peak RSS ≤ {} MB", targets::RSS_MAX_MB)
        } else {
            "—".into()
        },
        verdict: if at_target {
            targets::at_most(peak_mb, targets::RSS_MAX_MB, "MB")
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

    #[test]
    fn process_counts_read_well() {
        assert_eq!(processes(1), "1 process");
        assert_eq!(processes(10_000), "10 000 processes");
    }
}
