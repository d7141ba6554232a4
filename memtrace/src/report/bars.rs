//! Log2 histograms with bars, in the layout BCC's tools made familiar.
use std::io::{self, Write};

use super::{ClassReport, ProcessReport};

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
            process.comm,
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
