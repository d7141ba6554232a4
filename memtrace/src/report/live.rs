//! The line printed every interval while recording, so the user sees it working.
use std::io::{self, Write};

use memtrace_common::FaultClass;

use super::{lost, units};
use crate::collect::session::Tick;

/// How many of the busiest processes the line names.
const TOP: usize = 3;

/// Writes one line: elapsed time, fault rate by class, lost records, busiest processes.
pub fn write(tick: &Tick<'_>, out: &mut impl Write) -> io::Result<()> {
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
    writeln!(out)
}
