//! Memory growth: each traced process's memory (resident + swap) over the recording, fitted by
//! least squares over the whole recording and over a sliding window, from running sums (O(1)
//! per reading). A process growing steadily is flagged, and where there is a limit it will hit
//! (its memory cgroup's, or the machine's memory when there is no swap) the window's rate gives
//! the time left.
//!
//! Flagged as steady growth (all of):
//! - at least [`STEADY_MIN_READINGS`] readings over at least [`STEADY_MIN_SPAN_S`] seconds;
//! - the whole recording's fit explains the readings: R² ≥ [`STEADY_MIN_R2`];
//! - it grew by at least [`STEADY_MIN_GROWTH_KB`] and by [`STEADY_MIN_GROWTH_PCT`] % of its
//!   first reading (by the fit: slope × span);
//! - it still grows: the window's slope is at least a quarter of the whole recording's.
use std::collections::{HashMap, VecDeque};

use super::timeline::MemoryChange;
use crate::samples::{
    IntervalSample,
    growth::{MemcgUsage, MemoryReading, ProcessKey},
};

pub const STEADY_MIN_READINGS: u64 = 10;
pub const STEADY_MIN_SPAN_S: f64 = 10.0;
pub const STEADY_MIN_R2: f64 = 0.9;
pub const STEADY_MIN_GROWTH_KB: f64 = 16.0 * 1024.0;
pub const STEADY_MIN_GROWTH_PCT: f64 = 5.0;
/// A forecast needs a window whose fit holds (R² at least this) and a rising rate.
pub const FORECAST_MIN_R2: f64 = 0.8;
/// Readings in one block of the sliding window, and blocks kept: the window is the last
/// 50 to 60 readings.
pub const WINDOW_BLOCK: u64 = 10;
pub const WINDOW_BLOCKS: usize = 5;
/// A process that moves this far from its first reading keeps a window and a series.
pub const DETAIL_KB: u64 = 1024;
/// Points of each process's series kept for charts; when full, every other point goes.
pub const SERIES_POINTS: usize = 64;
/// Processes that ended kept with their fit (the fastest growers).
pub const KEEP_ENDED: usize = 16;

/// Running sums of a least-squares fit of y (KiB, less the first reading) on x (seconds since
/// the recording's start).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Fit {
    pub n: u64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
    syy: f64,
    /// First and last x.
    pub first_x: f64,
    pub last_x: f64,
}

impl Fit {
    pub fn add(&mut self, x: f64, y: f64) {
        if self.n == 0 {
            self.first_x = x;
        }
        self.n += 1;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.sxy += x * y;
        self.syy += y * y;
        self.last_x = x;
    }

    /// The two fits' points together (`other` after `self`).
    pub fn merged(&self, other: &Fit) -> Fit {
        if self.n == 0 {
            return *other;
        }
        if other.n == 0 {
            return *self;
        }
        Fit {
            n: self.n + other.n,
            sx: self.sx + other.sx,
            sy: self.sy + other.sy,
            sxx: self.sxx + other.sxx,
            sxy: self.sxy + other.sxy,
            syy: self.syy + other.syy,
            first_x: self.first_x,
            last_x: other.last_x,
        }
    }

    fn n(&self) -> f64 {
        self.n as f64
    }

    /// Slope (KiB per second); `None` with fewer than two distinct times.
    pub fn slope(&self) -> Option<f64> {
        let dxx = self.n() * self.sxx - self.sx * self.sx;
        (self.n >= 2 && dxx > 0.0).then(|| (self.n() * self.sxy - self.sx * self.sy) / dxx)
    }

    /// The share of the readings' variance the line explains; `None` when they do not vary.
    pub fn r2(&self) -> Option<f64> {
        let dxx = self.n() * self.sxx - self.sx * self.sx;
        let dyy = self.n() * self.syy - self.sy * self.sy;
        let dxy = self.n() * self.sxy - self.sx * self.sy;
        (self.n >= 2 && dxx > 0.0 && dyy > 0.0).then(|| (dxy * dxy / (dxx * dyy)).clamp(0.0, 1.0))
    }

