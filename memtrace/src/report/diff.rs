//! `memtrace diff` on the terminal and as JSON. Each row takes three lines, run A, run B and the
//! change, so that every figure has its own column and its own mark: `*` beside a change beyond
//! both runs' noise, and before a row, setting or limit that differs.
use std::io::{self, Write};

use super::units;
use crate::model::diff::{
    Diff, FigureDiff, MemcgDiff, RowDiff, RunInfo,
    noise::{Figure, Verdict},
    series::MatchBy,
};

/// Writes the comparison as pretty JSON followed by a newline.
pub fn write_json(diff: &Diff, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, diff)?;
    writeln!(out)
}

/// Writes the comparison as text: the runs and the verdict, the settings, the `top` busiest
/// processes, swap.
pub fn write_text(diff: &Diff, top: usize, out: &mut impl Write) -> io::Result<()> {
    write_runs(diff, out)?;
    write_settings(diff, out)?;
    write_processes(diff, top, out)?;
    write_swap(diff, out)
}

fn write_runs(diff: &Diff, out: &mut impl Write) -> io::Result<()> {
    for (tag, run) in [("A", &diff.a), ("B", &diff.b)] {
        writeln!(out, "{tag}: {}", describe(run))?;
    }
    let figures = match diff.differing_figures {
        0 => "no difference beyond noise".to_string(),
        1 => "1 figure differs beyond noise (marked *)".to_string(),
        n => format!("{n} figures differ beyond noise (marked *)"),
    };
    let settings = match diff.differing_settings {
        0 => String::new(),
        1 => "; 1 setting differs (marked *)".to_string(),
        n => format!("; {n} settings differ (marked *)"),
    };
    writeln!(out, "\nB against A: {figures}{settings}")
}

/// The file, what it traced, for how long. A file that ends early says so here in a word; the
/// command said why on stderr.
fn describe(run: &RunInfo) -> String {
    let complete = if run.problem.is_some() {
        "complete "
    } else {
        ""
    };
    format!(
        "{}: traced {} for {:.2} s, {} {complete}intervals of {}",
        units::printable(&run.path),
        units::printable(&run.traced),
        run.duration_s,
        run.intervals,
        units::duration_ns((run.interval_ms * 1e6) as u64)
    )
}

fn write_settings(diff: &Diff, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "\n  {:<24} {:<20} B", "SETTING", "A")?;
    for s in &diff.settings {
        let value = |v: &Option<String>| text_or(v.as_deref(), "-");
        writeln!(
            out,
            "{} {:<24} {:<20} {}",
            mark(s.differs),
            s.name,
            value(&s.a),
            value(&s.b)
        )?;
    }
    Ok(())
}

/// Column headings of process rows; swap rows have the first two, counting pages.
const COLUMNS: [&str; 7] = ["COUNT", "RATE/s", "SHARE", "P50", "P99", "P99.9", "MAX"];
const SWAP_COLUMNS: [&str; 2] = ["PAGES", "PAGES/s"];

fn write_processes(diff: &Diff, top: usize, out: &mut impl Write) -> io::Result<()> {
    let by = match diff.match_by {
        MatchBy::Comm => "command name",
        MatchBy::Pid => "pid",
    };
    writeln!(
        out,
        "\nprocesses, matched by {by} (* = beyond both runs' noise; - = no events):"
    )?;
    if diff.processes.is_empty() {
        return writeln!(out, "  none in either run");
    }
    write_columns(&COLUMNS, out)?;
    for process in diff.processes.iter().take(top) {
        writeln!(
            out,
            "{} {} (processes: A {}, B {})",
            mark(process.differs),
            units::printable(&process.key),
            process.processes_a,
            process.processes_b
        )?;
        for row in &process.rows {
            write_row(row, out)?;
        }
    }
    let hidden = &diff.processes[top.min(diff.processes.len())..];
    if !hidden.is_empty() {
        let differ = hidden.iter().filter(|p| p.differs).count();
        writeln!(
            out,
            "... and {} more (of which {differ} differ; see --top, or --json for all)",
            hidden.len()
        )?;
    }
    Ok(())
}

