//! The wire format between memtrace's kernel programs and its userspace: event records, their
//! stable ids, flags, map and global names. Nothing else lives here.
#![no_std]

mod ids;

/// Size of `comm` (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

ids! {
    /// Stable ids of the records that cross the ring buffer. Retired ids are never reused.
    pub enum EventKind {
        /// A completed page fault ([`FaultEvent`]).
        Fault = 1 => "fault",
        /// The OOM killer chose and killed a victim ([`oom::OomKillEvent`]).
        OomKill = 2 => "oom_kill",
        /// What happened to an OOM victim afterwards: exit, reaper ([`oom::OomAftermathEvent`]).
        OomAftermath = 3 => "oom_aftermath",
        /// Minor faults batched per CPU ([`batch::MinorBatch`]).
        MinorBatch = 4 => "minor_batch",
        /// A process's main thread was renamed, by exec or prctl ([`batch::CommEvent`]).
        Comm = 5 => "comm",
        /// A traced process started or ended ([`ProcessEvent`]).
        Process = 6 => "process",
        /// A completed reclaim or compaction stall of a task ([`StallEvent`]).
        Stall = 10 => "stall",
        /// Pages written to or read from swap ([`SwapEvent`]).
        Swap = 11 => "swap",
        /// kswapd woke, slept, or was woken by an allocation ([`KswapdEvent`]).
        Kswapd = 12 => "kswapd",
    }
}

/// Number of slots in the per-kind lost-event counters (index = `EventKind as u32`).
pub const EVENT_KIND_SLOTS: u32 = 16;

ids! {
    /// How a completed fault was resolved (the kernel's accounting).
    pub enum FaultClass {
        /// Counted minor by the kernel (no I/O of its own; it may still have waited for a page
        /// under I/O, see the fault's blocked time).
        Minor = 0 => "minor",
        /// Needed I/O that was not a swap-in: a page-cache miss (or a retried fault).
        MajorFile = 1 => "major_file",
        /// Brought a page back from swap.
        MajorSwap = 2 => "swap_in",
        /// Allocated a transparent huge page (`THP_FAULT_ALLOC` counted in flight): a minor
        /// fault to the kernel, but it zeroes 2 MiB, so it has a class of its own.
        Thp = 3 => "thp",
    }
}

/// Number of [`FaultClass`] values.
pub const FAULT_CLASSES: usize = 4;

const _: () = assert!(FaultClass::ALL.len() == FAULT_CLASSES);

/// Bits of [`FaultEvent::flags`] and of the in-flight fault state.
pub mod fault_flags {
    /// `PGMAJFAULT` was counted while the fault was in flight.
    pub const MAJOR_SEEN: u32 = 1 << 0;
    /// `PSWPIN` or `ZSWPIN` was counted while the fault was in flight.
    pub const SWAPIN_SEEN: u32 = 1 << 1;
    /// The fault's thread left the CPU before the fault completed (it slept or was
    /// preempted): the fault has an off-CPU part.
    pub const PARKED: u32 = 1 << 2;
    /// The fault started in kernel mode (a user address touched by the kernel).
    pub const KERNEL_MODE: u32 = 1 << 3;
    /// `THP_FAULT_ALLOC` was counted while the fault was in flight.
    pub const THP_SEEN: u32 = 1 << 4;
    /// A fault the kernel took for the task without a CPU exception, through get_user_pages
    /// (execve copying its arguments, `MAP_POPULATE`, mlock, `MADV_POPULATE_*`): in the
    /// task's minflt, but with no start to time it from. Counted, never timed.
    pub const UNTIMED: u32 = 1 << 5;
}

