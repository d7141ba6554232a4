//! The line printed every interval while recording, so the user sees it working.
use std::io::{self, Write};

use memtrace_common::{FAULT_CLASSES, FaultClass};

use super::{timeline, units};
use crate::{
    model::Tick,
    samples::{IntervalSample, machine::Thresholds},
};

/// Counts of one interval.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct IntervalCounts {
    /// Faults per class.
    pub faults: [u64; FAULT_CLASSES],
    /// Faults per process, busiest first (ties by pid).
    pub per_pid: Vec<(u32, u64)>,
    /// Reclaim and compaction stalls, and the time in them.
    pub stalls: u64,
    pub stall_ns: u64,
}

impl IntervalCounts {
    /// The counts of a sample.
    pub fn of(sample: &IntervalSample) -> Self {
        let mut counts = Self::default();
        for process in &sample.processes {
            let mut total = 0;
            for class in &process.faults {
                let n = class.latency.count();
                total += n;
                if let Some(slot) = counts.faults.get_mut(class.class as usize) {
                    *slot += n;
                }
            }
            for stall in &process.stalls {
                counts.stalls += stall.latency.count();
                counts.stall_ns += stall.latency.total_ns();
            }
            if total > 0 {
                counts.per_pid.push((process.pid, total));
            }
        }
        counts
            .per_pid
            .sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        counts
    }

    /// All faults of the interval.
    pub fn total(&self) -> u64 {
        self.faults.iter().sum()
    }
}

/// `00:01:05`, or `00:01:05.250` when intervals are shorter than a second.
fn stamp(elapsed: std::time::Duration, interval: std::time::Duration) -> String {
    let secs = elapsed.as_secs();
    let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if interval.as_millis() < 1000 {
        format!("{hms}.{:03}", elapsed.subsec_millis())
    } else {
        hms
    }
}

/// How many of the busiest processes the line names.
const TOP: usize = 3;

/// Writes one line: elapsed time, fault rate by class, stalls, swap and PSI, lost records,
/// busiest processes, and `!!` with the most stalled process when the interval hurts.
pub fn write(
    tick: &Tick<'_>,
    thresholds: &Thresholds,
    focus: &[u32],
    out: &mut impl Write,
) -> io::Result<()> {
    let secs = tick.interval.as_secs_f64();
    let counts = IntervalCounts::of(tick.sample);
    write!(
        out,
        "{} faults/s {:>6} (minor {}, file {}, swap-in {}) faults lost {}",
        stamp(tick.elapsed, tick.interval),
        units::rate(counts.total(), secs),
        units::rate(counts.faults[FaultClass::Minor as usize], secs),
        units::rate(counts.faults[FaultClass::MajorFile as usize], secs),
        units::rate(counts.faults[FaultClass::MajorSwap as usize], secs),
        tick.lost_faults,
    )?;
    if counts.stalls > 0 {
        write!(
            out,
            " stalls {} ({})",
            counts.stalls,
            units::duration_ns(counts.stall_ns)
        )?;
    }
    let m = tick.model.machine.last().copied().unwrap_or_default();
    if m.pswpin_per_s + m.pswpout_per_s > 0.0 {
        write!(
            out,
            " swap in/out {}/{} per s",
            units::count(m.pswpin_per_s as u64),
            units::count(m.pswpout_per_s as u64)
        )?;
    }
    if let Some(psi) = m.psi_some_pct.filter(|p| *p >= 0.5) {
        write!(out, " PSI {psi:.0}%")?;
    }
    let oom_kills = tick.model.oom.kills.len();
    if oom_kills > 0 {
        write!(out, " oom-kills {oom_kills}")?;
    }
    if tick.sample.malformed > 0 {
        write!(out, " malformed {}", tick.sample.malformed)?;
    }
    if !counts.per_pid.is_empty() {
        write!(out, " |")?;
        for &(pid, n) in counts.per_pid.iter().take(TOP) {
            write!(
                out,
                " {}[{pid}] {}",
                tick.model.comm_of(pid),
                units::rate(n, secs)
            )?;
        }
    }
    if let Some(row) = timeline::last_row(tick.model, thresholds, focus).filter(|r| r.flagged) {
        write!(out, " !!")?;
        if let Some(p) = row.processes.first() {
            let kinds: Vec<String> = p
                .by_kind
                .iter()
                .map(|(k, v)| format!("{} {v:.0}%", k.short()))
                .collect();
            write!(
                out,
                " {}[{}] stalled {:.0}% ({})",
                p.comm,
                p.pid,
                p.stalled_pct,
                kinds.join(" ")
            )?;
        }
    }
    writeln!(out)
}
