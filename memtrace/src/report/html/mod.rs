//! The HTML report: one self-contained file (no script, no network, opens from disk) with the
//! charts as inline SVG and the terminal report's tables and OOM blocks beside them. Readable
//! in a narrow window (the charts scale to the page) and in print; Okabe–Ito colours.
mod charts;
pub mod curves;

use std::io::{self, Write};

pub use curves::{CurveChart, charts as curve_charts};

use super::{Report, units};

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body { font-family: sans-serif; margin: 1em auto; max-width: 1100px; padding: 0 1em; color: #111; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
figure { margin: 0.5em 0 1.2em; } figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 0.9em; color: #444; }
pre { font-size: 0.8em; overflow-x: auto; background: #f6f6f6; padding: 0.6em; }
.facts { font-size: 0.9em; } .facts td { padding: 0 1em 0 0; }
.flag { background: rgba(213, 94, 0, 0.12); padding: 0 0.3em; }
@media print { body { max-width: none; } pre { white-space: pre-wrap; } figure { break-inside: avoid; } }
";

/// Writes the whole page: `curves` (from the model, see [`curve_charts`]) and `text` (the
/// terminal report as rendered for this report) go into it as they are.
pub fn write(
    report: &Report,
    curves: &[CurveChart],
    text: &str,
    out: &mut impl Write,
) -> io::Result<()> {
    let title = format!("memtrace: {}", units::printable(&report.traced));
    writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>")?;
    writeln!(out, "<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(
        out,
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&title)
    )?;
    writeln!(out, "<h1>{}</h1>", escape(&title))?;
    write_facts(report, out)?;
    writeln!(out, "<h2>Timeline</h2>")?;
    let flagged = report.timeline.iter().filter(|r| r.flagged).count();
    figure(
        out,
        &charts::stalls(report)?,
        &format!(
            "Shaded: the {flagged} interval(s) flagged because a process stalled at least {}% of it or PSI memory some reached {}%. Shares are thread time over the interval and can pass 100 % with several threads; kinds can nest.",
            report.thresholds.stall_pct, report.thresholds.psi_pct
        ),
    )?;
    figure(
        out,
        &charts::lines(
            report,
            "memory pressure and kswapd (%)",
            "% of the interval",
            &[
                ("PSI some", &|r| r.machine.psi_some_pct),
                ("PSI full", &|r| r.machine.psi_full_pct),
                ("kswapd CPU", &|r| r.kswapd_cpu_pct),
            ],
            &|v| format!("{v:.0}"),
        )?,
        "PSI: share of the interval in which some (full: all) tasks stalled on memory. kswapd: wall time awake, not CPU time.",
    )?;
    figure(
        out,
        &charts::lines(
            report,
            "swap traffic (pages per second, machine-wide)",
            "pages/s",
            &[
                ("swap-in", &|r| Some(r.machine.pswpin_per_s)),
                ("swap-out", &|r| Some(r.machine.pswpout_per_s)),
            ],
            &|v| units::count(*v as u64),
        )?,
        "From /proc/vmstat pswpin and pswpout.",
    )?;
    figure(
        out,
        &charts::lines(
            report,
            "free and available memory",
            "bytes",
            &[
                ("free", &|r| Some(r.machine.mem_free_kb as f64 * 1024.0)),
                ("available", &|r| {
                    Some(r.machine.mem_available_kb as f64 * 1024.0)
                }),
            ],
            &|v| units::bytes(*v as u64),
        )?,
        "From /proc/meminfo MemFree and MemAvailable at the end of each interval.",
    )?;
    if let Some(chart) = charts::zones(report)? {
        figure(
            out,
            &chart,
            "Each zone's lowest free pages in the interval (/proc/zoneinfo, read every 100 ms), with the largest zone's watermarks: kswapd wakes when free falls under low; an allocation that finds free under min reclaims directly.",
        )?;
    }
    write_verdicts(report, out)?;
    write_growth(report, out)?;
    writeln!(out, "<h2>Latency distributions</h2>")?;
    if curves.is_empty() {
        writeln!(out, "<p>No faults or stalls were recorded.</p>")?;
    }
    for chart in curves {
        figure(
            out,
            &charts::percentiles(chart)?,
            &format!(
                "{}: the busiest processes (count in brackets), from their HdrHistograms (3 significant digits).",
                chart.title
            ),
        )?;
    }
    writeln!(out, "<h2>Tables</h2>\n<pre>{}</pre>", escape(text))?;
    writeln!(out, "</body>\n</html>")
}

/// Why reclaim ran, one paragraph per flagged interval that has a verdict (see `verdict`).
fn write_verdicts(report: &Report, out: &mut impl Write) -> io::Result<()> {
    if report.verdicts.is_empty() {
        return Ok(());
    }
    writeln!(out, "<h2>Why reclaim ran</h2>")?;
    for v in &report.verdicts {
        writeln!(
            out,
            "<p><b>{:.1} s</b> ({}): {}</p>",
            v.start_s,
            v.cause.name(),
            escape(&v.text)
        )?;
    }
    Ok(())
}

/// The growing processes: the chart, and one paragraph per steady grower with its forecast.
fn write_growth(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let Some(chart) = charts::growth(report)? else {
        return Ok(());
    };
    writeln!(out, "<h2>Memory growth</h2>")?;
    figure(
        out,
        &chart,
        "Each process's resident memory and swap as the kernel counts them (mm counters), read at every interval's close. Steady growth: at least 10 readings over 10 s, a least-squares fit with R² ≥ 0.9, growth of at least 16 MiB and 5 % of the first reading, still growing in the last 50-60 readings.",
    )?;
    let mut text = Vec::new();
    crate::report::growth::write_steady(&report.growth, &mut text)?;
    for line in String::from_utf8_lossy(&text).lines() {
        writeln!(out, "<p>{}</p>", escape(line))?;
    }
    Ok(())
}

fn figure(out: &mut impl Write, svg: &str, caption: &str) -> io::Result<()> {
    // The backend writes a fixed width and height; the viewBox lets the page scale the chart.
    let scalable = svg.replacen("<svg ", "<svg preserveAspectRatio=\"xMidYMid meet\" ", 1);
    writeln!(
        out,
        "<figure>\n{scalable}\n<figcaption>{}</figcaption>\n</figure>",
        escape(caption)
    )
}

fn write_facts(report: &Report, out: &mut impl Write) -> io::Result<()> {
    let t = &report.tunables;
    let value = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    let rows = [
        ("kernel", report.kernel.clone()),
        ("memtrace", report.memtrace_version.clone()),
        ("duration", format!("{:.2} s", report.duration_s)),
        ("faults", report.faults.to_string()),
        (
            "lost / malformed",
            format!("{} / {}", report.lost.total, report.malformed),
        ),
        ("OOM kills", report.oom_kills.len().to_string()),
        ("vm.swappiness", value(t.swappiness)),
        ("vm.min_free_kbytes", value(t.min_free_kbytes)),
        ("vm.watermark_scale_factor", value(t.watermark_scale_factor)),
        ("vm.zone_reclaim_mode", value(t.zone_reclaim_mode)),
        ("vm.overcommit_memory", value(t.overcommit_memory)),
        (
            "transparent huge pages",
            t.thp_enabled.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    writeln!(out, "<table class=\"facts\">")?;
    for (name, value) in rows {
        writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(&units::printable(&value))
        )?;
    }
    writeln!(out, "</table>")
}

#[cfg(test)]
mod tests;