/// One completed page fault, 80 bytes (88 with the ring buffer's record header).
///
/// Its time splits in three: on-CPU (`latency_ns - off_cpu_ns`), waiting for a CPU while
/// runnable (`waiting_ns`: the growth of the thread's `sched_info.run_delay`, preempted or
/// just woken), and blocked (`off_cpu_ns - waiting_ns`: asleep, on I/O or a lock).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultEvent {
    /// Always `EventKind::Fault as u32`.
    pub kind: u32,
    /// A `FaultClass` id.
    pub class: u32,
    /// Process id (thread group id).
    pub tgid: u32,
    /// Thread id.
    pub tid: u32,
    /// `bpf_ktime_get_ns()` at the start of the fault (CLOCK_MONOTONIC).
    pub start_ns: u64,
    /// Time from the fault's start to its completion.
    pub latency_ns: u64,
    /// `fault_flags` bits.
    pub flags: u32,
    /// Pages read back from swap while the fault was in flight (readahead included).
    pub swapin_pages: u32,
    /// Time the thread spent switched out during the fault.
    pub off_cpu_ns: u64,
    /// Of that, time it waited runnable for a CPU.
    pub waiting_ns: u64,
    /// The memory cgroup the fault was charged to: the inode of its directory (0: unknown).
    pub memcg_id: u64,
    /// The file a file fault read (`mm_filemap_fault`): its inode number and its file
    /// system's device (`s_dev`, the kernel's encoding); 0 when none or unknown.
    pub file_ino: u64,
    pub file_dev: u32,
    /// Explicit padding so the type has none implicit.
    pub _pad: u32,
    /// The faulting thread's `comm`, NUL-padded.
    pub comm: [u8; COMM_LEN],
}

/// State of a fault in flight, in the thread's own slot of the in-flight array (indexed by
/// thread id), from the fault's start to its end.
///
/// No hook runs on context switches: whether the thread left the CPU, and for how long, comes
/// from its scheduler counters. `se.exec_start − se.sum_exec_runtime` changes only when the
/// thread is switched in (every accounting update adds the same delta to both), by the time it
/// was off the CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlightFault {
    /// Thread id, 0 when the slot is free.
    pub tid: u32,
    /// `fault_flags` bits gathered so far.
    pub flags: u32,
    /// `bpf_ktime_get_ns()` at the start of the fault.
    pub start_ns: u64,
    /// Pages read back from swap so far.
    pub swapin_pages: u32,
    /// The device of the file the fault reads (`mm_filemap_fault`), 0 until seen.
    pub file_dev: u32,
    /// `se.exec_start − se.sum_exec_runtime` at the start (the run queue's task clock).
    pub switch_mark: u64,
    /// The same in the run queue's clock (`+ rq.clock − rq.clock_task`), which is one clock
    /// on every CPU and counts time stolen by the hypervisor: the difference of two gives the
    /// time off the CPU even when the thread came back on another CPU.
    pub off_mark: u64,
    /// The thread's `sched_info.run_delay` at the start.
    pub run_delay_ns: u64,
    /// The inode number of the file the fault reads, 0 until seen.
    pub file_ino: u64,
}

#[cfg(feature = "user")]
// SAFETY: `FaultEvent` is `repr(C)`, `Copy`, and has no padding (checked in userspace tests).
unsafe impl aya::Pod for FaultEvent {}
#[cfg(feature = "user")]
// SAFETY: `InFlightFault` is `repr(C)`, `Copy`, and has no padding.
unsafe impl aya::Pod for InFlightFault {}

/// Filter modes, the value of the `FILTER_MODE` global.
pub mod filter_mode {
    /// Trace every process.
    pub const ALL: u32 = 0;
    /// Trace the thread groups listed in the `PIDS` map.
    pub const PIDS: u32 = 1;
    /// Trace tasks inside a cgroup v2 directory (or below it).
    pub const CGROUP_V2: u32 = 2;
    /// Trace tasks inside a cgroup v1 memory-controller directory (or below it).
    pub const MEMCG_V1: u32 = 3;
}

/// How the end of a fault is observed, the value of the `FAULT_END` global.
pub mod fault_end {
    /// Perf software events `PAGE_FAULTS_MIN`/`PAGE_FAULTS_MAJ`.
    pub const PERF: u32 = 0;
    /// `memcg:count_memcg_events` with item `PGFAULT`.
    pub const MEMCG_EVENT: u32 = 1;
}

