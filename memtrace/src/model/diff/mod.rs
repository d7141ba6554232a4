//! `memtrace diff`: two runs side by side, per process (matched by command name or pid), fault
//! class and stall kind, and their swap traffic, with each figure judged against both runs'
//! interval-to-interval noise ([`noise`]). Pure arithmetic over two models and their
//! per-interval [`series`]; `report::diff` renders the result.
pub mod memcgs;
pub mod noise;
mod processes;
pub mod series;
mod settings;
mod swap;
#[cfg(test)]
pub(crate) mod tests;

use serde::{Deserialize, Serialize};

use self::{
    noise::{Band, Figure, Pair, Verdict, judge},
    series::{MatchBy, Series},
};
use super::Model;
use crate::samples::StopReason;
pub use settings::Setting;

/// Version tag of the JSON document.
pub const SCHEMA: &str = "memtrace.diff/1";

/// One recording, read: its model, its series, and why reading stopped early, if it did.
pub struct Run<'a> {
    /// The file, as named on the command line.
    pub path: String,
    pub model: &'a Model,
    pub series: &'a Series,
    /// Why reading stopped before the end (the run is compared over its complete intervals).
    pub problem: Option<String>,
}

/// The comparison of run B against run A.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Diff {
    pub schema: String,
    pub match_by: MatchBy,
    pub a: RunInfo,
    pub b: RunInfo,
    /// Figures that differ beyond noise (processes and swap).
    pub differing_figures: u64,
    /// Settings (kernel, vm tunables, memcg limits) that differ.
    pub differing_settings: u64,
    /// Kernel and vm tunables.
    pub settings: Vec<Setting>,
    /// Busiest first (time in faults and stalls, the larger of the two runs).
    pub processes: Vec<ProcessDiff>,
    pub swap: SwapDiff,
}

/// What a run is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    pub path: String,
    pub traced: String,
    pub duration_s: f64,
    /// Intervals compared, and the length asked for.
    pub intervals: u64,
    pub interval_ms: f64,
    pub stop_reason: StopReason,
    /// Why reading stopped before the end, if it did.
    pub problem: Option<String>,
}

/// The rows of one process key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcessDiff {
    /// The command name, or the pid with `--match pid`.
    pub key: String,
    /// Processes behind the key in each run (ended processes folded by the model count each).
    pub processes_a: u64,
    pub processes_b: u64,
    pub rows: Vec<RowDiff>,
    pub differs: bool,
}

/// One fault class, stall kind or swap direction in both runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RowDiff {
    /// `minor`, `swap_in`, `memcg_reclaim`, ... or `in`/`out` for swap.
    pub kind: String,
    /// Events (pages for swap) in each run.
    pub count_a: u64,
    pub count_b: u64,
    pub figures: Vec<FigureDiff>,
    pub differs: bool,
}

/// One figure of a row in both runs.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct FigureDiff {
    pub figure: Figure,
    /// `null` for a percentile of a run without events.
    pub a: Option<f64>,
    pub b: Option<f64>,
    /// The runs' noise bands (`null`: too few intervals), see [`noise`].
    pub band_a: Option<Band>,
    pub band_b: Option<Band>,
    /// `(b - a) / a`; `null` when `a` is 0 or missing.
    pub change: Option<f64>,
    pub verdict: Verdict,
}

/// Swap traffic, machine-wide and per memory cgroup.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SwapDiff {
    /// Rows `in` and `out`.
    pub total: Vec<RowDiff>,
    pub memcgs: Vec<MemcgDiff>,
}

/// One memory cgroup (or a pair of them, see [`memcgs`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemcgDiff {
    /// Its path in each run (`null`: not in that run).
    pub path_a: Option<String>,
    pub path_b: Option<String>,
    pub memory_limit_a_bytes: Option<u64>,
    pub memory_limit_b_bytes: Option<u64>,
    /// The cgroup is in both runs and its limits differ (unlimited or unknown counts as one
    /// more value).
    pub limit_differs: bool,
    pub rows: Vec<RowDiff>,
}

/// Compares run `b` against run `a`.
pub fn compare(a: &Run<'_>, b: &Run<'_>, match_by: MatchBy) -> Diff {
    let processes = processes::processes(a, b, match_by);
    let swap = swap::swap(a, b);
    let settings = settings::of(a.model, b.model);
    let rows = processes
        .iter()
        .flat_map(|p| &p.rows)
        .chain(&swap.total)
        .chain(swap.memcgs.iter().flat_map(|m| &m.rows));
    let differing_figures = rows
        .flat_map(|r| &r.figures)
        .filter(|f| f.verdict == Verdict::Differs)
        .count() as u64;
    let differing_settings = settings.iter().filter(|s| s.differs).count()
        + swap.memcgs.iter().filter(|m| m.limit_differs).count();
    Diff {
        schema: SCHEMA.to_string(),
        match_by,
        a: run_info(a),
        b: run_info(b),
        differing_figures,
        differing_settings: differing_settings as u64,
        settings,
        processes,
        swap,
    }
}

fn run_info(run: &Run<'_>) -> RunInfo {
    let header = &run.model.header;
    RunInfo {
        path: run.path.clone(),
        traced: header.traced.clone(),
        duration_s: duration_s(run.model),
        intervals: run.series.weights.intervals,
        interval_ms: header.interval_ns as f64 / 1e6,
        stop_reason: run.model.stop_reason(),
        problem: run.problem.clone(),
    }
}

fn duration_s(model: &Model) -> f64 {
    model.elapsed_ns() as f64 / 1e9
}

fn figure_diff(
    figure: Figure,
    (a, b): (Option<f64>, Option<f64>),
    (band_a, band_b): (Option<Band>, Option<Band>),
    enough: bool,
) -> FigureDiff {
    let verdict = match (a, b) {
        (Some(a), Some(b)) => judge(
            &Pair {
                a,
                b,
                band_a,
                band_b,
            },
            enough,
        ),
        _ => Verdict::TooFew,
    };
    FigureDiff {
        figure,
        a,
        b,
        band_a,
        band_b,
        change: a.zip(b).filter(|(a, _)| *a > 0.0).map(|(a, b)| (b - a) / a),
        verdict,
    }
}

fn row(kind: &str, count_a: u64, count_b: u64, figures: Vec<FigureDiff>) -> RowDiff {
    RowDiff {
        kind: kind.to_string(),
        count_a,
        count_b,
        differs: figures.iter().any(|f| f.verdict == Verdict::Differs),
        figures,
    }
}
