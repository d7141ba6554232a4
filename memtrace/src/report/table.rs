//! The final terminal report: a header and one row per process and fault class, the processes
//! that spent most time in faults first.
use std::io::{self, Write};

use super::{ClassReport, Report, units};
use crate::samples::StopReason;

/// Column headings of the table. CPU%, WAIT% and BLOCK% split each row's total: on a CPU,
/// waiting runnable for one, and blocked (asleep: I/O, a page under I/O, a lock).
const HEADER: [&str; 14] = [
    "PID", "COMM", "CLASS", "COUNT", "TOTAL", "MEAN", "P50", "P90", "P99", "P99.9", "MAX", "CPU%",
    "WAIT%", "BLOCK%",
];

/// Writes the header lines and the table of the `top` busiest processes.
pub fn write(report: &Report, top: usize, out: &mut impl Write) -> io::Result<()> {
    write_header(report, out)?;
    write_oom(report, out)?;
    // Processes that only stalled have no row here (the stalls section shows them).
    let faulted: Vec<_> = report.processes.iter().filter(|p| p.faults > 0).collect();
    if faulted.is_empty() {
        return writeln!(out, "no faults recorded");
    }
    writeln!(
        out,
        "{:>7} {:<16} {:<10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>5} {:>6}",
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
        HEADER[10],
        HEADER[11],
        HEADER[12],
        HEADER[13]
    )?;
    for process in faulted.iter().take(top) {
        let mut first = true;
        for (class, stats) in process.classes.iter() {
            if stats.latency.count == 0 {
                continue;
            }
            let (pid, comm) = if first {
                who(process)
            } else {
                (String::new(), String::new())
            };
            first = false;
            write_row(out, &pid, &comm, class.name(), stats)?;
        }
    }
    let hidden = faulted.len().saturating_sub(top);
    if hidden > 0 {
        writeln!(
            out,
            "... and {hidden} more processes (see --top, or --json for all)"
        )?;
    }
    if faulted.len() > 1 {
        for (class, stats) in report.total.iter() {
            if stats.latency.count > 0 {
                write_row(out, "all", "", class.name(), stats)?;
            }
        }
    }
    Ok(())
}

