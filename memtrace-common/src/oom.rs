//! The OOM-kill records: what `oom:mark_victim` saw, what happened to the victim afterwards,
//! and the task iterator's view of the other candidates.
use crate::COMM_LEN;

/// Levels of a memory-cgroup chain carried by an [`OomKillEvent`] (leaf first); deeper chains
/// are cut at the top and flagged with `oom_flags::CHAIN_TRUNCATED`.
pub const OOM_MEMCG_LEVELS: usize = 8;

/// Bits of [`OomKillEvent::flags`].
pub mod oom_flags {
    /// The kernel program saw the OOM killer's SIGKILL to the victim just before the mark:
    /// a real kill (not a task that was exiting anyway).
    pub const KILL_SIGNAL_SEEN: u32 = 1 << 0;
    /// The SIGKILL hook is attached, so a missing `KILL_SIGNAL_SEEN` means "no kill".
    pub const KILL_SIGNAL_HOOKED: u32 = 1 << 1;
    /// `mem_cgroup.oom_lock` exists in this kernel (CONFIG_MEMCG_V1) and was read.
    pub const OOM_LOCK_KNOWN: u32 = 1 << 2;
    /// The victim's memcg chain had more than `OOM_MEMCG_LEVELS` levels.
    pub const CHAIN_TRUNCATED: u32 = 1 << 3;
    /// The trigger has a NUMA memory policy (`mempolicy_mode`/`mempolicy_nodes` are valid).
    pub const HAS_MEMPOLICY: u32 = 1 << 4;
}

crate::ids! {
    /// The trigger's most recent reclaim before the kill, the value of `OomKillEvent::reclaim_kind`.
    pub enum OomReclaim {
        /// No reclaim of the trigger was seen.
        None = 0 => "none",
        /// Global direct reclaim: the page allocator's slow path.
        Direct = 1 => "direct",
        /// Memory-cgroup reclaim: a charge over a memcg limit.
        Memcg = 2 => "memcg",
    }
}

/// One level of the victim's memory-cgroup chain, read at the kill, 56 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct MemcgLevel {
    /// The cgroup's kernfs id: the inode of its directory.
    pub id: u64,
    /// `memory` page counter: usage and limit, in pages.
    pub usage_pages: u64,
    pub max_pages: u64,
    /// The `memsw` (cgroup v1) or `swap` (v2) page counter, in pages.
    pub swap_usage_pages: u64,
    pub swap_max_pages: u64,
    /// `memory_events_local[MEMCG_OOM]`: OOMs invoked for this memcg itself.
    pub oom_events: u64,
    /// `oom_lock` (the v1 OOM bookkeeping every CONFIG_MEMCG_V1 kernel keeps): set on the whole
    /// subtree of the memcg whose OOM is being handled, for the duration of `out_of_memory()`.
    pub oom_lock: u32,
    /// `swappiness` of the memcg (cgroup v1; v2 uses the global vm.swappiness).
    pub swappiness: u32,
}

/// An OOM kill as seen by `oom:mark_victim`, which runs in the task that invoked the OOM
/// killer (the trigger), 624 bytes. Memory figures are the kernel's own counters at the kill.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct OomKillEvent {
    /// Always `EventKind::OomKill as u32`.
    pub kind: u32,
    /// `oom_flags` bits.
    pub flags: u32,
    /// The kill (`bpf_ktime_get_ns()`, CLOCK_MONOTONIC): when the OOM killer sent the victim
    /// its SIGKILL (`KILL_SIGNAL_SEEN`), microseconds before the mark; else the mark.
    pub ts_ns: u64,
    /// Victim thread and process ids.
    pub victim_pid: u32,
    pub victim_tgid: u32,
    pub victim_uid: u32,
    pub victim_oom_score_adj: i32,
    pub victim_comm: [u8; COMM_LEN],
    /// `mm->total_vm`, in pages.
    pub total_vm_pages: u64,
    /// `mm->rss_stat` counters as `get_mm_counter()` reads them, in pages.
    pub rss_file_pages: i64,
    pub rss_anon_pages: i64,
    pub swap_entries: i64,
    pub rss_shmem_pages: i64,
    /// `mm->pgtables_bytes`.
    pub pgtables_bytes: u64,
    /// The task that invoked the OOM killer.
    pub trigger_pid: u32,
    pub trigger_tgid: u32,
    pub trigger_comm: [u8; COMM_LEN],
    /// The trigger's memory cgroup (kernfs id).
    pub trigger_memcg_id: u64,
    /// Id of the trigger's kernel stack in `OOM_STACKS`; negative: the helper's error.
    pub trigger_stack_id: i64,
    /// An [`OomReclaim`] id, and when that reclaim started.
    pub reclaim_kind: u32,
    /// Valid entries of `memcg`.
    pub memcg_levels: u32,
    pub reclaim_ns: u64,
    /// First word of the trigger's cpuset `mems_allowed` node mask.
    pub mems_allowed: u64,
    /// First word of the trigger's memory policy nodes, and its mode (`HAS_MEMPOLICY`).
    pub mempolicy_nodes: u64,
    pub mempolicy_mode: u32,
    /// Explicit padding so the type has none implicit.
    pub _pad: u32,
    /// The victim's memory-cgroup chain, leaf first.
    pub memcg: [MemcgLevel; OOM_MEMCG_LEVELS],
}

