//! The tax on context switches. memtrace runs no program on `sched_switch` (a fault's time off
//! the CPU comes from the thread's scheduler counters at its start and end), so a switch should
//! cost it nothing; this shows it. Two processes pinned to one CPU ping-pong through pipes (two
//! switches a round trip, as `perf bench sched pipe` pinned with taskset), untraced and traced
//! in alternating pairs; an empty program on sched_switch is what any hook there would pay.
use std::path::Path;

use super::{
    interrupt, load,
    stats::{self, Pair},
    table::Row,
    targets,
    tracers::{MEMTRACE, STOP_TIMEOUT, Tracer},
};
use crate::{Error, collect::floor::FloorKind};

/// How much to measure.
#[derive(Clone, Debug)]
pub struct SwitchPlan {
    pub pairs: usize,
    pub round_trips: u64,
}

/// The slowdown of context switches the issue holds memtrace to.
pub const SWITCH_MAX_PCT: f64 = 1.0;

/// Runs the pairs of every condition, interleaved round by round.
pub fn run(exe: &Path, plan: &SwitchPlan) -> Result<Vec<Row>, Error> {
    let conditions = [
        None,
        Some(Tracer::Floor {
            kind: FloorKind::Switch,
        }),
        Some(MEMTRACE),
    ];
    let mut pairs: Vec<Vec<Pair>> = vec![Vec::new(); conditions.len()];
    for round in 1..=plan.pairs {
        for (tracer, pairs) in conditions.iter().zip(pairs.iter_mut()) {
            interrupt::check()?;
            let test = traced(exe, plan, tracer.as_ref())?;
            let base = load::run_pipe(exe, plan.round_trips)?.ns_per_round_trip;
            progress!(
                "memtrace bench: context switches {round}/{}: {}: {base:.0} -> {test:.0} ns/round trip",
                plan.pairs,
                label(tracer.as_ref())
            );
            pairs.push(Pair { base, test });
        }
    }
    Ok(conditions
        .iter()
        .zip(&pairs)
        .map(|(tracer, pairs)| row(plan, tracer.as_ref(), pairs))
        .collect())
}

/// One ping-pong run under `tracer` (or untraced): ns per round trip.
fn traced(exe: &Path, plan: &SwitchPlan, tracer: Option<&Tracer>) -> Result<f64, Error> {
    let Some(tracer) = tracer else {
        return Ok(load::run_pipe(exe, plan.round_trips)?.ns_per_round_trip);
    };
    let daemon = tracer.start(exe, None)?;
    let outcome = load::run_pipe(exe, plan.round_trips);
    daemon.stop(STOP_TIMEOUT)?;
    Ok(outcome?.ns_per_round_trip)
}

fn label(tracer: Option<&Tracer>) -> String {
    tracer.map_or_else(|| "untraced vs untraced (noise)".into(), Tracer::label)
}

fn row(plan: &SwitchPlan, tracer: Option<&Tracer>, pairs: &[Pair]) -> Row {
    let measurement = format!(
        "context switches (pipe ping-pong on one CPU, {} round trips, {} pairs)",
        targets::thousands(plan.round_trips as f64),
        pairs.len()
    );
    let memtrace = tracer.is_some_and(Tracer::is_memtrace);
    let target = if memtrace {
        format!("≤ {SWITCH_MAX_PCT} %")
    } else {
        "—".into()
    };
    let Some(summary) = stats::paired(pairs) else {
        return Row::unavailable(&measurement, &label(tracer), &target, "no valid pair");
    };
    Row {
        measurement,
        condition: label(tracer),
        result: format!(
            "{:.0} vs {:.0} ns per round trip: {}, slower in {} of {} pairs ({} ns per switch)",
            summary.test_median,
            summary.base_median,
            targets::signed_pct(summary.ratio_median),
            summary.slower,
            summary.pairs,
            targets::signed(summary.diff_median / 2.0)
        ),
        spread: targets::pct_range(summary.ratio_min, summary.ratio_max),
        target,
        verdict: match tracer {
            None => "noise floor".into(),
            Some(_) if memtrace => targets::at_most(summary.overhead_pct(), SWITCH_MAX_PCT, "pt"),
            Some(_) => "reference".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memtrace_rows_are_held_to_one_percent() {
        let plan = SwitchPlan {
            pairs: 2,
            round_trips: 100_000,
        };
        let pairs = [
            Pair {
                base: 2000.0,
                test: 2040.0,
            },
            Pair {
                base: 2000.0,
                test: 2060.0,
            },
        ];
        let row = row(&plan, Some(&MEMTRACE), &pairs);
        assert_eq!(
            row.result,
            "2050 vs 2000 ns per round trip: +2.5 %, slower in 2 of 2 pairs (+25 ns per switch)"
        );
        assert_eq!(row.target, "≤ 1 %");
        assert!(row.verdict.starts_with("missed"), "{}", row.verdict);
        let floor = row_of(Some(&Tracer::Floor {
            kind: FloorKind::Switch,
        }));
        assert_eq!(floor.verdict, "reference");
        assert_eq!(row_of(None).verdict, "noise floor");
    }

    fn row_of(tracer: Option<&Tracer>) -> Row {
        let plan = SwitchPlan {
            pairs: 1,
            round_trips: 1_000,
        };
        row(
            &plan,
            tracer,
            &[Pair {
                base: 1000.0,
                test: 1001.0,
            }],
        )
    }
}