/// Indexes of the `STATS` per-CPU counters (kernel-side diagnostics, all reported).
pub mod stat {
    /// Fault completions with no recorded start at the perf end hook: faults in flight when
    /// the hooks were attached or detached. (Faults without an exception are `UNTIMED`.)
    pub const UNMATCHED_END: u32 = 0;
    /// Faults whose thread left the CPU before they completed.
    pub const PARKED: u32 = 1;
    /// Faults whose in-flight slot another thread took before they completed (two live
    /// threads whose ids are equal modulo the slot count): they go untimed. Possible only
    /// where pid_max exceeds `MAX_IN_FLIGHT_FAULTS`.
    pub const PARK_FAILED: u32 = 2;
    /// Child processes added to the pid filter by `--children`.
    pub const CHILDREN_ADDED: u32 = 3;
    /// Children that did not fit in the full pid filter: they go untraced.
    pub const CHILDREN_DROPPED: u32 = 4;
    /// Stalls whose start did not fit in the full in-flight map: they go untimed.
    pub const STALLS_DROPPED: u32 = 5;
    /// Number of slots.
    pub const SLOTS: u32 = 8;
}

/// Map names shared by both sides.
pub mod maps {
    /// The ring buffer carrying every record.
    pub const EVENTS: &str = "EVENTS";
    /// Per-CPU lost-record counters, indexed by `EventKind`.
    pub const LOST: &str = "LOST";
    /// Per-CPU diagnostics, indexed by `stat`.
    pub const STATS: &str = "STATS";
    /// Per-CPU machine event counts, indexed by `vm_count`.
    pub const VM_COUNTS: &str = "VM_COUNTS";
    /// Thread group ids to trace in `filter_mode::PIDS`.
    pub const PIDS: &str = "PIDS";
}

/// Capacity of the `PIDS` filter map.
pub const MAX_FILTER_PIDS: u32 = 16_384;
/// Most slots of the in-flight fault array (one per thread id modulo the slot count): 3 MiB.
/// Userspace sizes it to pid_max rounded up to a power of two, capped here.
pub const MAX_IN_FLIGHT_FAULTS: u32 = 65_536;

ids! {
    /// What a task stalled in. Ids are stable.
    pub enum StallKind {
        /// Global direct reclaim (`mm_vmscan_direct_reclaim_begin/end`).
        DirectReclaim = 0 => "direct_reclaim",
        /// Reclaim because a memory cgroup hit its limit (`mm_vmscan_memcg_reclaim_begin/end`).
        MemcgReclaim = 1 => "memcg_reclaim",
        /// Memory cgroup soft-limit reclaim.
        MemcgSoftLimit = 2 => "memcg_softlimit",
        /// Node reclaim (`mm_vmscan_node_reclaim_begin/end`).
        NodeReclaim = 3 => "node_reclaim",
        /// Reclaim throttling; the kernel reports the delay (`mm_vmscan_throttled`).
        Throttle = 4 => "throttle",
        /// Direct compaction: one allocation's attempt (`mm_compaction_try_to_compact_pages`)
        /// that was not skipped, as the kernel's `compact_stall` counts them.
        Compaction = 5 => "compaction",
    }
}

/// Number of [`StallKind`] values.
pub const STALL_KINDS: usize = 6;

const _: () = assert!(StallKind::ALL.len() == STALL_KINDS);

