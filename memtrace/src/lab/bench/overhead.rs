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
    tracers::{ATTRIBUTED_FLOOR, MEMTRACE, STOP_TIMEOUT, TIMED_FLOOR, Tracer},
};
use crate::{Error, lab::workload::bench::ChurnPlan};

/// How much to measure.
#[derive(Clone, Debug)]
pub struct OverheadPlan {
    /// Pairs per condition.
    pub pairs: usize,
    /// Pairs of the conditions that make memtrace's multiple of the timed floor (untraced, the
    /// timed floor, memtrace's defaults) and of the attributed floor's, its yardstick: more than
    /// `pairs`, for the multiple of two differences is noisier than either.
    pub anchor_pairs: usize,
    /// One run of the fault loop.
    pub churn: ChurnPlan,
}

/// A condition compared against untraced runs: `None` is untraced itself (the noise floor);
/// an `Err` is a tracer that cannot run here, with its label and the reason.
pub type Condition = Result<Option<Tracer>, (String, String)>;

/// Measurements of one condition so far.
struct Series {
    condition: Condition,
    /// Pairs to take.
    wanted: usize,
    /// The pairs taken, each with its round.
    pairs: Vec<Pair>,
    rounds: Vec<usize>,
    lost: u64,
    failed: Option<String>,
}

/// Runs every condition `plan.pairs` times (the anchors `plan.anchor_pairs` times), interleaved
/// round by round, the order of the conditions reversed every other round.
pub fn run(exe: &Path, plan: &OverheadPlan, conditions: Vec<Condition>) -> Result<Vec<Row>, Error> {
    let mut series: Vec<Series> = conditions
        .into_iter()
        .map(|condition| Series {
            wanted: if is_anchor(&condition) {
                plan.anchor_pairs.max(plan.pairs)
            } else {
                plan.pairs
            },
            condition,
            pairs: Vec::new(),
            rounds: Vec::new(),
            lost: 0,
            failed: None,
        })
        .collect();
    let rounds = series.iter().map(|s| s.wanted).max().unwrap_or(0);
    for round in 1..=rounds {
        let mut order: Vec<&mut Series> = series
            .iter_mut()
            .filter(|s| s.failed.is_none() && s.pairs.len() < s.wanted)
            .collect();
        if round % 2 == 0 {
            order.reverse();
        }
        for s in order {
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
                        s.wanted,
                        label(tracer.as_ref())
                    );
                    s.pairs.push(Pair { base, test });
                    s.rounds.push(round);
                    s.lost += lost;
                }
                Err(e) => s.failed = Some(e.to_string()),
            }
        }
    }
    // memtrace's cost as a multiple of the timed floor's, both from this same interleaved run.
    let floor = series
        .iter()
        .find(|s| matches!(&s.condition, Ok(Some(t)) if *t == TIMED_FLOOR) && s.failed.is_none());
    Ok(series
        .iter()
        .map(|s| row(plan, s, floor.and_then(|f| multiple(s, f))))
        .collect())
}

/// The conditions measured `anchor_pairs` times.
fn is_anchor(condition: &Condition) -> bool {
    matches!(condition, Ok(None))
        || matches!(condition, Ok(Some(t)) if *t == TIMED_FLOOR || *t == MEMTRACE || *t == ATTRIBUTED_FLOOR)
}

/// A condition's cost per fault as a multiple of the timed floor's.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Multiple {
    /// The timed floor's cost per fault, ns (median of its pairs).
    floor_ns: f64,
    /// 1 + (median over the rounds both ran of: this cost − the floor's cost) / `floor_ns`.
    value: f64,
    /// The same at the ends of a 90 % interval of that median, when the rounds are enough.
    interval: Option<(f64, f64)>,
    rounds: usize,
}

/// `s`'s multiple of the timed floor `floor`: the extra cost over the floor is taken round by
/// round (two pairs a few seconds apart) rather than as a ratio of two medians, which would
/// carry the noise of both.
fn multiple(s: &Series, floor: &Series) -> Option<Multiple> {
    let diff = |p: &Pair| p.test - p.base;
    let floor_ns = stats::median(&floor.pairs.iter().map(diff).collect::<Vec<_>>())?;
    if floor_ns <= 0.0 {
        return None;
    }
    let extra: Vec<f64> = s
        .rounds
        .iter()
        .zip(&s.pairs)
        .filter_map(|(round, pair)| {
            let at = floor.rounds.iter().position(|r| r == round)?;
            Some(diff(pair) - diff(&floor.pairs[at]))
        })
        .collect();
    let scale = |ns: f64| 1.0 + ns / floor_ns;
    Some(Multiple {
        floor_ns,
        value: scale(stats::median(&extra)?),
        interval: stats::median_interval(&extra, 0.9).map(|(lo, hi)| (scale(lo), scale(hi))),
        rounds: extra.len(),
    })
}

