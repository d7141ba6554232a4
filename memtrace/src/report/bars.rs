//! Log2 histograms with bars, in the layout BCC's tools made familiar.
use std::io::{self, Write};

use super::{ClassReport, ProcessReport, units};

/// Width of the widest bar.
const BAR_WIDTH: u64 = 40;

/// Writes one histogram per fault class of `process` that saw faults.
pub fn write_process(process: &ProcessReport, out: &mut impl Write) -> io::Result<()> {
    for (class, stats) in process.classes.iter() {
        if stats.latency.count == 0 {
            continue;
        }
        writeln!(
            out,
            "\n{} faults of {} [{}]: {} faults",
            class.name(),
            units::printable(&process.comm),
            process.pid,
            stats.latency.count
        )?;
        write_histogram(stats, out)?;
    }
    Ok(())
}

/// Writes the log2 buckets of one class.
pub fn write_histogram(stats: &ClassReport, out: &mut impl Write) -> io::Result<()> {
    let max = stats
        .log2_buckets
        .iter()
        .map(|b| b.count)
        .max()
        .unwrap_or(0);
    writeln!(out, "{:>24} : {:<9} distribution", "nsecs", "count")?;
    for bucket in &stats.log2_buckets {
        let stars = (bucket.count * BAR_WIDTH).div_ceil(max.max(1)) as usize;
        writeln!(
            out,
            "{:>10} -> {:<10} : {:<9} |{:<width$}|",
            bucket.lo_ns,
            bucket.hi_ns,
            bucket.count,
            "*".repeat(stars),
            width = BAR_WIDTH as usize
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture::{self, render};

    /// (lo, hi, count, stars) of every bucket line, in order.
    fn buckets(text: &str) -> Vec<(u64, u64, u64, usize)> {
        text.lines()
            .filter(|l| l.contains(" -> "))
            .map(|l| {
                let (numbers, bar) = l.split_once('|').expect("a bar");
                let words: Vec<&str> = numbers.split_whitespace().collect();
                let n = |i: usize| words[i].parse::<u64>().expect("a number");
                let bar = bar.strip_suffix('|').expect("a closed bar");
                assert_eq!(bar.chars().count(), BAR_WIDTH as usize, "{l:?}");
                (n(0), n(2), n(4), bar.matches('*').count())
            })
            .collect()
    }

    /// The text of one histogram: from its heading to the next blank line.
    fn histogram<'a>(text: &'a str, heading: &str) -> &'a str {
        let start = text
            .find(heading)
            .unwrap_or_else(|| panic!("no {heading:?} in:\n{text}"));
        let rest = &text[start..];
        rest.find("\n\n").map_or(rest, |end| &rest[..end])
    }

    #[test]
    fn one_histogram_per_class_that_saw_faults() {
        let report = fixture::report();
        let text = render(|out| write_process(&report.processes[0], out));
        let headings: Vec<&str> = text.lines().filter(|l| l.contains(" faults of ")).collect();
        assert_eq!(
            headings,
            [
                "minor faults of postgres [100]: 4 faults",
                "major_file faults of postgres [100]: 2 faults",
                "swap_in faults of postgres [100]: 1 faults",
            ]
        );
        assert!(
            text.starts_with("\nminor faults of postgres [100]"),
            "{text}"
        );
        // 500 ns, 1000 ns, then 1500 and 2000 ns in the same bucket: the fullest one is 40
        // stars wide, the others in proportion.
        assert_eq!(
            buckets(histogram(&text, "minor faults")),
            [(256, 511, 1, 20), (512, 1023, 1, 20), (1024, 2047, 2, 40)]
        );
        assert_eq!(
            buckets(histogram(&text, "major_file faults")),
            [(2_097_152, 4_194_303, 2, 40)]
        );
        assert_eq!(
            buckets(histogram(&text, "swap_in faults")),
            [(131_072, 262_143, 1, 40)]
        );
    }

    #[test]
    fn classes_without_faults_are_left_out() {
        let report = fixture::report();
        let redis = &report.processes[1];
        let text = render(|out| write_process(redis, out));
        assert_eq!(text.matches(" faults of ").count(), 1, "{text}");
        assert!(
            text.contains("\nminor faults of redis [200]: 3 faults\n"),
            "{text}"
        );
        assert_eq!(buckets(&text), [(512, 1023, 3, 40)]);
    }

    #[test]
    fn empty_buckets_in_between_are_shown_without_stars() {
        let stats = fixture::stats(&[1, 16, 16, 16]);
        let class = ClassReport::new(Some(&stats), None);
        let text = render(|out| write_histogram(&class, out));
        assert_eq!(
            buckets(&text),
            [
                (1, 1, 1, 14),
                (2, 3, 0, 0),
                (4, 7, 0, 0),
                (8, 15, 0, 0),
                (16, 31, 3, 40)
            ]
        );
        // The heading's colon is over the rows' colons.
        let colons: Vec<Option<usize>> = text.lines().map(|l| l.find(" : ")).collect();
        assert!(colons.iter().all(|c| *c == Some(24)), "{text}");
        assert!(text.starts_with("                   nsecs : count     distribution\n"));
    }

    #[test]
    fn a_process_without_faults_writes_nothing() {
        let mut report = fixture::report();
        let mut process = report.processes.remove(0);
        process.classes = Default::default();
        assert_eq!(render(|out| write_process(&process, out)), "");
    }
}
