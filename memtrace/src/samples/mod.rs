//! Samples: plain data, and exactly what a recording keeps. `collect` makes them from the live
//! machine (a header at the start, one [`IntervalSample`] per interval, an [`End`]); the model
//! is a fold of them, so a recording replayed later gives every view the live run gave.
//! Nothing here reads the machine or computes a view.
pub mod files;
pub mod growth;
pub mod hist;
pub mod host;
pub mod machine;
pub mod oom;
pub mod stall_kinds;
pub mod zones;

use memtrace_common::{FaultClass, StallKind};
use serde::{Deserialize, Serialize};

pub use hist::{LatencyStats, LatencySummary, Log2Bucket, SIGNIFICANT_DIGITS};
use host::HostFacts;
use machine::{MachineSample, Thresholds};
use oom::OomInterval;

/// What a recording knows before its first interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    /// The memtrace that recorded it.
    pub memtrace_version: String,
    /// Wall clock at the start (ns since the Unix epoch), and CLOCK_MONOTONIC at that moment:
    /// every other time in the recording is CLOCK_MONOTONIC, the kernel programs' clock.
    pub start_unix_ns: u64,
    pub start_mono_ns: u64,
    /// Length of one interval, as asked.
    pub interval_ns: u64,
    /// What was traced, in words.
    pub traced: String,
    /// The traced pids (empty: not a pid filter); the timeline focuses on them.
    pub focus_pids: Vec<u32>,
    /// When a timeline interval is flagged.
    pub thresholds: Thresholds,
    /// Every hook, attached or not.
    pub hooks: Vec<HookStatus>,
    /// The machine's counters at the start: the first interval's rates are taken from here.
    pub machine: MachineSample,
    /// Facts about the machine, as they were when recording started.
    pub host: HostFacts,
    /// Fault samples carry their time split (on-CPU, waiting, blocked); false in recordings
    /// made before memtrace measured it.
    pub fault_time_split: bool,
}

/// The outcome of attaching one hook.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HookStatus {
    /// Program name in the eBPF object.
    pub program: String,
    /// Where it was attached (`tp_btf/...`, `perf/...`, `iter/...`).
    pub hook: String,
    /// Why it failed, `None` when attached.
    pub error: Option<String>,
}

/// Kernel-side counters, summed over CPUs, since the start of the recording.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KernelCounters {
    /// Records that could not be reserved in the ring buffer, by `EventKind` id.
    pub lost: [u64; memtrace_common::EVENT_KIND_SLOTS as usize],
    /// Fault completions whose start was not seen.
    pub unmatched_ends: u64,
    /// Faults whose thread left the CPU mid-fault.
    pub parked: u64,
    /// Faults whose in-flight slot another thread took (see `Diagnostics::park_failed`).
    pub park_failed: u64,
    /// Children added to the pid filter.
    pub children_added: u64,
    /// Children that did not fit in the full pid filter (untraced).
    pub children_dropped: u64,
    /// Stalls whose start did not fit in the full in-flight map (untimed).
    pub stalls_dropped: u64,
}

/// Why a recording ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `--duration` elapsed.
    Duration,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Every traced process exited.
    TracedExited,
    /// The recording has no end: its recorder was killed, or the file was cut short.
    Unfinished,
    /// The file reached its size or age (`serve -o` with rotation); the run went on in the
    /// next file.
    Rotated,
}

/// The last frame of a recording that finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct End {
    pub stop: StopReason,
    /// Wall time from the start of tracing to the end.
    pub elapsed_ns: u64,
    /// Kernel counters at the end.
    pub counters: KernelCounters,
}

