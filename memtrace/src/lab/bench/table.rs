//! The benchmark's result table, rendered as markdown into any writer.
use std::io::{self, Write};

/// One line of the result table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row {
    /// Which benchmark (fault overhead, swap storm, ...).
    pub measurement: String,
    /// What was compared or varied (the tracer, the load, the process count).
    pub condition: String,
    /// The figure, with its unit.
    pub result: String,
    /// Spread over the runs, or "—".
    pub spread: String,
    /// The target the figure is held to, or "—".
    pub target: String,
    /// met / missed by how much / reference / n/a (reason).
    pub verdict: String,
}

impl Row {
    /// A row for a figure that could not be measured, with the reason in the verdict (cut
    /// short: a tool's whole output does not belong in a table cell).
    pub fn unavailable(measurement: &str, condition: &str, target: &str, reason: &str) -> Self {
        let reason = shorten(reason.trim(), REASON_CHARS);
        Self {
            measurement: measurement.into(),
            condition: condition.into(),
            result: "—".into(),
            spread: "—".into(),
            target: target.into(),
            verdict: format!("n/a ({reason})"),
        }
    }
}

/// Longest reason kept in a table cell.
const REASON_CHARS: usize = 200;

/// The text cut to `max` characters, with an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

const HEADINGS: [&str; 6] = [
    "measurement",
    "condition",
    "result",
    "spread",
    "target",
    "verdict",
];

/// Writes the rows as a markdown table.
pub fn write_markdown(rows: &[Row], out: &mut impl Write) -> io::Result<()> {
    write_line(out, &HEADINGS.map(String::from))?;
    writeln!(out, "|{}", "---|".repeat(HEADINGS.len()))?;
    for row in rows {
        write_line(
            out,
            &[
                row.measurement.clone(),
                row.condition.clone(),
                row.result.clone(),
                row.spread.clone(),
                row.target.clone(),
                row.verdict.clone(),
            ],
        )?;
    }
    Ok(())
}

fn write_line(out: &mut impl Write, cells: &[String; 6]) -> io::Result<()> {
    write!(out, "|")?;
    for cell in cells {
        write!(out, " {} |", escape(cell))?;
    }
    writeln!(out)
}

/// A cell may not contain a pipe (it would start a new column) nor a line break.
fn escape(cell: &str) -> String {
    let text = if cell.is_empty() { "—" } else { cell };
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_markdown_table() {
        let rows = [
            Row {
                measurement: "fault overhead".into(),
                condition: "memtrace".into(),
                result: "+1.0 %".into(),
                spread: "a|b".into(),
                target: "≤ 5 %".into(),
                verdict: "met".into(),
            },
            Row::unavailable("x", "bpftrace", "—", "not installed"),
        ];
        let mut out = Vec::new();
        write_markdown(&rows, &mut out).expect("write");
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "| measurement | condition | result | spread | target | verdict |"
        );
        assert_eq!(lines[1], "|---|---|---|---|---|---|");
        assert_eq!(
            lines[2],
            "| fault overhead | memtrace | +1.0 % | a\\|b | ≤ 5 % | met |"
        );
        assert_eq!(
            lines[3],
            "| x | bpftrace | — | — | — | n/a (not installed) |"
        );
    }

    #[test]
    fn long_reasons_are_cut() {
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("ééé", 2), "éé…");
        let row = Row::unavailable("m", "c", "t", &"x".repeat(500));
        assert_eq!(
            row.verdict.chars().count(),
            "n/a ()…".chars().count() + REASON_CHARS
        );
    }

    #[test]
    fn empty_cells_and_line_breaks() {
        assert_eq!(escape(""), "—");
        assert_eq!(escape("a\nb"), "a b");
    }
}
