//! An OOM kill as collected: the kernel's record and the context sampled the moment it arrived
//! (candidates, stack, cgroup paths, machine totals, kernel log), plus what followed it.
use std::path::PathBuf;

use memtrace_common::oom::{OomAftermathEvent, OomCandidateRecord, OomKillEvent, OomReclaim};
use serde::{Deserialize, Serialize};

use super::host::HostMemory;

/// OOM activity of one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OomInterval {
    /// Kills, each with its context.
    pub kills: Vec<OomSample>,
    /// Victims' exits and the OOM reaper's steps.
    pub aftermath: Vec<OomAftermathEvent>,
    /// The kernel's `oom-kill:` lines read in the interval.
    pub kernel_log: Vec<KmsgOom>,
    /// `oom:mark_victim` on tasks that were exiting anyway: no kill happened.
    pub marks_without_kill: u64,
}

/// A reclaim older than this did not lead to this OOM.
const RECLAIM_WINDOW_NS: u64 = 10_000_000_000;

/// One kill record and its context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OomSample {
    /// The kill record.
    pub event: OomKillEvent,
    /// CLOCK_MONOTONIC at the start of the recording, and when the snapshot was taken.
    pub start_ns: u64,
    pub sampled_ns: u64,
    /// RAM, swap, swappiness and NUMA nodes, read with the sample.
    pub host: HostMemory,
    /// The memory controller is on cgroup v1 (memsw accounting).
    pub v1: bool,
    /// Directories of the victim's memcg chain, leaf first.
    pub level_paths: Vec<Option<PathBuf>>,
    pub trigger_cgroup: Option<PathBuf>,
    /// The trigger's symbolized kernel stack, or why not.
    pub stack: Result<Vec<String>, String>,
    /// The task iterator's records, or why not.
    pub candidates: Result<Vec<OomCandidateRecord>, String>,
    /// The kernel's `oom-kill:` line for the victim, if read yet.
    pub kmsg: Option<KmsgOom>,
    /// Whether the victim is a traced process.
    pub traced_victim: Option<bool>,
}

impl OomSample {
    /// The trigger's reclaim kind, if it started shortly before the kill.
    pub fn recent_reclaim(&self) -> Option<OomReclaim> {
        let e = &self.event;
        let recent = e.ts_ns.saturating_sub(e.reclaim_ns) < RECLAIM_WINDOW_NS;
        let kind = OomReclaim::try_from(e.reclaim_kind).ok()?;
        (kind != OomReclaim::None && recent).then_some(kind)
    }
}

/// What the kernel printed about one kill.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KmsgOom {
    /// `constraint=` (CONSTRAINT_MEMCG, CONSTRAINT_NONE, ...).
    pub constraint: String,
    /// `oom_memcg=`: the memcg that hit its limit, relative to its hierarchy's root.
    pub oom_memcg: Option<String>,
    /// `task_memcg=`: the victim's memcg.
    pub task_memcg: Option<String>,
    /// `task=` and `pid=`: the victim.
    pub task: String,
    pub pid: u32,
}

/// The bare function name of a symbolized frame (`try_charge_memcg+0x10`).
pub fn frame_function(frame: &str) -> &str {
    frame.split('+').next().unwrap_or(frame)
}
