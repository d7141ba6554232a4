//! Where the nanoseconds go: the kernel's own accounting of each program's run time
//! (`BPF_ENABLE_STATS`, on only while this section runs and off again when its fd closes),
//! over one run of the fault loop under the floors and under memtrace. Stats add two clock
//! reads to every run, so the empty floor's figure is mostly that: read the others against it.
use std::{collections::BTreeMap, path::Path, time::SystemTime};

use aya::{
    programs::loaded_programs,
    sys::{Stats, enable_stats},
};

use super::{
    interrupt, load,
    table::Row,
    targets::{self, thousands},
    tracers::{ATTRIBUTED_FLOOR, MEMTRACE, STOP_TIMEOUT, TIMED_FLOOR, Tracer},
};
use crate::{Error, collect::floor::FloorKind, lab::workload::bench::ChurnPlan};

/// A program's runs and time over the loop.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProgramStats {
    pub runs: u64,
    pub ns: u64,
}

/// Runs the loop once under each condition with stats on.
pub fn run(exe: &Path, churn: &ChurnPlan) -> Result<Vec<Row>, Error> {
    let _stats = enable_stats(Stats::RunTime)
        .map_err(|e| Error::io("enabling BPF run-time stats", std::io::Error::other(e)))?;
    let mut rows = Vec::new();
    for tracer in [
        Tracer::Floor {
            kind: FloorKind::Empty,
        },
        TIMED_FLOOR,
        ATTRIBUTED_FLOOR,
        MEMTRACE,
    ] {
        interrupt::check()?;
        let since = SystemTime::now();
        let daemon = tracer.start(exe, None)?;
        let faults_before = pgfault()?;
        let outcome = load::run_churn(exe, churn);
        let faults = pgfault()?.saturating_sub(faults_before);
        let programs = read_since(since);
        daemon.stop(STOP_TIMEOUT)?;
        outcome?;
        rows.extend(table(&tracer.label(), &programs, faults));
    }
    Ok(rows)
}

/// Stats of the programs loaded since `since` (this tracer's), by name.
fn read_since(since: SystemTime) -> BTreeMap<String, ProgramStats> {
    let mut by_name: BTreeMap<String, ProgramStats> = BTreeMap::new();
    for info in loaded_programs().flatten() {
        if info.loaded_at().is_none_or(|at| at < since) {
            continue;
        }
        let name = info.name_as_str().unwrap_or("?").to_string();
        let entry = by_name.entry(name).or_default();
        entry.runs += info.run_count();
        entry.ns += info.run_time().as_nanos() as u64;
    }
    by_name
}

/// Faults the machine took so far (`pgfault` in /proc/vmstat).
fn pgfault() -> Result<u64, Error> {
    crate::lab::workload::vmstat("pgfault").map_err(|e| Error::io("reading /proc/vmstat", e))
}

/// One row per program that ran, and the sum per fault.
pub fn table(condition: &str, programs: &BTreeMap<String, ProgramStats>, faults: u64) -> Vec<Row> {
    let measurement = "where the time goes (BPF run-time stats over one fault loop)";
    let per_fault = |ns: u64| ns as f64 / faults.max(1) as f64;
    let mut rows: Vec<Row> = programs
        .iter()
        .filter(|(_, s)| s.runs > 0)
        .map(|(name, s)| Row {
            measurement: measurement.into(),
            condition: format!("{condition}: {name}"),
            result: format!(
                "{} ns a run × {} runs a fault = {} ns a fault",
                targets::decimal(s.ns as f64 / s.runs as f64),
                targets::decimal(s.runs as f64 / faults.max(1) as f64),
                targets::decimal(per_fault(s.ns))
            ),
            spread: "—".into(),
            target: "—".into(),
            verdict: "—".into(),
        })
        .collect();
    let total: u64 = programs.values().map(|s| s.ns).sum();
    rows.push(Row {
        measurement: measurement.into(),
        condition: format!("{condition}: all programs"),
        result: format!(
            "{} ns a fault over {} faults of the machine",
            targets::decimal(per_fault(total)),
            thousands(faults as f64)
        ),
        spread: "—".into(),
        target: "—".into(),
        verdict: "—".into(),
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_program_per_run_and_per_fault() {
        let programs = BTreeMap::from([
            (
                "page_fault_user".to_string(),
                ProgramStats {
                    runs: 1000,
                    ns: 30_000,
                },
            ),
            ("task_rename".to_string(), ProgramStats { runs: 0, ns: 0 }),
            (
                "count_memcg_eve".to_string(),
                ProgramStats {
                    runs: 2000,
                    ns: 80_000,
                },
            ),
        ]);
        let rows = table("memtrace record", &programs, 1000);
        assert_eq!(rows.len(), 3, "programs that never ran are left out");
        assert_eq!(rows[0].condition, "memtrace record: count_memcg_eve");
        assert_eq!(
            rows[0].result,
            "40.0 ns a run × 2.0 runs a fault = 80.0 ns a fault"
        );
        assert_eq!(
            rows[2].result,
            "110 ns a fault over 1 000 faults of the machine"
        );
    }
}
