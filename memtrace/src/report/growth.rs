//! Memory growth: each traced process's resident memory and swap over the recording, its
//! least-squares slope and fit, the steady-growth flag and the time left under its limit
//! (see `model::growth` for the rules). The terminal section, and the live line's part.
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::units;
use crate::model::{Model, growth::GrowthRow};

/// Processes shown in the terminal section (the steady growers always are).
pub const SHOWN: usize = 10;
/// The live line names a forecast under this many seconds.
pub const LIVE_FORECAST_S: f64 = 3600.0;

/// Every traced process's growth.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrowthReport {
    /// Intervals whose memory was read (0: not read, or a recording made before).
    pub readings: u64,
    /// Changed readings left for a later interval, the cap being reached.
    pub deferred: u64,
    /// The steady growers first, then by growth.
    pub processes: Vec<ProcessGrowth>,
}

/// One process's memory over the recording.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessGrowth {
    pub pid: u32,
    pub start_ns: u64,
    pub comm: String,
    /// Its memory cgroup: id, path, usage and limit at the last reading.
    pub memcg_id: u64,
    pub memcg_path: Option<String>,
    pub memcg_usage_kb: Option<u64>,
    pub memcg_limit_kb: Option<u64>,
    /// The last reading.
    pub rss_anon_kb: u64,
    pub rss_file_kb: u64,
    pub rss_shmem_kb: u64,
    pub swap_kb: u64,
    /// Resident + swap: at the first reading, the peak, and the last.
    pub first_kb: u64,
    pub peak_kb: u64,
    pub last_kb: u64,
    pub readings: u64,
    pub span_s: f64,
    /// Least squares over the whole recording, and over the sliding window (the last 50–60
    /// readings).
    pub slope_kb_per_s: Option<f64>,
    pub r2: Option<f64>,
    pub window_slope_kb_per_s: Option<f64>,
    pub window_r2: Option<f64>,
    pub steady_growth: bool,
    pub forecast: Option<ForecastReport>,
    /// It ended, or left the filter, during the recording.
    pub ended: bool,
    /// (seconds since the recording's start, MiB of resident + swap), thinned evenly.
    pub series: Vec<(f32, f32)>,
}

/// When the process reaches its limit at the window's rate.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForecastReport {
    /// `memcg` (its memory cgroup's limit) or `machine` (the available memory of a machine
    /// without swap).
    pub limit: String,
    pub limit_kb: u64,
    pub headroom_kb: u64,
    pub seconds: f64,
}

impl GrowthReport {
    /// The growth of the processes `pids` lets through (`None`: all).
    pub fn new(model: &Model, pids: Option<&[u32]>) -> Self {
        let growth = &model.growth;
        let processes = growth
            .rows()
            .into_iter()
            .filter(|row| pids.is_none_or(|pids| pids.contains(&row.pid)))
            .map(|row| ProcessGrowth::new(&row, model))
            .collect();
        Self {
            readings: growth.readings,
            deferred: growth.deferred,
            processes,
        }
    }
}

impl ProcessGrowth {
    fn new(row: &GrowthRow, model: &Model) -> Self {
        let memcg = model.growth.memcg(row.memcg_id);
        Self {
            pid: row.pid,
            start_ns: row.start_ns,
            comm: row.comm.clone(),
            memcg_id: row.memcg_id,
            memcg_path: model
                .cgroups
                .get(&row.memcg_id)
                .and_then(|c| c.path.clone()),
            memcg_usage_kb: memcg.map(|m| m.usage_kb),
            memcg_limit_kb: memcg.and_then(|m| m.limit_kb),
            rss_anon_kb: row.last.rss_anon_kb,
            rss_file_kb: row.last.rss_file_kb,
            rss_shmem_kb: row.last.rss_shmem_kb,
            swap_kb: row.last.swap_kb,
            first_kb: row.first_kb,
            peak_kb: row.peak_kb,
            last_kb: row.last.total_kb(),
            readings: row.readings,
            span_s: row.span_s,
            slope_kb_per_s: row.slope_kb_s,
            r2: row.r2,
            window_slope_kb_per_s: row.window_slope_kb_s,
            window_r2: row.window_r2,
            steady_growth: row.steady,
            forecast: row.forecast.map(|f| ForecastReport {
                limit: f.limit.name().into(),
                limit_kb: f.limit_kb,
                headroom_kb: f.headroom_kb,
                seconds: f.seconds,
            }),
            ended: row.ended,
            series: row.series.clone(),
        }
    }

    /// Growth by the whole recording's fit, in KiB.
    pub fn fitted_growth_kb(&self) -> f64 {
        self.slope_kb_per_s.unwrap_or(0.0) * self.span_s
    }

    /// Worth a row: flagged, or it grew or shrank by a MiB or more.
    fn notable(&self) -> bool {
        self.steady_growth || self.fitted_growth_kb().abs() >= 1024.0
    }
}

/// `+8.00M/s`, `-120K/s`.
pub fn rate_kb(kb_per_s: f64) -> String {
    format!("{}/s", units::signed_kb(kb_per_s))
}