    /// Seconds from the first point to the last.
    pub fn span_s(&self) -> f64 {
        self.last_x - self.first_x
    }
}

/// A traced process's memory so far. Most processes barely move: they keep the whole
/// recording's fit only; one that moves [`DETAIL_KB`] from its first reading gets the sliding
/// window and the chart's series from then on (the series starts at its first reading).
#[derive(Clone, Debug)]
struct Tracked {
    latest: MemoryReading,
    first_kb: u64,
    peak_kb: u64,
    whole: Fit,
    detail: Option<Box<Detail>>,
}

/// The window and the series of a process that moved.
#[derive(Clone, Debug, Default)]
struct Detail {
    /// Closed blocks of the window, and the one filling.
    blocks: VecDeque<Fit>,
    block: Fit,
    /// (seconds since the recording's start, MiB) points, evenly thinned.
    series: Vec<(f32, f32)>,
    /// Every `stride`-th reading goes into the series, counted from `since`.
    stride: u64,
    since: u64,
}

impl Tracked {
    fn new(reading: MemoryReading) -> Self {
        Self {
            first_kb: reading.total_kb(),
            peak_kb: reading.total_kb(),
            latest: reading,
            whole: Fit::default(),
            detail: None,
        }
    }

    fn add_point(&mut self, x: f64) {
        let total = self.latest.total_kb();
        let y = total as f64 - self.first_kb as f64;
        self.whole.add(x, y);
        self.peak_kb = self.peak_kb.max(total);
        if self.detail.is_none() && total.abs_diff(self.first_kb) >= DETAIL_KB {
            let first = (self.whole.first_x as f32, self.first_kb as f32 / 1024.0);
            self.detail = Some(Box::new(Detail {
                series: vec![first],
                stride: 1,
                since: self.whole.n,
                ..Detail::default()
            }));
        }
        let Some(detail) = self.detail.as_mut() else {
            return;
        };
        detail.block.add(x, y);
        if detail.block.n >= WINDOW_BLOCK {
            detail.blocks.push_back(detail.block);
            detail.block = Fit::default();
            if detail.blocks.len() > WINDOW_BLOCKS {
                detail.blocks.pop_front();
            }
        }
        if (self.whole.n - detail.since).is_multiple_of(detail.stride) {
            if detail.series.len() == SERIES_POINTS {
                detail.series = detail.series.iter().step_by(2).copied().collect();
                detail.stride *= 2;
            }
            detail.series.push((x as f32, total as f32 / 1024.0));
        }
    }

    /// The sliding window's fit; the whole recording's for a process that never moved.
    fn window(&self) -> Fit {
        match &self.detail {
            Some(detail) => detail
                .blocks
                .iter()
                .fold(Fit::default(), |all, block| all.merged(block))
                .merged(&detail.block),
            None => self.whole,
        }
    }

    fn series(&self) -> Vec<(f32, f32)> {
        self.detail
            .as_ref()
            .map_or_else(Vec::new, |detail| detail.series.clone())
    }
}

/// A reading's process moving from `before` to `after` KiB.
fn change(reading: &MemoryReading, after: u64, before: u64) -> MemoryChange {
    MemoryChange {
        pid: reading.pid,
        start_ns: reading.start_ns,
        comm: reading.comm.clone(),
        total_kb: after,
        delta_kb: after as i64 - before as i64,
    }
}

/// Where a process's growth leads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    /// The limit: its memory cgroup's (`memcg`), or the machine's available memory on a
    /// machine without swap (`machine`).
    pub limit: LimitKind,
    pub limit_kb: u64,
    /// What is left under it at the last reading.
    pub headroom_kb: u64,
    /// Seconds until it is reached at the window's rate.
    pub seconds: f64,
}

/// Which limit a forecast is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    Memcg,
    Machine,
}

impl LimitKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Memcg => "memcg",
            Self::Machine => "machine",
        }
    }
}