/// Everything that happened in one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IntervalSample {
    /// 0 for the first interval.
    pub index: u64,
    /// CLOCK_MONOTONIC bounds.
    pub start_ns: u64,
    pub end_ns: u64,
    /// The machine's counters read at `end_ns`.
    pub machine: MachineSample,
    /// Faults and stalls of each process that had any in this interval.
    pub processes: Vec<ProcessSample>,
    /// Stalled time by process, split at interval boundaries. A stall is sent when it ends,
    /// so parts of it may belong to earlier intervals: `interval` says which.
    pub stall_time: Vec<StallTime>,
    /// kswapd per node.
    pub kswapd: Vec<KswapdSample>,
    /// Each zone's free pages against its watermarks over the interval (empty in recordings
    /// made before memtrace read them).
    pub zones: Vec<zones::ZoneSample>,
    /// The page allocator's fallbacks and the compaction attempts, counted in the kernel.
    pub allocator: zones::AllocatorEvents,
    /// Swap traffic by the task doing the I/O, and by the memory cgroup owning the pages.
    pub swap_by_task: Vec<SwapByTask>,
    pub swap_by_memcg: Vec<SwapByMemcg>,
    /// Memory cgroups first named in this interval: their inode and path.
    pub cgroups: Vec<CgroupName>,
    /// OOM kills and what followed them.
    pub oom: OomInterval,
    /// Traced processes that ended in this interval.
    pub exits: Vec<ProcessExit>,
    /// Major faults by the file they read.
    pub files: Vec<files::FileFaults>,
    /// Traced processes' memory at the close (what changed since the last kept reading).
    pub memory: growth::MemoryInterval,
    /// Pages faults brought in, by stack (`record --stacks`).
    pub stacks: growth::StacksInterval,
    /// Fault records received (batch entries included).
    pub fault_records: u64,
    /// Records that did not decode, and the first one's reason.
    pub malformed: u64,
    pub first_malformed: Option<String>,
    /// Kernel-side counters at `end_ns`.
    pub counters: KernelCounters,
}

/// One process in one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessSample {
    /// Thread group id.
    pub pid: u32,
    /// When it started (CLOCK_MONOTONIC ns; 0: unknown): with `pid`, the process's identity.
    pub start_ns: u64,
    /// When it ended, if it had by the end of the interval.
    pub exit_ns: Option<u64>,
    /// The best name seen in the interval (empty: none); `named` when the main thread or an
    /// exec gave it, which overrides earlier names.
    pub comm: String,
    pub named: bool,
    /// Its memory cgroup (the inode of the directory; 0: unknown, or a recording made before
    /// memtrace kept it), as its last full fault or stall record said.
    pub memcg_id: u64,
    /// Faults per class.
    pub faults: Vec<ClassSample>,
    /// Pages read back from swap during its faults.
    pub swapin_pages: u64,
    /// Faults taken for it without a CPU exception (get_user_pages): counted, not timed.
    pub untimed_faults: u64,
    /// Reclaim and compaction stalls per kind.
    pub stalls: Vec<StallSample>,
}

/// A traced process that ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProcessExit {
    pub pid: u32,
    pub start_ns: u64,
    pub exit_ns: u64,
}

/// Faults of one class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClassSample {
    /// A `FaultClass` id.
    pub class: u32,
    pub latency: LatencyStats,
    /// Where their time went (see [`Header::fault_time_split`]).
    pub split: TimeSplit,
}

/// Where faults' time went, besides its total (the sum of their latencies): the rest of the
/// total was on-CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeSplit {
    /// Time the faulting threads were switched out mid-fault.
    pub off_cpu_ns: u64,
    /// Of that, time they waited runnable for a CPU (preempted, or woken and queued); the rest
    /// they were blocked (asleep: I/O, a lock).
    pub waiting_ns: u64,
}

impl TimeSplit {
    /// Adds another split to this one.
    pub fn add(&mut self, other: &Self) {
        self.off_cpu_ns += other.off_cpu_ns;
        self.waiting_ns += other.waiting_ns;
    }

    /// Blocked time: off the CPU and not runnable.
    pub fn blocked_ns(&self) -> u64 {
        self.off_cpu_ns.saturating_sub(self.waiting_ns)
    }
}

/// Stalls of one kind.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StallSample {
    /// A `StallKind` id.
    pub kind: u32,
    pub latency: LatencyStats,
    /// Pages reclaimed during these stalls.
    pub pages: u64,
    /// Which allocations stalled.
    pub allocations: Vec<Allocation>,
    /// Direct compaction only: zones compacted during these attempts (one attempt may
    /// compact several zones, or none when a zone was deferred or already ready).
    pub zone_runs: u64,
    /// Direct compaction only: attempts after which a zone could serve the allocation (the
    /// kernel found it ready, or the allocation got its page), and attempts whose every zone
    /// was deferred. The others failed.
    pub succeeded: u64,
    pub deferred: u64,
}

/// Stalls caused by allocations of one order and gfp mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Allocation {
    pub order: i32,
    pub gfp_flags: u32,
    pub count: u64,
    /// The zones as these stalls began.
    pub zones: zones::StallZones,
}

