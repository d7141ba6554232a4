//! The selfcheck's renderers: a terminal table, one block per scenario, and the JSON document.
use std::io::{self, Write};

use super::{
    SelfCheck,
    check::{Check, Tolerance, Value, Verdict},
};
use crate::report::units::{duration_ns, printable};

/// Writes the table.
pub fn write(run: &SelfCheck, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "memtrace selfcheck: memtrace {} on Linux {} ({:.1} s; kernel.task_delayacct was {}, \
         restored)",
        run.memtrace_version,
        printable(&run.kernel),
        run.duration_s,
        run.task_delayacct_was
    )?;
    let width = run
        .checks()
        .map(|c| c.figure.chars().count())
        .chain(["FIGURE".len()])
        .max()
        .unwrap_or(0);
    for scenario in &run.scenarios {
        writeln!(out, "\n{}: {}", scenario.name, scenario.what)?;
        writeln!(out, "  {}", scenario.traced)?;
        writeln!(
            out,
            "  {:<width$} {:>12} {:>12}  {:<14} {:<6} SOURCE",
            "FIGURE", "MEMTRACE", "KERNEL", "TOLERANCE", "RESULT"
        )?;
        for check in &scenario.checks {
            write_row(check, width, out)?;
        }
    }
    let total = run.checks().count();
    let failed = run.checks().filter(|c| c.verdict == Verdict::Fail).count();
    if failed == 0 {
        writeln!(
            out,
            "\nselfcheck passed: all {total} figures agree with the kernel's own."
        )
    } else {
        writeln!(
            out,
            "\nselfcheck FAILED: {failed} of {total} figures disagree with the kernel's own \
             (rows marked FAIL): do not trust those figures of memtrace on this kernel."
        )
    }
}

fn write_row(check: &Check, width: usize, out: &mut impl Write) -> io::Result<()> {
    let result = match check.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "FAIL",
    };
    writeln!(
        out,
        "  {:<width$} {:>12} {:>12}  {:<14} {:<6} {}",
        check.figure,
        value(check.memtrace.as_ref()),
        value(check.kernel.as_ref()),
        tolerance(check.tolerance),
        result,
        check.source
    )?;
    if let Some(note) = &check.note {
        writeln!(out, "    ^ {}", printable(note))?;
    }
    Ok(())
}

/// A figure as the table shows it; counts in full, since they are compared exactly.
fn value(value: Option<&Value>) -> String {
    match value {
        None => "-".to_string(),
        Some(Value::Count(n)) => n.to_string(),
        Some(Value::Ns(ns)) => duration_ns(*ns),
        Some(Value::Kb(kb)) => format!("{kb} kB"),
        Some(Value::Pid(pid)) => pid.to_string(),
        Some(Value::Text(text)) => printable(text).into_owned(),
    }
}

fn tolerance(tolerance: Tolerance) -> String {
    match tolerance {
        Tolerance::Exact => "exact".to_string(),
        Tolerance::Percent(p) => format!("±{p} %"),
        Tolerance::AtLeast => "≥ kernel".to_string(),
        Tolerance::AtMost => "≤ kernel".to_string(),
        Tolerance::Near => "-5..+1ms ±2%".to_string(),
        Tolerance::Wraps { per_event_ns, .. } => {
            format!("+0..{}µs each", per_event_ns / 1000)
        }
    }
}