/// The PID and COMM cells of a process: folded processes show how many, e.g. `true ×2400`.
pub fn who(process: &super::ProcessReport) -> (String, String) {
    if process.folded_processes > 0 {
        (
            "-".into(),
            format!(
                "{} ×{}",
                units::printable(&process.comm),
                process.folded_processes
            ),
        )
    } else {
        (
            process.pid.to_string(),
            units::printable(&process.comm).into_owned(),
        )
    }
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
    let share = |part: Option<u64>| match part {
        Some(ns) if l.total_ns > 0 => format!("{:.0}", ns as f64 * 100.0 / l.total_ns as f64),
        _ => "-".to_string(),
    };
    writeln!(
        out,
        "{pid:>7} {comm:<16} {class:<10} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5} {:>5} {:>6}",
        l.count,
        d(l.total_ns),
        d(l.mean_ns),
        d(l.p50_ns),
        d(l.p90_ns),
        d(l.p99_ns),
        d(l.p999_ns),
        d(l.max_ns),
        share(stats.on_cpu_ns),
        share(stats.waiting_ns),
        share(stats.blocked_ns)
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
        units::printable(&report.traced),
        report.duration_s,
        match report.stop_reason {
            StopReason::Duration => "duration reached",
            StopReason::Interrupted => "interrupted",
            StopReason::TracedExited => "traced processes exited",
            StopReason::Unfinished => "the recording has no end",
            StopReason::Rotated => "the file was rotated; the run went on in the next one",
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
    if report.kernel_counters.children_dropped > 0 {
        writeln!(
            out,
            "warning: {} child processes did not fit in the pid filter and went untraced",
            report.kernel_counters.children_dropped
        )?;
    }
    if report.kernel_counters.stalls_dropped > 0 {
        writeln!(
            out,
            "warning: {} stalls did not fit in the in-flight map; their latency is missing",
            report.kernel_counters.stalls_dropped
        )?;
    }
    if report.processes.iter().any(|p| p.folded_processes > 0) {
        writeln!(
            out,
            "note: ended processes beyond the {} busiest are folded by command (PID -, COMM name ×count)",
            crate::model::KEEP_EXITED
        )?;
    }
    let untimed: u64 = report.processes.iter().map(|p| p.untimed_faults).sum();
    if untimed > 0 {
        writeln!(
            out,
            "note: {untimed} faults taken through get_user_pages (execve arguments, MAP_POPULATE, \
             mlock) have no start to time: counted per process (untimed_faults), in no class"
        )?;
    }
    if report.kernel_counters.park_failed > 0 {
        writeln!(
            out,
            "warning: {} faults lost their in-flight slot to another thread (thread ids equal \
             modulo 65 536); their latency is missing",
            report.kernel_counters.park_failed
        )?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use memtrace_common::StallKind;

    use super::*;
    use crate::{
        report::{
            View,
            fixture::{self, render, words_of},
        },
        samples::ProcessSample,
    };

    fn table(report: &Report, top: usize) -> String {
        render(|out| write(report, top, out))
    }

    /// The words of every line, blank lines left out.
    fn rows(text: &str) -> Vec<Vec<&str>> {
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .filter(|w| !w.is_empty())
            .collect()
    }

    /// The rows of the table proper: from the column headings to the end.
    fn table_rows(text: &str) -> Vec<Vec<&str>> {
        let rows = rows(text);
        let start = rows
            .iter()
            .position(|w| w[..] == HEADER[..])
            .unwrap_or_else(|| panic!("no column headings in:\n{text}"));
        rows[start + 1..].to_vec()
    }

    #[test]
    fn header_says_what_was_traced_and_warns_of_losses_and_failed_hooks() {
        let text = render(|out| write_header(&fixture::report(), out));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "traced every process for 2.00 s (duration reached): 11 faults, 4 lost, 0 malformed",
                "kernel 6.8.0-test, vm: swappiness 60, min_free_kbytes 67584, THP madvise (defrag defer)",
                "warning: tp_btf/mm_vmscan_wakeup_kswapd not attached: no such tracepoint",
                "warning: 4 records were lost because the ring buffer was full; raise --ring-size",
                "warning: 1 faults lost their in-flight slot to another thread (thread ids equal \
                 modulo 65 536); their latency is missing",
                "",
            ]
        );
        assert!(
            !text.contains("page_fault_user"),
            "attached hooks are not listed:\n{text}"
        );
    }

    #[test]
    fn no_lost_line_when_nothing_was_lost() {
        let mut second = fixture::second_interval();
        second.counters = Default::default();
        second.malformed = 2;
        second.first_malformed = Some("record of 3 bytes is too short for a kind".into());
        let model = fixture::model_of(&[fixture::first_interval(), second], None);
        let mut report = Report::new(&model, &View::default());
        report.tunables = Default::default();
        let text = render(|out| write_header(&report, out));
        assert_eq!(
            text.lines().next(),
            Some(
                "traced every process for 2.00 s (the recording has no end): 11 faults, 0 lost, 2 malformed"
            ),
            "{text}"
        );
        assert!(!text.contains("records were lost"), "{text}");
        assert!(!text.contains("parking map"), "{text}");
        assert!(
            !text.contains("vm:"),
            "no tunables, no tunables line:\n{text}"
        );
    }

    #[test]
    fn rows_carry_each_class_numbers_busiest_process_first() {
        let text = table(&fixture::report(), 10);
        let expected: Vec<Vec<&str>> = vec![
            vec![
                "100", "postgres", "minor", "4", "5.00µs", "1.25µs", "1.00µs", "2.00µs", "2.00µs",
                "2.00µs", "2.00µs", "75", "2", "22",
            ],
            vec![
                "major_file",
                "2",
                "6.00ms",
                "3.00ms",
                "3.00ms",
                "3.00ms",
                "3.00ms",
                "3.00ms",
                "3.00ms",
                "75",
                "2",
                "22",
            ],
            vec![
                "swap_in", "1", "250µs", "250µs", "250µs", "250µs", "250µs", "250µs", "250µs",
                "75", "2", "22",
            ],
            vec![
                "200", "redis", "minor", "3", "3.00µs", "1.00µs", "1.00µs", "1.00µs", "1.00µs",
                "1.00µs", "1.00µs", "75", "2", "22",
            ],
            vec![
                "300", "cron", "minor", "1", "700ns", "700ns", "700ns", "700ns", "700ns", "700ns",
                "700ns", "75", "2", "23",
            ],
            // 8 minor faults of 8.7 µs in all: the mean is 1087 ns.
            vec![
                "all", "minor", "8", "8.70µs", "1.09µs", "1.00µs", "2.00µs", "2.00µs", "2.00µs",
                "2.00µs", "75", "2", "23",
            ],
            vec![
                "all",
                "major_file",
                "2",
                "6.00ms",
                "3.00ms",
                "3.00ms",
                "3.00ms",
                "3.00ms",
                "3.00ms",
                "3.00ms",
                "75",
                "2",
                "22",
            ],
            vec![
                "all", "swap_in", "1", "250µs", "250µs", "250µs", "250µs", "250µs", "250µs",
                "250µs", "75", "2", "22",
            ],
        ];
        assert_eq!(table_rows(&text), expected, "{text}");
        // A process's second class leaves PID and COMM blank.
        let major = text
            .lines()
            .find(|l| l.contains("major_file"))
            .unwrap_or_default();
        assert!(major.starts_with(&" ".repeat(25)), "{major:?}");
        assert!(!text.contains("more processes"), "{text}");
    }

    #[test]
    fn top_cuts_the_table_and_says_how_many_are_hidden() {
        let report = fixture::report();
        let text = table(&report, 2);
        assert!(
            text.contains("\n... and 1 more processes (see --top, or --json for all)\n"),
            "{text}"
        );
        assert!(words_of(&text, "300").is_empty(), "cron is cut:\n{text}");
        // The totals still count every process, the hidden one included.
        assert_eq!(words_of(&text, "all")[..3], ["all", "minor", "8"], "{text}");
        let text = table(&report, 1);
        assert!(text.contains("... and 2 more processes"), "{text}");
        assert!(words_of(&text, "200").is_empty(), "{text}");
        assert_eq!(
            words_of(&text, "100")[..4],
            ["100", "postgres", "minor", "4"]
        );
    }

    #[test]
    fn a_process_that_only_stalled_takes_no_row_and_no_top_slot() {
        let mut second = fixture::second_interval();
        second.processes.push(ProcessSample {
            pid: 400,
            comm: "kworker".into(),
            named: true,
            stalls: vec![fixture::stall(
                StallKind::DirectReclaim,
                &[900_000_000],
                0,
                &[],
            )],
            ..ProcessSample::default()
        });
        let model = fixture::model_of(&[fixture::first_interval(), second], None);
        let report = Report::new(&model, &View::default());
        assert_eq!(report.processes[0].pid, 400, "the most stalled ranks first");
        let text = table(&report, 2);
        assert!(words_of(&text, "400").is_empty(), "{text}");
        assert!(
            !words_of(&text, "200").is_empty(),
            "redis keeps its slot:\n{text}"
        );
        assert!(text.contains("... and 1 more processes"), "{text}");
        let only_stalls = Report::new(
            &model,
            &View {
                pids: Some(vec![400]),
            },
        );
        assert!(table(&only_stalls, 5).ends_with("no faults recorded\n"));
    }

    #[test]
    fn one_process_has_no_totals() {
        let view = View {
            pids: Some(vec![200]),
        };
        let report = Report::new(&fixture::model(), &view);
        let text = table(&report, 10);
        assert_eq!(
            table_rows(&text),
            [[
                "200", "redis", "minor", "3", "3.00µs", "1.00µs", "1.00µs", "1.00µs", "1.00µs",
                "1.00µs", "1.00µs", "75", "2", "22"
            ]],
            "{text}"
        );
    }

    #[test]
    fn an_empty_recording_says_so() {
        let report = Report::new(&fixture::model_of(&[], None), &View::default());
        let text = table(&report, 10);
        assert!(
            text.starts_with(
                "traced every process for 0.00 s (the recording has no end): 0 faults, 0 lost, 0 malformed\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("\nno faults recorded\n"), "{text}");
        assert!(!text.contains("PID"), "{text}");
        assert!(!text.contains("OOM"), "{text}");
    }

    #[test]
    fn oom_kills_come_before_the_table_and_lost_oom_records_are_said() {
        let mut end = fixture::end();
        end.counters.lost[memtrace_common::EventKind::OomKill as usize] = 1;
        end.counters.lost[memtrace_common::EventKind::OomAftermath as usize] = 1;
        let model = fixture::model_of(&fixture::intervals(), Some(&end));
        let text = table(&Report::new(&model, &View::default()), 10);
        assert!(text.contains(", 6 lost, "), "{text}");
        let position = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("no {needle:?} in:\n{text}"))
        };
        let warning = position("\nwarning: 2 OOM records were lost\n");
        let count = position("\n1 OOM kill(s) on the machine during the recording:\n");
        let block = position(
            "\n== OOM kill at +4.00s in memcg /sys/fs/cgroup/memory/box [traced process] ==\n",
        );
        let table = position("\n    PID COMM ");
        assert!(warning < count && count < block && block < table, "{text}");
    }

    #[test]
    fn no_oom_no_oom_lines() {
        let model = fixture::model_of(&[fixture::first_interval()], Some(&fixture::end()));
        let text = table(&Report::new(&model, &View::default()), 10);
        assert!(!text.contains("OOM"), "{text}");
        assert_eq!(
            words_of(&text, "100")[..4],
            ["100", "postgres", "minor", "4"]
        );
    }
}
