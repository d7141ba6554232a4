//! Fault overhead: the slowdown of a fault-heavy loop while a tracer runs system-wide, from
//! alternating pairs (traced, untraced, traced, untraced, ...) so that drift of the machine hits
//! both sides of a pair alike. An untraced-vs-untraced condition shows the noise floor.
use std::path::Path;

use super::{
    interrupt, load,
    recorded::{self, TempReport},
    stats::{self, Pair},
    table::Row,
    targets,
    tracers::{STOP_TIMEOUT, TIMED_FLOOR, Tracer},
};
use crate::{Error, lab::workload::bench::ChurnPlan};

/// How much to measure.
#[derive(Clone, Debug)]
pub struct OverheadPlan {
    /// Pairs per condition.
    pub pairs: usize,
    /// One run of the fault loop.
    pub churn: ChurnPlan,
}

/// A condition compared against untraced runs: `None` is untraced itself (the noise floor);
/// an `Err` is a tracer that cannot run here, with its label and the reason.
pub type Condition = Result<Option<Tracer>, (String, String)>;

/// Measurements of one condition so far.
struct Series {
    condition: Condition,
    pairs: Vec<Pair>,
    lost: u64,
    failed: Option<String>,
}

/// Runs every condition `plan.pairs` times, interleaved round by round, and returns its rows.
pub fn run(exe: &Path, plan: &OverheadPlan, conditions: Vec<Condition>) -> Result<Vec<Row>, Error> {
    let mut series: Vec<Series> = conditions
        .into_iter()
        .map(|condition| Series {
            condition,
            pairs: Vec::new(),
            lost: 0,
            failed: None,
        })
        .collect();
    for round in 1..=plan.pairs {
        for s in series.iter_mut().filter(|s| s.failed.is_none()) {
            interrupt::check()?;
            let Ok(tracer) = &s.condition else { continue };
            // Traced first, untraced right after the tracer exited: the two runs of a pair
            // are then as close in time as they can be (starting a tracer takes a few hundred
            // ms, stopping it a few tens), which matters on a VM whose speed drifts by the second.
            match traced_run(exe, &plan.churn, tracer.as_ref()) {
                Ok((test, lost)) => {
                    let base = load::run_churn(exe, &plan.churn)?.ns_per_fault();
                    progress!(
                        "memtrace bench: fault overhead {round}/{}: {}: {base:.0} -> {test:.0} ns/fault",
                        plan.pairs,
                        label(tracer.as_ref())
                    );
                    s.pairs.push(Pair { base, test });
                    s.lost += lost;
                }
                Err(e) => s.failed = Some(e.to_string()),
            }
        }
    }
    // memtrace's cost as a multiple of the timed floor's, both from this same interleaved run.
    let floor = series
        .iter()
        .find(|s| matches!(&s.condition, Ok(Some(t)) if *t == TIMED_FLOOR) && s.failed.is_none())
        .and_then(|s| stats::paired(&s.pairs))
        .map(|summary| summary.diff_median)
        .filter(|&ns| ns > 0.0);
    Ok(series.iter().map(|s| row(plan, s, floor)).collect())
}

/// One run of the loop under `tracer` (or untraced): ns per fault, and records lost.
fn traced_run(exe: &Path, churn: &ChurnPlan, tracer: Option<&Tracer>) -> Result<(f64, u64), Error> {
    let Some(tracer) = tracer else {
        return Ok((load::run_churn(exe, churn)?.ns_per_fault(), 0));
    };
    let report = TempReport::new();
    let daemon = tracer.start(exe, Some(report.path()))?;
    // Stop the tracer even when the loop failed, and report the loop's failure first.
    let outcome = load::run_churn(exe, churn);
    let (usage, said) = daemon.stop(STOP_TIMEOUT)?;
    let outcome = outcome?;
    if !usage.clean_stop {
        return Err(Error::InvalidArgument {
            what: "tracer",
            value: tracer.label(),
            reason: format!("did not stop cleanly: {}", said.trim()),
        });
    }
    let lost = if tracer.writes_report() {
        recorded::read(report.path())?.lost
    } else {
        0
    };
    Ok((outcome.ns_per_fault(), lost))
}

fn label(tracer: Option<&Tracer>) -> String {
    tracer.map_or_else(|| "untraced vs untraced (noise)".into(), Tracer::label)
}

