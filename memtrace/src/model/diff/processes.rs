//! The process rows of a comparison: each run's processes grouped by key (command name or
//! pid), their merged distributions per fault class and stall kind, and each figure judged
//! against both runs' series.
use std::collections::BTreeMap;

use super::{
    ProcessDiff, RowDiff, Run, duration_s, figure_diff,
    noise::{Band, Figure, Moments, Weights, mean_band, spread_band},
    row,
    series::{MatchBy, Row, RowSeries, process_key},
};
use crate::model::{LatencyStats, LatencySummary, Model};

/// A run's processes grouped by key: how many, their merged distributions per row, and their
/// time in faults and stalls.
#[derive(Default)]
struct Group {
    processes: u64,
    rows: BTreeMap<Row, LatencyStats>,
    busy_ns: u64,
}

fn groups(model: &Model, match_by: MatchBy) -> BTreeMap<String, Group> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    // Folded entries have no pid of their own: matched by name only.
    let processes = model
        .processes()
        .filter(|p| match_by == MatchBy::Comm || p.folded == 0);
    for process in processes {
        let group = groups
            .entry(process_key(match_by, process.pid, &process.comm))
            .or_default();
        group.processes += process.folded.max(1);
        group.busy_ns += process.busy_ns();
        for row in Row::all() {
            let stats = match row {
                Row::Fault(class) => process.class(class),
                Row::Stall(kind) => process.stall(kind).map(|s| &s.latency),
            };
            if let Some(stats) = stats {
                group.rows.entry(row).or_default().merge(stats);
            }
        }
    }
    groups
}

pub(super) fn processes(a: &Run<'_>, b: &Run<'_>, match_by: MatchBy) -> Vec<ProcessDiff> {
    let (groups_a, groups_b) = (groups(a.model, match_by), groups(b.model, match_by));
    let mut keys: Vec<&String> = groups_a.keys().chain(groups_b.keys()).collect();
    keys.sort();
    keys.dedup();
    let empty = Group::default();
    let busy = |key: &String| {
        let of = |g: &BTreeMap<String, Group>| g.get(key).map_or(0, |g| g.busy_ns);
        of(&groups_a).max(of(&groups_b))
    };
    keys.sort_by_key(|key| std::cmp::Reverse(busy(key)));
    keys.into_iter()
        .map(|key| {
            let (ga, gb) = (
                groups_a.get(key).unwrap_or(&empty),
                groups_b.get(key).unwrap_or(&empty),
            );
            let rows: Vec<RowDiff> = Row::all()
                .filter(|row| ga.rows.contains_key(row) || gb.rows.contains_key(row))
                .map(|row| {
                    let (sa, sb) = (Side::of(a, ga, key, row), Side::of(b, gb, key, row));
                    process_row(row.name(), &sa, &sb)
                })
                .collect();
            ProcessDiff {
                key: key.clone(),
                processes_a: ga.processes,
                processes_b: gb.processes,
                differs: rows.iter().any(|r| r.differs),
                rows,
            }
        })
        .collect()
}

/// One run's side of a process row.
struct Side<'a> {
    /// The whole run's distribution summarized (count 0: no such event).
    summary: LatencySummary,
    series: Option<&'a RowSeries>,
    weights: Weights,
    duration_s: f64,
}

impl<'a> Side<'a> {
    fn of(run: &Run<'a>, group: &Group, key: &str, row: Row) -> Self {
        Side {
            summary: group
                .rows
                .get(&row)
                .map(LatencyStats::summary)
                .unwrap_or_default(),
            series: run.series.processes.get(&(key.to_string(), row)),
            weights: run.series.weights,
            duration_s: duration_s(run.model),
        }
    }

    fn count(&self) -> u64 {
        self.summary.count
    }

    /// The whole-run figure: `None` for a percentile without events.
    fn value(&self, figure: Figure) -> Option<f64> {
        let s = &self.summary;
        let per_s = |x: f64| {
            if self.duration_s > 0.0 {
                x / self.duration_s
            } else {
                0.0
            }
        };
        let quantile = |ns: u64| (s.count > 0).then_some(ns as f64);
        match figure {
            Figure::RatePerS => Some(per_s(s.count as f64)),
            Figure::Share => Some(per_s(s.total_ns as f64 / 1e9)),
            Figure::P50Ns => quantile(s.p50_ns),
            Figure::P99Ns => quantile(s.p99_ns),
            Figure::P999Ns => quantile(s.p999_ns),
            Figure::MaxNs => quantile(s.max_ns),
        }
    }

    /// The band of the figure from the run's own intervals. A row the series never saw is all
    /// zeros if the run had no such event, and unknown if it had (its name changed mid-run).
    fn band(&self, figure: Figure) -> Option<Band> {
        let value = self.value(figure).unwrap_or(0.0);
        let Some(series) = self.series else {
            let zeros = Moments::default();
            return (self.count() == 0 && figure.is_mean())
                .then(|| mean_band(value, &zeros, &self.weights))
                .flatten();
        };
        match figure {
            Figure::RatePerS => mean_band(value, &series.rate, &self.weights),
            Figure::Share => mean_band(value, &series.share, &self.weights),
            Figure::P50Ns => spread_band(&series.quantiles[0]),
            Figure::P99Ns => spread_band(&series.quantiles[1]),
            Figure::P999Ns => spread_band(&series.quantiles[2]),
            Figure::MaxNs => spread_band(&series.quantiles[3]),
        }
    }
}

fn process_row(kind: &str, a: &Side<'_>, b: &Side<'_>) -> RowDiff {
    let (count_a, count_b) = (a.count(), b.count());
    let figures = Figure::PROCESS
        .iter()
        .map(|&figure| {
            let enough = if figure.is_mean() {
                count_a.max(count_b) >= figure.min_events()
            } else {
                count_a.min(count_b) >= figure.min_events()
            };
            figure_diff(
                figure,
                (a.value(figure), b.value(figure)),
                (a.band(figure), b.band(figure)),
                enough,
            )
        })
        .collect();
    row(kind, count_a, count_b, figures)
}
