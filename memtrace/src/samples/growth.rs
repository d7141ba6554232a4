//! Traced processes' memory at each interval's close, as the kernel counts it (the
//! `process_memory` task iterator). A recording keeps a process's reading only when it changed:
//! its memory stays what it last read until a later reading or until it is gone.
use serde::{Deserialize, Serialize};

/// The memory readings of one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryInterval {
    /// CLOCK_MONOTONIC of the reading; 0 when none was taken (the iterator could not run, or a
    /// recording made before memtrace read memory).
    pub read_ns: u64,
    /// Processes first read, or whose memory changed since their last kept reading.
    pub readings: Vec<MemoryReading>,
    /// Processes kept before that the reading no longer found (exited, or left the filter).
    pub gone: Vec<ProcessKey>,
    /// The memory cgroups of the processes read, when their usage or limit changed.
    pub memcgs: Vec<MemcgUsage>,
    /// Changed processes left for a later interval: at most [`MAX_READINGS`] are kept each.
    pub deferred: u32,
}

/// Readings kept per interval, the largest changes first.
pub const MAX_READINGS: usize = 2048;

/// A process's identity: pid and start time (CLOCK_MONOTONIC ns).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(default)]
pub struct ProcessKey {
    pub pid: u32,
    pub start_ns: u64,
}

/// One process's memory: its resident pages by kind and its pages in swap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryReading {
    pub pid: u32,
    pub start_ns: u64,
    pub comm: String,
    /// Its memory cgroup (the inode of the directory; 0: unknown).
    pub memcg_id: u64,
    pub rss_anon_kb: u64,
    pub rss_file_kb: u64,
    pub rss_shmem_kb: u64,
    pub swap_kb: u64,
}

impl MemoryReading {
    /// What the process holds: resident memory and swap.
    pub fn total_kb(&self) -> u64 {
        self.rss_kb() + self.swap_kb
    }

    /// Resident memory (anon + file + shmem), as `ps` shows RSS.
    pub fn rss_kb(&self) -> u64 {
        self.rss_anon_kb + self.rss_file_kb + self.rss_shmem_kb
    }

    pub fn key(&self) -> ProcessKey {
        ProcessKey {
            pid: self.pid,
            start_ns: self.start_ns,
        }
    }
}

/// A memory cgroup's usage against its limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemcgUsage {
    pub id: u64,
    pub usage_kb: u64,
    /// `memory.max` (v1 `memory.limit_in_bytes`); `None`: no limit.
    pub limit_kb: Option<u64>,
}

/// Pages brought in by faults under one stack in one interval (`record --stacks`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StackSample {
    pub pid: u32,
    pub comm: String,
    /// The user frames, outermost first, then the kernel frames, outermost first; a frame that
    /// could not be named is `[unknown]`, a stack that could not be read one `[... unavailable]`
    /// frame.
    pub frames: Vec<String>,
    /// How many of `frames` are the user stack's.
    pub user_frames: u32,
    /// Pages allocated for faults under it in the interval (times `--stacks-every`).
    pub pages: u64,
}

/// The frame of a user stack the kernel could not read.
pub const USER_UNAVAILABLE: &str = "[user stack unavailable]";
/// The frame of a kernel stack that could not be read.
pub const KERNEL_UNAVAILABLE: &str = "[kernel stack unavailable]";

/// One interval of `record --stacks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StacksInterval {
    /// Stacks were counted (`record --stacks`).
    pub enabled: bool,
    pub stacks: Vec<StackSample>,
    /// The kernel's count map was full: faults under new stacks went uncounted.
    pub map_full: bool,
}