/// `~42s`, `~7 min`, `~3.5 h`, `~2.0 days`.
pub fn eta(seconds: f64) -> String {
    if seconds < 90.0 {
        format!("~{seconds:.0}s")
    } else if seconds < 90.0 * 60.0 {
        format!("~{:.0} min", seconds / 60.0)
    } else if seconds < 48.0 * 3600.0 {
        format!("~{:.1} h", seconds / 3600.0)
    } else {
        format!("~{:.1} days", seconds / 86_400.0)
    }
}

fn kb(kb: u64) -> String {
    units::bytes(kb * 1024)
}

/// The terminal section: a table of the processes that grew or shrank, then one line for each
/// steady grower.
pub fn write(report: &GrowthReport, out: &mut impl Write) -> io::Result<()> {
    if report.readings == 0 {
        return Ok(());
    }
    let shown: Vec<&ProcessGrowth> = report
        .processes
        .iter()
        .filter(|p| p.notable())
        .take(SHOWN.max(report.processes.iter().filter(|p| p.steady_growth).count()))
        .collect();
    if shown.is_empty() {
        return writeln!(
            out,
            "\nMemory growth: no traced process grew or shrank by 1M or more ({} readings)",
            report.readings
        );
    }
    writeln!(
        out,
        "\nMemory growth (resident + swap, {} readings)",
        report.readings
    )?;
    writeln!(
        out,
        "{:>7} {:<16} {:>7} {:>7} {:>7} {:>7} {:>10} {:>5} {:>10} {:>5}  NOTE",
        "PID", "COMM", "FIRST", "LAST", "ANON", "SWAP", "SLOPE", "R²", "RECENT", "R²"
    )?;
    for p in &shown {
        let fit = |slope: Option<f64>, r2: Option<f64>| {
            (
                slope.map_or("-".into(), rate_kb),
                r2.map_or("-".into(), |r| format!("{r:.2}")),
            )
        };
        let (slope, r2) = fit(p.slope_kb_per_s, p.r2);
        let (recent, recent_r2) = fit(p.window_slope_kb_per_s, p.window_r2);
        let mut notes = Vec::new();
        if p.steady_growth {
            notes.push("STEADY GROWTH".to_string());
        }
        if let Some(f) = &p.forecast {
            notes.push(format!("{} limit in {}", f.limit, eta(f.seconds)));
        }
        if p.ended {
            notes.push("ended".into());
        }
        writeln!(
            out,
            "{:>7} {:<16} {:>7} {:>7} {:>7} {:>7} {:>10} {:>5} {:>10} {:>5}  {}",
            p.pid,
            units::printable(&p.comm),
            kb(p.first_kb),
            kb(p.last_kb),
            kb(p.rss_anon_kb),
            kb(p.swap_kb),
            slope,
            r2,
            recent,
            recent_r2,
            notes.join(", ")
        )?;
    }
    write_steady(report, out)?;
    if report.deferred > 0 {
        writeln!(
            out,
            "({} readings waited for a later interval: more than {} processes changed at once)",
            report.deferred,
            crate::samples::growth::MAX_READINGS
        )?;
    }
    Ok(())
}

/// One line for each steady grower: its rate, fit and growth, and its forecast.
pub fn write_steady(report: &GrowthReport, out: &mut impl Write) -> io::Result<()> {
    for p in report.processes.iter().filter(|p| p.steady_growth) {
        write!(
            out,
            "{}[{}] grows steadily: {} over {:.0}s (R² {:.2}), {} to {}",
            units::printable(&p.comm),
            p.pid,
            rate_kb(p.slope_kb_per_s.unwrap_or(0.0)),
            p.span_s,
            p.r2.unwrap_or(0.0),
            kb(p.first_kb),
            kb(p.last_kb),
        )?;
        match &p.forecast {
            Some(f) if f.limit == "memcg" => write!(
                out,
                "; at this rate it reaches its memory cgroup's limit ({}{}) in {}",
                kb(f.limit_kb),
                p.memcg_path
                    .as_deref()
                    .map(|path| format!(", {}", units::printable(path)))
                    .unwrap_or_default(),
                eta(f.seconds)
            )?,
            Some(f) => write!(
                out,
                "; at this rate it takes the machine's available memory ({} left, no swap) in {}",
                kb(f.headroom_kb),
                eta(f.seconds)
            )?,
            None => {}
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The live line's part: the soonest forecast under an hour, e.g.
/// ` | leaker[42] +8.00M/s: memcg limit in ~3 min`.
pub fn write_live(model: &Model, out: &mut impl Write) -> io::Result<()> {
    let Some(row) = model
        .growth
        .forecasts()
        .into_iter()
        .find(|row| row.forecast.is_some_and(|f| f.seconds < LIVE_FORECAST_S))
    else {
        return Ok(());
    };
    let Some(forecast) = row.forecast else {
        return Ok(());
    };
    write!(
        out,
        " | {}[{}] {}: {} limit in {}",
        units::printable(&row.comm),
        row.pid,
        rate_kb(row.window_slope_kb_s.unwrap_or(0.0)),
        forecast.limit.name(),
        eta(forecast.seconds)
    )
}

#[cfg(test)]
#[path = "growth_tests.rs"]
mod tests;
