//! The swap rows of a comparison: pages in and out, machine-wide and per memory cgroup (paired
//! across the runs by [`super::memcgs`]), with each cgroup's limit.
use std::collections::BTreeMap;

use super::{
    MemcgDiff, RowDiff, Run, SwapDiff, duration_s, figure_diff, memcgs,
    noise::{Figure, Moments, mean_band},
    row,
    series::{Direction, Series, memcg_key},
};
use crate::model::Model;

/// One run's swap for one memory cgroup key (cgroups recreated under one path add up).
#[derive(Clone, Copy, Default)]
struct Traffic {
    in_pages: u64,
    out_pages: u64,
    /// The limit when first seen (`None`: unlimited or unknown).
    limit_bytes: Option<u64>,
}

impl Traffic {
    fn pages(self, direction: Direction) -> u64 {
        match direction {
            Direction::In => self.in_pages,
            Direction::Out => self.out_pages,
        }
    }
}

fn memcg_traffic(model: &Model) -> BTreeMap<String, Traffic> {
    let mut traffic: BTreeMap<String, Traffic> = BTreeMap::new();
    for (&id, counts) in &model.swap.by_memcg {
        let cgroup = model.cgroups.get(&id);
        let key = memcg_key(id, cgroup.and_then(|c| c.path.as_deref()));
        let slot = traffic.entry(key).or_default();
        slot.in_pages += counts.in_pages;
        slot.out_pages += counts.out_pages;
        slot.limit_bytes = slot
            .limit_bytes
            .or(cgroup.and_then(|c| c.memory_limit_bytes));
    }
    traffic
}

/// Rows `in` and `out`, machine-wide, then per memory cgroup paired across the runs.
pub(super) fn swap(a: &Run<'_>, b: &Run<'_>) -> SwapDiff {
    let total_a = Traffic {
        in_pages: a.model.swap.total.in_pages,
        out_pages: a.model.swap.total.out_pages,
        limit_bytes: None,
    };
    let total_b = Traffic {
        in_pages: b.model.swap.total.in_pages,
        out_pages: b.model.swap.total.out_pages,
        limit_bytes: None,
    };
    let total = Direction::ALL
        .iter()
        .map(|&d| {
            let moments = (a.series.swap.get(&d), b.series.swap.get(&d));
            swap_row(d, (total_a.pages(d), total_b.pages(d)), moments, (a, b))
        })
        .collect();
    let (by_a, by_b) = (memcg_traffic(a.model), memcg_traffic(b.model));
    let keys = |m: &BTreeMap<String, Traffic>| m.keys().cloned().collect::<Vec<String>>();
    let memcgs = memcgs::pair(&keys(&by_a), &keys(&by_b))
        .into_iter()
        .map(|(key_a, key_b)| {
            let side = |key: &Option<String>, by: &BTreeMap<String, Traffic>| {
                key.as_ref().and_then(|k| by.get(k)).copied()
            };
            let (ta, tb) = (side(&key_a, &by_a), side(&key_b, &by_b));
            let rows = Direction::ALL
                .iter()
                .map(|&d| {
                    let pages = |t: Option<Traffic>| t.map_or(0, |t| t.pages(d));
                    let moments = (
                        memcg_moments(a.series, key_a.as_deref(), d),
                        memcg_moments(b.series, key_b.as_deref(), d),
                    );
                    swap_row(d, (pages(ta), pages(tb)), moments, (a, b))
                })
                .collect();
            let limit = |t: Option<Traffic>| t.and_then(|t| t.limit_bytes);
            MemcgDiff {
                // A cgroup of one run only has nothing to differ from.
                limit_differs: ta.is_some() && tb.is_some() && limit(ta) != limit(tb),
                path_a: key_a,
                path_b: key_b,
                memory_limit_a_bytes: limit(ta),
                memory_limit_b_bytes: limit(tb),
                rows,
            }
        })
        .collect();
    SwapDiff { total, memcgs }
}

/// A swap row: pages, and their rate judged against both runs' per-interval rates.
fn swap_row(
    direction: Direction,
    pages: (u64, u64),
    moments: (Option<&Moments>, Option<&Moments>),
    runs: (&Run<'_>, &Run<'_>),
) -> RowDiff {
    let rate = |pages: u64, run: &Run<'_>| {
        let seconds = duration_s(run.model);
        if seconds > 0.0 {
            pages as f64 / seconds
        } else {
            0.0
        }
    };
    let (rate_a, rate_b) = (rate(pages.0, runs.0), rate(pages.1, runs.1));
    // A cgroup the series never saw moved no page in any interval: all zeros.
    let band = |rate: f64, m: Option<&Moments>, run: &Run<'_>| {
        mean_band(rate, &m.copied().unwrap_or_default(), &run.series.weights)
    };
    let figure = figure_diff(
        Figure::RatePerS,
        (Some(rate_a), Some(rate_b)),
        (
            band(rate_a, moments.0, runs.0),
            band(rate_b, moments.1, runs.1),
        ),
        pages.0.max(pages.1) >= Figure::RatePerS.min_events(),
    );
    row(direction.name(), pages.0, pages.1, vec![figure])
}

fn memcg_moments<'a>(
    series: &'a Series,
    key: Option<&str>,
    direction: Direction,
) -> Option<&'a Moments> {
    series.memcgs.get(&(key?.to_string(), direction))
}
