//! Readings of the machine's own memory counters (PSI, /proc/meminfo, /proc/vmstat), and the
//! thresholds that flag an interval.
use serde::{Deserialize, Serialize};

/// One reading of the machine's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MachineSample {
    /// CLOCK_MONOTONIC time of the reading.
    pub mono_ns: u64,
    /// PSI memory `some` and `full` totals (µs); `None` without PSI.
    pub psi_some_us: Option<u64>,
    pub psi_full_us: Option<u64>,
    pub mem_free_kb: u64,
    pub mem_available_kb: u64,
    pub swap_total_kb: u64,
    pub swap_free_kb: u64,
    /// /proc/vmstat counters.
    pub pswpin: u64,
    pub pswpout: u64,
    /// Sum of allocstall_* (direct reclaim entries).
    pub allocstall: u64,
}

/// When an interval is flagged as hurting.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// A process stalled at least this share of the interval, in %.
    pub stall_pct: f64,
    /// PSI memory `some` reached this share, in %.
    pub psi_pct: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            stall_pct: 10.0,
            psi_pct: 10.0,
        }
    }
}

impl Thresholds {
    /// Whether an interval with this worst process share and PSI is flagged.
    pub fn flags(&self, worst_stall_pct: f64, psi_some_pct: Option<f64>) -> bool {
        worst_stall_pct >= self.stall_pct || psi_some_pct.is_some_and(|p| p >= self.psi_pct)
    }
}
