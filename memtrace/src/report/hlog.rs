//! `memtrace report --hlog FILE`: the recording's latency distributions as an HdrHistogram
//! interval log (format 1.3), for HdrHistogram's own tools: HistogramLogAnalyzer,
//! HistogramLogProcessor, Python's `hdrh`, the Rust crate's `IntervalLogIterator`.
//!
//! One line per interval, process and fault class or stall kind, holding that interval's own
//! histogram (samples are per interval already, so nothing is subtracted). Values are
//! nanoseconds; `Interval_Max` is in milliseconds, as HdrHistogram's Java writer puts it for
//! nanosecond histograms. Timestamps are seconds since the start of the recording, which
//! `StartTime` and `BaseTime` give as wall-clock time.
//!
//! Tags are `<pid>.<start>.<comm>.<class-or-kind>`: `start` is the process's start time as the
//! kernel keeps it (CLOCK_MONOTONIC ns, 0 when unknown), which with the pid tells processes
//! apart across pid reuse; `comm` is the name the report shows, with every character other
//! than printable ASCII, and every `,` and `.`, replaced by `_` (tags may not hold commas or
//! spaces, and the dots then split a tag into exactly four fields); `class-or-kind` is a fault
//! class (`minor`, `major_file`, `swap_in`) or a stall kind (`direct_reclaim`,
//! `memcg_reclaim`, ...), the names of the report's JSON.
use std::{
    borrow::Borrow,
    collections::HashMap,
    io::{self, Write},
    ops::Range,
    time::{Duration, UNIX_EPOCH},
};

use hdrhistogram::serialization::{
    V2DeflateSerializer,
    interval_log::{IntervalLogWriter, IntervalLogWriterBuilder, IntervalLogWriterError, Tag},
};
use memtrace_common::{FaultClass, StallKind};

use crate::samples::{Header, IntervalSample, LatencyStats, ProcessSample};

/// The interval log format written (HdrHistogram's current one).
pub const FORMAT_VERSION: &str = "1.3";
/// Nanoseconds to milliseconds for `Interval_Max`, as the Java writer's default ratio does.
const MAX_VALUE_DIVISOR: f64 = 1e6;
/// The column legend every reference writer puts after the header.
const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"";

/// Which part of a recording the log holds: what `--pid`, `--from` and `--to` select.
#[derive(Clone, Debug)]
pub struct Selection {
    /// Only these processes (any start time); `None`: every process.
    pub pids: Option<Vec<u32>>,
    /// The intervals whose start, in ns since the start of the recording, is in this range.
    pub window_ns: Range<u64>,
}

impl Default for Selection {
    fn default() -> Self {
        Self {
            pids: None,
            window_ns: 0..u64::MAX,
        }
    }
}

impl Selection {
    fn keeps_interval(&self, header: &Header, sample: &IntervalSample) -> bool {
        let start = sample.start_ns.saturating_sub(header.start_mono_ns);
        self.window_ns.contains(&start)
    }

    fn keeps_process(&self, pid: u32) -> bool {
        self.pids.as_ref().is_none_or(|pids| pids.contains(&pid))
    }
}

/// The name of each process in the tags. A process may fault under a thread's name before its
/// main thread names it, or exec, so its name is only known after its last interval; a tag that
/// changed mid-log would split one process into two series. Hence a first pass over the
/// intervals, keeping the model's rule: the last name that the main thread or an exec gave,
/// else the first name seen.
#[derive(Clone, Debug, Default)]
pub struct Names(HashMap<(u32, u64), String>);

impl Names {
    /// The names of the processes in the intervals `selection` keeps.
    pub fn of(
        header: &Header,
        intervals: impl IntoIterator<Item = impl Borrow<IntervalSample>>,
        selection: &Selection,
    ) -> Self {
        let mut names = Self::default();
        for sample in intervals {
            let sample = sample.borrow();
            if !selection.keeps_interval(header, sample) {
                continue;
            }
            for process in &sample.processes {
                names.add(process);
            }
        }
        names
    }