fn write_swap(diff: &Diff, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "\nswap, machine-wide and by memory cgroup:")?;
    write_columns(&SWAP_COLUMNS, out)?;
    writeln!(out, "  all")?;
    for row in &diff.swap.total {
        write_row(row, out)?;
    }
    for memcg in &diff.swap.memcgs {
        write_memcg(memcg, out)?;
    }
    Ok(())
}

fn write_memcg(memcg: &MemcgDiff, out: &mut impl Write) -> io::Result<()> {
    let path = |p: &Option<String>| text_or(p.as_deref(), "(not in this run)");
    if memcg.path_a == memcg.path_b {
        writeln!(out, "  memcg {}", path(&memcg.path_a))?;
    } else {
        writeln!(out, "  memcg A {}", path(&memcg.path_a))?;
        writeln!(out, "        B {}", path(&memcg.path_b))?;
    }
    let limit = |bytes: Option<u64>| bytes.map_or("none".into(), units::bytes);
    writeln!(
        out,
        "{} limit A {}, B {}",
        mark(memcg.limit_differs),
        limit(memcg.memory_limit_a_bytes),
        limit(memcg.memory_limit_b_bytes)
    )?;
    for row in &memcg.rows {
        write_row(row, out)?;
    }
    Ok(())
}

fn write_columns(columns: &[&str], out: &mut impl Write) -> io::Result<()> {
    write!(out, "{:<23}", "")?;
    for column in columns {
        write!(out, " {column:>9}")?;
    }
    writeln!(out)
}

/// The three lines of a row: A, B and the change, each figure under its column.
fn write_row(row: &RowDiff, out: &mut impl Write) -> io::Result<()> {
    let figure = |f: Figure| row.figures.iter().find(|d| d.figure == f);
    let cells = |value: &dyn Fn(&FigureDiff) -> String| -> Vec<String> {
        COLUMNS[1..]
            .iter()
            .zip(Figure::PROCESS)
            .map(|(_, f)| figure(f).map_or(String::new(), value))
            .collect()
    };
    let side = |count: u64, pick: fn(&FigureDiff) -> Option<f64>| {
        let mut line = vec![units::count(count)];
        line.extend(cells(&|d| {
            pick(d).map_or("-".into(), |v| format_value(d.figure, v))
        }));
        line
    };
    let mut changes = vec![change(row.count_a as f64, row.count_b as f64, false)];
    changes.extend(cells(&|d| match (d.a, d.b) {
        (Some(a), Some(b)) => change(a, b, d.verdict == Verdict::Differs),
        _ => "-".into(),
    }));
    let label = format!("{} {}", mark(row.differs), row.kind);
    write_cells(out, &format!("{label:<20}A"), &side(row.count_a, |d| d.a))?;
    write_cells(out, &format!("{:<20}B", ""), &side(row.count_b, |d| d.b))?;
    write_cells(out, &format!("{:<20}Δ", ""), &changes)
}

fn write_cells(out: &mut impl Write, label: &str, cells: &[String]) -> io::Result<()> {
    let line: String = cells.iter().map(|c| format!(" {c:>9}")).collect();
    writeln!(out, "  {label}{}", line.trim_end())
}

fn format_value(figure: Figure, value: f64) -> String {
    match figure {
        Figure::RatePerS | Figure::Share if value == 0.0 => "0".into(),
        Figure::RatePerS if value < 10.0 => format!("{value:.1}"),
        Figure::RatePerS => units::count(value.round() as u64),
        Figure::Share if value < 0.1 => format!("{:.2}%", value * 100.0),
        Figure::Share => format!("{:.1}%", value * 100.0),
        _ => units::duration_ns(value.round() as u64),
    }
}

/// `+35%`, `-12%`, `×14` for ten times or more, `new` from nothing; `*` when beyond noise.
fn change(a: f64, b: f64, differs: bool) -> String {
    let text = if a == b {
        "0%".to_string()
    } else if a <= 0.0 {
        "new".to_string()
    } else if b / a >= 10.0 {
        format!("×{:.0}", b / a)
    } else {
        format!("{:+.0}%", (b - a) / a * 100.0)
    };
    if differs { format!("{text}*") } else { text }
}

/// A name from the recorded machine made printable, or `missing`.
fn text_or(text: Option<&str>, missing: &str) -> String {
    text.map_or_else(|| missing.to_string(), |t| units::printable(t).into_owned())
}

fn mark(differs: bool) -> char {
    if differs { '*' } else { ' ' }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
