//! Major faults by file: which files the traced processes waited for, with the faults' count
//! and latency (the page-cache thrash view, like `ffaults.bt` with distributions).
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::units;
use crate::{
    model::files::FileLog,
    samples::{LatencySummary, files::FileFaults},
};

/// Files shown in the terminal section.
pub const SHOWN: usize = 10;

/// Every file's major faults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesReport {
    /// Most faults first.
    pub files: Vec<FileReport>,
    /// Files past the kept ones, folded together (their count, and their faults).
    pub folded_files: u64,
    pub folded: Option<LatencySummary>,
}

/// One file's major faults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileReport {
    /// Its path (`null`: not found; `device` and `inode` still name it).
    pub path: Option<String>,
    /// `major:minor` of its file system's device, and its inode number.
    pub device: String,
    pub inode: u64,
    /// The process of its last fault.
    pub pid: u32,
    pub comm: String,
    #[serde(flatten)]
    pub latency: LatencySummary,
}

impl FilesReport {
    pub fn new(log: &FileLog) -> Self {
        Self {
            files: log.files().into_iter().map(FileReport::new).collect(),
            folded_files: log.folded,
            folded: log.others.as_ref().map(|stats| stats.summary()),
        }
    }
}

impl FileReport {
    fn new(file: &FileFaults) -> Self {
        Self {
            path: file.path.clone(),
            device: file.device(),
            inode: file.ino,
            pid: file.pid,
            comm: file.comm.clone(),
            latency: file.latency.summary(),
        }
    }

    /// The path, or `device:inode`.
    pub fn name(&self) -> String {
        self.path
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.device, self.inode))
    }
}

/// The terminal section; nothing when no major fault named its file.
pub fn write(report: &FilesReport, out: &mut impl Write) -> io::Result<()> {
    if report.files.is_empty() {
        return Ok(());
    }
    writeln!(out, "\nMajor faults by file")?;
    writeln!(
        out,
        "{:>8} {:>9} {:>8} {:>8} {:>8} {:>8}  {:<16} FILE",
        "FAULTS", "TOTAL", "MEAN", "P50", "P99", "MAX", "LAST BY"
    )?;
    let row = |out: &mut dyn Write, l: &LatencySummary, by: &str, name: &str| {
        writeln!(
            out,
            "{:>8} {:>9} {:>8} {:>8} {:>8} {:>8}  {:<16} {}",
            l.count,
            units::duration_ns(l.total_ns),
            units::duration_ns(l.mean_ns),
            units::duration_ns(l.p50_ns),
            units::duration_ns(l.p99_ns),
            units::duration_ns(l.max_ns),
            by,
            units::printable(name)
        )
    };
    for file in report.files.iter().take(SHOWN) {
        let by = format!("{}[{}]", units::printable(&file.comm), file.pid);
        row(out, &file.latency, &by, &file.name())?;
    }
    let hidden = report.files.len().saturating_sub(SHOWN) as u64 + report.folded_files;
    if hidden > 0 {
        let faults: u64 = report
            .files
            .iter()
            .skip(SHOWN)
            .map(|f| f.latency.count)
            .sum::<u64>()
            + report.folded.as_ref().map_or(0, |f| f.count);
        writeln!(out, "(and {hidden} more files: {faults} faults)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{report::fixture::render, samples::LatencyStats};

    fn log() -> FileLog {
        let file = |ino: u64, faults: u64, path: Option<&str>| {
            let mut latency = LatencyStats::new();
            for _ in 0..faults {
                latency.record(50_000);
            }
            FileFaults {
                dev: (8 << 20) | 1,
                ino,
                path: path.map(String::from),
                pid: 42,
                comm: "reader".into(),
                latency,
            }
        };
        let mut log = FileLog::default();
        log.apply(&[file(12, 256, Some("/var/tmp/a")), file(13, 512, None)]);
        log
    }

    #[test]
    fn the_section_lists_files_most_faults_first() {
        let report = FilesReport::new(&log());
        assert_eq!(
            render(|out| write(&report, out)),
            "\nMajor faults by file\n\
             \u{20} FAULTS     TOTAL     MEAN      P50      P99      MAX  LAST BY          FILE\n\
             \u{20}    512    25.6ms   50.0µs   50.0µs   50.0µs   50.0µs  reader[42]       8:1:13\n\
             \u{20}    256    12.8ms   50.0µs   50.0µs   50.0µs   50.0µs  reader[42]       /var/tmp/a\n"
        );
        let json = serde_json::to_string(&report).expect("serializes");
        assert_eq!(
            serde_json::from_str::<FilesReport>(&json).expect("parses"),
            report
        );
    }

    #[test]
    fn no_named_file_no_section() {
        assert_eq!(render(|out| write(&FilesReport::default(), out)), "");
    }
}