/// One process's growth, as reported.
#[derive(Clone, Debug, PartialEq)]
pub struct GrowthRow {
    pub pid: u32,
    pub start_ns: u64,
    pub comm: String,
    pub memcg_id: u64,
    /// The last reading.
    pub last: MemoryReading,
    pub first_kb: u64,
    pub peak_kb: u64,
    pub readings: u64,
    pub span_s: f64,
    /// Whole-recording fit.
    pub slope_kb_s: Option<f64>,
    pub r2: Option<f64>,
    /// The sliding window's fit.
    pub window_slope_kb_s: Option<f64>,
    pub window_r2: Option<f64>,
    pub steady: bool,
    pub forecast: Option<Forecast>,
    /// It ended (or left the filter) during the recording.
    pub ended: bool,
    /// (seconds since the recording's start, MiB) points for charts.
    pub series: Vec<(f32, f32)>,
}

impl GrowthRow {
    /// Growth by the whole fit: slope × span (KiB).
    pub fn fitted_growth_kb(&self) -> f64 {
        self.slope_kb_s.unwrap_or(0.0) * self.span_s
    }
}

/// Every traced process's memory over the recording.
#[derive(Clone, Debug, Default)]
pub struct Growth {
    /// CLOCK_MONOTONIC start of the recording: x is seconds since.
    origin_ns: u64,
    live: HashMap<ProcessKey, Tracked>,
    ended: Vec<GrowthRow>,
    memcgs: HashMap<u64, MemcgUsage>,
    /// The machine at the last reading: available memory, and whether it has swap.
    available_kb: u64,
    swap_total_kb: u64,
    /// Readings taken (intervals whose memory was read).
    pub readings: u64,
    /// Changed processes left for a later interval, over all intervals.
    pub deferred: u64,
}

impl Growth {
    pub fn new(origin_ns: u64) -> Self {
        Self {
            origin_ns,
            ..Self::default()
        }
    }

    /// Adds one interval's readings: every live process gets a point at the reading's time,
    /// its last kept memory when it did not change. Returns how each process's memory moved:
    /// those read before, those that started during the recording (from 0) and those gone
    /// (down to 0); not those first read as the recording began, which had no start.
    pub fn apply(&mut self, sample: &IntervalSample) -> Vec<MemoryChange> {
        let memory = &sample.memory;
        let mut changes = Vec::new();
        if memory.read_ns == 0 {
            return changes;
        }
        self.readings += 1;
        self.deferred += u64::from(memory.deferred);
        self.available_kb = sample.machine.mem_available_kb;
        self.swap_total_kb = sample.machine.swap_total_kb;
        for usage in &memory.memcgs {
            self.memcgs.insert(usage.id, *usage);
        }
        for key in &memory.gone {
            if let Some(tracked) = self.live.remove(key) {
                changes.push(change(&tracked.latest, 0, tracked.latest.total_kb()));
                let row = self.row(&tracked, true);
                self.keep_ended(row);
            }
        }
        let at = memory.read_ns;
        for reading in &memory.readings {
            match self.live.get_mut(&reading.key()) {
                Some(tracked) => {
                    let before = tracked.latest.total_kb();
                    changes.push(change(reading, reading.total_kb(), before));
                    tracked.latest = reading.clone();
                }
                None => {
                    if reading.start_ns > self.origin_ns {
                        changes.push(change(reading, reading.total_kb(), 0));
                    }
                    self.live
                        .insert(reading.key(), Tracked::new(reading.clone()));
                }
            }
        }
        let x = at.saturating_sub(self.origin_ns) as f64 / 1e9;
        for tracked in self.live.values_mut() {
            tracked.add_point(x);
        }
        changes.retain(|c| c.delta_kb != 0);
        changes
    }

    fn keep_ended(&mut self, row: GrowthRow) {
        self.ended.push(row);
        if self.ended.len() > KEEP_ENDED {
            self.ended.sort_by(|a, b| rank(b).total_cmp(&rank(a)));
            self.ended.truncate(KEEP_ENDED);
        }
    }

    /// Every process kept, the steady growers first, then by growth.
    pub fn rows(&self) -> Vec<GrowthRow> {
        let mut rows: Vec<GrowthRow> = self
            .live
            .values()
            .map(|tracked| self.row(tracked, false))
            .chain(self.ended.iter().cloned())
            .collect();
        rows.sort_by(|a, b| {
            b.steady
                .cmp(&a.steady)
                .then(rank(b).total_cmp(&rank(a)))
                .then(a.pid.cmp(&b.pid))
        });
        rows
    }

