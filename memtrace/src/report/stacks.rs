//! `record --stacks`: where the pages faults brought in came from. A summary for the terminal
//! and JSON (the user functions that took the most, and whether the stacks could be walked),
//! Brendan Gregg's folded format (`--folded`), and the flame graph (`--flamegraph`, inferno),
//! pages as the weight.
use std::io::{self, Write};

use inferno::flamegraph::{self, Options, color::BasicPalette, color::Palette};
use serde::{Deserialize, Serialize};

use super::units;
use crate::model::stacks::StackLog;

/// User functions listed in the summary.
pub const TOP_FUNCTIONS: usize = 5;
/// The share of pages under one-frame user stacks past which the summary gives advice.
pub const SHALLOW_PCT: f64 = 10.0;

/// The stacks' summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StacksReport {
    /// The recording counted stacks (`record --stacks`).
    pub enabled: bool,
    /// Pages brought in by traced faults, under how many distinct stacks.
    pub pages: u64,
    /// Those pages in KiB.
    pub kb: u64,
    pub stacks: u64,
    /// Pages whose user stack had one frame or none (no frame pointers), or could not be read.
    pub shallow_pages: u64,
    pub unavailable_pages: u64,
    /// The kernel's count map filled up: faults under new stacks went uncounted.
    pub map_full: bool,
    /// The innermost user functions with the most pages.
    pub top_functions: Vec<FunctionPages>,
}

/// Pages brought in from one user function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FunctionPages {
    pub function: String,
    pub comm: String,
    pub pages: u64,
}

impl StacksReport {
    /// The summary of `log`, recorded on a machine with pages of `page_size` bytes.
    pub fn new(log: &StackLog, page_size: u64) -> Self {
        Self {
            enabled: log.enabled,
            pages: log.pages,
            kb: log.pages * page_size / 1024,
            stacks: log.stacks() as u64,
            shallow_pages: log.shallow_pages,
            unavailable_pages: log.unavailable_pages,
            map_full: log.map_full,
            top_functions: log
                .top_leaves(TOP_FUNCTIONS)
                .into_iter()
                .map(|(function, comm, pages)| FunctionPages {
                    function,
                    comm,
                    pages,
                })
                .collect(),
        }
    }

    fn pct(&self, pages: u64) -> f64 {
        100.0 * pages as f64 / self.pages.max(1) as f64
    }
}

/// The terminal summary; nothing without `--stacks`.
pub fn write(report: &StacksReport, out: &mut impl Write) -> io::Result<()> {
    if !report.enabled {
        return Ok(());
    }
    writeln!(
        out,
        "\nFault stacks: {} pages ({}) brought in under {} stacks; `memtrace report --flamegraph` draws them",
        units::count(report.pages),
        units::bytes(report.kb * 1024),
        report.stacks
    )?;
    for f in &report.top_functions {
        writeln!(
            out,
            "{:>6.1}%  {} ({})",
            report.pct(f.pages),
            units::printable(&f.function),
            units::printable(&f.comm)
        )?;
    }
    if report.pct(report.shallow_pages) >= SHALLOW_PCT {
        writeln!(
            out,
            "{:.0}% of the pages have a user stack of one frame: those programs were built without \
             frame pointers. Rebuild them with -fno-omit-frame-pointer (C, C++) or \
             RUSTFLAGS=\"-C force-frame-pointers=yes\" (Rust) for whole stacks.",
            report.pct(report.shallow_pages)
        )?;
    }
    if report.unavailable_pages > 0 {
        writeln!(
            out,
            "{:.1}% of the pages have no user stack: the kernel could not read it.",
            report.pct(report.unavailable_pages)
        )?;
    }
    if report.map_full {
        writeln!(
            out,
            "the kernel's stack map filled up: faults under stacks past the first {} went uncounted \
             (--stacks-every N counts fewer)",
            memtrace_common::growth::MAX_STACK_KEYS
        )?;
    }
    Ok(())
}

/// Brendan Gregg's folded format: one `comm;frame;...;frame pages` line per stack.
pub fn write_folded(log: &StackLog, out: &mut impl Write) -> io::Result<()> {
    for line in log.folded() {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The flame graph of the folded stacks as an SVG, pages as the weight.
pub fn write_flamegraph(log: &StackLog, title: &str, out: &mut impl Write) -> io::Result<()> {
    let lines = log.folded();
    let mut options = Options::default();
    options.title = title.to_string();
    options.count_name = "pages".to_string();
    options.name_type = "Function:".to_string();
    options.deterministic = true;
    options.colors = Palette::Basic(BasicPalette::Mem);
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        report::fixture::render,
        samples::growth::{StackSample, StacksInterval},
    };

    fn log(user: &[&str], pages: u64) -> StackLog {
        let mut frames: Vec<String> = user.iter().map(|f| f.to_string()).collect();
        frames.push("do_anonymous_page".into());
        let mut log = StackLog::default();
        log.apply(&StacksInterval {
            enabled: true,
            stacks: vec![StackSample {
                pid: 9,
                comm: "leaker".into(),
                frames,
                user_frames: user.len() as u32,
                pages,
            }],
            map_full: false,
        });
        log
    }

    #[test]
    fn the_summary_names_the_function_and_advises_on_shallow_stacks() {
        let deep = StacksReport::new(&log(&["main", "leak_pages"], 1000), 4096);
        assert_eq!(
            render(|out| write(&deep, out)),
            "\nFault stacks: 1.00k pages (3.91M) brought in under 1 stacks; `memtrace report --flamegraph` draws them\n\
             \u{20}100.0%  leak_pages (leaker)\n"
        );
        let shallow = StacksReport::new(&log(&["memset"], 10), 4096);
        assert!(
            render(|out| write(&shallow, out))
                .contains("100% of the pages have a user stack of one frame")
        );
        assert_eq!(render(|out| write(&StacksReport::default(), out)), "");
    }

    #[test]
    fn folded_lines_and_an_svg_that_names_the_frames() {
        let log = log(&["main", "leak_pages"], 1000);
        assert_eq!(
            render(|out| write_folded(&log, out)),
            "leaker;main;leak_pages;do_anonymous_page 1000\n"
        );
        let svg = render(|out| write_flamegraph(&log, "pages brought in", out));
        assert!(svg.starts_with("<?xml"), "{svg}");
        assert!(svg.contains("leak_pages") && svg.contains("pages brought in"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