    fn add(&mut self, process: &ProcessSample) {
        let name = self.0.entry((process.pid, process.start_ns)).or_default();
        if !process.comm.is_empty() && (process.named || name.is_empty()) {
            name.clone_from(&process.comm);
        }
    }

    /// The name of `process`; its own comm if the first pass did not see it.
    fn of_process<'a>(&'a self, process: &'a ProcessSample) -> &'a str {
        self.0
            .get(&(process.pid, process.start_ns))
            .map_or(process.comm.as_str(), String::as_str)
    }
}

/// `<pid>.<start>.<comm>.<class-or-kind>` (see the module's documentation).
pub fn tag(pid: u32, start_ns: u64, comm: &str, class_or_kind: &str) -> String {
    let comm: String = comm
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != ',' && c != '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let comm = if comm.is_empty() { "?" } else { &comm };
    format!("{pid}.{start_ns}.{comm}.{class_or_kind}")
}

/// Writes the interval log of the intervals `selection` keeps, named as `names` says.
pub fn write(
    header: &Header,
    names: &Names,
    intervals: impl IntoIterator<Item = impl Borrow<IntervalSample>>,
    selection: &Selection,
    out: &mut impl Write,
) -> io::Result<()> {
    let start = UNIX_EPOCH + Duration::from_nanos(header.start_unix_ns);
    let mut serializer = V2DeflateSerializer::new();
    // The crate writes no legend line, so the header goes first through a writer of its own,
    // then the legend, then the histograms through a second writer (whose max divisor adds a
    // comment line of its own).
    IntervalLogWriterBuilder::new()
        .add_comment(&format!(
            "[Logged with memtrace {}]",
            header.memtrace_version
        ))
        .add_comment(&format!("[Histogram log format version {FORMAT_VERSION}]"))
        .add_comment("[Tags: <pid>.<start>.<comm>.<class-or-kind>; values in ns]")
        .with_start_time(start)
        .with_base_time(start)
        .begin_log_with(out, &mut serializer)?;
    writeln!(out, "{LEGEND}")?;
    let mut log = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(MAX_VALUE_DIVISOR)
        .begin_log_with(out, &mut serializer)?;
    for sample in intervals {
        let sample = sample.borrow();
        if !selection.keeps_interval(header, sample) {
            continue;
        }
        let at = Duration::from_nanos(sample.start_ns.saturating_sub(header.start_mono_ns));
        let length = Duration::from_nanos(sample.end_ns.saturating_sub(sample.start_ns));
        for process in &sample.processes {
            if !selection.keeps_process(process.pid) {
                continue;
            }
            let comm = names.of_process(process);
            let tag = |name: &str| tag(process.pid, process.start_ns, comm, name);
            // Unknown ids are passed over, as the model counts them apart rather than folding
            // them into another class.
            for fault in &process.faults {
                if let Ok(class) = FaultClass::try_from(fault.class) {
                    entry(&mut log, &fault.latency, at, length, &tag(class.name()))?;
                }
            }
            for stall in &process.stalls {
                if let Ok(kind) = StallKind::try_from(stall.kind) {
                    entry(&mut log, &stall.latency, at, length, &tag(kind.name()))?;
                }
            }
        }
    }
    Ok(())
}

/// One tagged histogram; none for an empty distribution.
fn entry<W: Write>(
    log: &mut IntervalLogWriter<'_, '_, W, V2DeflateSerializer>,
    latency: &LatencyStats,
    at: Duration,
    length: Duration,
    tag: &str,
) -> io::Result<()> {
    if latency.count() == 0 {
        return Ok(());
    }
    // `tag` is built without commas, spaces or line breaks, which is all `Tag::new` refuses.
    let tag = Tag::new(tag).ok_or_else(|| io::Error::other(format!("invalid tag {tag:?}")))?;
    log.write_histogram(&latency.to_histogram(), at, length, Some(tag))
        .map_err(|e| match e {
            IntervalLogWriterError::IoError(e) => e,
            IntervalLogWriterError::SerializeError(e) => {
                io::Error::other(format!("encoding a histogram: {e:?}"))
            }
        })
}

#[cfg(test)]
#[path = "hlog_tests.rs"]
mod tests;
