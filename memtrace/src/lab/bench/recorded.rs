//! What a `memtrace record --json` run reported, read back from its JSON document
//! (docs/json-schema.md): the figures the benchmark checks against the kernel's own counts.
use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use serde_json::Value;

use crate::Error;

/// The parts of a report the benchmark uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Fault records received.
    pub faults: u64,
    /// Records lost because the ring buffer was full.
    pub lost: u64,
    /// (pid, faults) of every process in the report.
    pub processes: Vec<(u32, u64)>,
    /// Processes the report accounts for: its entries, folded ones counted one by one.
    pub processes_seen: u64,
}

impl Recorded {
    /// Faults recorded for these processes.
    pub fn faults_of(&self, pids: &[u32]) -> u64 {
        self.processes
            .iter()
            .filter(|(pid, _)| pids.contains(pid))
            .map(|(_, faults)| faults)
            .sum()
    }
}

/// Parses the JSON report; a missing field is an error (the schema changed under us).
pub fn parse(json: &str) -> Result<Recorded, Error> {
    let bad = |reason: &str| Error::InvalidArgument {
        what: "memtrace JSON report",
        value: json.chars().take(80).collect(),
        reason: reason.into(),
    };
    let doc: Value = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
    let number = |value: &Value, key: &str| value.get(key).and_then(Value::as_u64);
    let faults = number(&doc, "faults").ok_or_else(|| bad("no `faults`"))?;
    let lost = doc
        .get("lost")
        .and_then(|l| number(l, "total"))
        .ok_or_else(|| bad("no `lost.total`"))?;
    let list = doc
        .get("processes")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `processes`"))?;
    let mut processes = Vec::with_capacity(list.len());
    let mut processes_seen = 0;
    for process in list {
        processes_seen += number(process, "folded_processes").unwrap_or(0).max(1);
        let pid = number(process, "pid").and_then(|p| u32::try_from(p).ok());
        let count = number(process, "faults");
        match (pid, count) {
            (Some(pid), Some(count)) => processes.push((pid, count)),
            _ => return Err(bad("a process without `pid` or `faults`")),
        }
    }
    Ok(Recorded {
        faults,
        lost,
        processes,
        processes_seen,
    })
}

/// Reads and parses the report memtrace wrote to `path`.
pub fn read(path: &Path) -> Result<Recorded, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    parse(&text)
}

/// A path for a report, deleted when this goes out of scope.
#[derive(Debug)]
pub struct TempReport(PathBuf);

static NEXT: AtomicU32 = AtomicU32::new(0);

impl TempReport {
    /// A fresh path in the temporary directory, unique to this process.
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("memtrace-bench-{}-{n}.json", std::process::id());
        Self(std::env::temp_dir().join(name))
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempReport {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TempReport {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        // A recording made beside the report (`-o`), if any.
        let _ = std::fs::remove_file(self.0.with_extension("mtr"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = r#"{"schema":"memtrace.report/1","faults":120,
        "lost":{"faults":3,"total":3},
        "processes":[{"pid":10,"comm":"a","faults":100},{"pid":11,"comm":"b","faults":20}]}"#;

    #[test]
    fn reads_counts_and_processes() {
        let r = parse(REPORT).expect("parse");
        assert_eq!(r.faults, 120);
        assert_eq!(r.lost, 3);
        assert_eq!(r.processes, vec![(10, 100), (11, 20)]);
        assert_eq!(r.faults_of(&[11, 12]), 20);
    }

    #[test]
    fn malformed_reports_are_errors() {
        assert!(parse("").is_err());
        assert!(parse(r#"{"faults":1}"#).is_err());
        assert!(parse(r#"{"faults":1,"lost":{"total":0},"processes":[{"pid":1}]}"#).is_err());
    }

    #[test]
    fn temp_reports_are_distinct_and_removed() {
        let a = TempReport::new();
        let b = TempReport::new();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path(), "x").expect("write");
        let path = a.path().to_path_buf();
        drop(a);
        assert!(!path.exists());
    }
}
