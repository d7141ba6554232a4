//! Percentile-distribution curves: latency against percentile, from the HdrHistograms of the
//! model, on the usual 1/(1−p) axis (50 %, 90 %, 99 %, 99.9 %, 99.99 % equally spaced).
use memtrace_common::{FaultClass, StallKind};

use crate::model::{LatencyStats, Model, ProcessFaults};

/// Processes drawn per chart (the busiest in that class or kind).
pub const CURVES_PER_CHART: usize = 5;
/// The deepest percentile drawn: 99.999 %.
const DEEPEST: f64 = 0.999_99;

/// One line of a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Curve {
    /// `comm[pid]`, or the folded entry's name.
    pub label: String,
    /// (x = log10(1 / (1 − p)), latency in ns), for p from 0 up to the deepest recorded.
    pub points: Vec<(f64, f64)>,
}

/// The curves of one fault class or stall kind.
#[derive(Clone, Debug, PartialEq)]
pub struct CurveChart {
    /// `minor faults`, `memcg_reclaim stalls`, ...
    pub title: String,
    pub curves: Vec<Curve>,
}

/// x of a percentile `p` (0..1): 0 at the median's left edge, 1 at 90 %, 2 at 99 %, ...
pub fn x_of(p: f64) -> f64 {
    (1.0 / (1.0 - p.min(DEEPEST))).log10()
}

/// The points of one distribution: every step of the HdrHistogram, as HdrHistogram's own
/// percentile-distribution output does (five steps per halving of the tail).
pub fn points(stats: &LatencyStats) -> Vec<(f64, f64)> {
    if stats.count() == 0 {
        return Vec::new();
    }
    let hist = stats.to_histogram();
    let mut points = Vec::new();
    for step in hist.iter_quantiles(5) {
        let p = step.quantile_iterated_to();
        let value = hist.highest_equivalent(step.value_iterated_to()) as f64;
        points.push((x_of(p), value.max(1.0)));
        if p >= DEEPEST {
            break;
        }
    }
    points
}

/// One chart per fault class and stall kind that has data, each with the busiest processes.
pub fn charts(model: &Model) -> Vec<CurveChart> {
    let processes: Vec<&ProcessFaults> = model.processes().collect();
    let mut charts = Vec::new();
    for class in FaultClass::ALL {
        let chart = chart(
            format!("{} faults", class.name()),
            &processes,
            |p: &ProcessFaults| p.class(class),
        );
        charts.extend(chart);
    }
    for kind in StallKind::ALL {
        let chart = chart(
            format!("{} stalls", kind.name()),
            &processes,
            |p: &ProcessFaults| p.stall(kind).map(|s| &s.latency),
        );
        charts.extend(chart);
    }
    charts
}

fn chart<'a>(
    title: String,
    processes: &[&'a ProcessFaults],
    stats_of: impl Fn(&'a ProcessFaults) -> Option<&'a LatencyStats>,
) -> Option<CurveChart> {
    let mut with: Vec<(&ProcessFaults, &LatencyStats)> = processes
        .iter()
        .filter_map(|p| stats_of(p).filter(|s| s.count() > 0).map(|s| (*p, s)))
        .collect();
    with.sort_by(|a, b| {
        b.1.count()
            .cmp(&a.1.count())
            .then(a.0.pid.cmp(&b.0.pid))
            .then(a.0.comm.cmp(&b.0.comm))
    });
    let curves: Vec<Curve> = with
        .iter()
        .take(CURVES_PER_CHART)
        .map(|(p, stats)| Curve {
            label: label(p, stats.count()),
            points: points(stats),
        })
        .collect();
    (!curves.is_empty()).then_some(CurveChart { title, curves })
}

fn label(p: &ProcessFaults, count: u64) -> String {
    if p.folded > 0 {
        format!("{} ×{} ({count})", p.comm, p.folded)
    } else {
        format!("{}[{}] ({count})", p.comm, p.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_spaces_the_nines_equally() {
        assert!((x_of(0.5) - 2f64.log10()).abs() < 1e-12);
        assert!((x_of(0.9) - 1.0).abs() < 1e-9);
        assert!((x_of(0.99) - 2.0).abs() < 1e-9);
        assert!((x_of(0.999) - 3.0).abs() < 1e-9);
        assert!((x_of(1.0) - 5.0).abs() < 1e-6, "capped at 99.999 %");
    }

    #[test]
    fn points_climb_to_the_maximum() {
        let mut stats = LatencyStats::new();
        for v in 1..=10_000u64 {
            stats.record(v * 100);
        }
        let line = points(&stats);
        assert!(line.len() > 20);
        assert!(
            line.windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
        );
        let last = line.last().expect("points").1;
        assert!((last - 1_000_000.0).abs() / 1_000_000.0 < 0.001, "{last}");
        assert!(points(&LatencyStats::new()).is_empty());
    }
}
