//! Major faults by file: the file each `major_file` fault waited for, with the faults' count and
//! latency, per interval. The page-cache thrash view.
use serde::{Deserialize, Serialize};

use super::LatencyStats;

/// One file's major faults in one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FileFaults {
    /// The file system's device (`s_dev`, the kernel's encoding: major << 20 | minor) and the
    /// inode number.
    pub dev: u32,
    pub ino: u64,
    /// Its path, from the faulting process's mappings (`None`: not found, e.g. the process
    /// ended first or the file was deleted).
    pub path: Option<String>,
    /// The process of its last fault in the interval, and its name.
    pub pid: u32,
    pub comm: String,
    /// The faults' latency.
    pub latency: LatencyStats,
}

impl FileFaults {
    /// The order files are listed in: most faults first, then by device and inode.
    pub fn most_faults_first(a: &Self, b: &Self) -> std::cmp::Ordering {
        b.latency
            .count()
            .cmp(&a.latency.count())
            .then((a.dev, a.ino).cmp(&(b.dev, b.ino)))
    }

    /// `major:minor` of the device, as /proc shows it.
    pub fn device(&self) -> String {
        format!("{}:{}", self.dev >> 20, self.dev & 0xf_ffff)
    }

    /// The path, or `dev:inode` when it could not be had.
    pub fn name(&self) -> String {
        self.path
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.device(), self.ino))
    }
}
