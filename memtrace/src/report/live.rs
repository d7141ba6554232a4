//! The line printed every interval while recording, so the user sees it working.
use std::io::{self, Write};

use memtrace_common::FaultClass;

use super::{lost, timeline, units};
use crate::{collect::session::Tick, model::machine::Thresholds};

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
    let counts = &tick.counts;
    let elapsed = tick.elapsed.as_secs();
    write!(
        out,
        "{:02}:{:02}:{:02} faults/s {:>6} (minor {}, file {}, swap-in {}) lost {}",
        elapsed / 3600,
        elapsed / 60 % 60,
        elapsed % 60,
        units::rate(counts.total(), secs),
        units::rate(counts.faults[FaultClass::Minor as usize], secs),
        units::rate(counts.faults[FaultClass::MajorFile as usize], secs),
        units::rate(counts.faults[FaultClass::MajorSwap as usize], secs),
        lost(&tick.counters).total,
    )?;
    let stalls: u64 = counts.stalls.iter().sum();
    if stalls > 0 {
        write!(
            out,
            " stalls {} ({})",
            stalls,
            units::duration_ns(counts.stall_ns)
        )?;
    }
    let m = &tick.machine;
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
    if counts.decode_errors > 0 {
        write!(out, " malformed {}", counts.decode_errors)?;
    }
    let top = counts.top(TOP);
    if !top.is_empty() {
        write!(out, " |")?;
        for (pid, n) in top {
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
