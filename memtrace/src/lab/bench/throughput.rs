//! Throughput: fault generators run flat out while memtrace records system-wide; how many
//! events per second it drains, whether it loses any, and the CPU its userspace spends.
use std::{path::Path, time::Instant};

use super::{
    load, procfs,
    recorded::{self, TempReport},
    stats,
    table::Row,
    targets,
    tracers::{MEMTRACE, STOP_TIMEOUT},
};
use crate::{
    Error,
    lab::workload::bench::{ChurnOutcome, ChurnPlan},
};

/// How much to measure.
#[derive(Clone, Debug)]
pub struct ThroughputPlan {
    /// Numbers of generators run in parallel, one measurement each.
    pub loads: Vec<usize>,
    /// What each generator runs (with a duration).
    pub churn: ChurnPlan,
}

/// One traced load.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Measured {
    generators: usize,
    /// Faults per second the generators made without a tracer.
    untraced_rate: f64,
    /// Faults per second they made, and memtrace received, while traced.
    rate: f64,
    lost: u64,
    /// Records of the generators / faults the kernel counted for them.
    coverage: f64,
    cpu_s_per_million: Option<f64>,
    /// memtrace's CPU time over the window, in cores.
    cores: f64,
}

/// Measures each load and returns its rows plus the summary row.
pub fn run(exe: &Path, plan: &ThroughputPlan) -> Result<Vec<Row>, Error> {
    let mut all = Vec::new();
    for &generators in &plan.loads {
        let untraced = generate(exe, &plan.churn, generators)?;
        let mut m = traced(exe, &plan.churn, generators)?;
        m.untraced_rate = total_rate(&untraced);
        progress!(
            "memtrace bench: throughput with {generators} generator(s): {:.0} faults/s untraced, {:.0} events/s traced, {} lost",
            m.untraced_rate,
            m.rate,
            m.lost
        );
        all.push(m);
    }
    let mut rows: Vec<Row> = all.iter().map(|m| row(plan, m)).collect();
    rows.push(summary(&all));
    Ok(rows)
}

/// Runs `generators` fault loops in parallel and collects their outcomes.
fn generate(exe: &Path, churn: &ChurnPlan, generators: usize) -> Result<Vec<ChurnOutcome>, Error> {
    let children = (0..generators)
        .map(|_| load::spawn_churn(exe, churn))
        .collect::<Result<Vec<_>, _>>()?;
    children.into_iter().map(load::finish_churn).collect()
}

fn traced(exe: &Path, churn: &ChurnPlan, generators: usize) -> Result<Measured, Error> {
    let report = TempReport::new();
    let daemon = MEMTRACE.start(exe, Some(report.path()))?;
    let pid = daemon.pid();
    let cpu_before = procfs::cpu_seconds(pid)?;
    let started = Instant::now();
    let outcomes = generate(exe, churn, generators);
    let window = started.elapsed().as_secs_f64();
    let cpu = procfs::cpu_seconds(pid).map(|after| after - cpu_before);
    daemon.stop(STOP_TIMEOUT)?;
    let (outcomes, cpu) = (outcomes?, cpu?);
    let recorded = recorded::read(report.path())?;
    let pids: Vec<u32> = outcomes.iter().map(|o| o.pid).collect();
    let events = recorded.faults_of(&pids);
    let kernel: u64 = outcomes.iter().map(|o| o.process_faults).sum();
    Ok(Measured {
        generators,
        untraced_rate: 0.0,
        rate: total_rate(&outcomes),
        lost: recorded.lost,
        coverage: if kernel > 0 {
            events as f64 / kernel as f64
        } else {
            0.0
        },
        cpu_s_per_million: stats::cpu_s_per_million(cpu, events),
        cores: if window > 0.0 { cpu / window } else { 0.0 },
    })
}

/// Sum over generators of each one's faults per second.
fn total_rate(outcomes: &[ChurnOutcome]) -> f64 {
    outcomes
        .iter()
        .map(|o| stats::rate(o.faults, o.elapsed_ns as f64 / 1e9))
        .sum()
}

fn target() -> String {
    format!(
        "≥ {} events/s, 0 lost",
        targets::thousands(targets::EVENTS_MIN_PER_S)
    )
}

fn verdict(m: &Measured) -> String {
    if m.lost > 0 {
        return format!("missed: {} records lost", targets::thousands(m.lost as f64));
    }
    targets::at_least(m.rate, targets::EVENTS_MIN_PER_S, "events/s")
}

fn row(plan: &ThroughputPlan, m: &Measured) -> Row {
    let kind = if plan.churn.read { "read" } else { "write" };
    let cpu = m.cpu_s_per_million.map_or_else(
        || "—".into(),
        |s| format!("{s:.2} CPU s per million events"),
    );
    Row {
        measurement: "throughput (memtrace record, system-wide)".into(),
        condition: format!(
            "{} fault generator(s), {kind} faults, {:.0} s",
            m.generators,
            plan.churn.duration.map_or(0.0, |d| d.as_secs_f64())
        ),
        result: format!(
            "{} events/s (untraced the generators make {} faults/s); {} lost; {:.2} % of the \
             kernel's count recorded; userspace {cpu} ({:.0} % of a core)",
            targets::thousands(m.rate),
            targets::thousands(m.untraced_rate),
            m.lost,
            m.coverage * 100.0,
            m.cores * 100.0
        ),
        spread: "—".into(),
        target: target(),
        verdict: verdict(m),
    }
}

/// The highest rate drained without loss, over all loads.
fn summary(all: &[Measured]) -> Row {
    let best = all
        .iter()
        .filter(|m| m.lost == 0)
        .max_by(|a, b| a.rate.total_cmp(&b.rate));
    let measurement = "throughput: highest zero-loss rate";
    match best {
        None => Row::unavailable(
            measurement,
            "all loads",
            &target(),
            "every load lost records",
        ),
        Some(m) => Row {
            measurement: measurement.into(),
            condition: format!("{} generator(s)", m.generators),
            result: format!("{} events/s", targets::thousands(m.rate)),
            spread: "—".into(),
            target: target(),
            verdict: verdict(m),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_zero_loss_load_is_the_summary() {
        let a = Measured {
            generators: 1,
            rate: 400_000.0,
            ..Measured::default()
        };
        let b = Measured {
            generators: 2,
            rate: 900_000.0,
            lost: 5,
            ..Measured::default()
        };
        let row = summary(&[a, b]);
        assert_eq!(row.condition, "1 generator(s)");
        assert_eq!(row.result, "400 000 events/s");
        assert_eq!(row.verdict, "missed by 600 000 events/s (40 % of target)");
        assert!(summary(&[b]).verdict.starts_with("n/a"));
        assert_eq!(verdict(&b), "missed: 5 records lost");
    }

    #[test]
    fn rates_add_up_per_generator() {
        let o = ChurnOutcome {
            faults: 1_000,
            elapsed_ns: 500_000_000,
            ..ChurnOutcome::default()
        };
        assert_eq!(total_rate(&[o, o]), 4_000.0);
    }
}