/// One completed stall, 80 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StallEvent {
    /// Always `EventKind::Stall as u32`.
    pub kind: u32,
    /// A `StallKind` id.
    pub stall: u32,
    pub tgid: u32,
    pub tid: u32,
    /// `bpf_ktime_get_ns()` at the start (CLOCK_MONOTONIC).
    pub start_ns: u64,
    pub latency_ns: u64,
    /// Pages reclaimed (reclaim kinds), or the compaction status (compaction).
    pub nr_reclaimed: u64,
    /// Allocation order asked for (-1 when unknown).
    pub order: i32,
    /// The allocation's gfp flags (0 when unknown).
    pub gfp_flags: u32,
    /// NUMA node, the throttle reason for `Throttle`, `compaction` bits for `Compaction`.
    pub detail: u32,
    /// The local node's zones as the stall began, a [`zone_state`] word (0 for `Throttle`).
    pub zones: u32,
    /// The stalled task's memory cgroup: the inode of its directory (0: unknown).
    pub memcg_id: u64,
    pub comm: [u8; COMM_LEN],
}

ids! {
    /// Direction of a [`SwapEvent`].
    pub enum SwapDir {
        /// Pages written to swap (`PSWPOUT`).
        Out = 0 => "out",
        /// Pages read from swap (`PSWPIN`).
        In = 1 => "in",
    }
}

/// Pages written to or read from swap, as counted by `memcg:count_memcg_events`, 48 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapEvent {
    /// Always `EventKind::Swap as u32`.
    pub kind: u32,
    /// A [`SwapDir`] id.
    pub dir: u32,
    /// The task doing the I/O: the reclaimer (kswapd or a direct reclaimer) for swap-outs,
    /// the faulting task for swap-ins.
    pub tgid: u32,
    pub pages: u32,
    /// Inode of the memory cgroup that owns the pages (0 when unknown).
    pub memcg_id: u64,
    pub ts_ns: u64,
    pub comm: [u8; COMM_LEN],
}

ids! {
    /// What a [`KswapdEvent`] reports.
    pub enum KswapdOp {
        /// kswapd of `nid` started working (`mm_vmscan_kswapd_wake`).
        Wake = 0 => "wake",
        /// kswapd of `nid` went to sleep (`mm_vmscan_kswapd_sleep`).
        Sleep = 1 => "sleep",
        /// An allocating task woke kswapd (`mm_vmscan_wakeup_kswapd`).
        WokenBy = 2 => "woken_by",
    }
}

/// kswapd activity, 56 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KswapdEvent {
    /// Always `EventKind::Kswapd as u32`.
    pub kind: u32,
    /// A [`KswapdOp`] id.
    pub op: u32,
    pub nid: u32,
    pub order: i32,
    pub ts_ns: u64,
    /// The waking task (for `WOKEN_BY`), else kswapd itself.
    pub tgid: u32,
    pub gfp_flags: u32,
    pub comm: [u8; COMM_LEN],
    /// The zone index the wake is for (`highest_zoneidx` of a wake, the zone of a waking
    /// allocation; -1 for `Sleep`).
    pub zid: i32,
    /// Explicit padding so the type has none implicit.
    pub _pad: u32,
}

ids! {
    /// What a [`ProcessEvent`] reports.
    pub enum ProcessOp {
        /// A new process (thread group) was forked (`sched:sched_process_fork`).
        Start = 0 => "start",
        /// A process's last thread exited (`sched:sched_process_exit`, group dead).
        Exit = 1 => "exit",
    }
}

/// A traced process started or ended, 48 bytes. A process is its `tgid` and `start_ns`
/// together: the kernel reuses pids.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessEvent {
    /// Always `EventKind::Process as u32`.
    pub kind: u32,
    /// A [`ProcessOp`] id.
    pub op: u32,
    pub tgid: u32,
    /// The forking process (for `Start`), 0 for `Exit`.
    pub parent_tgid: u32,
    /// The thread group leader's `start_time` (CLOCK_MONOTONIC ns).
    pub start_ns: u64,
    /// When it happened.
    pub ts_ns: u64,
    pub comm: [u8; COMM_LEN],
}

