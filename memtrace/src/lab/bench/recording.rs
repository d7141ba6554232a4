//! Recording size: bytes a `memtrace record -o` file grows by per minute at 1 s intervals, with
//! 1, 1 000 and 10 000 processes active (faulting) in every interval.
use std::{path::Path, time::Duration};

use super::{
    load,
    recorded::TempReport,
    table::Row,
    targets,
    tracers::{STOP_TIMEOUT, Tracer},
};
use crate::{Error, recording::read_model};

/// How much to measure.
#[derive(Clone, Debug)]
pub struct RecordingPlan {
    /// Numbers of processes active at once, one recording each.
    pub counts: Vec<u64>,
    /// Pages each process touches per second.
    pub pages: usize,
    /// How long the processes stay active.
    pub duration: Duration,
}

/// memtrace with every default, plus `-o`.
const RECORDING: Tracer = Tracer::Memtrace {
    fault_end: "auto",
    faults_only: false,
    recording: true,
    stacks: false,
};

/// What one recording came to.
struct Measured {
    processes: u64,
    bytes: u64,
    intervals: u64,
    elapsed_s: f64,
}

/// One row per count of active processes.
pub fn run(exe: &Path, plan: &RecordingPlan) -> Result<Vec<Row>, Error> {
    let mut rows = Vec::new();
    for &count in &plan.counts {
        let m = measure(exe, count, plan)?;
        progress!(
            "memtrace bench: recording with {count} active processes: {} bytes, {} intervals in {:.1} s",
            m.bytes,
            m.intervals,
            m.elapsed_s
        );
        rows.push(row(&m, plan.pages));
    }
    Ok(rows)
}

fn measure(exe: &Path, count: u64, plan: &RecordingPlan) -> Result<Measured, Error> {
    let report = TempReport::new();
    let recording = report.path().with_extension("mtr");
    let daemon = RECORDING.start(exe, Some(report.path()))?;
    let active = load::run_active(exe, count, plan.pages, plan.duration);
    daemon.stop(STOP_TIMEOUT)?;
    let active = active?;
    let bytes = std::fs::metadata(&recording)
        .map_err(|e| Error::io(format!("reading {}", recording.display()), e))?
        .len();
    let (model, intervals, _) = read_model(&recording, |_| true, None)?;
    Ok(Measured {
        processes: active.processes,
        bytes,
        intervals,
        elapsed_s: model.elapsed_ns() as f64 / 1e9,
    })
}

fn row(m: &Measured, pages: usize) -> Row {
    let per_minute = m.bytes as f64 / m.elapsed_s.max(1e-9) * 60.0;
    let per_process_interval = m.bytes as f64 / (m.processes.max(1) * m.intervals.max(1)) as f64;
    Row {
        measurement: "recording size (record -o, 1 s intervals)".into(),
        condition: format!(
            "{} processes active, {pages} new pages/s each",
            targets::thousands(m.processes as f64)
        ),
        result: format!(
            "{:.2} MB per minute ({:.0} B per process and interval; {} intervals, {:.1} MB)",
            per_minute / 1e6,
            per_process_interval,
            m.intervals,
            m.bytes as f64 / 1e6
        ),
        spread: "—".into(),
        target: "—".into(),
        verdict: "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_per_minute_and_per_process_interval() {
        let m = Measured {
            processes: 1000,
            bytes: 3_000_000,
            intervals: 30,
            elapsed_s: 30.0,
        };
        let row = row(&m, 16);
        assert_eq!(row.condition, "1 000 processes active, 16 new pages/s each");
        assert!(
            row.result
                .starts_with("6.00 MB per minute (100 B per process and interval; 30 intervals"),
            "{}",
            row.result
        );
    }
}
