//! OOM kills, computed from their samples: victim, trigger, domain, badness, candidates, and
//! what followed. [`OomKill`] is also the JSON form (`oom_kills` in docs/json-schema.md).
//!
//! `domain` and `badness` are the kernel's reasoning as pure arithmetic, `build` turns a sample
//! into a kill, `candidates` ranks the domain's processes, `log` completes kills as their
//! aftermath arrives.
pub mod badness;
mod build;
pub mod candidates;
pub mod domain;
pub mod log;

#[cfg(test)]
pub(crate) mod tests;

use std::path::PathBuf;

use badness::BadnessInputs;
use candidates::Candidate;
use domain::{Constraint, Evidence};
pub use log::OomLog;

use crate::samples::oom::KmsgOom;
pub use crate::samples::oom::frame_function;

/// Everything known about one kill.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OomKill {
    /// Seconds since the recording started.
    pub at_s: f64,
    /// The victim is a process memtrace was asked to trace (`null`: cannot tell).
    pub traced_victim: Option<bool>,
    /// Who was killed, and who caused it.
    pub victim: Victim,
    pub trigger: Trigger,
    /// Where the OOM happened, the victim's points there, and the other candidates.
    pub domain: DomainReport,
    pub badness: Badness,
    pub candidates: Candidates,
    /// The victim's exit and the OOM reaper.
    pub aftermath: Aftermath,
    /// The kernel's own `oom-kill:` line, when /dev/kmsg had it.
    pub kernel_log: Option<KernelLog>,
    /// CLOCK_MONOTONIC of the kill, to place later events.
    #[serde(skip)]
    pub kill_ns: u64,
}

/// The killed process at the moment of the kill, in the kernel's own counters.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Victim {
    /// The thread the OOM killer marked, and its process.
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    pub uid: u32,
    /// Directory of its memory cgroup.
    pub cgroup: Option<PathBuf>,
    pub total_vm_kb: u64,
    pub anon_rss_kb: u64,
    pub file_rss_kb: u64,
    pub shmem_rss_kb: u64,
    pub swap_entries: u64,
    pub pgtables_kb: u64,
    pub oom_score_adj: i32,
}

/// The task whose allocation invoked the OOM killer.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Trigger {
    pub pid: u32,
    pub tgid: u32,
    pub comm: String,
    /// Directory of its memory cgroup.
    pub cgroup: Option<PathBuf>,
    /// The process killed itself by allocating.
    pub is_victim: bool,
    /// Kernel stack, innermost first (`name+0xoffset`); empty when unavailable.
    pub stack: Vec<String>,
    /// Why there is no stack (hidden kernel addresses, helper error).
    pub stack_unavailable: Option<String>,
}

/// Where the OOM happened and what decided it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DomainReport {
    /// Memcg, global, cpuset or mempolicy.
    pub constraint: Constraint,
    /// The memcg that hit its limit (memcg OOMs), with its limit and usage at the kill.
    pub cgroup: Option<PathBuf>,
    pub limit_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    /// memsw (cgroup v1, memory + swap) or swap (v2) limit; `None` when unlimited.
    pub swap_limit_bytes: Option<u64>,
    /// Which of the two: `memsw` or `swap`.
    pub swap_counter: Option<String>,
    /// The domain's size in pages, as the kernel's badness uses it, and how it was reckoned.
    pub totalpages: u64,
    pub totalpages_rule: String,
    /// The signal that decided the path, and the one that named the memcg.
    pub decided_by: Option<Evidence>,
    pub cgroup_found_by: Option<Evidence>,
    /// The other signals, agreeing with the decision or not.
    pub agreeing: Vec<Evidence>,
    pub disagreeing: Vec<Evidence>,
}

/// The victim's points in the domain.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Badness {
    /// `oom_badness()` with the domain's `totalpages`.
    pub points: i64,
    pub totalpages: u64,
    /// points * 1000 / totalpages: `oom_score`'s scale in the right domain.
    pub score_per_mille: i64,
    /// What /proc/PID/oom_score would have said (machine-wide, 0..2000).
    pub proc_oom_score: i64,
    /// The counters the points come from.
    pub inputs: BadnessInputs,
}

/// The domain's processes, from a snapshot just after the kill.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Candidates {
    /// How the snapshot was taken, and when.
    pub snapshot: String,
    pub taken_ms_after_kill: f64,
    /// Processes of the domain in the snapshot (the victim included).
    pub in_domain: usize,
    /// The `MAX_CANDIDATES` highest, highest first.
    pub list: Vec<Candidate>,
    /// Why there is no snapshot.
    pub error: Option<String>,
}

/// Candidates kept per kill: a global OOM's domain is every process on the machine.
pub const MAX_CANDIDATES: usize = 50;

/// What the kill achieved; times in ms after the kill.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Aftermath {
    /// The victim's last thread exited.
    pub exit_ms: Option<f64>,
    /// The victim's RSS at the kill: what its exit frees.
    pub freed_kb: u64,
    /// The OOM reaper's steps (it only acts on a victim still alive ~2 s after the kill).
    pub reaper_woken_ms: Option<f64>,
    pub reaping_started_ms: Option<f64>,
    pub reaping_finished_ms: Option<f64>,
    pub reaping_skipped_ms: Option<f64>,
}

/// The kernel log's view, and whether it agrees with memtrace's domain.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KernelLog {
    /// The line's fields.
    #[serde(flatten)]
    pub line: KmsgOom,
    /// Its constraint is memtrace's.
    pub agrees: bool,
}

/// Whether the kernel's `constraint=` names the same kind of domain.
pub fn kmsg_agrees(line: &KmsgOom, constraint: Constraint) -> bool {
    let expected = match constraint {
        Constraint::Memcg => "CONSTRAINT_MEMCG",
        Constraint::Global => "CONSTRAINT_NONE",
        Constraint::Cpuset => "CONSTRAINT_CPUSET",
        Constraint::Mempolicy => "CONSTRAINT_MEMORY_POLICY",
    };
    line.constraint == expected
}