/// Bits of [`StallEvent::detail`] for direct compaction. One attempt compacts zone after zone;
/// a record goes out as each zone's run ends (or as the attempt is deferred or succeeds
/// without a run), all with the attempt's `start_ns` and the time since then.
pub mod compaction {
    /// The attempt's first record: it counts one stall.
    pub const FIRST: u32 = 1 << 0;
    /// The record ends the compaction of one zone (`nr_reclaimed` is the zone's status).
    pub const ZONE_RUN: u32 = 1 << 1;
    /// A zone was skipped after recent failures (`mm_compaction_deferred`).
    pub const DEFERRED: u32 = 1 << 2;
    /// A zone can serve the allocation (`mm_compaction_defer_reset`: the kernel calls it when
    /// a zone's compaction succeeds and when the allocation gets its page after compacting).
    pub const READY: u32 = 1 << 3;
}

/// The `zones` word of a [`StallEvent`]: the local NUMA node's zones read in the kernel as the
/// stall began. Byte 0: zones (bit = zone index) whose free pages were under their `min`
/// watermark (boost included); byte 1: under `low`; byte 2: zones read (populated); byte 3:
/// the largest order with a free block in the highest zone read, plus one (0: not read). The
/// highest zone (Normal, or Movable where populated) is the one most allocations prefer; the
/// lower zones' blocks are held back from them (`lowmem_reserve`).
pub mod zone_state {
    pub const UNDER_MIN_SHIFT: u32 = 0;
    pub const UNDER_LOW_SHIFT: u32 = 8;
    pub const READ_SHIFT: u32 = 16;
    pub const ORDER_SHIFT: u32 = 24;
    /// Zones a word can describe (`MAX_NR_ZONES` is at most 5 on current kernels).
    pub const MAX_ZONES: u32 = 8;

    /// Zones under `min` (bit = zone index).
    pub const fn under_min(word: u32) -> u8 {
        (word >> UNDER_MIN_SHIFT) as u8
    }

    /// Zones under `low` (those under `min` too).
    pub const fn under_low(word: u32) -> u8 {
        (word >> UNDER_LOW_SHIFT) as u8
    }

    /// Zones read; 0 when the kernel could not be read.
    pub const fn read(word: u32) -> u8 {
        (word >> READ_SHIFT) as u8
    }

    /// The largest free block's order in the highest zone read.
    pub const fn largest_free_order(word: u32) -> Option<u32> {
        match word >> ORDER_SHIFT {
            0 => None,
            n => Some(n - 1),
        }
    }
}

/// Indexes of the `VM_COUNTS` per-CPU counters: machine events memtrace counts in the kernel
/// rather than streams.
pub mod vm_count {
    /// `kmem:mm_page_alloc_extfrag`, by the fallback order (orders above the last slot count
    /// in it): an allocation took a free block of another migrate type.
    pub const EXTFRAG: u32 = 0;
    pub const EXTFRAG_ORDERS: u32 = 12;
    /// `compaction:mm_compaction_try_to_compact_pages` of traced tasks: direct-compaction
    /// attempts, the skipped ones included.
    pub const COMPACT_ATTEMPTS: u32 = EXTFRAG + EXTFRAG_ORDERS;
    /// `compaction:mm_compaction_kcompactd_wake`: kcompactd started compacting for an order
    /// kswapd asked for.
    pub const KCOMPACTD_WAKES: u32 = COMPACT_ATTEMPTS + 1;
    /// Number of slots.
    pub const SLOTS: u32 = 16;
}

/// State of a stall in flight, kept per thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InFlightStall {
    pub start_ns: u64,
    /// A `StallKind` id.
    pub stall: u32,
    pub order: i32,
    pub gfp_flags: u32,
    pub detail: u32,
    /// A [`zone_state`] word.
    pub zones: u32,
    /// Explicit padding so the type has none implicit.
    pub _pad: u32,
}

#[cfg(feature = "user")]
// SAFETY: the following are `repr(C)`, `Copy`, and have no implicit padding.
unsafe impl aya::Pod for StallEvent {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for SwapEvent {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for KswapdEvent {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for InFlightStall {}
#[cfg(feature = "user")]
// SAFETY: as above.
unsafe impl aya::Pod for ProcessEvent {}

pub mod batch;
pub mod growth;
pub mod offsets;
pub mod oom;