crate::ids! {
    /// What an [`OomAftermathEvent`] reports.
    pub enum AftermathOp {
        /// The victim's last thread exited (`sched:sched_process_exit`, group dead).
        Exit = 0 => "exit",
        /// The OOM reaper was woken for the victim (`oom:wake_reaper`).
        WakeReaper = 1 => "wake_reaper",
        /// The reaper started unmapping the victim's memory (`oom:start_task_reaping`).
        StartReaping = 2 => "start_reaping",
        /// The reaper finished (`oom:finish_task_reaping`).
        FinishReaping = 3 => "finish_reaping",
        /// The reaper gave up or found nothing to do (`oom:skip_task_reaping`).
        SkipReaping = 4 => "skip_reaping",
    }
}

/// A step after an OOM kill, 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct OomAftermathEvent {
    /// Always `EventKind::OomAftermath as u32`.
    pub kind: u32,
    /// An [`AftermathOp`] id.
    pub op: u32,
    /// The task concerned (reaper tracepoints carry the victim's pid), and its process for exits.
    pub pid: u32,
    pub tgid: u32,
    /// When the step happened: for an exit, the exit itself, even when the record is sent
    /// later, at the mark (a victim can exit before it is marked). It always follows the kill
    /// record on the ring.
    pub ts_ns: u64,
}

/// One process as the `oom_candidates` task iterator reports it, 152 bytes: the inputs of the
/// kernel's `oom_badness()`, read the way the kernel reads them.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
pub struct OomCandidateRecord {
    pub tgid: u32,
    pub pid: u32,
    pub oom_score_adj: i32,
    /// `task->flags` (PF_* bits).
    pub task_flags: u32,
    pub uid: u32,
    /// Explicit padding so the type has none implicit.
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
    pub rss_file_pages: i64,
    pub rss_anon_pages: i64,
    pub swap_entries: i64,
    pub rss_shmem_pages: i64,
    pub pgtables_bytes: u64,
    /// First word of `mm->flags` (MMF_* bits).
    pub mm_flags: u64,
    /// Memory-cgroup chain (kernfs ids), leaf first, 0 past the root.
    pub memcg_ids: [u64; OOM_MEMCG_LEVELS],
}

/// Indexes of `mm->rss_stat` (the kernel's anonymous `MM_*` enum, unchanged since 4.5).
pub mod mm_counter {
    pub const FILE_PAGES: u32 = 0;
    pub const ANON_PAGES: u32 = 1;
    pub const SWAP_ENTS: u32 = 2;
    pub const SHMEM_PAGES: u32 = 3;
}

/// Map names of the OOM programs.
pub mod oom_maps {
    /// The OOM records' own small ring buffer, so that fault records never delay them.
    pub const OOM_EVENTS: &str = "OOM_EVENTS";
    /// Kernel stacks of OOM triggers.
    pub const OOM_STACKS: &str = "OOM_STACKS";
}

#[cfg(feature = "user")]
// SAFETY: the OOM types are `repr(C)`, `Copy`, and have no implicit padding (checked by the
// size tests in userspace).
unsafe impl aya::Pod for MemcgLevel {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for OomKillEvent {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for OomAftermathEvent {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for OomCandidateRecord {}