    /// The live process `pid`'s row (the newest if the pid was reused).
    pub fn live_row(&self, pid: u32) -> Option<GrowthRow> {
        self.live
            .iter()
            .filter(|(key, _)| key.pid == pid)
            .max_by_key(|(key, _)| key.start_ns)
            .map(|(_, tracked)| self.row(tracked, false))
    }

    /// The live processes with a forecast, soonest first.
    pub fn forecasts(&self) -> Vec<GrowthRow> {
        let mut rows: Vec<GrowthRow> = self
            .live
            .values()
            .map(|tracked| self.row(tracked, false))
            .filter(|row| row.forecast.is_some())
            .collect();
        rows.sort_by(|a, b| seconds(a).total_cmp(&seconds(b)));
        rows
    }

    fn row(&self, tracked: &Tracked, ended: bool) -> GrowthRow {
        let window = tracked.window();
        let mut row = GrowthRow {
            pid: tracked.latest.pid,
            start_ns: tracked.latest.start_ns,
            comm: tracked.latest.comm.clone(),
            memcg_id: tracked.latest.memcg_id,
            last: tracked.latest.clone(),
            first_kb: tracked.first_kb,
            peak_kb: tracked.peak_kb,
            readings: tracked.whole.n,
            span_s: tracked.whole.span_s(),
            slope_kb_s: tracked.whole.slope(),
            r2: tracked.whole.r2(),
            window_slope_kb_s: window.slope(),
            window_r2: window.r2(),
            steady: false,
            forecast: None,
            ended,
            series: tracked.series(),
        };
        row.steady = is_steady(&row);
        if !ended {
            row.forecast = self.forecast(&row);
        }
        row
    }

    /// The time left under the process's limit at the window's rate.
    fn forecast(&self, row: &GrowthRow) -> Option<Forecast> {
        let rate = row.window_slope_kb_s.filter(|rate| *rate > 0.0)?;
        if row.window_r2? < FORECAST_MIN_R2 {
            return None;
        }
        let memcg = self.memcgs.get(&row.memcg_id);
        let (limit, limit_kb, headroom_kb) = match memcg {
            Some(MemcgUsage {
                usage_kb,
                limit_kb: Some(limit_kb),
                ..
            }) => (
                LimitKind::Memcg,
                *limit_kb,
                limit_kb.saturating_sub(*usage_kb),
            ),
            _ if self.swap_total_kb == 0 && self.available_kb > 0 => (
                LimitKind::Machine,
                row.last.total_kb() + self.available_kb,
                self.available_kb,
            ),
            _ => return None,
        };
        Some(Forecast {
            limit,
            limit_kb,
            headroom_kb,
            seconds: headroom_kb as f64 / rate,
        })
    }

    /// A memory cgroup's usage and limit at its last reading.
    pub fn memcg(&self, id: u64) -> Option<&MemcgUsage> {
        self.memcgs.get(&id)
    }
}

fn rank(row: &GrowthRow) -> f64 {
    row.fitted_growth_kb()
}

fn seconds(row: &GrowthRow) -> f64 {
    row.forecast.map_or(f64::INFINITY, |f| f.seconds)
}

/// The rule in the module's documentation.
pub fn is_steady(row: &GrowthRow) -> bool {
    let (Some(slope), Some(r2)) = (row.slope_kb_s, row.r2) else {
        return false;
    };
    let growth = slope * row.span_s;
    row.readings >= STEADY_MIN_READINGS
        && row.span_s >= STEADY_MIN_SPAN_S
        && r2 >= STEADY_MIN_R2
        && growth >= STEADY_MIN_GROWTH_KB
        && growth >= row.first_kb as f64 * STEADY_MIN_GROWTH_PCT / 100.0
        && row.window_slope_kb_s.unwrap_or(0.0) >= slope / 4.0
}

#[cfg(test)]
#[path = "growth_tests.rs"]
mod tests;