/// One condition's row; `floor` is the timed floor's cost per fault in ns, when measured.
fn row(plan: &OverheadPlan, s: &Series, floor: Option<f64>) -> Row {
    let measurement = format!(
        "fault overhead ({} MiB map/touch/unmap ×{}, {} pairs)",
        plan.churn.mib,
        plan.churn.iterations,
        s.pairs.len()
    );
    let tracer = match &s.condition {
        Ok(tracer) => tracer.as_ref(),
        Err((label, reason)) => return Row::unavailable(&measurement, label, "—", reason),
    };
    let target = if tracer.is_some_and(Tracer::is_memtrace) {
        format!("≤ {} %", targets::OVERHEAD_MAX_PCT)
    } else {
        "—".into()
    };
    let Some(summary) = stats::paired(&s.pairs).filter(|_| s.failed.is_none()) else {
        let reason = s.failed.as_deref().unwrap_or("no valid pair");
        return Row::unavailable(&measurement, &label(tracer), &target, reason);
    };
    let mut result = format!(
        "{:.0} vs {:.0} ns/fault: {}, slower in {} of {} pairs",
        summary.test_median,
        summary.base_median,
        targets::signed_pct(summary.ratio_median),
        summary.slower,
        summary.pairs
    );
    if tracer.is_some() {
        let extra = targets::signed(summary.diff_median);
        result.push_str(&format!(" ({extra} ns per fault, median of the pairs)"));
    }
    if tracer.is_some_and(Tracer::is_memtrace)
        && let Some(floor) = floor
    {
        result.push_str(&format!(
            "; {:.2}× the timed floor's {:+.0} ns",
            summary.diff_median / floor,
            floor
        ));
    }
    if tracer.is_some_and(Tracer::writes_report) {
        result.push_str(&format!("; {} records lost", s.lost));
    }
    let verdict = match tracer {
        None => "noise floor".into(),
        Some(t) if t.is_memtrace() => targets::overhead_verdict(summary.overhead_pct()),
        Some(_) => "reference".into(),
    };
    Row {
        measurement,
        condition: label(tracer),
        result,
        spread: targets::pct_range(summary.ratio_min, summary.ratio_max),
        target,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::bench::tracers::MEMTRACE;

    fn plan() -> OverheadPlan {
        OverheadPlan {
            pairs: 2,
            churn: ChurnPlan {
                mib: 64,
                iterations: 15,
                duration: None,
                read: false,
            },
        }
    }

    fn series(condition: Condition, ratios: &[f64]) -> Series {
        Series {
            condition,
            pairs: ratios
                .iter()
                .map(|r| Pair {
                    base: 1000.0,
                    test: 1000.0 * r,
                })
                .collect(),
            lost: 0,
            failed: None,
        }
    }

    #[test]
    fn memtrace_rows_are_held_to_the_target() {
        let s = series(Ok(Some(MEMTRACE)), &[1.2, 1.1]);
        let row = row(&plan(), &s, Some(100.0));
        assert_eq!(row.condition, MEMTRACE.label());
        assert_eq!(
            row.result,
            "1150 vs 1000 ns/fault: +15.0 %, slower in 2 of 2 pairs (+150 ns per fault, median \
             of the pairs); 1.50× the timed floor's +100 ns; 0 records lost"
        );
        assert_eq!(row.spread, "+10.0 % … +20.0 %");
        assert_eq!(row.target, "≤ 5 %");
        assert_eq!(row.verdict, "missed by 10.0 pt");
    }

    #[test]
    fn noise_and_unavailable_rows() {
        let noise = row(&plan(), &series(Ok(None), &[0.99, 1.01]), None);
        assert_eq!(noise.verdict, "noise floor");
        assert_eq!(noise.target, "—");
        let missing = Err(("bpftrace".to_string(), "not installed".to_string()));
        let row = row(&plan(), &series(missing, &[]), None);
        assert_eq!(row.verdict, "n/a (not installed)");
        let mut failed = series(Ok(Some(MEMTRACE)), &[1.0]);
        failed.failed = Some("did not start".into());
        assert_eq!(
            super::row(&plan(), &failed, None).verdict,
            "n/a (did not start)"
        );
    }
}
