//! The final terminal report: a header and one row per process and fault class, the processes
//! that spent most time in faults first.
use std::io::{self, Write};

use super::{ClassReport, Report, units};
use crate::samples::StopReason;

/// Column headings of the table.
const HEADER: [&str; 11] = [
    "PID", "COMM", "CLASS", "COUNT", "TOTAL", "MEAN", "P50", "P90", "P99", "P99.9", "MAX",
];

/// Writes the header lines and the table of the `top` busiest processes.
pub fn write(report: &Report, top: usize, out: &mut impl Write) -> io::Result<()> {
    write_header(report, out)?;
    write_oom(report, out)?;
    if report.processes.is_empty() {
        return writeln!(out, "no faults recorded");
    }
    writeln!(
        out,
        "{:>7} {:<16} {:<10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        HEADER[0],
        HEADER[1],
        HEADER[2],
        HEADER[3],
        HEADER[4],
        HEADER[5],
        HEADER[6],
        HEADER[7],
        HEADER[8],
        HEADER[9],
        HEADER[10]
    )?;
    for process in report.processes.iter().take(top) {
        let mut first = true;
        for (class, stats) in process.classes.iter() {
            if stats.latency.count == 0 {
                continue;
            }
            let (pid, comm) = if first {
                (process.pid.to_string(), process.comm.as_str())
            } else {
                (String::new(), "")
            };
            first = false;
            write_row(out, &pid, comm, class.name(), stats)?;
        }
    }
    let hidden = report.processes.len().saturating_sub(top);
    if hidden > 0 {
        writeln!(
            out,
            "... and {hidden} more processes (see --top, or --json for all)"
        )?;
    }
    if report.processes.len() > 1 {
        for (class, stats) in report.total.iter() {
            if stats.latency.count > 0 {
                write_row(out, "all", "", class.name(), stats)?;
            }
        }
    }
    Ok(())
}

/// The OOM kills of the recording, one block each: they are the headline when there are any.
fn write_oom(report: &Report, out: &mut impl Write) -> io::Result<()> {
    if report.lost.oom > 0 {
        writeln!(out, "warning: {} OOM records were lost", report.lost.oom)?;
    }
    if report.oom_kills.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "{} OOM kill(s) on the machine during the recording:",
        report.oom_kills.len()
    )?;
    for kill in &report.oom_kills {
        super::oom::write(kill, out)?;
    }
    writeln!(out)
}

fn write_row(
    out: &mut impl Write,
    pid: &str,
    comm: &str,
    class: &str,
    stats: &ClassReport,
) -> io::Result<()> {
    let l = &stats.latency;
    let d = units::duration_ns;
    writeln!(
        out,
        "{pid:>7} {comm:<16} {class:<10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        l.count,
        d(l.total_ns),
        d(l.mean_ns),
        d(l.p50_ns),
        d(l.p90_ns),
        d(l.p99_ns),
        d(l.p999_ns),
        d(l.max_ns)
    )
}

/// The vm tunables of the recorded machine, on one line (those the kernel has).
fn write_tunables(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let t = &report.tunables;
    let numbers = [
        ("swappiness", t.swappiness),
        ("min_free_kbytes", t.min_free_kbytes),
        ("watermark_scale_factor", t.watermark_scale_factor),
        ("zone_reclaim_mode", t.zone_reclaim_mode),
        ("overcommit_memory", t.overcommit_memory),
    ];
    let mut parts: Vec<String> = numbers
        .iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name} {v}")))
        .collect();
    if let Some(enabled) = &t.thp_enabled {
        let defrag = t.thp_defrag.as_deref().unwrap_or("?");
        parts.push(format!("THP {enabled} (defrag {defrag})"));
    }
    if parts.is_empty() {
        return Ok(());
    }
    writeln!(out, "kernel {}, vm: {}", report.kernel, parts.join(", "))
}

/// What was traced, for how long, and whether anything was lost.
pub fn write_header(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "traced {} for {:.2} s ({}): {} faults, {} lost, {} malformed",
        report.traced,
        report.duration_s,
        match report.stop_reason {
            StopReason::Duration => "duration reached",
            StopReason::Interrupted => "interrupted",
            StopReason::TracedExited => "traced processes exited",
            StopReason::Unfinished => "the recording has no end",
        },
        report.faults,
        report.lost.total,
        report.malformed
    )?;
    write_tunables(report, out)?;
    for hook in report.hooks.iter().filter(|h| h.error.is_some()) {
        writeln!(
            out,
            "warning: {} not attached: {}",
            hook.hook,
            hook.error.as_deref().unwrap_or("")
        )?;
    }
    if report.lost.total > 0 {
        writeln!(
            out,
            "warning: {} records were lost because the ring buffer was full; raise --ring-size",
            report.lost.total
        )?;
    }
    if report.kernel_counters.park_failed > 0 {
        writeln!(
            out,
            "warning: {} sleeping faults did not fit in the parking map; their latency is missing",
            report.kernel_counters.park_failed
        )?;
    }
    writeln!(out)
}