/// Stalled time of one process within one interval, by timeline category.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StallTime {
    /// The interval the time belongs to (this one or an earlier one).
    pub interval: u64,
    pub pid: u32,
    pub start_ns: u64,
    /// (category, ns), categories with time only.
    pub ns: Vec<(StallCategory, u64)>,
}

/// The kinds of stall the timeline shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallCategory {
    DirectReclaim,
    MemcgReclaim,
    NodeReclaim,
    Compaction,
    Throttle,
    SwapIn,
    MajorFault,
    /// Time minor and THP faults spent blocked (waiting for a page under I/O, a lock): the
    /// I/O wait the kernel's minor/major accounting hides.
    MinorBlocked,
}

/// Number of [`StallCategory`] values.
pub const STALL_CATEGORIES: usize = 8;

impl StallCategory {
    /// Every category, in display order (also the index order of per-category arrays).
    pub const ALL: [Self; STALL_CATEGORIES] = [
        Self::DirectReclaim,
        Self::MemcgReclaim,
        Self::NodeReclaim,
        Self::Compaction,
        Self::Throttle,
        Self::SwapIn,
        Self::MajorFault,
        Self::MinorBlocked,
    ];

    /// The category of a reclaim or compaction stall (soft-limit reclaim is memcg reclaim).
    pub fn of_stall(kind: StallKind) -> Self {
        match kind {
            StallKind::DirectReclaim => Self::DirectReclaim,
            StallKind::MemcgReclaim | StallKind::MemcgSoftLimit => Self::MemcgReclaim,
            StallKind::NodeReclaim => Self::NodeReclaim,
            StallKind::Throttle => Self::Throttle,
            StallKind::Compaction => Self::Compaction,
        }
    }

    /// The category of a fault, if it counts as a stall (minor faults do not).
    pub fn of_fault(class: FaultClass) -> Option<Self> {
        match class {
            FaultClass::Minor | FaultClass::Thp => None,
            FaultClass::MajorFile => Some(Self::MajorFault),
            FaultClass::MajorSwap => Some(Self::SwapIn),
        }
    }

    /// Short name for tables.
    pub fn short(self) -> &'static str {
        match self {
            Self::DirectReclaim => "direct",
            Self::MemcgReclaim => "memcg",
            Self::NodeReclaim => "node",
            Self::Compaction => "compact",
            Self::Throttle => "throttle",
            Self::SwapIn => "swapin",
            Self::MajorFault => "majflt",
            Self::MinorBlocked => "minblk",
        }
    }
}

/// kswapd of one node in one interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KswapdSample {
    pub nid: u32,
    /// Times it started working.
    pub wakes: u64,
    /// Time it was awake (wake to sleep), split at interval boundaries: (interval, ns). Awake
    /// is not busy: it includes its naps before sleeping and its waits for a CPU.
    pub awake_ns: Vec<(u64, u64)>,
    /// Its CPU time in this interval (`/proc/PID/schedstat`); `None` when not read (older
    /// recordings, or no kswapd thread found for the node).
    pub cpu_ns: Option<u64>,
    /// Who woke it.
    pub woken_by: Vec<KswapdWaker>,
    /// Its wakes by the zone index and order they were for.
    pub wake_zones: Vec<KswapdWake>,
}

/// kswapd's wakes for one zone index and order (`mm_vmscan_kswapd_wake`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KswapdWake {
    pub zid: i32,
    pub order: i32,
    pub count: u64,
}

/// Allocations of one task, at one order, that woke kswapd.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct KswapdWaker {
    pub pid: u32,
    pub comm: String,
    pub order: i32,
    pub count: u64,
    /// The zone index of the waking allocation (`None` in older recordings).
    pub zid: Option<i32>,
}

/// Pages moved by one task.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwapByTask {
    pub pid: u32,
    pub comm: String,
    pub out_pages: u64,
    pub in_pages: u64,
}

/// Pages moved for one memory cgroup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SwapByMemcg {
    /// Inode of the cgroup's directory (0: unknown).
    pub memcg_id: u64,
    pub out_pages: u64,
    pub in_pages: u64,
}

/// A memory cgroup's path, as it was when first seen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CgroupName {
    pub id: u64,
    pub path: Option<String>,
    /// Its memory limit then (`memory.max`, or v1's `memory.limit_in_bytes`); `None` when
    /// unlimited or unreadable.
    pub memory_limit_bytes: Option<u64>,
}

/// The `comm` bytes of a record as text, up to the first NUL.
pub fn comm_str(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
}