/// One run of the loop under `tracer` (or untraced): ns per fault, and records lost.
fn traced_run(exe: &Path, churn: &ChurnPlan, tracer: Option<&Tracer>) -> Result<(f64, u64), Error> {
    let Some(tracer) = tracer else {
        return Ok((load::run_churn(exe, churn)?.ns_per_fault(), 0));
    };
    let report = TempReport::new();
    let daemon = tracer.start(exe, Some(report.path()))?;
    let pause = |signal| {
        if tracer.stops_reader() {
            // SAFETY: a signal to the tracer, a child of this process not yet reaped.
            unsafe { libc::kill(daemon.pid() as libc::pid_t, signal) };
        }
    };
    pause(libc::SIGSTOP);
    // Stop the tracer even when the loop failed, and report the loop's failure first.
    let outcome = load::run_churn(exe, churn);
    pause(libc::SIGCONT);
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

/// One condition's row, with its multiple of the timed floor when measured.
fn row(plan: &OverheadPlan, s: &Series, multiple: Option<Multiple>) -> Row {
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
        format!("≤ {:.2}× the timed floor", targets::FLOOR_MULTIPLE_MAX)
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
    let multiple = multiple.filter(|_| tracer.is_some_and(Tracer::shows_floor_multiple));
    if let Some(m) = multiple {
        result.push_str(&format!(
            "; {:.2}× the timed floor's {} ns",
            m.value,
            targets::signed(m.floor_ns)
        ));
        match m.interval {
            Some((lo, hi)) => result.push_str(&format!(
                " (90 % interval {}, {} rounds)",
                targets::multiple_range(lo, hi),
                m.rounds
            )),
            None => result.push_str(&format!(" ({} rounds: too few for an interval)", m.rounds)),
        }
    }
    if tracer.is_some_and(Tracer::writes_report) {
        result.push_str(&format!("; {} records lost", s.lost));
    }
    let verdict = match tracer {
        None => "noise floor".into(),
        Some(t) if t.is_memtrace() => multiple.map_or_else(
            || "n/a (no timed floor to compare with)".into(),
            |m| targets::floor_multiple_verdict(m.value),
        ),
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

    fn plan() -> OverheadPlan {
        OverheadPlan {
            pairs: 2,
            anchor_pairs: 6,
            churn: ChurnPlan {
                mib: 64,
                iterations: 15,
                duration: None,
                read: false,
            },
        }
    }

    /// A series whose round `i + 1` ran at `1000 × ratios[i]` against an untraced 1000.
    fn series(condition: Condition, ratios: &[f64]) -> Series {
        Series {
            condition,
            wanted: ratios.len(),
            pairs: ratios
                .iter()
                .map(|r| Pair {
                    base: 1000.0,
                    test: 1000.0 * r,
                })
                .collect(),
            rounds: (1..=ratios.len()).collect(),
            lost: 0,
            failed: None,
        }
    }

    #[test]
    fn the_multiple_compares_round_by_round() {
        // The floor costs 100 ns in each round but one; memtrace 10 ns more in every round.
        let floor = series(Ok(Some(TIMED_FLOOR)), &[1.1, 1.1, 1.1, 1.2, 1.1, 1.1]);
        let memtrace = series(Ok(Some(MEMTRACE)), &[1.11, 1.11, 1.11, 1.21, 1.11, 1.11]);
        let m = multiple(&memtrace, &floor).expect("multiple");
        assert!((m.floor_ns - 100.0).abs() < 1e-9);
        assert!((m.value - 1.1).abs() < 1e-9, "{m:?}");
        let (lo, hi) = m.interval.expect("six rounds give a 90 % interval");
        assert!((lo - 1.1).abs() < 1e-9 && (hi - 1.1).abs() < 1e-9, "{m:?}");
        assert_eq!(m.rounds, 6);
        // A ratio of the two medians would say 110 / 100 too here, but not when the rounds
        // differ: only rounds both ran count.
        let mut late = series(Ok(Some(MEMTRACE)), &[1.21, 1.11]);
        late.rounds = vec![4, 5];
        let m = multiple(&late, &floor).expect("multiple");
        assert_eq!(m.rounds, 2);
        assert!((m.value - 1.1).abs() < 1e-9, "{m:?}");
        assert_eq!(m.interval, None);
        let none = series(Ok(Some(MEMTRACE)), &[]);
        assert_eq!(multiple(&none, &floor), None);
    }

    #[test]
    fn anchors_take_more_pairs() {
        assert!(is_anchor(&Ok(None)));
        assert!(is_anchor(&Ok(Some(TIMED_FLOOR))));
        assert!(is_anchor(&Ok(Some(MEMTRACE))));
        assert!(is_anchor(&Ok(Some(ATTRIBUTED_FLOOR))));
        assert!(!is_anchor(&Ok(Some(Tracer::Serve { scrape_ms: 100 }))));
        assert!(!is_anchor(&Err(("bpftrace".into(), "absent".into()))));
    }

    #[test]
    fn memtrace_rows_are_held_to_the_floor_multiple() {
        let s = series(Ok(Some(MEMTRACE)), &[1.2, 1.1]);
        let m = Multiple {
            floor_ns: 100.0,
            value: 1.5,
            interval: Some((1.2, 1.83)),
            rounds: 2,
        };
        let row = row(&plan(), &s, Some(m));
        assert_eq!(row.condition, MEMTRACE.label());
        assert_eq!(
            row.result,
            "1150 vs 1000 ns/fault: +15.0 %, slower in 2 of 2 pairs (+150 ns per fault, median \
             of the pairs); 1.50× the timed floor's +100 ns (90 % interval 1.20–1.83×, 2 rounds); \
             0 records lost"
        );
        assert_eq!(row.spread, "+10.0 % … +20.0 %");
        assert_eq!(row.target, "≤ 1.10× the timed floor");
        assert_eq!(row.verdict, "missed by 0.40×");
        let met = super::row(
            &plan(),
            &s,
            Some(Multiple {
                value: 1.04,
                interval: None,
                ..m
            }),
        );
        assert_eq!(met.verdict, "met");
        assert!(
            met.result
                .contains("1.04× the timed floor's +100 ns (2 rounds: too few for an interval)")
        );
        let alone = super::row(&plan(), &s, None);
        assert_eq!(alone.verdict, "n/a (no timed floor to compare with)");
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