/// Writes the JSON document (pretty, one trailing newline).
pub fn write_json(run: &SelfCheck, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, run)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::selfcheck::{
        ScenarioOutcome,
        check::{Row, Tolerance},
    };

    fn run(rows: Vec<Row>) -> SelfCheck {
        SelfCheck {
            schema: super::super::SCHEMA.into(),
            memtrace_version: "0.1.0".into(),
            kernel: "6.18.0-test".into(),
            task_delayacct_was: "0".into(),
            duration_s: 12.34,
            scenarios: vec![ScenarioOutcome {
                name: "swap storm".into(),
                what: "writes and reads back 160 MiB".into(),
                traced: "traced pid 42 for 1.00 s, 0 records lost".into(),
                checks: rows.into_iter().map(|r| r.judge("swap storm")).collect(),
            }],
        }
    }

    fn render(run: &SelfCheck) -> String {
        let mut out = Vec::new();
        write(run, &mut out).expect("write");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn a_passing_run_is_one_block_per_scenario_and_a_verdict() {
        let text = render(&run(vec![
            Row::new(
                "reclaim stalls",
                Some(Value::Count(2055)),
                Ok(Value::Count(2055)),
                "taskstats freepages_count",
                Tolerance::Exact,
            ),
            Row::new(
                "reclaim stall time",
                Some(Value::Ns(429_100_000)),
                Ok(Value::Ns(428_700_000)),
                "taskstats freepages_delay_total",
                Tolerance::Wraps {
                    per_event_ns: 10_000,
                    events: 2055,
                },
            ),
        ]));
        let expected = "\
memtrace selfcheck: memtrace 0.1.0 on Linux 6.18.0-test (12.3 s; kernel.task_delayacct was 0, restored)

swap storm: writes and reads back 160 MiB
  traced pid 42 for 1.00 s, 0 records lost
  FIGURE                 MEMTRACE       KERNEL  TOLERANCE      RESULT SOURCE
  reclaim stalls             2055         2055  exact          pass   taskstats freepages_count
  reclaim stall time        429ms        429ms  +0..10µs each  pass   taskstats freepages_delay_total

selfcheck passed: all 2 figures agree with the kernel's own.
";
        assert_eq!(text, expected);
    }

    #[test]
    fn a_failed_row_says_why_beneath_it_and_the_verdict_says_fail() {
        let text = render(&run(vec![
            Row::new(
                "victim comm",
                Some(Value::Text("hog\x1b[31m".into())),
                Err("/dev/kmsg: Permission denied".into()),
                "kernel log",
                Tolerance::Exact,
            ),
            Row::new(
                "victim anon-rss",
                Some(Value::Kb(48_896)),
                Ok(Value::Kb(48_900)),
                "kernel log",
                Tolerance::Exact,
            ),
        ]));
        assert!(
            text.contains(
                "  victim comm      hog\\x1b[31m            -  exact          FAIL   kernel log\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("kernel log\n    ^ /dev/kmsg: Permission denied\n"),
            "{text}"
        );
        assert!(text.contains("48896 kB     48900 kB"), "{text}");
        assert!(text.contains("^ off by -0.01 %"), "{text}");
        assert!(
            text.ends_with("selfcheck FAILED: 2 of 2 figures disagree with the kernel's own (rows marked FAIL): do not trust those figures of memtrace on this kernel.\n"),
            "{text}"
        );
    }

    #[test]
    fn the_json_has_every_row_with_units_and_verdicts() {
        let run = run(vec![Row::new(
            "swap-in fault time",
            Some(Value::Ns(90)),
            Ok(Value::Ns(60)),
            "taskstats swapin_delay_total",
            Tolerance::AtLeast,
        )]);
        let mut out = Vec::new();
        write_json(&run, &mut out).expect("json");
        let json: serde_json::Value = serde_json::from_slice(&out).expect("parses");
        assert_eq!(json["schema"], "memtrace.selfcheck/1");
        let check = &json["scenarios"][0]["checks"][0];
        assert_eq!(check["figure"], "swap-in fault time");
        assert_eq!(check["memtrace"]["unit"], "ns");
        assert_eq!(check["memtrace"]["value"], 90);
        assert_eq!(check["kernel"]["value"], 60);
        assert_eq!(check["tolerance"], "at_least");
        assert_eq!(check["verdict"], "pass");
        assert!(check["note"].is_null());
        let back: SelfCheck = serde_json::from_slice(&out).expect("round trip");
        assert!(back.passed());
        assert_eq!(back.checks().count(), 1);
    }
}
